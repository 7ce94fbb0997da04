//! Streaming decoder of an archive's item stream.
//!
//! The plaintexts of the item-stream chunks, concatenated, are a sequence of msgpack maps whose
//! boundaries do not coincide with chunk boundaries. [`ItemStream`] keeps only the undecoded tail
//! plus a small window of chunks fetched and decoded ahead in parallel, so memory does not grow
//! with the archive.

use super::item::Item;
use super::msgpack::ReadError;
use crate::error::{Error, Result};
use crate::key::{Key, Sealed};
use crate::store::Store;
use crate::ObjectId;
use rayon::prelude::*;
use std::collections::VecDeque;

/// Fetches and decodes item-stream chunks ahead of the parser.
pub(crate) struct ChunkPrefetcher<'a> {
    store: &'a dyn Store,
    key: &'a Key,
    ids: Vec<ObjectId>,
    next: usize,
    ready: VecDeque<Result<Vec<u8>>>,
    window: usize,
    /// `(id, plaintext length, stored length)` of every chunk fetched, when recording.
    record: Option<Vec<(ObjectId, usize, usize)>>,
}

impl<'a> ChunkPrefetcher<'a> {
    pub(crate) fn new(store: &'a dyn Store, key: &'a Key, ids: Vec<ObjectId>) -> Self {
        let window = (rayon::current_num_threads() * 4).clamp(4, 64);
        ChunkPrefetcher {
            store,
            key,
            ids,
            next: 0,
            ready: VecDeque::new(),
            window,
            record: None,
        }
    }

    fn fill(&mut self) {
        let end = (self.next + self.window).min(self.ids.len());
        let batch = &self.ids[self.next..end];
        let (store, key) = (self.store, self.key);
        // Fetch through get_many (pipelined on remote stores), then decode in parallel.
        let mut raw: Vec<Option<Result<Vec<u8>>>> = (0..batch.len()).map(|_| None).collect();
        let fetched = store.get_many(batch, &mut |i, r| {
            raw[i] = Some(r);
            Ok(())
        });
        let raw: Vec<Result<Sealed>> = batch
            .iter()
            .zip(raw)
            .map(|(id, obj)| match (obj, &fetched) {
                (Some(r), _) => r.map(|data| Sealed {
                    id: Some(*id),
                    data,
                    size_hint: None,
                }),
                (None, Err(e)) => Err(Error::Other(e.to_string())),
                (None, Ok(())) => Err(Error::Other("object not delivered".into())),
            })
            .collect();
        // Decode in groups (MACs and ids hashed side by side), the groups in parallel.
        let mut groups: Vec<Vec<Result<Sealed>>> = Vec::new();
        for r in raw {
            match groups.last_mut() {
                Some(g) if g.len() < Key::GROUP => g.push(r),
                _ => groups.push(vec![r]),
            }
        }
        let decoded: Vec<Result<(Vec<u8>, usize)>> = groups
            .into_par_iter()
            .flat_map_iter(|group| {
                let mut sealed = Vec::with_capacity(group.len());
                let mut slots = Vec::with_capacity(group.len());
                for r in group {
                    match r {
                        Ok(s) => {
                            slots.push(Ok(s.data.len()));
                            sealed.push(s);
                        }
                        Err(e) => slots.push(Err(e)),
                    }
                }
                let mut opened = key.open_objects(&mut sealed).into_iter();
                slots
                    .into_iter()
                    .map(|slot| {
                        let stored = slot?;
                        let plain = opened
                            .next()
                            .unwrap_or_else(|| Err(Error::Other("object not decoded".into())))?;
                        Ok((plain, stored))
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        for (id, d) in batch.iter().zip(decoded) {
            if let (Some(rec), Ok((plain, stored))) = (self.record.as_mut(), &d) {
                rec.push((*id, plain.len(), *stored));
            }
            self.ready.push_back(d.map(|(plain, _)| plain));
        }
        self.next = end;
    }

    /// The next chunk's plaintext, or `None` at the end.
    pub(crate) fn next_chunk(&mut self) -> Option<Result<Vec<u8>>> {
        if self.ready.is_empty() && self.next < self.ids.len() {
            self.fill();
        }
        self.ready.pop_front()
    }
}

/// Where an [`ItemStream`] gets its plaintext chunks.
enum ChunkSource<'a> {
    /// Fetched and decoded by the stream itself, a window at a time.
    Inline(ChunkPrefetcher<'a>),
    /// Fetched and decoded ahead by another thread (see `Archive::each_item`).
    Channel(std::sync::mpsc::Receiver<Result<Vec<u8>>>),
}

impl ChunkSource<'_> {
    fn next_chunk(&mut self) -> Option<Result<Vec<u8>>> {
        match self {
            ChunkSource::Inline(p) => p.next_chunk(),
            ChunkSource::Channel(rx) => rx.recv().ok(),
        }
    }
}

/// Iterator over the items of one archive.
pub struct ItemStream<'a> {
    chunks: ChunkSource<'a>,
    buf: Vec<u8>,
    pos: usize,
    archive: String,
    failed: bool,
    /// Bytes that must be buffered before an item that was short is decoded again: twice what
    /// it had, so one item spanning many chunks costs linear, not quadratic, parsing.
    retry_at: usize,
    /// The source has no more chunks.
    exhausted: bool,
    /// How many items were produced so far.
    pub count: u64,
}

impl ItemStream<'_> {
    /// Records `(id, plaintext length, stored length)` of each item-stream chunk from now on.
    pub fn record_chunks(&mut self) {
        if let ChunkSource::Inline(p) = &mut self.chunks {
            p.record.get_or_insert_with(Vec::new);
        }
    }

    /// The chunks recorded since [`ItemStream::record_chunks`].
    pub fn recorded_chunks(&self) -> &[(ObjectId, usize, usize)] {
        match &self.chunks {
            ChunkSource::Inline(p) => p.record.as_deref().unwrap_or(&[]),
            ChunkSource::Channel(_) => &[],
        }
    }
}

impl<'a> ItemStream<'a> {
    pub(crate) fn new(
        store: &'a dyn Store,
        key: &'a Key,
        ids: Vec<ObjectId>,
        archive: String,
    ) -> Self {
        Self::with_source(
            ChunkSource::Inline(ChunkPrefetcher::new(store, key, ids)),
            archive,
        )
    }

    /// A stream over plaintext chunks that another thread fetches and decodes ahead (from a
    /// [`ChunkPrefetcher`] of its own), so that fetching overlaps parsing.
    pub(crate) fn from_channel(
        rx: std::sync::mpsc::Receiver<Result<Vec<u8>>>,
        archive: String,
    ) -> Self {
        Self::with_source(ChunkSource::Channel(rx), archive)
    }

    fn with_source(chunks: ChunkSource<'a>, archive: String) -> Self {
        ItemStream {
            chunks,
            buf: Vec::new(),
            pos: 0,
            archive,
            failed: false,
            retry_at: 0,
            exhausted: false,
            count: 0,
        }
    }

    fn decode_one(&mut self) -> Result<Option<Item>> {
        loop {
            let avail = self.buf.len() - self.pos;
            if avail >= self.retry_at || self.exhausted {
                match decode_item(&self.buf[self.pos..]) {
                    Decoded::Item(item, used) => {
                        self.pos += used;
                        self.count += 1;
                        self.retry_at = 0;
                        return Ok(Some(*item));
                    }
                    Decoded::Invalid(e) => {
                        return Err(Error::Integrity(format!(
                            "Archive {}: item {} of the item stream cannot be decoded: {e}",
                            self.archive,
                            self.count + 1
                        )))
                    }
                    Decoded::NeedMore if self.exhausted => {
                        if self.pos >= self.buf.len() {
                            return Ok(None);
                        }
                        return Err(Error::Integrity(format!(
                            "Archive {}: item stream ends in the middle of item {}",
                            self.archive,
                            self.count + 1
                        )));
                    }
                    Decoded::NeedMore => self.retry_at = avail.saturating_mul(2),
                }
            }
            match self.chunks.next_chunk() {
                Some(chunk) => {
                    let chunk = chunk.map_err(|e| {
                        e.in_context(&format!("(item metadata of archive {})", self.archive))
                    })?;
                    self.buf.drain(..self.pos);
                    self.pos = 0;
                    self.buf.extend_from_slice(&chunk);
                }
                None => self.exhausted = true,
            }
        }
    }
}

/// The outcome of decoding one item from the front of a buffer.
#[derive(Debug)]
pub enum Decoded {
    /// An item and the number of bytes it used.
    Item(Box<Item>, usize),
    /// The buffer ends inside an item (or is empty): more bytes are needed.
    NeedMore,
    /// The bytes are not an item.
    Invalid(String),
}

/// Decodes one msgpack item map from the front of `buf`.
pub fn decode_item(buf: &[u8]) -> Decoded {
    if buf.is_empty() {
        return Decoded::NeedMore;
    }
    match Item::decode(buf) {
        Ok((item, used)) => Decoded::Item(Box::new(item), used),
        Err(ReadError::Short) => Decoded::NeedMore,
        Err(ReadError::Invalid(e)) => Decoded::Invalid(e),
    }
}

impl Iterator for ItemStream<'_> {
    type Item = Result<Item>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.decode_one() {
            Ok(Some(item)) => Some(Ok(item)),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

//! An archive's items, decoded lazily: item-stream chunks fetched and decoded ahead in parallel
//! (by [`ChunkPrefetcher`]) and fed to the [`ItemDecoder`], so memory does not grow with the
//! archive.

use crate::error::Result;
use crate::fetch::ChunkPrefetcher;
use crate::format::items::{ItemDecoder, Step};
use crate::format::Item;
use crate::id::ObjectId;
use crate::key::Key;
use crate::store::Store;

/// Where an [`ItemStream`] gets its plaintext chunks.
pub(crate) enum ChunkSource<'a> {
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

/// The items of one archive, in archive order (an `Iterator` of `Result<Item>`; it ends after
/// the first error).
pub struct ItemStream<'a> {
    chunks: ChunkSource<'a>,
    decoder: ItemDecoder,
    failed: bool,
}

impl ItemStream<'_> {
    /// How many items were produced so far.
    pub fn count(&self) -> u64 {
        self.decoder.count
    }

    /// Records `(id, plaintext length, stored length)` of each item-stream chunk from now on.
    pub(crate) fn record_chunks(&mut self) {
        if let ChunkSource::Inline(p) = &mut self.chunks {
            p.record.get_or_insert_with(Vec::new);
        }
    }

    /// The chunks recorded since [`ItemStream::record_chunks`].
    pub(crate) fn recorded_chunks(&self) -> &[(ObjectId, usize, usize)] {
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

    /// Decodes the items as borg 2's (see [`ItemDecoder::borg2`]).
    pub(crate) fn borg2(mut self, yes: bool) -> Self {
        self.decoder =
            std::mem::replace(&mut self.decoder, ItemDecoder::new(String::new())).borg2(yes);
        self
    }

    fn with_source(chunks: ChunkSource<'a>, archive: String) -> Self {
        ItemStream {
            chunks,
            decoder: ItemDecoder::new(archive),
            failed: false,
        }
    }

    fn decode_one(&mut self) -> Result<Option<Item>> {
        loop {
            match self.decoder.next_item()? {
                Step::Item(item) => return Ok(Some(*item)),
                Step::End => return Ok(None),
                Step::NeedMore => match self.chunks.next_chunk() {
                    Some(chunk) => {
                        let chunk = chunk.map_err(|e| {
                            e.in_context(&format!(
                                "(item metadata of archive {})",
                                self.decoder.archive()
                            ))
                        })?;
                        self.decoder.feed(&chunk);
                    }
                    None => self.decoder.finish(),
                },
            }
        }
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

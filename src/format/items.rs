//! The item stream's decoder: the plaintexts of an archive's item-stream chunks, concatenated,
//! are a sequence of msgpack maps whose boundaries do not coincide with chunk boundaries.
//! [`ItemDecoder`] is fed chunks and yields items, keeping only the undecoded tail, so memory
//! does not grow with the archive. (Fetching the chunks is the caller's business.)

use super::item::Item;
use super::msgpack::ReadError;
use crate::error::{Error, Result};

/// What [`ItemDecoder::next_item`] found.
#[derive(Debug)]
pub(crate) enum Step {
    /// The next item.
    Item(Box<Item>),
    /// The buffered bytes end inside an item: feed the next chunk.
    NeedMore,
    /// The stream is over (after [`ItemDecoder::finish`]).
    End,
}

/// Decodes an archive's items from its item-stream chunks.
pub(crate) struct ItemDecoder {
    buf: Vec<u8>,
    pos: usize,
    archive: String,
    /// Bytes that must be buffered before an item that was short is decoded again: twice what
    /// it had, so one item spanning many chunks costs linear, not quadratic, parsing.
    retry_at: usize,
    /// No more chunks will come.
    finished: bool,
    /// How many items were produced so far.
    pub(crate) count: u64,
    /// borg 2 hard-link groups: `hlid` → the path of the group's first item.
    hard_links: std::collections::HashMap<crate::id::ObjectId, Vec<u8>>,
    /// The items are borg 2's: a file without `hlid` is in no hard-link group.
    borg2: bool,
}

impl ItemDecoder {
    /// A decoder for the items of the archive called `archive` (for messages).
    pub(crate) fn new(archive: String) -> Self {
        ItemDecoder {
            buf: Vec::new(),
            pos: 0,
            archive,
            retry_at: 0,
            finished: false,
            count: 0,
            hard_links: std::collections::HashMap::new(),
            borg2: false,
        }
    }

    /// Decodes borg 2 items: every member of a hard-link group has an `hlid`, so a file without
    /// one is marked as no group's master (a restore then keeps no record of it).
    pub(crate) fn borg2(mut self, yes: bool) -> Self {
        self.borg2 = yes;
        self
    }

    /// The archive's name, for messages.
    pub(crate) fn archive(&self) -> &str {
        &self.archive
    }

    /// Appends the next chunk's plaintext.
    pub(crate) fn feed(&mut self, chunk: &[u8]) {
        self.buf.drain(..self.pos);
        self.pos = 0;
        self.buf.extend_from_slice(chunk);
    }

    /// Says that no more chunks will come: what is buffered must be whole items.
    pub(crate) fn finish(&mut self) {
        self.finished = true;
    }

    /// The next item from what was fed.
    ///
    /// # Errors
    /// Bytes that are not an item, or a stream that ends inside one ([`Error::Integrity`],
    /// naming the archive and the item's number).
    pub(crate) fn next_item(&mut self) -> Result<Step> {
        let avail = self.buf.len() - self.pos;
        if avail < self.retry_at && !self.finished {
            return Ok(Step::NeedMore);
        }
        match decode_item(&self.buf[self.pos..]) {
            Decoded::Item(mut item, used) => {
                self.pos += used;
                self.count += 1;
                self.retry_at = 0;
                self.link(&mut item);
                Ok(Step::Item(item))
            }
            Decoded::Invalid(e) => Err(Error::Integrity(format!(
                "Archive {}: item {} of the item stream cannot be decoded: {e}",
                self.archive,
                self.count + 1
            ))),
            Decoded::NeedMore if self.finished => {
                if self.pos >= self.buf.len() {
                    return Ok(Step::End);
                }
                Err(Error::Integrity(format!(
                    "Archive {}: item stream ends in the middle of item {}",
                    self.archive,
                    self.count + 1
                )))
            }
            Decoded::NeedMore => {
                self.retry_at = avail.saturating_mul(2);
                Ok(Step::NeedMore)
            }
        }
    }
}

impl ItemDecoder {
    /// A borg 2 hard-link member, put in borg 1.x's terms: the group's first item becomes its
    /// master, the later ones point at it through `source` (each keeps its own chunks, so it
    /// still reads as the file it is when the master is not restored).
    fn link(&mut self, item: &mut Item) {
        let Some(hlid) = item.hlid else {
            if self.borg2 && item.hardlink_master.is_none() {
                item.hardlink_master = Some(false);
            }
            return;
        };
        if item.is_symlink() {
            return;
        }
        match self.hard_links.get(&hlid) {
            Some(master) => {
                item.source = Some(master.clone());
                item.hardlink_master = Some(false);
            }
            None => {
                self.hard_links.insert(hlid, item.path.clone());
                item.source = None;
                item.hardlink_master = Some(true);
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

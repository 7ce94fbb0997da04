//! One archive of an opened repository: its metadata and its items.

use super::items::ItemStream;
use super::reader::FileReader;
use super::Repository;
use crate::error::{Error, Result};
use crate::fetch::ChunkPrefetcher;
use crate::format::{ArchiveEntry, ArchiveMeta, Item};
use std::sync::Arc;

/// One archive of an opened repository.
pub struct Archive<'r> {
    pub(super) repo: &'r Repository,
    /// The manifest entry (name, id, time).
    pub entry: ArchiveEntry,
    /// The archive metadata.
    pub meta: ArchiveMeta,
}

impl<'r> Archive<'r> {
    /// The archive's name for display.
    pub fn name(&self) -> String {
        self.entry.display_name()
    }

    /// The item at `path` (as the archive stores it: relative, no leading `/`), if there is
    /// one. A hard-link member (borg 1.x stores the content only with the group's first
    /// item) comes with its master's chunks and size, so it reads as the file it is. One pass
    /// over the item stream (two for a hard-link member).
    ///
    /// # Errors
    /// Damaged item metadata, or a store that fails.
    pub fn find(&self, path: impl AsRef<[u8]>) -> Result<Option<Item>> {
        let path = path.as_ref();
        let path = path.strip_prefix(b"/").unwrap_or(path);
        let mut found = None;
        for item in self.items() {
            let item = item?;
            if item.path == path && item.part.is_none() {
                found = Some(item);
                break;
            }
        }
        match found {
            Some(item) if item.is_hardlink_slave() => self.resolve(item).map(Some),
            other => Ok(other),
        }
    }

    /// A hard-link member with its master's content (chunks, size); any other item as it is.
    ///
    /// # Errors
    /// A member whose master is not in the archive ([`Error::Integrity`]), damaged item
    /// metadata, or a store that fails.
    pub fn resolve(&self, mut item: Item) -> Result<Item> {
        if !item.is_hardlink_slave() {
            return Ok(item);
        }
        let master = item.source.clone().unwrap_or_default();
        for m in self.items() {
            let m = m?;
            if m.path == master && m.chunks.is_some() {
                item.chunks = m.chunks;
                item.size = m.size.or(item.size);
                return Ok(item);
            }
        }
        Err(Error::Integrity(format!(
            "Archive {}: the hard link {} names {}, which is not in the archive",
            self.name(),
            item.display_path(),
            crate::text::display_bytes(&master)
        )))
    }

    /// A reader of a regular file's content (`Read`, `Seek`, `read_at`), verified; a
    /// hard-link member reads its master's content ([`Archive::resolve`]).
    ///
    /// # Errors
    /// As [`Archive::resolve`]; an item without content (a directory, a symlink) reads as empty.
    pub fn open_file(&self, item: &Item) -> Result<FileReader<'r>> {
        if item.is_hardlink_slave() && item.chunks.is_none() {
            let master = self.resolve(item.clone())?;
            return Ok(self.repo.open_chunks_reader(&master));
        }
        Ok(self.repo.open_chunks_reader(item))
    }

    /// Calls `f` with every item, in archive order, while a second thread fetches, decodes and
    /// parses the item stream ahead (so parsing and the caller's work overlap). Stops at the
    /// first error of either side.
    ///
    /// # Errors
    ///
    /// An item-stream chunk that is missing or damaged, an item that does not decode, or the
    /// first error `f` returns.
    pub fn each_item(&self, f: impl FnMut(Item) -> Result<()>) -> Result<()> {
        self.each_item_on(None, f)
    }

    /// [`Archive::each_item`] decoding the item stream's chunks on `pool` (the extractor's)
    /// instead of the global rayon pool.
    pub(crate) fn each_item_on(
        &self,
        pool: Option<Arc<rayon::ThreadPool>>,
        mut f: impl FnMut(Item) -> Result<()>,
    ) -> Result<()> {
        const BATCH: usize = 512;
        std::thread::scope(|scope| {
            // Three stages: chunks fetched and decoded (on rayon) → items parsed → `f`.
            let (ctx, crx) = std::sync::mpsc::sync_channel::<Result<Vec<u8>>>(32);
            let mut chunks =
                ChunkPrefetcher::new(self.repo.store(), self.repo.key(), self.meta.items.clone())
                    .on_pool(pool);
            let fetcher = scope.spawn(move || {
                while let Some(c) = chunks.next_chunk() {
                    if ctx.send(c).is_err() {
                        return; // the parser stopped
                    }
                }
            });
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<Item>>>(8);
            let stream = ItemStream::from_channel(crx, self.name()).borg2(self.repo.is_borg2());
            let producer = scope.spawn(move || {
                let mut batch = Vec::with_capacity(BATCH);
                for item in stream {
                    match item {
                        Ok(i) => batch.push(i),
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                    if batch.len() == BATCH
                        && tx
                            .send(Ok(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))))
                            .is_err()
                    {
                        return; // the consumer stopped
                    }
                }
                if !batch.is_empty() {
                    let _ = tx.send(Ok(batch));
                }
            });
            let mut result = Ok(());
            for batch in rx.iter() {
                match batch.and_then(|b| b.into_iter().try_for_each(&mut f)) {
                    Ok(()) => {}
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            drop(rx);
            let _ = producer.join();
            let _ = fetcher.join();
            result
        })
    }

    /// The archive's items, decoded lazily (item-stream chunks are fetched ahead in parallel).
    /// Part files of checkpoints are included; see [`Item::part`].
    pub fn items(&self) -> ItemStream<'r> {
        ItemStream::new(
            self.repo.store(),
            self.repo.key(),
            self.meta.items.clone(),
            self.name(),
        )
        .borg2(self.repo.is_borg2())
    }
}

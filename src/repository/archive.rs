//! One archive of an opened repository: its metadata and its items.

use super::items::ItemStream;
use super::Repository;
use crate::error::Result;
use crate::fetch::ChunkPrefetcher;
use crate::format::{ArchiveEntry, ArchiveMeta, Item};

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

    /// Calls `f` with every item, in archive order, while a second thread fetches, decodes and
    /// parses the item stream ahead (so parsing and the caller's work overlap). Stops at the
    /// first error of either side.
    pub fn each_item(&self, mut f: impl FnMut(Item) -> Result<()>) -> Result<()> {
        const BATCH: usize = 512;
        std::thread::scope(|scope| {
            // Three stages: chunks fetched and decoded (on rayon) → items parsed → `f`.
            let (ctx, crx) = std::sync::mpsc::sync_channel::<Result<Vec<u8>>>(32);
            let mut chunks =
                ChunkPrefetcher::new(self.repo.store(), self.repo.key(), self.meta.items.clone());
            let fetcher = scope.spawn(move || {
                while let Some(c) = chunks.next_chunk() {
                    if ctx.send(c).is_err() {
                        return; // the parser stopped
                    }
                }
            });
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<Item>>>(8);
            let stream = ItemStream::from_channel(crx, self.name());
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
    }
}

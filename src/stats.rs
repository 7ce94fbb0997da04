//! Repository and archive statistics as `borg info` reports them, computed from the archives
//! themselves (oxiborg keeps no chunks cache): reference counts of every object across all
//! archives, original/compressed/deduplicated sizes.

use crate::error::Result;
use crate::format::{ArchiveEntry, ArchiveMeta};
use crate::id::ObjectId;
use crate::repository::Repository;
use std::collections::{HashMap, HashSet};

/// One object's entry in the chunk index.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChunkStat {
    /// References across all archives.
    pub refcount: u64,
    /// Plaintext size.
    pub size: u64,
    /// Stored size.
    pub csize: u64,
}

/// Totals over the chunk index (`borg info`'s `cache.stats`).
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheStats {
    /// Σ refcount.
    pub total_chunks: u64,
    /// Σ archive compressed sizes.
    pub total_csize: u64,
    /// Σ archive original sizes.
    pub total_size: u64,
    /// Number of distinct objects.
    pub total_unique_chunks: u64,
    /// Σ stored size of distinct objects.
    pub unique_csize: u64,
    /// Σ plaintext size of distinct objects.
    pub unique_size: u64,
}

/// Statistics of one archive.
#[derive(Debug, Clone)]
pub struct ArchiveStats {
    /// The manifest entry.
    pub entry: ArchiveEntry,
    /// The archive metadata.
    pub meta: ArchiveMeta,
    /// Stored length of the metadata object.
    pub meta_csize: u64,
    /// Original size of its files.
    pub original_size: u64,
    /// Compressed size of its files.
    pub compressed_size: u64,
    /// Number of files.
    pub nfiles: u64,
    /// Stored size of the chunks only this archive references.
    pub deduplicated_size: u64,
}

/// Statistics of a repository and of selected archives.
#[derive(Debug, Clone, Default)]
pub struct RepoStats {
    /// Totals.
    pub cache: CacheStats,
    /// The archives asked for, in the order asked.
    pub archives: Vec<ArchiveStats>,
}

/// Reads every archive and computes borg's statistics; `detail` names the archives (by id)
/// whose own statistics are wanted. `consider_part_files` adds checkpoint parts to the sizes.
///
/// # Errors
///
/// An archive or item-stream object that is missing or damaged.
pub fn compute(
    repo: &Repository,
    detail: &[ObjectId],
    consider_part_files: bool,
) -> Result<RepoStats> {
    let wanted: HashSet<ObjectId> = detail.iter().copied().collect();
    let mut index: HashMap<ObjectId, ChunkStat> = HashMap::new();
    let add = |index: &mut HashMap<ObjectId, ChunkStat>, id: ObjectId, size: u64, csize: u64| {
        let e = index.entry(id).or_default();
        e.refcount += 1;
        e.size = size;
        e.csize = csize;
    };
    let mut cache = CacheStats::default();
    let mut per_archive: HashMap<ObjectId, (ArchiveStats, HashMap<ObjectId, u64>)> = HashMap::new();
    for entry in repo.archives() {
        let id = entry.id.0;
        let stored = repo.store().get(&id)?;
        let archive = repo.archive_by_entry(entry)?;
        let meta_plain_len = repo.key().open_object(Some(&id), &stored, None)?.len();
        add(&mut index, id, meta_plain_len as u64, stored.len() as u64);
        let detailed = wanted.contains(&id);
        let mut counts: HashMap<ObjectId, u64> = HashMap::new();
        let (mut size, mut csize, mut nfiles) = (0u64, 0u64, 0u64);
        let (mut psize, mut pcsize, mut pfiles) = (0u64, 0u64, 0u64);
        let mut items = archive.items();
        items.record_chunks();
        for item in items.by_ref() {
            let item = item?;
            let Some(chunks) = &item.chunks else { continue };
            let (s, c) = chunks.iter().fold((0u64, 0u64), |(s, c), ch| {
                // (saturating: sizes come from the archive, and borg's are unbounded)
                (
                    s.saturating_add(ch.size),
                    c.saturating_add(ch.csize.unwrap_or(0)),
                )
            });
            if item.part.is_some() {
                psize = psize.saturating_add(s);
                pcsize = pcsize.saturating_add(c);
                pfiles += 1;
            } else {
                size = size.saturating_add(s);
                csize = csize.saturating_add(c);
                nfiles += 1;
            }
            for ch in chunks {
                add(&mut index, ch.id, ch.size, ch.csize.unwrap_or(0));
                if detailed {
                    *counts.entry(ch.id).or_default() += 1;
                }
            }
        }
        for (id, plain, stored) in items.recorded_chunks() {
            add(&mut index, *id, *plain as u64, *stored as u64);
        }
        let meta = archive.meta;
        let (osize, ocsize, onfiles) = match meta.nfiles {
            Some(n) => {
                let parts = consider_part_files;
                (
                    meta.size.unwrap_or(0).saturating_add(if parts {
                        meta.size_parts.unwrap_or(0)
                    } else {
                        0
                    }),
                    meta.csize.unwrap_or(0).saturating_add(if parts {
                        meta.csize_parts.unwrap_or(0)
                    } else {
                        0
                    }),
                    n.saturating_add(if parts {
                        meta.nfiles_parts.unwrap_or(0)
                    } else {
                        0
                    }),
                )
            }
            None if consider_part_files => (
                size.saturating_add(psize),
                csize.saturating_add(pcsize),
                nfiles + pfiles,
            ),
            None => (size, csize, nfiles),
        };
        cache.total_size = cache.total_size.saturating_add(osize);
        cache.total_csize = cache.total_csize.saturating_add(ocsize);
        if detailed {
            per_archive.insert(
                id,
                (
                    ArchiveStats {
                        entry: entry.clone(),
                        meta,
                        meta_csize: stored.len() as u64,
                        original_size: osize,
                        compressed_size: ocsize,
                        nfiles: onfiles,
                        deduplicated_size: 0,
                    },
                    counts,
                ),
            );
        }
    }
    for st in index.values() {
        cache.total_chunks += st.refcount;
        cache.total_unique_chunks += 1;
        cache.unique_size = cache.unique_size.saturating_add(st.size);
        cache.unique_csize = cache.unique_csize.saturating_add(st.csize);
    }
    let mut archives = Vec::new();
    for id in detail {
        if let Some((mut st, counts)) = per_archive.remove(id) {
            st.deduplicated_size = counts
                .iter()
                .filter(|(id, n)| index.get(*id).is_some_and(|g| g.refcount == **n))
                .map(|(id, _)| index[id].csize)
                .fold(0u64, u64::saturating_add);
            archives.push(st);
        }
    }
    Ok(RepoStats { cache, archives })
}

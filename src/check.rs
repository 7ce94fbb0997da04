//! `borg check`, read-only: repository consistency, archive consistency and data verification.
//!
//! The three parts of borg's check, in borg's order and wording, without `--repair` (oxiborg
//! never writes to a repository):
//!
//! * the **repository** check ([`Store::check`]): every committed segment read with its CRCs
//!   and the object map rebuilt and compared with `index.N` (local), or every object the index
//!   lists read back through `borg serve` (remote);
//! * the **archives** check ([`check_archives`]): with `--verify-data` first every object
//!   fetched and fully verified — MAC, decryption, decompression, id — in parallel
//!   ([`verify_data`]); then the manifest, each archive's metadata and item stream, every
//!   file's chunks present, sizes consistent, no orphaned objects.
//!
//! Findings go to a callback as `(level, message)`; each function returns how many problems
//! it found (borg's exit code is 1 when there is any).
//!
//! ```no_run
//! use oxiborg::{check, Location, OpenOptions, Repository};
//! # fn main() -> oxiborg::Result<()> {
//! let loc = Location::parse("/srv/repo")?;
//! let opts = OpenOptions::from_env();
//! let store = Repository::open_store(&loc, &opts)?;
//! let mut problems = store.check(&mut |_, msg| eprintln!("{msg}"))?;
//! let repo = Repository::from_store(store, loc, &opts)?;
//! let archives = repo.archives().to_vec();
//! let what = check::ArchiveCheck { archives: &archives, all: true, verify_data: true, progress: None };
//! problems += check::check_archives(&repo, &what, &mut |_, msg| eprintln!("{msg}"))?;
//! # let _ = problems; Ok(()) }
//! ```

use crate::archive::item::display_bytes;
use crate::archive::ArchiveEntry;
use crate::error::{Error, Result};
use crate::log::Level;
use crate::repository::Repository;
use crate::{ObjectId, MANIFEST_ID};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Where a check reports: `(level, message)`.
pub type Report<'a> = dyn FnMut(Level, String) + 'a;

/// Live counters of a running check (for a progress display).
#[derive(Debug, Default)]
pub struct Progress {
    /// Objects verified so far.
    pub objects: AtomicU64,
    /// How many there are (set once known).
    pub total: AtomicU64,
}

/// How many objects in flight `verify_data` allows, in stored bytes.
const VERIFY_BUDGET: u64 = 128 << 20;

/// Fetches every object of the repository and verifies it completely (MAC, decryption,
/// decompression, id), in parallel; reports each damaged or missing one as borg does. Returns
/// the number of problems.
pub fn verify_data(repo: &Repository, report: &mut Report<'_>) -> Result<u64> {
    verify_data_with(repo, None, report)
}

/// [`verify_data`], counting into `progress` as it goes.
pub fn verify_data_with(
    repo: &Repository,
    progress: Option<&Progress>,
    report: &mut Report<'_>,
) -> Result<u64> {
    report(
        Level::Info,
        "Starting cryptographic data integrity verification...".into(),
    );
    let ids = repo.store().list_ids()?;
    if let Some(p) = progress {
        p.total.store(ids.len() as u64, Ordering::Relaxed);
    }
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    repo.open_many(&ids, VERIFY_BUDGET, &|i, r| {
        if let Some(p) = progress {
            p.objects.fetch_add(1, Ordering::Relaxed);
        }
        if let Err(e) = r {
            let id = hex::encode(ids[i]);
            let msg = match e {
                Error::ObjectNotFound { .. } => format!("chunk {id}: {e}"),
                e => format!("chunk {id}, integrity error: {e}"),
            };
            errors.lock().unwrap_or_else(|e| e.into_inner()).push(msg);
        }
    })?;
    let errors = errors.into_inner().unwrap_or_else(|e| e.into_inner());
    for e in &errors {
        report(Level::Error, e.clone());
    }
    let n = errors.len() as u64;
    report(
        if n > 0 { Level::Error } else { Level::Info },
        format!(
            "Finished cryptographic data integrity verification, verified {} chunks with {n} integrity errors.",
            ids.len()
        ),
    );
    Ok(n)
}

/// What [`check_archives`] checks.
#[derive(Debug, Clone, Copy)]
pub struct ArchiveCheck<'a> {
    /// The archives to check.
    pub archives: &'a [ArchiveEntry],
    /// They are all of the repository's archives (enables the orphan check).
    pub all: bool,
    /// Run [`verify_data`] first (borg's `--verify-data`).
    pub verify_data: bool,
    /// Counters for a progress display of the data verification.
    pub progress: Option<&'a Progress>,
}

/// The archive consistency check (borg's `ArchiveChecker`): optionally the data verification,
/// then each archive's metadata and TAM, its item stream, every file's chunks present in the
/// repository, `size` against the chunks, and (when all archives are checked) no orphaned
/// objects. Returns the number of problems.
pub fn check_archives(
    repo: &Repository,
    what: &ArchiveCheck<'_>,
    report: &mut Report<'_>,
) -> Result<u64> {
    report(Level::Info, "Starting archive consistency check...".into());
    let present: HashSet<ObjectId> = repo.store().list_ids()?.into_iter().collect();
    if present.is_empty() {
        report(
            Level::Error,
            "Repository contains no apparent data at all, cannot continue check/repair.".into(),
        );
        return Ok(1);
    }
    let mut problems = 0u64;
    if what.verify_data {
        problems += verify_data_with(repo, what.progress, report)?;
    }
    let (archives, all) = (what.archives, what.all);
    // Everything the manifest and the archives refer to, for the orphan check.
    let mut referenced: HashSet<ObjectId> = HashSet::new();
    referenced.insert(MANIFEST_ID);
    let n = archives.len();
    for (k, entry) in archives.iter().enumerate() {
        let name = entry.display_name();
        report(
            Level::Info,
            format!("Analyzing archive {name} ({}/{n})", k + 1),
        );
        referenced.insert(entry.id);
        if !present.contains(&entry.id) {
            problems += 1;
            report(
                Level::Error,
                format!(
                    "Archive metadata block {} is missing!",
                    hex::encode(entry.id)
                ),
            );
            continue;
        }
        let archive = match repo.archive_by_entry(entry) {
            Ok(a) => a,
            Err(e) => {
                problems += 1;
                report(Level::Error, format!("Archive {name}: {e}"));
                continue;
            }
        };
        let mut missing_meta = false;
        for (i, id) in archive.meta.items.iter().enumerate() {
            referenced.insert(*id);
            if !present.contains(id) {
                missing_meta = true;
                problems += 1;
                report(
                    Level::Error,
                    format!(
                        "{name}: item metadata chunk missing [chunk: {i:06}_{}]",
                        hex::encode(id)
                    ),
                );
            }
        }
        if missing_meta {
            continue;
        }
        let walked = archive.each_item(|item| {
            let Some(chunks) = &item.chunks else {
                return Ok(());
            };
            let mut offset = 0u64;
            for c in chunks {
                referenced.insert(c.id);
                if !present.contains(&c.id) {
                    problems += 1;
                    report(
                        Level::Error,
                        format!(
                            "{name}: {}: New missing file chunk detected (Byte {offset}-{}, Chunk {}). \
                             Would replace it with all-zero chunk with --repair.",
                            display_bytes(&item.path),
                            offset + c.size,
                            hex::encode(c.id)
                        ),
                    );
                }
                offset += c.size;
            }
            for c in item.chunks_healthy.iter().flatten() {
                referenced.insert(c.id);
            }
            if let Some(size) = item.size.filter(|s| *s != offset) {
                report(
                    Level::Warning,
                    format!(
                        "{name}: {}: size inconsistency detected: size {size}, chunks size {offset}",
                        display_bytes(&item.path)
                    ),
                );
            }
            Ok(())
        });
        if let Err(e) = walked {
            problems += 1;
            report(Level::Error, format!("{name}: {e}"));
        }
    }
    if all {
        let orphaned = present.difference(&referenced).count();
        if orphaned > 0 {
            problems += 1;
            report(Level::Error, format!("{orphaned} orphaned objects found!"));
        }
    }
    report(
        if problems > 0 {
            Level::Error
        } else {
            Level::Info
        },
        format!(
            "Archive consistency check complete, {}.",
            if problems > 0 {
                "problems found"
            } else {
                "no problems found"
            }
        ),
    );
    Ok(problems)
}

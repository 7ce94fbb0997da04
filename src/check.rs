//! `borg check`, read-only: repository consistency, archive consistency and data verification.
//!
//! The three parts of borg's check, in borg's order and wording, without `--repair` (oxiborg
//! never writes to a repository):
//!
//! * the **repository** check ([`Target::check_repository`]): every committed segment read with its CRCs
//!   and the object map rebuilt and compared with `index.N` (local), or every object the index
//!   lists read back through `borg serve` (remote);
//! * the **archives** check ([`check_archives`]): with `--verify-data` first every object
//!   fetched and fully verified — MAC, decryption, decompression, id — in parallel
//!   ([`verify_data`]); then the manifest (rebuilt in memory when it is missing or damaged, as
//!   borg does without writing it), each archive's metadata and item stream, every file's
//!   chunks present, sizes consistent, no orphaned objects.
//!
//! Findings go to a callback as `(level, message)`; each function returns how many problems
//! it found (borg's exit code is 1 when there is any).
//!
//! ```no_run
//! use oxiborg::{check, Location, OpenOptions};
//! # fn main() -> oxiborg::Result<()> {
//! let loc = Location::parse("/srv/repo")?;
//! let opts = OpenOptions::from_env();
//! let target = check::Target::open(&loc, &opts)?;
//! let mut problems = target.check_repository(&mut |_, msg| eprintln!("{msg}"))?;
//! let what = check::ArchiveCheck {
//!     select: check::Selection::All,
//!     verify_data: true,
//!     progress: None,
//!     interrupt: None,
//! };
//! problems += check::check_archives(target, &opts, &what, &mut |_, msg| eprintln!("{msg}"))?;
//! # let _ = problems; Ok(()) }
//! ```

use crate::error::{Error, Result};
use crate::fetch::{open_many_with, Opened};
use crate::format::ArchiveEntry;
use crate::id::{ObjectId, MANIFEST_ID};
use crate::key::{Key, KeyType};
use crate::progress::Progress;
use crate::repository::{AnyStore, OpenOptions, Repository};
use crate::store::borg2::Borg2Store;
use crate::store::Store;
use crate::text::display_bytes;
use crate::Location;
use log::Level;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Where a check reports: `(level, message)`.
pub type Report<'a> = dyn FnMut(Level, String) + 'a;

/// How many objects in flight `verify_data` allows, in stored bytes.
const VERIFY_BUDGET: u64 = 128 << 20;

/// Fetches every object of the repository and verifies it completely (MAC, decryption,
/// decompression, id), in parallel; reports each damaged or missing one as borg does. Returns
/// the number of problems. Counts into `progress` as it goes (the total is the number of
/// objects) and stops once `interrupt` is set.
///
/// # Errors
///
/// When the store cannot list its objects, or fails so that fetching cannot go on (a broken
/// connection); [`Error::Interrupted`] once `interrupt` is set. Damaged or missing objects are
/// problems, reported and counted, not errors.
pub fn verify_data(
    repo: &Repository,
    progress: Option<&Progress>,
    interrupt: Option<&AtomicBool>,
    report: &mut Report<'_>,
) -> Result<u64> {
    verify_objects(repo.store(), repo.key(), progress, interrupt, report)
}

/// [`verify_data`] on a store and its key, counting into `progress` as it goes; ends with
/// [`Error::Interrupted`] once `interrupt` is set.
///
/// # Errors
///
/// [`Error::Interrupted`]; otherwise as [`verify_data`].
pub(crate) fn verify_objects(
    store: &dyn Store,
    key: &Key,
    progress: Option<&Progress>,
    interrupt: Option<&AtomicBool>,
    report: &mut Report<'_>,
) -> Result<u64> {
    report(
        Level::Info,
        "Starting cryptographic data integrity verification...".into(),
    );
    let ids = store.list_ids()?;
    if let Some(p) = progress {
        p.set_totals(Some(ids.len() as u64), None);
    }
    // (message, a defect chunk: delivered but failing verification)
    let errors: Mutex<Vec<(String, bool)>> = Mutex::new(Vec::new());
    open_many_with(store, key, &ids, &[], VERIFY_BUDGET, interrupt, &|i, r| {
        let bytes = match &r {
            Opened::Plain(d) => d.len() as u64,
            _ => 0,
        };
        Progress::count(progress, 1, bytes);
        let id = hex::encode(ids[i]);
        // borg's two wordings: errors of the repository, and of the decryption
        let e = match r {
            Opened::Plain(_) => return,
            Opened::Unreadable(e) => (format!("chunk {id}: {e}"), false),
            Opened::Damaged(e) => (format!("chunk {id}, integrity error: {e}"), true),
        };
        errors.lock().unwrap_or_else(|e| e.into_inner()).push(e);
    })?;
    let errors = errors.into_inner().unwrap_or_else(|e| e.into_inner());
    for (e, _) in &errors {
        report(Level::Error, e.clone());
    }
    let n = errors.len() as u64;
    if errors.iter().any(|(_, defect)| *defect) {
        report(
            Level::Warn,
            "Found defect chunks. With --repair, they would get deleted, so affected files could \
             get repaired then and maybe healed later."
                .into(),
        );
    }
    report(
        if n > 0 { Level::Error } else { Level::Info },
        format!(
            "Finished cryptographic data integrity verification, verified {} chunks with {n} integrity errors.",
            ids.len()
        ),
    );
    Ok(n)
}

/// A repository opened for checking: its object store alone, without the key or the manifest
/// (either may be damaged).
pub struct Target {
    store: AnyStore,
    location: Location,
}

impl Target {
    /// Opens the object store at `location` (a local directory or `borg serve`).
    ///
    /// # Errors
    ///
    /// No repository there, a writer's lock (unless `bypass_lock`), and any remote failure
    /// ([`Error::Remote`]).
    pub fn open(location: &Location, options: &OpenOptions) -> Result<Target> {
        Ok(Target {
            store: Repository::open_any_store(location, options)?,
            location: location.clone(),
        })
    }

    /// borg's repository check: locally every committed segment read with its CRCs and the
    /// object map rebuilt and compared with `index.N`; remotely every object the index lists
    /// read back through `borg serve`. Returns the number of problems.
    ///
    /// # Errors
    ///
    /// When the store fails so that the check cannot go on (a broken connection); [`Error::Interrupted`]
    /// is not used: the repository check is not interruptible.
    pub fn check_repository(&self, report: &mut Report<'_>) -> Result<u64> {
        match &self.store {
            AnyStore::Borg1(s) => s.check(report),
            AnyStore::Borg2(s) => s.check(report),
        }
    }
}

/// Which archives [`check_archives`] checks (chosen once the manifest is known).
#[derive(Clone, Copy)]
pub enum Selection<'a> {
    /// All of them (this enables the orphan check).
    All,
    /// The one of this name.
    Named(&'a [u8]),
    /// Those a filter picks from the manifest's list (`--glob-archives`, `--last`, …).
    Filter(&'a dyn Fn(&Repository) -> Result<Vec<ArchiveEntry>>),
}

/// What [`check_archives`] checks.
#[derive(Clone, Copy)]
pub struct ArchiveCheck<'a> {
    /// The archives to check.
    pub select: Selection<'a>,
    /// Verify every object first (borg's `--verify-data`).
    pub verify_data: bool,
    /// Counters for a progress display of the data verification: objects verified (items)
    /// and their plaintext bytes; the total of objects is set once the object list is read.
    pub progress: Option<&'a Progress>,
    /// Set to stop: the check ends with [`Error::Interrupted`] (during the data verification,
    /// or before the next archive).
    pub interrupt: Option<&'a AtomicBool>,
}

/// The archive consistency check (borg's `ArchiveChecker`) of the repository `target`:
/// the key, optionally the data verification, the manifest (rebuilt in memory from the
/// archive metadata objects when it is missing or damaged), then each selected archive's
/// metadata and TAM, its item stream, every file's chunks present in the repository, `size`
/// against the chunks, and (when all archives are checked) no orphaned objects. Returns the
/// number of problems.
///
/// # Errors
///
/// When the store cannot list its objects; when no object yields the key type, or the key
/// cannot be unlocked (a wrong passphrase, a missing key file); when a named archive does not
/// exist or the selection fails; when the store fails so that the check cannot go on; and
/// [`Error::Interrupted`] when `what.interrupt` is set. What is damaged in the repository is
/// reported and counted as problems, not returned as an error.
pub fn check_archives(
    target: Target,
    options: &OpenOptions,
    what: &ArchiveCheck<'_>,
    report: &mut Report<'_>,
) -> Result<u64> {
    let Target { store, location } = target;
    let store = match store {
        AnyStore::Borg1(s) => s,
        AnyStore::Borg2(s) => return check_archives_borg2(*s, location, options, what, report),
    };
    report(Level::Info, "Starting archive consistency check...".into());
    let listed = store.list_ids()?;
    let present: HashSet<ObjectId> = listed.iter().copied().collect();
    if present.is_empty() {
        report(
            Level::Error,
            "Repository contains no apparent data at all, cannot continue check/repair.".into(),
        );
        return Ok(1);
    }
    let mut problems = 0u64;
    // The key's type from the manifest object or, like borg's make_key, from any object.
    let manifest_obj = present
        .contains(&MANIFEST_ID)
        .then(|| store.get(&MANIFEST_ID).ok())
        .flatten();
    let mut sample = manifest_obj.clone().filter(|m| {
        m.first()
            .is_some_and(|b| KeyType::from_byte(*b).is_ok_and(|k| !k.is_borg2()))
    });
    for id in listed.iter().take(999) {
        if sample.is_some() {
            break;
        }
        sample = store.get(id).ok().filter(|o| {
            o.first()
                .is_some_and(|b| KeyType::from_byte(*b).is_ok_and(|k| !k.is_borg2()))
        });
    }
    let Some(sample) = sample else {
        return Err(Error::Integrity(
            "make_key: failed to create the key (no object has a valid type byte)".into(),
        ));
    };
    let key = Repository::unlock_key(&*store, &sample, &location.canonical(), options)?;
    if what.verify_data {
        problems += verify_objects(&*store, &key, what.progress, what.interrupt, report)?;
    }
    let repo = match manifest_obj {
        None => {
            report(Level::Error, "Repository manifest not found!".into());
            rebuilt(store, key, location, options, report, &mut problems)?
        }
        // (borg's check does not consult the security directory)
        Some(obj) => {
            match Repository::with_key(store, key, obj, location.clone(), options, false) {
                Ok(repo) => repo,
                Err((store, key, e)) => {
                    report(
                        Level::Error,
                        format!("Repository manifest is corrupted: {e}"),
                    );
                    rebuilt(store, key, location, options, report, &mut problems)?
                }
            }
        }
    };
    let all = matches!(what.select, Selection::All);
    check_selected(&repo, what, &present, all, problems, report)
}

/// The archive consistency check of a borg 2 repository: the key, the chunk index, optionally
/// the data verification, then each selected archive as for borg 1.x (there is no manifest to
/// rebuild, and no orphan check: borg 2 keeps unreferenced objects until `compact`).
fn check_archives_borg2(
    store: Borg2Store,
    location: Location,
    options: &OpenOptions,
    what: &ArchiveCheck<'_>,
    report: &mut Report<'_>,
) -> Result<u64> {
    report(Level::Info, "Starting archive consistency check...".into());
    let options = OpenOptions {
        borg2_security_dir: None,
        ..options.clone()
    };
    let repo = Repository::from_borg2_store(store, location, &options)?;
    let mut problems = 0;
    if what.verify_data {
        problems += verify_objects(
            repo.store(),
            repo.key(),
            what.progress,
            what.interrupt,
            report,
        )?;
    }
    let present: HashSet<ObjectId> = repo.store().list_ids()?.into_iter().collect();
    check_selected(&repo, what, &present, false, problems, report)
}

/// Checks the selected archives of `repo`, whose store holds `present`: metadata, item
/// streams, every file's chunks, sizes and, with `orphans` (all archives checked), objects
/// nothing refers to; then borg's closing line, which counts the `problems` found before too.
/// Returns the number of problems in all.
fn check_selected(
    repo: &Repository,
    what: &ArchiveCheck<'_>,
    present: &HashSet<ObjectId>,
    orphans: bool,
    mut problems: u64,
    report: &mut Report<'_>,
) -> Result<u64> {
    let all = orphans;
    let selected: Vec<ArchiveEntry> = match what.select {
        Selection::All => repo.archives().to_vec(),
        Selection::Named(name) => vec![repo.manifest().find_or_suggest(name)?.clone()],
        Selection::Filter(f) => f(repo)?,
    };
    let archives: &[ArchiveEntry] = &selected;
    // Everything the manifest and the archives refer to, for the orphan check.
    let mut referenced: HashSet<ObjectId> = HashSet::new();
    referenced.insert(MANIFEST_ID);
    let n = archives.len();
    for (k, entry) in archives.iter().enumerate() {
        if what.interrupt.is_some_and(|f| f.load(Ordering::Relaxed)) {
            return Err(Error::Interrupted);
        }
        let name = entry.display_name();
        report(
            Level::Info,
            format!("Analyzing archive {name} ({}/{n})", k + 1),
        );
        referenced.insert(entry.id.0);
        if !present.contains(&entry.id.0) {
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
                report(
                    Level::Error,
                    format!(
                        "Archive metadata block {} is corrupted: {e}",
                        hex::encode(entry.id)
                    ),
                );
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
                    Level::Warn,
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

/// The repository with a manifest rebuilt in memory (counted as one problem, plus what the
/// rebuild found).
fn rebuilt(
    store: Box<dyn Store>,
    key: Key,
    location: Location,
    options: &OpenOptions,
    report: &mut Report<'_>,
    problems: &mut u64,
) -> Result<Repository> {
    let (repo, n) = Repository::with_rebuilt_manifest(store, key, location, options, report)?;
    *problems += 1 + n;
    Ok(repo)
}

//! A manifest rebuilt in memory from the archive metadata objects (borg check's
//! `rebuild_manifest`), for checking a repository whose manifest is lost or damaged.

use super::{OpenOptions, Repository};
use crate::error::{Error, Result};
use crate::fetch::{open_many, Opened};
use crate::format::{ArchiveEntry, ArchiveMeta, Manifest};
use crate::id::{ObjectId, MANIFEST_ID};
use crate::key::Key;
use crate::location::Location;
use crate::store::Store;

impl Repository {
    /// A repository whose manifest is lost or damaged, with a manifest rebuilt in memory from
    /// the archive metadata objects found among all objects (borg check's `rebuild_manifest`;
    /// nothing is written). Findings go to `report`; the second value counts the problems.
    pub(crate) fn with_rebuilt_manifest(
        store: Box<dyn Store>,
        key: Key,
        location: Location,
        options: &OpenOptions,
        report: &mut dyn FnMut(log::Level, String),
    ) -> Result<(Repository, u64)> {
        use log::Level;
        report(
            Level::Info,
            "Rebuilding missing manifest, this might take some time...".into(),
        );
        let ids: Vec<ObjectId> = store
            .list_ids()?
            .into_iter()
            .filter(|id| *id != MANIFEST_ID)
            .collect();
        // (index in ids, the plaintext of a likely archive, or why an object is unreadable)
        type Candidate = (usize, std::result::Result<Vec<u8>, String>);
        let found: std::sync::Mutex<Vec<Candidate>> = std::sync::Mutex::new(Vec::new());
        open_many(&*store, &key, &ids, 128 << 20, &|i, r| {
            let r = match r {
                // borg's cheap test first: archive metadata has these keys
                Opened::Plain(p)
                    if contains(&p, b"cmdline") && contains(&p, b"\xa7version\x01") =>
                {
                    Ok(p)
                }
                Opened::Plain(_) => return,
                Opened::Unreadable(e) | Opened::Damaged(e) => Err(e.to_string()),
            };
            found.lock().unwrap_or_else(|e| e.into_inner()).push((i, r));
        })?;
        let mut found = found.into_inner().unwrap_or_else(|e| e.into_inner());
        found.sort_by_key(|(i, _)| *i);
        let mut problems = 0;
        let mut archives: Vec<ArchiveEntry> = Vec::new();
        for (i, r) in found {
            let plain = match r {
                Ok(p) => p,
                Err(e) => {
                    problems += 1;
                    report(Level::Error, format!("Skipping corrupted chunk: {e}"));
                    continue;
                }
            };
            let meta = match ArchiveMeta::parse(&plain, &key, "(rebuilt)", false) {
                Ok(m) => m,
                Err(e @ Error::ArchiveTamInvalid(_)) => {
                    problems += 1;
                    report(
                        Level::Error,
                        format!(
                            "Archive TAM authentication issue for archive {}: {e}",
                            hex::encode(ids[i])
                        ),
                    );
                    report(
                        Level::Error,
                        "This archive will *not* be added to the rebuilt manifest! It will be deleted."
                            .into(),
                    );
                    continue;
                }
                Err(_) => continue,
            };
            let mut name = meta.name.clone();
            report(
                Level::Info,
                format!("Found archive {}", crate::text::display_bytes(&name)),
            );
            if archives.iter().any(|a| a.name == name) {
                let base = name.clone();
                let mut n = 1;
                while archives.iter().any(|a| a.name == name) {
                    name = [base.as_slice(), format!(".{n}").as_bytes()].concat();
                    n += 1;
                }
                report(
                    Level::Warn,
                    format!(
                        "Duplicate archive name {}, storing as {}",
                        crate::text::display_bytes(&base),
                        crate::text::display_bytes(&name)
                    ),
                );
            }
            archives.push(ArchiveEntry {
                name,
                id: crate::id::Id(ids[i]),
                time_utc: crate::format::parse_time(&meta.time).unwrap_or_default(),
                time: meta.time,
            });
        }
        report(Level::Info, "Manifest rebuild complete.".into());
        report(
            Level::Warn,
            "The rebuilt manifest will only be committed when using --repair!".into(),
        );
        archives.sort_by_key(|a| a.time_utc);
        let manifest = Manifest {
            version: 1,
            archives,
            timestamp: String::new(),
            id: [0; 32],
            tam_verified: false,
        };
        Ok((
            Repository {
                store,
                key,
                manifest,
                location,
                ignore_invalid_archive_tam: options.ignore_invalid_archive_tam,
                borg2: None,
            },
            problems,
        ))
    }
}

/// Whether `needle` occurs in `hay`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

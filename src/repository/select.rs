//! Choosing archives, as borg's archive options do: by name (`::NAME`, with `latest` meaning the
//! newest when no archive has that name), by id, by glob (`--glob-archives`, `--prefix`, with
//! borg's placeholders), sorted (`--sort-by`) and cut (`--first`, `--last`).
//!
//! ```no_run
//! use oxiborg::{ArchiveFilter, Location, OpenOptions, Repository};
//! # fn main() -> oxiborg::Result<()> {
//! let repo = Repository::open(&Location::parse("/srv/repo")?, &OpenOptions::from_env())?;
//! let newest_of_host = repo.latest(&ArchiveFilter::glob("{hostname}-*"))?;
//! let last_three = repo.select(&ArchiveFilter { last: Some(3), ..ArchiveFilter::default() })?;
//! # let _ = (newest_of_host, last_three); Ok(()) }
//! ```

use super::Repository;
use crate::error::{Error, Result};
use crate::format::ArchiveEntry;
use crate::id::Id;

/// What to sort archives by.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Start time (borg's default).
    Timestamp,
    /// Name.
    Name,
    /// Id.
    Id,
}

impl std::str::FromStr for SortKey {
    type Err = Error;

    /// borg's `--sort-by` keys: `timestamp`, `name` (or `archive`), `id`.
    fn from_str(s: &str) -> Result<SortKey> {
        match s.trim() {
            "timestamp" => Ok(SortKey::Timestamp),
            "name" | "archive" => Ok(SortKey::Name),
            "id" => Ok(SortKey::Id),
            other => Err(Error::InvalidInput(format!(
                "argument --sort-by: Invalid sort key: {other} (use timestamp, name, archive or id)"
            ))),
        }
    }
}

/// Which archives to take, and in which order (borg's `-P/--prefix`, `-a/--glob-archives`,
/// `--sort-by`, `--first`, `--last`, `--consider-checkpoints`). The default takes every archive
/// but checkpoints, oldest first.
#[derive(Debug, Clone, Default)]
pub struct ArchiveFilter {
    /// Only names matching this glob (`sh:` style: `*` within a name, `**`, `?`, `[…]`), after
    /// borg's placeholders (`{hostname}`, `{now}`, …) are expanded.
    pub glob: Option<String>,
    /// Only names starting with this (a glob too, as borg's `--prefix` is).
    pub prefix: Option<String>,
    /// Sort keys, the first the most significant (empty: by timestamp).
    pub sort_by: Vec<SortKey>,
    /// Only the first N (after sorting).
    pub first: Option<usize>,
    /// Only the last N (after sorting).
    pub last: Option<usize>,
    /// Checkpoint archives (`….checkpoint`) too.
    pub consider_checkpoints: bool,
}

impl ArchiveFilter {
    /// Archives whose name matches `glob` (with borg's placeholders).
    pub fn glob(glob: impl Into<String>) -> ArchiveFilter {
        ArchiveFilter {
            glob: Some(glob.into()),
            ..ArchiveFilter::default()
        }
    }

    /// Archives whose name starts with `prefix`.
    pub fn prefix(prefix: impl Into<String>) -> ArchiveFilter {
        ArchiveFilter {
            prefix: Some(prefix.into()),
            ..ArchiveFilter::default()
        }
    }

    /// The name pattern as a compiled regex, if any.
    fn regex(&self) -> Result<Option<regex::bytes::Regex>> {
        // (not escaped: borg's prefix is a glob too, "work[1]" matches "work1…")
        let glob = match (&self.prefix, &self.glob) {
            (Some(p), _) => Some(format!("{}*", crate::placeholders::replace(p)?)),
            (None, Some(g)) => Some(crate::placeholders::replace(g)?),
            _ => None,
        };
        glob.map(|g| {
            regex::bytes::Regex::new(&format!(
                "(?s)\\A(?:{})\\z",
                crate::patterns::translate_shell(g.as_bytes())
            ))
            .map_err(|e| Error::InvalidInput(format!("invalid archive glob: {e}")))
        })
        .transpose()
    }
}

/// Whether a name is a checkpoint's.
fn is_checkpoint(name: &[u8]) -> bool {
    name.windows(11).any(|w| w == b".checkpoint")
}

impl Repository {
    /// The archives `filter` selects, in its order.
    ///
    /// # Errors
    /// A bad glob or placeholder ([`Error::InvalidInput`]).
    pub fn select(&self, filter: &ArchiveFilter) -> Result<Vec<&ArchiveEntry>> {
        let re = filter.regex()?;
        let mut v: Vec<&ArchiveEntry> = self
            .archives()
            .iter()
            .filter(|a| re.as_ref().is_none_or(|r| r.is_match(&a.name)))
            .filter(|a| filter.consider_checkpoints || !is_checkpoint(&a.name))
            .collect();
        let keys: &[SortKey] = if filter.sort_by.is_empty() {
            &[SortKey::Timestamp]
        } else {
            &filter.sort_by
        };
        for k in keys.iter().rev() {
            match k {
                SortKey::Timestamp => v.sort_by_key(|a| a.time_utc),
                SortKey::Name => v.sort_by(|a, b| a.name.cmp(&b.name)),
                SortKey::Id => v.sort_by_key(|a| a.id),
            }
        }
        if let Some(n) = filter.first {
            v.truncate(n);
        }
        if let Some(n) = filter.last {
            let skip = v.len().saturating_sub(n);
            v.drain(..skip);
        }
        Ok(v)
    }

    /// The newest archive `filter` selects (by start time; checkpoints left out unless asked).
    ///
    /// # Errors
    /// [`Error::ArchiveDoesNotExist`]-like [`crate::ErrorKind::NotFound`] when none is there
    /// (a new repository, or a glob that matches nothing), or a bad glob.
    pub fn latest(&self, filter: &ArchiveFilter) -> Result<&ArchiveEntry> {
        let newest = ArchiveFilter {
            sort_by: vec![SortKey::Timestamp],
            first: None,
            last: Some(1),
            ..filter.clone()
        };
        self.select(&newest)?.into_iter().next().ok_or_else(|| {
            let what = match (&filter.prefix, &filter.glob) {
                (Some(p), _) => format!(" with prefix {p:?}"),
                (_, Some(g)) => format!(" matching {g:?}"),
                _ => String::new(),
            };
            Error::NoArchives(format!(
                "No archives found in {loc}{what}: the host may not have backed up yet (a new \
                 repository?), or the repository was never initialized. `oxiborg list {loc}` \
                 shows what is there.",
                loc = self.location()
            ))
        })
    }

    /// The archive a name means, as borg's `::NAME` does, plus oxiborg's `latest`: the archive
    /// of that name; else, for `latest`, the newest archive; else, for 64 hex digits, the
    /// archive with that id.
    ///
    /// # Errors
    /// [`Error::ArchiveDoesNotExist`] naming the nearest names, or [`Error::NoArchives`].
    pub fn find_archive(&self, name: impl AsRef<[u8]>) -> Result<&ArchiveEntry> {
        let name = name.as_ref();
        if let Some(a) = self.manifest().find(name) {
            return Ok(a);
        }
        if name == b"latest" {
            return self.latest(&ArchiveFilter::default());
        }
        if let Some(id) = std::str::from_utf8(name)
            .ok()
            .filter(|s| s.len() == 64)
            .and_then(|s| s.parse::<Id>().ok())
        {
            if let Some(a) = self.archives().iter().find(|a| a.id == id) {
                return Ok(a);
            }
        }
        self.manifest().find_or_suggest(name)
    }
}

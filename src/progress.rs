//! Live counters of a running operation, shared by [`crate::extract`], [`crate::check`] and
//! [`crate::export_tar`], for a progress display another thread reads.
//!
//! The operation counts into a [`Progress`] it is given (`Arc<Progress>` in
//! [`crate::extract::ExtractOptions::progress`] and [`crate::export_tar::TarOptions::progress`],
//! `&Progress` in [`crate::check::ArchiveCheck::progress`]); any thread reads it at any time.
//! What an item and a byte are depends on the operation:
//!
//! | operation | items | bytes | totals |
//! |---|---|---|---|
//! | extract | regular files finished (restored, verified, streamed or kept) | their content bytes, as written | set by [`crate::extract::Extractor::totals`] |
//! | check `--verify-data` | objects verified | their plaintext bytes | items: set once the object list is read |
//! | export-tar | members written | content bytes written | not known |
//!
//! ```no_run
//! use oxiborg::extract::{ExtractOptions, Extractor};
//! use oxiborg::patterns::Matcher;
//! use oxiborg::{Location, OpenOptions, Progress, Repository};
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use std::sync::Arc;
//! # fn main() -> oxiborg::Result<()> {
//! let repo = Repository::open(&Location::parse("/srv/repo")?, &OpenOptions::from_env())?;
//! let progress = Arc::new(Progress::new());
//! let opts = ExtractOptions { progress: Some(progress.clone()), ..ExtractOptions::default() };
//! let extractor = Extractor::new(&repo, opts);
//! extractor.totals("host-2025-01-15", &Matcher::new())?; // sets the totals
//! let done = AtomicBool::new(false);
//! let summary = std::thread::scope(|s| {
//!     s.spawn(|| {
//!         while !done.load(Ordering::Relaxed) {
//!             let total = progress.total_bytes().unwrap_or(0);
//!             eprint!("\r{} of {total} bytes", progress.bytes());
//!             std::thread::sleep(std::time::Duration::from_millis(200));
//!         }
//!     });
//!     let summary = extractor.run("host-2025-01-15", Matcher::new(), &mut |_| {});
//!     done.store(true, Ordering::Relaxed);
//!     summary
//! })?;
//! eprintln!("\r{} files restored", summary.files);
//! # Ok(()) }
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

/// A total not known (yet).
const UNKNOWN: u64 = u64::MAX;

/// Live counters of a running operation: items and bytes done, and their totals when known.
/// Updated with relaxed atomics; the counters only grow while the operation runs.
#[derive(Debug)]
pub struct Progress {
    items: AtomicU64,
    bytes: AtomicU64,
    total_items: AtomicU64,
    total_bytes: AtomicU64,
}

/// A progress line: `1234 items, 56.7 MB`, with ` of 100.0 MB` when the total is known.
impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mb = |b: u64| b as f64 / 1e6;
        write!(f, "{} items, {:.1} MB", self.items(), mb(self.bytes()))?;
        match self.total_bytes() {
            Some(total) => write!(f, " of {:.1} MB", mb(total)),
            None => Ok(()),
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

impl Progress {
    /// Counters at zero, the totals not known.
    pub fn new() -> Progress {
        Progress {
            items: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            total_items: AtomicU64::new(UNKNOWN),
            total_bytes: AtomicU64::new(UNKNOWN),
        }
    }

    /// Items done so far (what an item is: see the [module docs](self)).
    pub fn items(&self) -> u64 {
        self.items.load(Ordering::Relaxed)
    }

    /// Bytes done so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// How many items there are, once known.
    pub fn total_items(&self) -> Option<u64> {
        Some(self.total_items.load(Ordering::Relaxed)).filter(|t| *t != UNKNOWN)
    }

    /// How many bytes there are, once known.
    pub fn total_bytes(&self) -> Option<u64> {
        Some(self.total_bytes.load(Ordering::Relaxed)).filter(|t| *t != UNKNOWN)
    }

    /// Counts `items` items and `bytes` bytes done.
    pub fn add(&self, items: u64, bytes: u64) {
        if items > 0 {
            self.items.fetch_add(items, Ordering::Relaxed);
        }
        if bytes > 0 {
            self.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// Records the totals (`None`: not known).
    pub fn set_totals(&self, items: Option<u64>, bytes: Option<u64>) {
        self.total_items
            .store(items.unwrap_or(UNKNOWN), Ordering::Relaxed);
        self.total_bytes
            .store(bytes.unwrap_or(UNKNOWN), Ordering::Relaxed);
    }

    /// [`Progress::add`] to `p`, if there is one.
    pub(crate) fn count(p: Option<&Progress>, items: u64, bytes: u64) {
        if let Some(p) = p {
            p.add(items, bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Progress;

    #[test]
    fn displays_as_a_progress_line() {
        let p = Progress::new();
        p.add(3, 1_250_000);
        assert_eq!(p.to_string(), "3 items, 1.2 MB");
        p.set_totals(Some(10), Some(5_000_000));
        assert_eq!(p.to_string(), "3 items, 1.2 MB of 5.0 MB");
    }

    #[test]
    fn counts_and_totals() {
        let p = Progress::new();
        assert_eq!((p.items(), p.bytes()), (0, 0));
        assert_eq!((p.total_items(), p.total_bytes()), (None, None));
        p.add(2, 10);
        Progress::count(Some(&p), 1, 5);
        Progress::count(None, 1, 5);
        assert_eq!((p.items(), p.bytes()), (3, 15));
        p.set_totals(Some(0), None);
        assert_eq!((p.total_items(), p.total_bytes()), (Some(0), None));
        p.set_totals(Some(7), Some(70));
        assert_eq!((p.total_items(), p.total_bytes()), (Some(7), Some(70)));
    }
}

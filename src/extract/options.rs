//! What a restore is asked to do, and what it reports: options, events, the summary.

use super::metadata::MetaOptions;
use crate::progress::Progress;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// How to extract.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// Where to restore (borg: the current directory).
    pub destination: PathBuf,
    /// Drop this many leading path components.
    pub strip_components: usize,
    /// Read and verify everything, write nothing.
    pub dry_run: bool,
    /// Make holes for all-zero chunks.
    pub sparse: bool,
    /// Metadata restore options.
    pub meta: MetaOptions,
    /// Also restore checkpoint part files.
    pub consider_part_files: bool,
    /// Flush a batch of files once their content reaches this many bytes.
    pub batch_bytes: u64,
    /// … or once this many files are pending.
    pub batch_files: usize,
    /// At most this many decoded bytes in flight.
    pub inflight_bytes: u64,
    /// Decode on a pool of this many threads made for each restore (`Some(0)`: one per CPU);
    /// `None`: on the global rayon pool. A pool given with [`super::Extractor::with_pool`]
    /// takes precedence.
    pub threads: Option<usize>,
    /// Resume an interrupted restore (`--continue`): a regular file already at its final name
    /// with the archived size and modification time is kept (oxiborg renames a file into place
    /// only once it is complete, with its metadata set), hard links already pointing at their
    /// group's file are kept, and temporary files an interrupted run left behind are removed.
    pub resume: bool,
    /// Live counters updated while the restore runs, for a progress display: regular files
    /// finished (items) and their content bytes; [`super::Extractor::totals`] sets the totals.
    pub progress: Option<Arc<Progress>>,
    /// The way to stop a restore (and [`super::Extractor::totals`] and
    /// [`super::Extractor::space_check`]): set it from a signal handler, another thread … The
    /// restore stops at the next item or object, finishes the files whose data is in flight,
    /// removes the temporary files of the rest, and returns [`crate::Error::Interrupted`].
    /// Every file that has its real name is complete, so [`ExtractOptions::resume`] picks up
    /// from there.
    pub interrupt: Option<Arc<AtomicBool>>,
}

/// What a restore will handle, counted before it starts (for a progress display's total, and
/// the free-space check).
#[derive(Debug, Clone, Copy, Default)]
pub struct Totals {
    /// Selected regular files.
    pub files: u64,
    /// Their content bytes.
    pub bytes: u64,
    /// Inodes the restore makes: every selected item but the hard links to a file restored.
    pub inodes: u64,
    /// Disk space the restore takes, estimated: each file's content rounded up to 4 KiB
    /// blocks, and a block per directory.
    pub disk_bytes: u64,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            destination: PathBuf::from("."),
            strip_components: 0,
            dry_run: false,
            sparse: false,
            meta: MetaOptions::default(),
            consider_part_files: false,
            batch_bytes: 256 << 20,
            batch_files: 2048,
            inflight_bytes: 128 << 20,
            threads: None,
            resume: false,
            progress: None,
            interrupt: None,
        }
    }
}

/// Something that happened during a restore.
#[derive(Debug)]
pub enum Event<'a> {
    /// An item was selected (borg's `--list` line).
    Item(&'a str),
    /// A file was already complete at the destination and kept (`resume`).
    FileKept {
        /// Its path.
        path: &'a str,
        /// Its size.
        bytes: u64,
    },
    /// A file was restored completely.
    FileDone {
        /// Its path.
        path: &'a str,
        /// Its size.
        bytes: u64,
    },
    /// A problem that left the item restored in part (counted in [`Summary::warnings`]).
    Warning(String),
    /// Temporary files that an earlier, interrupted oxiborg run left in the destination were
    /// removed (reported once, at the end).
    StaleRemoved {
        /// How many.
        files: u64,
    },
    /// An item that could not be restored (counted in [`Summary::failed`], or in
    /// [`Summary::refused`] when refused for safety).
    Error(String),
}

/// The outcome of a restore: counts, from which a caller draws its verdict (the CLI's exit
/// code follows borg: 2 with `failed`, else 1 with `warnings` or `refused`, else 0).
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Items selected (those refused included).
    pub items: u64,
    /// Regular files restored (or verified, with `dry_run`).
    pub files: u64,
    /// Content bytes restored.
    pub bytes: u64,
    /// Regular files found complete and kept (`resume`).
    pub kept: u64,
    /// Content bytes of the kept files.
    pub kept_bytes: u64,
    /// Temporary files of an interrupted run that were removed (all of the destination with
    /// `resume`, else those in the directories the restore entered).
    pub stale_removed: u64,
    /// Chunks fetched and decoded.
    pub chunks: u64,
    /// Warnings: items restored in part, or not made where borg only warns ([`Event::Warning`];
    /// borg exits 1).
    pub warnings: u64,
    /// Items refused for safety: outside the destination, below a symlink, too deep, a hard
    /// link to a file not restored (borg exits 1).
    pub refused: u64,
    /// Items lost to damaged or missing data or a failing system call (borg exits 2).
    pub failed: u64,
    /// Selected items that are not restored (failed, refused, or not creatable), whatever the
    /// cause; see [`Summary::causes`].
    pub not_restored: u64,
    /// Content bytes of the files among them.
    pub not_restored_bytes: u64,
    /// Of those bytes, the ones of files that found no room (no space left, quota exceeded).
    pub no_space_bytes: u64,
    /// Why items were not restored: a short cause ("No space left on device", "damaged or
    /// missing data") → how many.
    pub causes: BTreeMap<String, u64>,
    /// Stored (encrypted, compressed) bytes read from the repository.
    pub read_bytes: u64,
    /// Time per stage.
    pub stages: StageTimes,
}

/// Where the time went, per pipeline stage. Fetch, plan, finalize and total are wall-clock on
/// their thread; decode and write are summed over the decoding threads.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimes {
    /// Streaming and selecting items, making directories, links and special files.
    pub plan: std::time::Duration,
    /// Waiting for the store to deliver objects.
    pub fetch: std::time::Duration,
    /// MAC, decryption, decompression, id check (summed over threads).
    pub decode: std::time::Duration,
    /// Positional writes, and finishing each file once its last chunk is written (length
    /// checks, metadata, rename, hard links), summed over threads.
    pub write: std::time::Duration,
    /// On the planning thread: reporting the finished files of each batch in archive order,
    /// directory metadata, files without chunks.
    pub finalize: std::time::Duration,
    /// The whole restore.
    pub total: std::time::Duration,
}

//! Restoring archives: selection, a parallel pipeline, confined writes and metadata.
//!
//! The pipeline: **plan** (stream items, select, decide each item's fate; directories, links,
//! fifos and devices are made at once) → **create** the batch's temporary files, one task per
//! directory → **fetch** (the chunks of a batch of files, each chunk once, in the store's
//! preferred order via [`crate::store::Store::get_many`]: segment order locally, pipelined
//! remotely) → **decode** on rayon in groups (MAC and id of a group hashed side by side,
//! decryption in place, decompression) → **positional writes** (a chunk for a file another
//! thread is writing is handed to that thread) → **finish** each file on the thread that
//! wrote its last chunk (length check, metadata, rename into place, hard links) → directory
//! metadata in borg's order. A byte budget bounds what is in flight; a file is renamed to its
//! real name only when every chunk arrived and verified, so nothing half-restored looks
//! complete.
//!
//! ```no_run
//! use oxiborg::extract::{ExtractOptions, Extractor};
//! use oxiborg::patterns::Matcher;
//! use oxiborg::{Location, OpenOptions, Repository};
//! # fn main() -> oxiborg::Result<()> {
//! let repo = Repository::open(&Location::parse("/srv/repo")?, &OpenOptions::from_env())?;
//! let mut matcher = Matcher::new();
//! matcher.add_paths(&["home".to_string()])?;
//! let opts = ExtractOptions { destination: "/tmp/restore".into(), ..ExtractOptions::default() };
//! let summary = Extractor::new(&repo, opts).run("host-2025-01-15", matcher, &mut |event| {
//!     if let oxiborg::extract::Event::Error(msg) = event { eprintln!("{msg}") }
//! })?;
//! println!("{} files, {} bytes", summary.files, summary.bytes);
//! # Ok(()) }
//! ```

pub mod acl;
pub mod dest;
pub mod metadata;

use crate::error::{Error, Result};
use crate::fetch::Budget;
use crate::format::item::{ChunkRef, Item};
use crate::id::ObjectId;
use crate::key::{Key, Sealed};
use crate::patterns::Matcher;
use crate::repository::Repository;
use dest::{components, show, Destination, DirError};
use metadata::{MetaOptions, Owners, Target};
use rustix::fd::OwnedFd;
use rustix::fs::{self, AtFlags, FileType, Mode, OFlags};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// How to extract.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// Where to restore (borg: the current directory).
    pub destination: PathBuf,
    /// Drop this many leading path components.
    pub strip_components: usize,
    /// Read and verify everything, write nothing.
    pub dry_run: bool,
    /// Write the selected files' contents to this sink instead of creating files.
    pub stdout: bool,
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
    /// Resume an interrupted restore (`--continue`): a regular file already at its final name
    /// with the archived size and modification time is kept (oxiborg renames a file into place
    /// only once it is complete, with its metadata set), hard links already pointing at their
    /// group's file are kept, and temporary files an interrupted run left behind are removed.
    pub resume: bool,
    /// Live counters updated while the restore runs (for a progress display).
    pub progress: Option<Arc<Progress>>,
    /// Set (from a signal handler, another thread …) to stop the restore: it stops at the next
    /// item or object, finishes the files whose data is in flight and removes the temporary
    /// files of the rest, and returns [`Error::Interrupted`]. Every file that has its real name
    /// is complete, so [`ExtractOptions::resume`] picks up from there.
    pub interrupt: Option<Arc<AtomicBool>>,
}

/// Live counters of a running restore, read by another thread to show progress.
#[derive(Debug, Default)]
pub struct Progress {
    /// Content bytes written (or verified, or found complete) so far.
    pub bytes: AtomicU64,
    /// Regular files finished so far (restored, verified, streamed or kept).
    pub files: AtomicU64,
}

impl Progress {
    fn add(p: &Option<Arc<Progress>>, files: u64, bytes: u64) {
        if let Some(p) = p {
            p.files.fetch_add(files, Ordering::Relaxed);
            p.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }
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

/// What a destination lacks for a selection ([`Extractor::space_check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortfall {
    /// Disk space the selection takes (estimated, see [`Totals::disk_bytes`]).
    pub need_bytes: u64,
    /// Disk space available to this user.
    pub free_bytes: u64,
    /// Inodes the selection takes.
    pub need_inodes: u64,
    /// Inodes available, where the file system has a fixed number of them.
    pub free_inodes: Option<u64>,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            destination: PathBuf::from("."),
            strip_components: 0,
            dry_run: false,
            stdout: false,
            sparse: false,
            meta: MetaOptions::default(),
            consider_part_files: false,
            batch_bytes: 256 << 20,
            batch_files: 2048,
            inflight_bytes: 128 << 20,
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
    /// A problem that left the item restored in part (exit code 1).
    Warning(String),
    /// Temporary files that an earlier, interrupted oxiborg run left in the destination were
    /// removed (reported once, at the end).
    StaleRemoved {
        /// How many.
        files: u64,
    },
    /// An item that could not be restored (exit code 2 for damaged data, 1 for refused items).
    Error(String),
}

/// The outcome of a restore.
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
    /// Warnings (exit code 1).
    pub warnings: u64,
    /// Items refused for safety (exit code 1).
    pub refused: u64,
    /// Files lost to damaged or missing data (exit code 2).
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

impl Summary {
    /// borg's exit code for this outcome (legacy: 0, 1 or 2).
    pub fn exit_code(&self) -> i32 {
        if self.failed > 0 {
            2
        } else if self.warnings > 0 || self.refused > 0 {
            1
        } else {
            0
        }
    }
}

/// A decode group is sent to the workers once its stored plus plaintext bytes reach this.
const GROUP_BYTES: u64 = 32 << 20;

/// A hard link to make: (directory, name, path relative to the destination, display path).
type LinkJob = (Arc<OwnedFd>, Vec<u8>, Vec<u8>, String);

/// A regular file waiting for its content.
struct Pending {
    display: String,
    dir: Option<Arc<OwnedFd>>,
    name: Vec<u8>,
    rel: Vec<u8>,
    tmp: String,
    /// The temporary file, created by the first worker that writes to it (or at finalize).
    file: std::sync::OnceLock<std::result::Result<std::fs::File, (String, Cause)>>,
    total: u64,
    item: Item,
    chunks: Vec<ChunkRef>,
    written: AtomicU64,
    /// Chunks decoded while another thread was writing this file, `(offset, data, is a hole)`, and
    /// whether a thread is writing it now (see [`Pending::write`]).
    writes: Mutex<(bool, std::collections::VecDeque<QueuedWrite>)>,
    /// The first thing that went wrong, and why.
    error: Mutex<Option<(String, Cause)>>,
    /// Hard links to make to this file once it is in place.
    links: Vec<LinkJob>,
    /// Chunk references not yet written (or failed); the thread that settles the last one
    /// finishes the file ([`Extractor::finish_file`]).
    remaining: std::sync::atomic::AtomicUsize,
    /// What finishing the file reported, replayed in archive order at the end of the batch.
    notes: Mutex<Option<Vec<Note>>>,
}

/// A chunk waiting for the thread that writes its file: `(offset, data, is a hole)`.
type QueuedWrite = (u64, Arc<Plain>, bool);

/// What finishing a file reported (replayed on the planning thread, in archive order).
#[derive(Debug)]
enum Note {
    Warn(String),
    /// Not restored for safety (exit code 1): the message, why, the content bytes.
    Refuse(String, Cause, u64),
    /// Not restored (exit code 2): the message, why, the content bytes.
    Fail(String, Cause, u64),
    Done {
        bytes: u64,
    },
}

/// Why an item was not restored (the keys of [`Summary::causes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    /// The system refused (the raw `errno`).
    Os(i32),
    /// A chunk failed its checks, or is missing.
    Damaged,
    /// A buffer for a chunk could not be allocated.
    Memory,
    /// The path would leave the destination, or passes through a symlink.
    Unsafe,
    /// The path is deeper than [`dest::MAX_DEPTH`].
    TooDeep,
    /// A hard link whose file was not restored.
    LinkSource,
    /// A file type oxiborg does not know.
    FileType,
}

impl Cause {
    fn text(self) -> String {
        match self {
            Cause::Os(n) => {
                // "No space left on device (os error 28)" without the number
                let t = std::io::Error::from_raw_os_error(n).to_string();
                match t.rfind(" (os error") {
                    Some(i) => t[..i].to_string(),
                    None => t,
                }
            }
            Cause::Damaged => "damaged or missing data".into(),
            Cause::Memory => "not enough memory".into(),
            Cause::Unsafe => "refused: outside the destination or below a symlink".into(),
            Cause::TooDeep => format!("refused: more than {} levels deep", dest::MAX_DEPTH),
            Cause::LinkSource => "hard link to a file not restored".into(),
            Cause::FileType => "unknown file type".into(),
        }
    }

    /// No room: the restore needs more space (or quota).
    fn is_space(self) -> bool {
        self == Cause::Os(libc::ENOSPC) || self == Cause::Os(libc::EDQUOT)
    }

    fn of_errno(e: rustix::io::Errno) -> Cause {
        Cause::Os(e.raw_os_error())
    }

    fn of_io(e: &std::io::Error) -> Cause {
        e.raw_os_error().map_or(Cause::Damaged, Cause::Os)
    }

    fn of_dir(e: &DirError) -> Cause {
        match e.errno() {
            Some(errno) => Cause::of_errno(errno),
            None => Cause::Unsafe,
        }
    }

    /// Why reading a chunk failed.
    fn of_error(e: &Error) -> Cause {
        match e {
            Error::NoMemory(_) => Cause::Memory,
            Error::Io { source, .. } => Cause::of_io(source),
            _ => Cause::Damaged,
        }
    }
}

/// What the threads that finish files share.
struct Finisher<'a, 'r> {
    ex: &'a Extractor<'r>,
    dest: Option<&'a Destination>,
    owners: &'a Owners,
}

impl Pending {
    /// The temporary file, created on first use; `None` when nothing is written (dry run).
    fn open(&self) -> Option<std::result::Result<&std::fs::File, &(String, Cause)>> {
        let dir = self.dir.as_ref()?;
        let r = self.file.get_or_init(|| {
            let fd = fs::openat(
                &**dir,
                self.tmp.as_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(|e| (format!("cannot create file: {e}"), Cause::of_errno(e)))?;
            Ok(std::fs::File::from(fd))
        });
        Some(r.as_ref())
    }

    /// Writes a chunk at `off`, or — when another thread is writing this file — leaves it to
    /// that thread. Writers of one file would otherwise queue on its inode lock (spinning, on
    /// Linux); this way a decoding thread never waits for another's write.
    fn write(&self, off: u64, data: Arc<Plain>, skip: bool, fin: &Finisher<'_, '_>) {
        let progress = &fin.ex.opts.progress;
        {
            let mut q = self.writes.lock().unwrap_or_else(|e| e.into_inner());
            if q.0 {
                q.1.push_back((off, data, skip));
                return;
            }
            q.0 = true;
        }
        let mut next = Some((off, data, skip));
        while let Some((off, data, skip)) = next.take() {
            let res = match (skip, self.open()) {
                (false, Some(Ok(f))) => f
                    .write_all_at(&data.data, off)
                    .map_err(|e| (format!("write failed: {e}"), Cause::of_io(&e))),
                (false, Some(Err(e))) => Err(e.clone()),
                _ => Ok(()),
            };
            match res {
                Ok(()) => {
                    self.written
                        .fetch_add(data.data.len() as u64, Ordering::Relaxed);
                    Progress::add(progress, 0, data.data.len() as u64);
                }
                Err(e) => {
                    let mut er = self.error.lock().unwrap_or_else(|e| e.into_inner());
                    er.get_or_insert(e);
                }
            }
            drop(data);
            let mut q = self.writes.lock().unwrap_or_else(|e| e.into_inner());
            next = q.1.pop_front();
            if next.is_none() {
                q.0 = false;
            }
            drop(q);
            self.settle(fin);
        }
    }

    /// Removes the temporary file, if it was created.
    fn remove_temp(&self) {
        if let (Some(d), Some(Ok(_))) = (&self.dir, self.file.get()) {
            let _ = fs::unlinkat(&**d, self.tmp.as_str(), AtFlags::empty());
        }
    }

    /// One of the file's chunk references is written (or failed); the last one finishes it.
    fn settle(&self, fin: &Finisher<'_, '_>) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let notes = fin.ex.finish_file(fin.dest, fin.owners, self);
            *self.notes.lock().unwrap_or_else(|e| e.into_inner()) = Some(notes);
        }
    }
}

/// Where a hard-link group's content is.
enum Master {
    /// Not extracted; its chunks are remembered for the first selected member.
    Chunks(Vec<ChunkRef>),
    /// Extracted (or pending as `(batch generation, index)`) at this destination path.
    At(Vec<u8>, Option<(u64, usize)>),
}

/// Where a queued file stands.
enum Queued {
    /// Waiting in the batch at `(generation, index)`.
    Pending((u64, usize)),
    /// Already finalized.
    Done,
}

/// Restores one archive.
pub struct Extractor<'r> {
    repo: &'r Repository,
    opts: ExtractOptions,
}

/// A decoded chunk, shared by the files it is written to; what it took from the budget goes
/// back when the last of them has written it.
struct Plain {
    data: Vec<u8>,
    cost: u64,
    budget: Arc<Budget>,
}

impl Drop for Plain {
    fn drop(&mut self) {
        self.budget.give(self.cost);
    }
}

/// How many files a batch may hold open at once: every pending file keeps its descriptor (and
/// its directory's) until it is finalized. The soft `RLIMIT_NOFILE` is raised to the hard limit
/// first (it is often 1024 while the hard limit is far higher); a quarter of the descriptors
/// stays free for segments, the directory cache (an eighth) and the rest.
fn open_file_budget() -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current < lim.maximum {
        // macOS refuses more than OPEN_MAX for the soft limit.
        let want = lim.maximum.map_or(1 << 20, |m| m.min(1 << 20));
        let raised = rustix::process::Rlimit {
            current: Some(want),
            maximum: lim.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            lim = getrlimit(Resource::Nofile);
        }
    }
    let soft = lim.current.unwrap_or(1 << 20).min(1 << 20) as usize;
    // (two descriptors per pending file at worst: the file's, and its directory's when the
    // directory cache has let it go)
    ((soft - soft / 4) / 2).saturating_sub(64).max(16)
}

/// Whether `dir/name` is a regular file of `size` bytes modified at `mtime` (ns): a file a
/// previous run put in place completely.
#[allow(clippy::unnecessary_cast)] // time_t / the nsec field differ in width between targets
fn is_complete(dir: &OwnedFd, name: &[u8], size: u64, mtime: i64) -> bool {
    match fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => {
            FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
                && st.st_size as u64 == size
                && (st.st_mtime as i64)
                    .checked_mul(1_000_000_000)
                    .and_then(|s| s.checked_add(st.st_mtime_nsec as i64))
                    == Some(mtime)
        }
        Err(_) => false,
    }
}

/// Whether two names are the same inode (a hard link already made).
fn same_file(d1: &OwnedFd, n1: &[u8], d2: &OwnedFd, n2: &[u8]) -> bool {
    match (
        fs::statat(d1, n1, AtFlags::SYMLINK_NOFOLLOW),
        fs::statat(d2, n2, AtFlags::SYMLINK_NOFOLLOW),
    ) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    }
}

/// A path for a message, its middle left out when it is very long (a path thousands of levels
/// deep), with its length.
fn abbreviated(display: &str) -> String {
    const KEEP: usize = 100;
    let chars: Vec<char> = display.chars().collect();
    if chars.len() <= 3 * KEEP {
        return display.to_string();
    }
    let head: String = chars[..KEEP].iter().collect();
    let tail: String = chars[chars.len() - KEEP..].iter().collect();
    format!("{head}…{tail} ({} characters)", chars.len())
}

fn is_zero(data: &[u8]) -> bool {
    let mut words = data.chunks_exact(16);
    words.all(|w| u128::from_ne_bytes(w.try_into().expect("16 bytes")) == 0)
        && words.remainder().iter().all(|b| *b == 0)
}

struct Run<'a> {
    dest: Option<Destination>,
    events: &'a mut dyn FnMut(Event<'_>),
    summary: Summary,
    owners: Owners,
    /// borg's directory stack: (stripped archive path, destination path, item). A directory's
    /// metadata is restored when an item outside it (by string prefix, as borg tests) comes.
    dir_stack: Vec<(Vec<u8>, Vec<u8>, Item)>,
    /// The archive's name, for messages about damaged data.
    archive: String,
    /// Directory metadata to apply once this many files of the current batch are finalized.
    dir_after: Vec<(usize, Vec<u8>, Item)>,
    masters: HashMap<Vec<u8>, Master>,
    batch: Vec<Pending>,
    batch_bytes: u64,
    batch_gen: u64,
    /// Files per batch: the option, bounded by the open-file limit.
    batch_files: usize,
    flush_time: std::time::Duration,
    /// The caller's interrupt flag.
    interrupt: Option<Arc<AtomicBool>>,
}

impl Run<'_> {
    /// Takes what finishing a file (or a link) reported.
    fn note(&mut self, n: Note) {
        match n {
            Note::Warn(m) => self.warn(m),
            Note::Refuse(m, cause, bytes) => self.refuse(m, cause, bytes),
            Note::Fail(m, cause, bytes) => self.fail(m, cause, bytes),
            Note::Done { .. } => {}
        }
    }
    fn warn(&mut self, msg: String) {
        self.summary.warnings += 1;
        (self.events)(Event::Warning(msg));
    }
    /// An item refused for safety (exit code 1).
    fn refuse(&mut self, msg: String, cause: Cause, bytes: u64) {
        self.summary.refused += 1;
        self.lost(cause, bytes);
        (self.events)(Event::Error(msg));
    }
    /// An item lost to damaged data or a failing system call (exit code 2).
    fn fail(&mut self, msg: String, cause: Cause, bytes: u64) {
        self.summary.failed += 1;
        self.lost(cause, bytes);
        (self.events)(Event::Error(msg));
    }
    /// An item that could not be made, as borg only warns about it (exit code 1).
    fn warn_lost(&mut self, msg: String, cause: Cause) {
        self.lost(cause, 0);
        self.warn(msg);
    }
    /// Counts an item not restored.
    fn lost(&mut self, cause: Cause, bytes: u64) {
        let s = &mut self.summary;
        s.not_restored += 1;
        s.not_restored_bytes = s.not_restored_bytes.saturating_add(bytes);
        if cause.is_space() {
            s.no_space_bytes = s.no_space_bytes.saturating_add(bytes);
        }
        *s.causes.entry(cause.text()).or_default() += 1;
    }
    /// Whether the caller asked to stop.
    fn interrupted(&self) -> bool {
        self.interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    }
}

impl<'r> Extractor<'r> {
    /// An extractor for `repo` with `opts`.
    pub fn new(repo: &'r Repository, opts: ExtractOptions) -> Self {
        Extractor { repo, opts }
    }

    /// The options, to change before [`Extractor::run`].
    pub fn options_mut(&mut self) -> &mut ExtractOptions {
        &mut self.opts
    }

    /// Counts the regular files, content bytes, inodes and disk space a [`Extractor::run`] with
    /// the same archive and matcher will handle (one pass over the item stream, no file data
    /// read). Honours [`ExtractOptions::interrupt`].
    pub fn totals(&self, name: impl AsRef<[u8]>, matcher: &Matcher) -> Result<Totals> {
        let archive = self.repo.archive(name)?;
        let mut matcher = matcher.clone();
        let mut t = Totals::default();
        // Sizes of unselected hard-link masters, for members that take their content.
        let mut masters: HashMap<Vec<u8>, u64> = HashMap::new();
        let partial = !matcher.is_empty() || self.opts.strip_components > 0;
        let interrupt = self.opts.interrupt.clone();
        const BLOCK: u64 = 4096;
        let file = |t: &mut Totals, size: u64| {
            t.files += 1;
            t.bytes = t.bytes.saturating_add(size);
            t.inodes += 1;
            t.disk_bytes = t
                .disk_bytes
                .saturating_add(size.div_ceil(BLOCK).saturating_mul(BLOCK));
        };
        archive.each_item(|item| {
            if interrupt
                .as_ref()
                .is_some_and(|f| f.load(Ordering::Relaxed))
            {
                return Err(Error::Interrupted);
            }
            if item.part.is_some() && !self.opts.consider_part_files {
                return Ok(());
            }
            let size: u64 = item.chunks.iter().flatten().map(|c| c.size).sum();
            let depth = components(&item.path).map_or(0, |c| c.len());
            let deep_enough = depth > self.opts.strip_components;
            if !matcher.matches(&item.path) || !deep_enough {
                if partial && item.is_regular() && item.source.is_none() {
                    masters.insert(item.path.clone(), size);
                }
                return Ok(());
            }
            match (&item.source, item.chunks.is_some()) {
                // A hard-link member: a file of its own only for the first member of a group
                // whose master is not selected; otherwise a link.
                (Some(src), false) if item.is_regular() => {
                    if let Some(size) = masters.remove(src) {
                        file(&mut t, size);
                    }
                }
                _ if item.is_regular() => file(&mut t, size),
                // (hard-linked fifos and devices: links)
                (Some(_), _) if !item.is_symlink() => {}
                _ if item.is_dir() => {
                    t.inodes += 1;
                    t.disk_bytes = t.disk_bytes.saturating_add(BLOCK);
                }
                _ => t.inodes += 1,
            }
            Ok(())
        })?;
        Ok(t)
    }

    /// Whether the selection fits the destination: `None` when it does (or cannot be told),
    /// else what is lacking. Cheap in the common case: when the archive records its size and
    /// file count (borg 1.2+) and the destination has room for the whole archive, no item is
    /// read; otherwise the exact totals are counted (one pass over the item stream), unless
    /// `known` already has them.
    pub fn space_check(
        &self,
        name: impl AsRef<[u8]>,
        matcher: &Matcher,
        known: Option<&Totals>,
    ) -> Result<Option<Shortfall>> {
        // The destination, or the nearest directory above it that exists.
        let mut at = self.opts.destination.as_path();
        while !at.exists() {
            match at.parent() {
                Some(p) if !p.as_os_str().is_empty() => at = p,
                _ => {
                    at = std::path::Path::new(".");
                    break;
                }
            }
        }
        let Ok(st) = rustix::fs::statvfs(at) else {
            return Ok(None);
        };
        #[allow(clippy::unnecessary_cast)] // the field widths differ between targets
        let (frsize, bavail, files, favail) = (
            st.f_frsize.max(1) as u64,
            st.f_bavail as u64,
            st.f_files as u64,
            st.f_favail as u64,
        );
        let free_bytes = bavail.saturating_mul(frsize);
        // File systems without a fixed inode table (btrfs, ZFS …) report none at all.
        let free_inodes = (files > 0).then_some(favail);
        let totals = match known {
            Some(t) => *t,
            None => {
                let archive = self.repo.archive(name.as_ref())?;
                let meta = &archive.meta;
                if let (Some(size), Some(nfiles)) = (meta.size, meta.nfiles) {
                    let parts = self.opts.consider_part_files;
                    let size = size.saturating_add(if parts {
                        meta.size_parts.unwrap_or(0)
                    } else {
                        0
                    });
                    // Room for the whole archive (content, a block of rounding per file) and
                    // plenty of inodes: the selection fits, whatever it is.
                    let bytes = size.saturating_add(nfiles.saturating_mul(4096));
                    let inodes_plenty =
                        free_inodes.is_none_or(|f| f >= nfiles.saturating_mul(4) + 100_000);
                    if bytes <= free_bytes && inodes_plenty {
                        return Ok(None);
                    }
                }
                self.totals(name.as_ref(), matcher)?
            }
        };
        let short = Shortfall {
            need_bytes: totals.disk_bytes,
            free_bytes,
            need_inodes: totals.inodes,
            free_inodes,
        };
        let fits = short.need_bytes <= free_bytes && free_inodes.is_none_or(|f| totals.inodes <= f);
        Ok((!fits).then_some(short))
    }

    /// Restores the items of archive `name` that `matcher` selects; `events` sees every item,
    /// warning and error as it happens. Decoding runs on the global rayon pool while this
    /// thread fetches: call it from outside that pool (not from one of its tasks).
    ///
    /// Temporary files that an earlier, interrupted oxiborg left are removed: everywhere below
    /// the destination with [`ExtractOptions::resume`], else in each existing directory the
    /// restore enters ([`Event::StaleRemoved`] says how many). When
    /// [`ExtractOptions::interrupt`] is set, the restore stops cleanly and returns
    /// [`Error::Interrupted`] (what was restored was reported by the events).
    pub fn run(
        &self,
        name: impl AsRef<[u8]>,
        mut matcher: Matcher,
        events: &mut dyn FnMut(Event<'_>),
    ) -> Result<Summary> {
        let archive = self.repo.archive(name)?;
        let writes = !self.opts.dry_run && !self.opts.stdout;
        // (the soft open-file limit first: the destination sizes its cache by it)
        let batch_files = self.opts.batch_files.clamp(1, open_file_budget());
        let dest = if writes {
            let mut d = Destination::open(&self.opts.destination)
                .map_err(|e| Error::io(&self.opts.destination, e))?;
            if !self.opts.resume {
                d.sweep_stale_temps();
            }
            Some(d)
        } else {
            None
        };
        let mut run = Run {
            dest,
            events,
            summary: Summary::default(),
            owners: Owners::default(),
            dir_stack: Vec::new(),
            archive: archive.name(),
            dir_after: Vec::new(),
            masters: HashMap::new(),
            batch: Vec::new(),
            batch_bytes: 0,
            batch_gen: 0,
            batch_files,
            flush_time: std::time::Duration::ZERO,
            interrupt: self.opts.interrupt.clone(),
        };
        let started = std::time::Instant::now();
        let mut resumed_removed = 0;
        if self.opts.resume {
            if let Some(d) = run.dest.as_ref() {
                let flag = run.interrupt.clone();
                let stop = move || flag.as_ref().is_some_and(|f| f.load(Ordering::Relaxed));
                resumed_removed = d.remove_stale_temps(&stop);
            }
        }
        let mut stdout = std::io::stdout().lock();
        let planned = self.plan(&mut run, &archive, &mut matcher, &mut stdout, writes);
        let planned = planned.and_then(|()| self.flush(&mut run));
        let stale = resumed_removed + run.dest.as_ref().map_or(0, Destination::stale_removed);
        run.summary.stale_removed = stale;
        if stale > 0 {
            (run.events)(Event::StaleRemoved { files: stale });
        }
        if let Err(e) = planned {
            self.discard(&mut run);
            return Err(e);
        }
        if !self.opts.stdout {
            stdout.flush().ok();
        }
        while let Some((_, drel, ditem)) = run.dir_stack.pop() {
            self.dir_done(&mut run, drel, ditem);
        }
        for inc in matcher.unmatched_includes() {
            run.warn(format!("Include pattern '{inc}' never matched."));
        }
        let st = &mut run.summary.stages;
        st.total = started.elapsed();
        st.plan = st.total.saturating_sub(run.flush_time);
        Ok(run.summary)
    }

    /// Streams the items, selects them and handles each (files are queued for the pipeline).
    fn plan(
        &self,
        run: &mut Run<'_>,
        archive: &crate::repository::Archive<'_>,
        matcher: &mut Matcher,
        stdout: &mut impl Write,
        writes: bool,
    ) -> Result<()> {
        let partial = !matcher.is_empty() || self.opts.strip_components > 0;
        archive.each_item(|item| {
            if run.interrupted() {
                return Err(Error::Interrupted);
            }
            if item.part.is_some() && !self.opts.consider_part_files {
                return Ok(());
            }
            let selected = matcher.matches(&item.path);
            let hardlinkable = matches!(
                item.file_type(),
                crate::format::item::S_IFREG
                    | crate::format::item::S_IFIFO
                    | crate::format::item::S_IFCHR
                    | crate::format::item::S_IFBLK
            );
            if !selected {
                if partial
                    && hardlinkable
                    && item.hardlink_master.unwrap_or(true)
                    && item.source.is_none()
                {
                    run.masters.insert(
                        item.path.clone(),
                        Master::Chunks(item.chunks.clone().unwrap_or_default()),
                    );
                }
                return Ok(());
            }
            let display = item.display_path();
            let bytes = item.content_size();
            let all = match components(&item.path) {
                Ok(all) => all,
                Err(why) => {
                    run.summary.items += 1;
                    run.refuse(
                        format!("{}: refusing to extract: {why}", display.escape_debug()),
                        Cause::Unsafe,
                        bytes,
                    );
                    return Ok(());
                }
            };
            if all.is_empty() && !item.is_dir() {
                run.summary.items += 1;
                run.refuse(
                    format!("{display:?}: refusing to extract: empty path"),
                    Cause::Unsafe,
                    bytes,
                );
                return Ok(());
            }
            let depth = all.len().saturating_sub(self.opts.strip_components);
            if let Some(why) = dest::too_deep(depth).filter(|_| !self.opts.stdout) {
                run.summary.items += 1;
                run.refuse(
                    format!("{}: refusing to extract: {why}", abbreviated(&display)),
                    Cause::TooDeep,
                    bytes,
                );
                return Ok(());
            }
            if all.len() <= self.opts.strip_components
                && !(all.is_empty() && self.opts.strip_components == 0)
            {
                // Stripped away entirely: borg counts that as not matched, so a hard-link
                // master here gives its content to the first member that is extracted.
                if hardlinkable && item.hardlink_master.unwrap_or(true) && item.source.is_none() {
                    run.masters.insert(
                        item.path.clone(),
                        Master::Chunks(item.chunks.clone().unwrap_or_default()),
                    );
                }
                return Ok(());
            }
            let comps: Vec<Vec<u8>> = all[self.opts.strip_components.min(all.len())..]
                .iter()
                .map(|c| c.to_vec())
                .collect();
            let rel = comps.join(&b'/');
            if writes {
                // borg compares the stripped path as stored (so "." is its own prefix only).
                let stack_path: Vec<u8> = if self.opts.strip_components == 0 {
                    item.path.clone()
                } else {
                    item.path
                        .split(|b| *b == b'/')
                        .skip(self.opts.strip_components)
                        .collect::<Vec<_>>()
                        .join(&b'/')
                };
                while let Some((top, _, _)) = run.dir_stack.last() {
                    if stack_path.starts_with(top) {
                        break;
                    }
                    let (_, drel, ditem) = run.dir_stack.pop().expect("non-empty");
                    self.dir_done(run, drel, ditem);
                }
                if item.is_dir() {
                    run.dir_stack.push((stack_path, rel.clone(), item.clone()));
                }
            }
            run.summary.items += 1;
            (run.events)(Event::Item(&display));
            if self.opts.stdout {
                if let Some(chunks) = &item.chunks {
                    self.stream_to(stdout, chunks, &display, run)?;
                }
                return Ok(());
            }
            if self.opts.dry_run {
                if item.is_regular() {
                    if let Some(chunks) = Self::chunks_for(&item, run) {
                        let key = Self::master_key(&item).filter(|_| item.is_hardlink_slave());
                        self.queue(run, item, chunks, display, None, Vec::new(), rel.clone())?;
                        if let Some(k) = key {
                            run.masters.insert(k, Master::At(rel, None));
                        }
                    }
                }
                return Ok(());
            }
            self.extract_item(run, item, display, comps, rel)?;
            Ok(())
        })
    }

    /// Removes the temporary files of a batch that will never be finalized.
    fn discard(&self, run: &mut Run<'_>) {
        for p in std::mem::take(&mut run.batch) {
            p.remove_temp();
        }
    }

    /// The chunks a regular item's content comes from (its own, or an unextracted master's),
    /// or `None` when it is a link to an extracted master.
    fn chunks_for(item: &Item, run: &Run<'_>) -> Option<Vec<ChunkRef>> {
        if item.is_hardlink_slave() {
            match run.masters.get(item.source.as_deref().unwrap_or_default()) {
                Some(Master::Chunks(c)) => Some(c.clone()),
                _ => None,
            }
        } else {
            Some(item.chunks.clone().unwrap_or_default())
        }
    }

    /// The key under which a regular file's restored location is remembered for hard links.
    fn master_key(item: &Item) -> Option<Vec<u8>> {
        if item.is_hardlink_slave() {
            item.source.clone()
        } else if item.hardlink_master != Some(false) {
            Some(item.path.clone())
        } else {
            None
        }
    }

    fn extract_item(
        &self,
        run: &mut Run<'_>,
        item: Item,
        display: String,
        comps: Vec<Vec<u8>>,
        rel: Vec<u8>,
    ) -> Result<()> {
        let Some(dest) = run.dest.as_ref() else {
            return Ok(());
        };
        let comps: Vec<&[u8]> = comps.iter().map(Vec::as_slice).collect();
        if comps.is_empty() {
            // The archive's "." item is the destination itself (its metadata comes with the
            // directory stack).
            return Ok(());
        }
        let parent = match dest.dir(&comps[..comps.len() - 1]) {
            Ok(p) => p,
            Err(e) => {
                let bytes = item.content_size();
                run.refuse(format!("{display}: {e}"), Cause::of_dir(&e), bytes);
                return Ok(());
            }
        };
        let name = comps[comps.len() - 1].to_vec();
        let ft = item.file_type();
        // Hard-link members: link to the restored master when there is one.
        if item.is_hardlink_slave() {
            let source = item.source.clone().unwrap_or_default();
            match run.masters.get(&source) {
                Some(Master::At(_, Some((generation, idx))))
                    if *generation == run.batch_gen && *idx < run.batch.len() =>
                {
                    let idx = *idx;
                    run.batch[idx].links.push((parent, name, rel, display));
                    return Ok(());
                }
                Some(Master::At(target, _)) => {
                    let target = target.clone();
                    self.link(run, &parent, &name, &target, &rel, &display);
                    return Ok(());
                }
                Some(Master::Chunks(_)) if ft == crate::format::item::S_IFREG => {}
                Some(Master::Chunks(_)) => {
                    run.masters.insert(source, Master::At(rel.clone(), None));
                }
                None => {
                    run.refuse(
                        format!(
                            "{display}: hard link source {} was not extracted",
                            show(&source)
                        ),
                        Cause::LinkSource,
                        0,
                    );
                    return Ok(());
                }
            }
        }
        let dest = run.dest.as_ref().expect("writing");
        match ft {
            crate::format::item::S_IFDIR => {
                let mkdir = || fs::mkdirat(&*parent, name.as_slice(), Mode::from_raw_mode(0o700));
                let made = match mkdir() {
                    // Something is there: borg keeps a non-empty directory, replaces the rest.
                    Err(rustix::io::Errno::EXIST) if !dest.clear(&parent, &name, &rel) => mkdir(),
                    Err(rustix::io::Errno::EXIST) => Ok(()),
                    r => r,
                };
                if let Err(e) = made {
                    run.fail(
                        format!("{display}: cannot create directory: {e}"),
                        Cause::of_errno(e),
                        0,
                    );
                    return Ok(());
                }
            }
            crate::format::item::S_IFREG => {
                let Some(chunks) = Self::chunks_for(&item, run) else {
                    return Ok(());
                };
                let key = Self::master_key(&item);
                if self.opts.resume {
                    let total: u64 = chunks.iter().map(|c| c.size).sum();
                    if is_complete(&parent, &name, total, item.mtime) {
                        run.summary.kept += 1;
                        run.summary.kept_bytes = run.summary.kept_bytes.saturating_add(total);
                        Progress::add(&self.opts.progress, 1, total);
                        (run.events)(Event::FileKept {
                            path: &display,
                            bytes: total,
                        });
                        if let Some(k) = key {
                            run.masters.insert(k, Master::At(rel, None));
                        }
                        return Ok(());
                    }
                }
                let at = match self.queue(
                    run,
                    item,
                    chunks,
                    display,
                    Some(parent),
                    name,
                    rel.clone(),
                )? {
                    Queued::Pending(at) => Some(at),
                    Queued::Done => None,
                };
                if let Some(k) = key {
                    run.masters.insert(k, Master::At(rel, at));
                }
            }
            crate::format::item::S_IFLNK => {
                let target = item.source.clone().unwrap_or_default();
                if let Err(e) = dest.place(&parent, &name, &rel, || {
                    fs::symlinkat(target.as_slice(), &*parent, name.as_slice())
                }) {
                    run.fail(
                        format!("{display}: cannot create symlink: {e}"),
                        Cause::of_errno(e),
                        0,
                    );
                    return Ok(());
                }
                self.meta(
                    run,
                    Target::At {
                        dir: &parent,
                        name: &name,
                        symlink: true,
                    },
                    &item,
                    &display,
                );
            }
            crate::format::item::S_IFIFO
            | crate::format::item::S_IFCHR
            | crate::format::item::S_IFBLK => {
                let (ftype, dev) = match ft {
                    crate::format::item::S_IFIFO => (FileType::Fifo, 0),
                    crate::format::item::S_IFCHR => {
                        (FileType::CharacterDevice, item.rdev.unwrap_or(0))
                    }
                    _ => (FileType::BlockDevice, item.rdev.unwrap_or(0)),
                };
                if let Err(e) = dest.place(&parent, &name, &rel, || {
                    dest::make_node(&parent, &name, ftype, dev)
                }) {
                    run.warn_lost(
                        format!(
                            "{display}: cannot create {}: {e}",
                            if ft == crate::format::item::S_IFIFO {
                                "fifo"
                            } else {
                                "device"
                            }
                        ),
                        Cause::of_errno(e),
                    );
                    return Ok(());
                }
                if item.hardlink_master != Some(false) {
                    run.masters
                        .insert(item.path.clone(), Master::At(rel.clone(), None));
                }
                self.meta(
                    run,
                    Target::At {
                        dir: &parent,
                        name: &name,
                        symlink: false,
                    },
                    &item,
                    &display,
                );
            }
            _ => run.warn_lost(
                format!("{display}: unknown file type {:o}, skipped", item.mode),
                Cause::FileType,
            ),
        }
        Ok(())
    }

    fn meta(&self, run: &mut Run<'_>, target: Target<'_>, item: &Item, display: &str) {
        let mut warnings = Vec::new();
        metadata::apply(
            target,
            item,
            display,
            &self.opts.meta,
            &run.owners,
            &mut |w| warnings.push(w),
        );
        for w in warnings {
            run.warn(w);
        }
    }

    fn link(
        &self,
        run: &mut Run<'_>,
        parent: &Arc<OwnedFd>,
        name: &[u8],
        target: &[u8],
        rel: &[u8],
        display: &str,
    ) {
        let note = self.link_note(run.dest.as_ref(), parent, name, target, rel, display);
        if let Some(n) = note {
            run.note(n);
        }
    }

    /// Makes the hard link `parent/name` to the restored `target`; says what went wrong.
    fn link_note(
        &self,
        dest: Option<&Destination>,
        parent: &Arc<OwnedFd>,
        name: &[u8],
        target: &[u8],
        rel: &[u8],
        display: &str,
    ) -> Option<Note> {
        let dest = dest?;
        let tc = components(target).ok().filter(|tc| !tc.is_empty())?;
        let tdir = match dest.dir(&tc[..tc.len() - 1]) {
            Ok(d) => d,
            Err(e) => {
                return Some(Note::Refuse(
                    format!("{display}: {e}"),
                    Cause::of_dir(&e),
                    0,
                ))
            }
        };
        if self.opts.resume && same_file(&tdir, tc[tc.len() - 1], parent, name) {
            return None;
        }
        dest.place(parent, name, rel, || {
            fs::linkat(&*tdir, tc[tc.len() - 1], &**parent, name, AtFlags::empty())
        })
        .err()
        .map(|e| {
            Note::Fail(
                format!(
                    "{display}: cannot create hard link to {}: {e}",
                    show(target)
                ),
                Cause::of_errno(e),
                0,
            )
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn queue(
        &self,
        run: &mut Run<'_>,
        item: Item,
        chunks: Vec<ChunkRef>,
        display: String,
        dir: Option<Arc<OwnedFd>>,
        name: Vec<u8>,
        rel: Vec<u8>,
    ) -> Result<Queued> {
        let total: u64 = chunks.iter().map(|c| c.size).sum();
        let nchunks = chunks.len();
        let tmp = match (run.dest.as_ref(), dir.as_ref()) {
            (Some(dest), Some(_)) => dest.temp_name(),
            _ => String::new(),
        };
        run.batch_bytes = run.batch_bytes.saturating_add(total);
        let at = (run.batch_gen, run.batch.len());
        run.batch.push(Pending {
            display,
            dir,
            name,
            rel,
            tmp,
            file: std::sync::OnceLock::new(),
            total,
            item,
            chunks,
            written: AtomicU64::new(0),
            writes: Mutex::new((false, std::collections::VecDeque::new())),
            error: Mutex::new(None),
            links: Vec::new(),
            remaining: std::sync::atomic::AtomicUsize::new(nchunks),
            notes: Mutex::new(None),
        });
        if run.batch.len() >= run.batch_files || run.batch_bytes >= self.opts.batch_bytes {
            self.flush(run)?;
            return Ok(Queued::Done);
        }
        Ok(Queued::Pending(at))
    }

    /// Fetches, decodes and writes the chunks of the pending files, then finalizes them.
    fn flush(&self, run: &mut Run<'_>) -> Result<()> {
        if run.batch.is_empty() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let r = self.flush_batch(run);
        run.flush_time += started.elapsed();
        r
    }

    fn flush_batch(&self, run: &mut Run<'_>) -> Result<()> {
        let batch = std::mem::take(&mut run.batch);
        run.batch_bytes = 0;
        run.batch_gen += 1;
        // chunk id → [(file, offset, size)]
        let mut targets: HashMap<ObjectId, Vec<(usize, u64, u64)>> = HashMap::new();
        let mut order: Vec<ObjectId> = Vec::new();
        for (fi, p) in batch.iter().enumerate() {
            let mut off = 0u64;
            for c in &p.chunks {
                let t = targets.entry(c.id).or_insert_with(|| {
                    order.push(c.id);
                    Vec::new()
                });
                t.push((fi, off, c.size));
                off += c.size;
            }
        }
        let budget = Arc::new(Budget::new(self.opts.inflight_bytes));
        let chunks_done = AtomicU64::new(0);
        let (store, key, sparse) = (self.repo.store(), self.repo.key(), self.opts.sparse);
        // Files are finished (metadata, rename, links) by the thread that settles their last
        // chunk, in parallel with the rest of the batch.
        let fin = Finisher {
            ex: self,
            dest: run.dest.as_ref(),
            owners: &run.owners,
        };
        let archive = &run.archive;
        let fail_targets = |ts: &[(usize, u64, u64)], msg: &str, cause: Cause| {
            for (fi, _, _) in ts {
                let p = &batch[*fi];
                p.error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert_with(|| (format!("{msg} (archive {archive})"), cause));
                p.settle(&fin);
            }
        };
        // The fetch loop runs on this thread (in_place_scope), so every rayon worker decodes and
        // a full byte budget never blocks a worker that a decode job needs.
        let (decode_ns, write_ns, read_bytes) =
            (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
        let fetch_start = std::time::Instant::now();
        let mut in_sink = std::time::Duration::ZERO;
        // Objects are decoded in groups (Key::GROUP objects, or fewer when they are big), so
        // that the MACs and ids of a group are hashed side by side and small objects do not
        // cost a task each.
        let decode_group = |group: Vec<(ObjectId, Vec<u8>)>| {
            let t0 = std::time::Instant::now();
            let mut sealed: Vec<Sealed> = group
                .into_iter()
                .map(|(id, data)| Sealed {
                    id: Some(id),
                    // (the archive's size, authenticated with the item stream: it sizes the
                    // plaintext buffer, whatever its size)
                    size_hint: usize::try_from(targets[&id][0].2).ok(),
                    data,
                })
                .collect();
            let stored: u64 = sealed.iter().map(|o| o.data.len() as u64).sum();
            let opened = key.open_objects(&mut sealed);
            // The stored bytes are gone; each plaintext holds its share until it is written.
            budget.give(stored);
            let t1 = std::time::Instant::now();
            decode_ns.fetch_add((t1 - t0).as_nanos() as u64, Ordering::Relaxed);
            for (o, opened) in sealed.iter().zip(opened) {
                let id = o.id.unwrap_or_default();
                let ts = &targets[&id];
                let expected = ts[0].2;
                match opened {
                    Ok(plain) if plain.len() as u64 != expected => {
                        budget.give(expected);
                        fail_targets(
                            ts,
                            &format!(
                                "chunk {} has {} bytes, the archive says {expected}",
                                hex::encode(id),
                                plain.len(),
                            ),
                            Cause::Damaged,
                        )
                    }
                    Ok(plain) => {
                        chunks_done.fetch_add(1, Ordering::Relaxed);
                        let skip = sparse && is_zero(&plain);
                        let plain = Arc::new(Plain {
                            data: plain,
                            cost: expected,
                            budget: budget.clone(),
                        });
                        for (fi, off, _) in ts {
                            batch[*fi].write(*off, plain.clone(), skip, &fin);
                        }
                    }
                    Err(e) => {
                        budget.give(expected);
                        fail_targets(ts, &e.located(), Cause::of_error(&e))
                    }
                }
            }
            write_ns.fetch_add(t1.elapsed().as_nanos() as u64, Ordering::Relaxed);
        };
        // (a group never takes more than a quarter of the budget, so fetching goes on while
        // groups are decoded)
        let group_bytes = GROUP_BYTES.min(self.opts.inflight_bytes / 4).max(1);
        let fetch_result = rayon::in_place_scope(|s| {
            // The temporary files first, one task per directory: creating files in one directory
            // from several threads serializes on its lock (and the waiters spin), while
            // different directories proceed in parallel. Decode tasks queue behind these.
            let batch = &batch;
            let mut start = 0;
            while start < batch.len() {
                let same_dir = |p: &Pending| match (&p.dir, &batch[start].dir) {
                    (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                    _ => false,
                };
                let end = start
                    + batch[start..]
                        .iter()
                        .take_while(|p| same_dir(p))
                        .count()
                        .max(1);
                if batch[start].dir.is_some() {
                    s.spawn(move |_| {
                        for p in &batch[start..end] {
                            let _ = p.open();
                        }
                    });
                }
                start = end;
            }
            let mut group: Vec<(ObjectId, Vec<u8>)> = Vec::with_capacity(Key::GROUP);
            let mut group_cost = 0u64;
            let (budget, decode_group) = (&budget, &decode_group);
            let spawn = |group: Vec<(ObjectId, Vec<u8>)>, cost: u64| {
                budget.take(cost);
                s.spawn(move |_| decode_group(group));
            };
            let interrupt = &self.opts.interrupt;
            let fetched = store.get_many(&order, &mut |i, res| {
                if interrupt
                    .as_ref()
                    .is_some_and(|f| f.load(Ordering::Relaxed))
                {
                    // What is in flight is still written and finished; the rest is removed.
                    return Err(Error::Interrupted);
                }
                let sink_start = std::time::Instant::now();
                let id = order[i];
                match res {
                    Ok(obj) => {
                        read_bytes.fetch_add(obj.len() as u64, Ordering::Relaxed);
                        group_cost = group_cost
                            .saturating_add(obj.len() as u64)
                            .saturating_add(targets[&id][0].2);
                        group.push((id, obj));
                        if group.len() >= Key::GROUP || group_cost >= group_bytes {
                            let full =
                                std::mem::replace(&mut group, Vec::with_capacity(Key::GROUP));
                            spawn(full, std::mem::take(&mut group_cost));
                        }
                    }
                    Err(e) => fail_targets(
                        &targets[&id],
                        &format!("chunk {}: {e}", hex::encode(id)),
                        Cause::of_error(&e),
                    ),
                }
                in_sink += sink_start.elapsed();
                Ok(())
            });
            if !group.is_empty() {
                spawn(group, group_cost);
            }
            fetched
        });
        run.summary.chunks += chunks_done.load(Ordering::Relaxed);
        run.summary.read_bytes += read_bytes.load(Ordering::Relaxed);
        let st = &mut run.summary.stages;
        st.fetch += fetch_start.elapsed().saturating_sub(in_sink);
        st.decode += std::time::Duration::from_nanos(decode_ns.load(Ordering::Relaxed));
        st.write += std::time::Duration::from_nanos(write_ns.load(Ordering::Relaxed));
        let finalize_start = std::time::Instant::now();
        if let Err(e) = fetch_result {
            // The source is gone (e.g. the connection broke): what was finished is in place and
            // reported, the rest of the batch is removed.
            for p in &batch {
                let finished = p.notes.lock().unwrap_or_else(|e| e.into_inner()).is_some();
                if finished {
                    self.finalize(run, p);
                } else {
                    p.remove_temp();
                }
            }
            run.dir_after.clear();
            return Err(e);
        }
        let mut dirs = std::mem::take(&mut run.dir_after).into_iter().peekable();
        for (i, p) in batch.iter().enumerate() {
            while let Some((_, rel, item)) = dirs.next_if(|(n, _, _)| *n <= i) {
                self.dir_meta(run, &rel, &item);
            }
            self.finalize(run, p);
        }
        for (_, rel, item) in dirs {
            self.dir_meta(run, &rel, &item);
        }
        run.summary.stages.finalize += finalize_start.elapsed();
        Ok(())
    }

    /// Finishes a file whose chunks have all been written (or failed): length and size checks,
    /// metadata, rename into place, flags, hard links. Runs on whichever thread settled the
    /// file's last chunk; what it reports is replayed by [`Extractor::finalize`].
    fn finish_file(&self, dest: Option<&Destination>, owners: &Owners, p: &Pending) -> Vec<Note> {
        let mut notes = Vec::new();
        let expected: u64 = p.chunks.iter().map(|c| c.size).sum();
        let written = p.written.load(Ordering::Relaxed);
        let err = p.error.lock().unwrap_or_else(|e| e.into_inner()).take();
        // Files no chunk was written to (empty, or all holes) are created here.
        let created = match p.open() {
            Some(Err(e)) => Some(e.clone()),
            // Holes (all-zero chunks skipped with --sparse) at the end are not written: give the
            // file its length.
            Some(Ok(f)) if self.opts.sparse => f.set_len(p.total).err().map(|e| {
                (
                    format!("cannot set the length to {}: {e}", p.total),
                    Cause::of_io(&e),
                )
            }),
            _ => None,
        };
        let err = err
            .or(created)
            .or_else(|| {
                (written != expected).then(|| {
                    (
                        format!("only {written} of {expected} bytes could be restored"),
                        Cause::Damaged,
                    )
                })
            })
            .or_else(|| {
                // borg only warns here; a file whose chunks do not add up to its recorded size is
                // damaged, so it is not put in place looking complete.
                p.item.size.filter(|s| *s != expected).map(|s| {
                    (
                        format!("size inconsistency detected: size {s}, chunks size {expected}"),
                        Cause::Damaged,
                    )
                })
            });
        if let Some((e, cause)) = err {
            p.remove_temp();
            notes.push(Note::Fail(
                format!("{}: not restored: {e}", p.display),
                cause,
                p.total,
            ));
            for (_, _, _, display) in &p.links {
                notes.push(Note::Fail(
                    format!(
                        "{display}: not restored: its hard link source {} failed",
                        p.display
                    ),
                    Cause::LinkSource,
                    0,
                ));
            }
            return notes;
        }
        if p.item.chunks_healthy.is_some() {
            notes.push(Note::Warn(format!(
                "{}: File has damaged (all-zero) chunks. Try running borg check --repair.",
                p.display
            )));
        }
        Progress::add(&self.opts.progress, 1, 0);
        let (Some(d), Some(Ok(f)), Some(dest)) = (p.dir.as_ref(), p.file.get(), dest) else {
            notes.push(Note::Done { bytes: written });
            return notes;
        };
        let fd = rustix::fd::AsFd::as_fd(f);
        let mut no_flags = self.opts.meta.clone();
        no_flags.noflags = true;
        metadata::apply(
            Target::Fd(fd),
            &p.item,
            &p.display,
            &no_flags,
            owners,
            &mut |w| notes.push(Note::Warn(w)),
        );
        let renamed = dest.place(d, &p.name, &p.rel, || {
            fs::renameat(&**d, p.tmp.as_str(), &**d, p.name.as_slice())
        });
        if let Err(e) = renamed {
            let _ = fs::unlinkat(&**d, p.tmp.as_str(), AtFlags::empty());
            notes.push(Note::Fail(
                format!("{}: cannot put the restored file in place: {e}", p.display),
                Cause::of_errno(e),
                p.total,
            ));
            return notes;
        }
        // Immutable/append-only last, once the file has its name.
        metadata::apply_flags(fd, &p.item, &self.opts.meta);
        notes.push(Note::Done { bytes: written });
        for (parent, name, rel, display) in &p.links {
            notes.extend(self.link_note(Some(dest), parent, name, &p.rel, rel, display));
        }
        notes
    }

    /// Replays what finishing `p` reported (finishing it here if no worker did: a file without
    /// chunks).
    fn finalize(&self, run: &mut Run<'_>, p: &Pending) {
        let notes = p.notes.lock().unwrap_or_else(|e| e.into_inner()).take();
        let notes = notes.unwrap_or_else(|| self.finish_file(run.dest.as_ref(), &run.owners, p));
        for n in notes {
            if let Note::Done { bytes } = n {
                run.summary.files += 1;
                run.summary.bytes = run.summary.bytes.saturating_add(bytes);
                (run.events)(Event::FileDone {
                    path: &p.display,
                    bytes,
                });
            } else {
                run.note(n);
            }
        }
    }

    fn stream_to(
        &self,
        out: &mut impl Write,
        chunks: &[ChunkRef],
        display: &str,
        run: &mut Run<'_>,
    ) -> Result<()> {
        use rayon::prelude::*;
        let total: u64 = chunks.iter().map(|c| c.size).sum();
        // Decoded a window ahead, in parallel: at most so many chunks and (but for a single
        // bigger one) the in-flight byte budget.
        let most = rayon::current_num_threads().max(1) * 4;
        let mut start = 0;
        while start < chunks.len() {
            if run.interrupted() {
                return Err(Error::Interrupted);
            }
            let mut end = start;
            let mut bytes = 0u64;
            while end < chunks.len()
                && end - start < most
                && (end == start
                    || bytes.saturating_add(chunks[end].size) <= self.opts.inflight_bytes)
            {
                bytes = bytes.saturating_add(chunks[end].size);
                end += 1;
            }
            let window = &chunks[start..end];
            start = end;
            let decoded: Vec<Result<Vec<u8>>> = window
                .par_iter()
                .map(|c| {
                    let data = self.repo.get_object(&c.id, usize::try_from(c.size).ok())?;
                    if data.len() as u64 != c.size {
                        return Err(Error::Integrity(format!(
                            "chunk has {} bytes, the archive says {}",
                            data.len(),
                            c.size
                        )));
                    }
                    Ok(data)
                })
                .collect();
            for (c, d) in window.iter().zip(decoded) {
                match d {
                    Ok(data) => {
                        run.summary.chunks += 1;
                        run.summary.bytes = run.summary.bytes.saturating_add(data.len() as u64);
                        Progress::add(&self.opts.progress, 0, data.len() as u64);
                        out.write_all(&data).map_err(|e| Error::io("<stdout>", e))?;
                    }
                    Err(e) => {
                        run.fail(
                            format!(
                                "{display}: chunk {}: {e} (archive {})",
                                hex::encode(c.id),
                                run.archive
                            ),
                            Cause::of_error(&e),
                            total,
                        );
                        return Ok(());
                    }
                }
            }
        }
        run.summary.files += 1;
        Progress::add(&self.opts.progress, 1, 0);
        Ok(())
    }

    /// A directory is complete: restore its metadata once the files queued before are in place.
    fn dir_done(&self, run: &mut Run<'_>, rel: Vec<u8>, item: Item) {
        if run.batch.is_empty() {
            self.dir_meta(run, &rel, &item);
        } else {
            run.dir_after.push((run.batch.len(), rel, item));
        }
    }

    fn dir_meta(&self, run: &mut Run<'_>, rel: &[u8], item: &Item) {
        let Some(dest) = run.dest.as_ref() else {
            return;
        };
        let comps: Vec<&[u8]> = rel
            .split(|b| *b == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        let fd = if comps.is_empty() {
            Ok(dest.root())
        } else {
            dest.dir(&comps)
        };
        match fd {
            Ok(fd) => self.meta(
                run,
                Target::Fd(rustix::fd::AsFd::as_fd(&*fd)),
                item,
                &show(rel),
            ),
            Err(e) => run.warn(format!("{}: {e}", show(rel))),
        }
    }
}

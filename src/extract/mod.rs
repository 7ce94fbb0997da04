//! Restoring archives: selection, a parallel pipeline, confined writes and metadata.
//!
//! The pipeline: **plan** (stream items, select, decide each item's fate; directories, links,
//! fifos and devices are made at once) → **create** the batch's temporary files, one task per
//! directory → **fetch** (the chunks of a batch of files, each chunk once, in the store's
//! preferred order via `crate::store::Store::get_many`: segment order locally, pipelined
//! remotely) → **decode** on rayon in groups (MAC and id of a group hashed side by side,
//! decryption in place, decompression) → **positional writes** (a chunk for a file another
//! thread is writing is handed to that thread) → **finish** each file on the thread that
//! wrote its last chunk (length check, metadata, rename into place, hard links) → directory
//! metadata in borg's order. A byte budget bounds what is in flight; a file is renamed to its
//! real name only when every chunk arrived and verified, so nothing half-restored looks
//! complete.
//!
//! The caller stays in control:
//!
//! * **where decoding runs**: on the global rayon pool, on the caller's pool
//!   ([`Extractor::with_pool`]) or on one of [`ExtractOptions::threads`] threads; the fetch
//!   loop runs on the calling thread;
//! * **stopping**: set [`ExtractOptions::interrupt`] and the restore ends at the next item or
//!   object with [`Error::Interrupted`]: what is in flight is finished, temporary files of the
//!   rest are removed, every file under its real name is complete ([`ExtractOptions::resume`]
//!   picks up from there);
//! * **where content goes**: into the destination ([`Extractor::run`]), or into any writer
//!   ([`Extractor::run_to`], borg's `--stdout`);
//! * **progress**: [`ExtractOptions::progress`] counts into a shared [`crate::Progress`], with
//!   totals from [`Extractor::totals`]; [`Event`]s report each item, warning and error, and the
//!   [`Summary`] counts them (the exit code is the caller's policy).
//!
//! Layout: `options` (what to do, what is reported), `plan` (the pass over the items),
//! `pending` (a file's write state), `pipeline` (fetch → decode → write, and the stream to a
//! writer), `finish` (a file's rename into place, hard links, directory metadata), `space`
//! (the free-space check), `dest` (confined access to the destination), `metadata` and
//! `acl`.
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

mod acl;
mod dest;
mod finish;
mod metadata;
mod options;
mod pending;
mod pipeline;
mod plan;
mod space;

pub use dest::MAX_DEPTH;
pub use metadata::MetaOptions;
pub use options::{Event, ExtractOptions, StageTimes, Summary, Totals};
pub use space::Shortfall;

/// The path of an [`Error::Io`] that writing to the output of [`Extractor::run_to`] failed with.
pub const OUTPUT: &str = "<output>";

use crate::error::{Error, Result};
use crate::format::item::Item;
use crate::patterns::Matcher;
use crate::repository::Repository;
use dest::{components, Destination, DirError};
use metadata::Owners;
use pending::Pending;
use pipeline::{open_file_budget, Workers};
use plan::Master;
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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

/// Restores one archive.
pub struct Extractor<'r> {
    repo: &'r Repository,
    opts: ExtractOptions,
    /// The caller's pool ([`Extractor::with_pool`]).
    pool: Option<Arc<rayon::ThreadPool>>,
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
    /// Where chunks are decoded.
    workers: Workers,
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
        Extractor {
            repo,
            opts,
            pool: None,
        }
    }

    /// Decodes on `pool` instead of the global rayon pool (it takes precedence over
    /// [`ExtractOptions::threads`]). The restore's fetch loop runs on the calling thread, which
    /// must not be one of the pool's own threads.
    pub fn with_pool(mut self, pool: Arc<rayon::ThreadPool>) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Where this restore decodes: the caller's pool, a pool of [`ExtractOptions::threads`]
    /// threads made for it, or the global rayon pool.
    fn workers(&self) -> Result<Workers> {
        Ok(match (&self.pool, self.opts.threads) {
            (Some(pool), _) => Workers::Pool(pool.clone()),
            (None, Some(n)) => Workers::Pool(Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("oxiborg-extract-{i}"))
                    .build()
                    .map_err(|e| Error::Other(format!("cannot start {n} decoding threads: {e}")))?,
            )),
            (None, None) => Workers::Global,
        })
    }

    /// The options, to change before [`Extractor::run`].
    pub fn options_mut(&mut self) -> &mut ExtractOptions {
        &mut self.opts
    }

    /// Counts the regular files, content bytes, inodes and disk space a [`Extractor::run`] with
    /// the same archive and matcher will handle (one pass over the item stream, no file data
    /// read); with [`ExtractOptions::progress`] set, they become its totals. Honours
    /// [`ExtractOptions::interrupt`].
    ///
    /// # Errors
    ///
    /// The errors of [`Repository::archive`] (no such archive, damaged archive metadata), a
    /// damaged or unreadable item stream, and [`Error::Interrupted`].
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
        archive.each_item_on(self.workers()?.pool(), |item| {
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
        if let Some(p) = &self.opts.progress {
            p.set_totals(Some(t.files), Some(t.bytes));
        }
        Ok(t)
    }

    /// Restores the items of archive `name` that `matcher` selects into
    /// [`ExtractOptions::destination`] (or reads and verifies them, with
    /// [`ExtractOptions::dry_run`]); `events` sees every item, warning and error as it happens.
    ///
    /// Chunks are decoded on the pool given with [`Extractor::with_pool`], or on one of
    /// [`ExtractOptions::threads`] threads made for the restore, or else on the global rayon
    /// pool, while this thread fetches (so a full byte budget never blocks a thread a decode
    /// needs): call it from outside that pool (not from one of its tasks).
    ///
    /// Temporary files that an earlier, interrupted oxiborg left are removed: everywhere below
    /// the destination with [`ExtractOptions::resume`], else in each existing directory the
    /// restore enters ([`Event::StaleRemoved`] says how many).
    ///
    /// To stop a restore, set [`ExtractOptions::interrupt`] (from a signal handler, another
    /// thread …): it stops cleanly at the next item or object, and returns
    /// [`Error::Interrupted`] (what was restored was reported by the events).
    ///
    /// Items that cannot be restored (damaged data, refused paths, failing system calls) do not
    /// stop the restore: they are reported as events and counted in the [`Summary`].
    ///
    /// # Errors
    ///
    /// [`Error::Interrupted`] when stopped; the errors of [`Repository::archive`] (no such
    /// archive, a damaged or unreadable archive); an [`Error::Io`] when the destination cannot
    /// be opened; and the errors that end the item stream or the store (a broken connection, a
    /// damaged item stream). What was finished before is in place; temporary files of the rest
    /// are removed.
    pub fn run(
        &self,
        name: impl AsRef<[u8]>,
        matcher: Matcher,
        events: &mut dyn FnMut(Event<'_>),
    ) -> Result<Summary> {
        self.restore(name.as_ref(), matcher, None, events)
    }

    /// Writes the content of the regular files of archive `name` that `matcher` selects to
    /// `out`, one after the other in archive order (borg's `extract --stdout`), and flushes it;
    /// nothing is written to the destination. Hard-link members that have no chunks of their
    /// own add nothing, as with borg (their group's content comes with the member that has
    /// them). `events` sees every item selected, and each file whose data is damaged (its
    /// content then stops where the damage is).
    ///
    /// Of the options, [`ExtractOptions::strip_components`],
    /// [`ExtractOptions::consider_part_files`], [`ExtractOptions::inflight_bytes`],
    /// [`ExtractOptions::progress`] and [`ExtractOptions::interrupt`] apply; the others are
    /// about files in the destination (and [`ExtractOptions::threads`] and the pool of
    /// [`Extractor::with_pool`], as for [`Extractor::run`]). Chunks are decoded in parallel, a
    /// window ahead of `out`.
    ///
    /// # Errors
    ///
    /// A failing write or flush of `out` (a reader that went away: the stream is then
    /// incomplete) is an [`Error::Io`] with the path [`OUTPUT`]; the other errors are those of
    /// [`Extractor::run`].
    pub fn run_to(
        &self,
        name: impl AsRef<[u8]>,
        matcher: Matcher,
        out: &mut dyn Write,
        events: &mut dyn FnMut(Event<'_>),
    ) -> Result<Summary> {
        let summary = self.restore(name.as_ref(), matcher, Some(&mut *out), events)?;
        // what is still buffered must arrive too, or the stream is cut short
        out.flush().map_err(|e| Error::io(OUTPUT, e))?;
        Ok(summary)
    }

    /// [`Extractor::run`], or with `out` [`Extractor::run_to`].
    fn restore(
        &self,
        name: &[u8],
        mut matcher: Matcher,
        out: Option<&mut (dyn Write + '_)>,
        events: &mut dyn FnMut(Event<'_>),
    ) -> Result<Summary> {
        let archive = self.repo.archive(name)?;
        let workers = self.workers()?;
        let writes = !self.opts.dry_run && out.is_none();
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
            workers,
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
        let planned = self.plan(&mut run, &archive, &mut matcher, out);
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
}

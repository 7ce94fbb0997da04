//! A regular file waiting for its content: its temporary file, the chunks written to it, the
//! writes queued for the thread writing it, and settling its chunks until it can be finished.

use super::dest::Destination;
use super::metadata::Owners;
use super::{Cause, Extractor, Note};
use crate::fetch::Budget;
use crate::format::item::{ChunkRef, Item};
use crate::progress::Progress;
use rustix::fd::OwnedFd;
use rustix::fs::{self, AtFlags, Mode, OFlags};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A hard link to make: (directory, name, path relative to the destination, display path).
pub(super) type LinkJob = (Arc<OwnedFd>, Vec<u8>, Vec<u8>, String);

/// A regular file waiting for its content.
pub(super) struct Pending {
    pub(super) display: String,
    pub(super) dir: Option<Arc<OwnedFd>>,
    pub(super) name: Vec<u8>,
    pub(super) rel: Vec<u8>,
    pub(super) tmp: String,
    /// The temporary file, created by the first worker that writes to it (or at finalize).
    pub(super) file: std::sync::OnceLock<std::result::Result<std::fs::File, (String, Cause)>>,
    pub(super) total: u64,
    pub(super) item: Item,
    pub(super) chunks: Vec<ChunkRef>,
    pub(super) written: AtomicU64,
    /// Chunks decoded while another thread was writing this file, `(offset, data, is a hole)`, and
    /// whether a thread is writing it now (see [`Pending::write`]).
    pub(super) writes: Mutex<(bool, std::collections::VecDeque<QueuedWrite>)>,
    /// The first thing that went wrong, and why.
    pub(super) error: Mutex<Option<(String, Cause)>>,
    /// Hard links to make to this file once it is in place.
    pub(super) links: Vec<LinkJob>,
    /// Chunk references not yet written (or failed); the thread that settles the last one
    /// finishes the file ([`Extractor::finish_file`]).
    pub(super) remaining: std::sync::atomic::AtomicUsize,
    /// What finishing the file reported, replayed in archive order at the end of the batch.
    pub(super) notes: Mutex<Option<Vec<Note>>>,
}

/// A chunk waiting for the thread that writes its file: `(offset, data, is a hole)`.
type QueuedWrite = (u64, Arc<Plain>, bool);

/// What the threads that finish files share.
pub(super) struct Finisher<'a, 'r> {
    pub(super) ex: &'a Extractor<'r>,
    pub(super) dest: Option<&'a Destination>,
    pub(super) owners: &'a Owners,
}

impl Pending {
    /// The temporary file, created on first use; `None` when nothing is written (dry run).
    pub(super) fn open(&self) -> Option<std::result::Result<&std::fs::File, &(String, Cause)>> {
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
    pub(super) fn write(&self, off: u64, data: Arc<Plain>, skip: bool, fin: &Finisher<'_, '_>) {
        let progress = fin.ex.opts.progress.as_deref();
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
                    Progress::count(progress, 0, data.data.len() as u64);
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
    pub(super) fn remove_temp(&self) {
        if let (Some(d), Some(Ok(_))) = (&self.dir, self.file.get()) {
            let _ = fs::unlinkat(&**d, self.tmp.as_str(), AtFlags::empty());
        }
    }

    /// One of the file's chunk references is written (or failed); the last one finishes it.
    pub(super) fn settle(&self, fin: &Finisher<'_, '_>) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let notes = fin.ex.finish_file(fin.dest, fin.owners, self);
            *self.notes.lock().unwrap_or_else(|e| e.into_inner()) = Some(notes);
        }
    }
}

/// A decoded chunk, shared by the files it is written to; what it took from the budget goes
/// back when the last of them has written it.
pub(super) struct Plain {
    pub(super) data: Vec<u8>,
    pub(super) cost: u64,
    pub(super) budget: Arc<Budget>,
}

impl Drop for Plain {
    fn drop(&mut self) {
        self.budget.give(self.cost);
    }
}

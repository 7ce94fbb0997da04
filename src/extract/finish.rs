//! Finishing: a file's checks, metadata and rename into place, its hard links, the report of
//! each file in archive order, and directory metadata in borg's order.

use super::dest::{components, show, Destination};
use super::metadata::{self, Owners, Target};
use super::pending::Pending;
use super::{Cause, Event, Extractor, Note, Run};
use crate::format::item::Item;
use crate::progress::Progress;
use rustix::fd::OwnedFd;
use rustix::fs::{self, AtFlags};
use std::sync::atomic::Ordering;
use std::sync::Arc;

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

impl<'r> Extractor<'r> {
    /// Finishes a file whose chunks have all been written (or failed): length and size checks,
    /// metadata, rename into place, flags, hard links. Runs on whichever thread settled the
    /// file's last chunk; what it reports is replayed by [`Extractor::finalize`].
    pub(super) fn finish_file(
        &self,
        dest: Option<&Destination>,
        owners: &Owners,
        p: &Pending,
    ) -> Vec<Note> {
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
        Progress::count(self.opts.progress.as_deref(), 1, 0);
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
    pub(super) fn finalize(&self, run: &mut Run<'_>, p: &Pending) {
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

    pub(super) fn link(
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
    pub(super) fn link_note(
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

    /// A directory is complete: restore its metadata once the files queued before are in place.
    pub(super) fn dir_done(&self, run: &mut Run<'_>, rel: Vec<u8>, item: Item) {
        if run.batch.is_empty() {
            self.dir_meta(run, &rel, &item);
        } else {
            run.dir_after.push((run.batch.len(), rel, item));
        }
    }

    pub(super) fn dir_meta(&self, run: &mut Run<'_>, rel: &[u8], item: &Item) {
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

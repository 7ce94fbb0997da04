//! The planning pass: items streamed in archive order and selected; directories, symlinks,
//! fifos and devices made at once; hard-link groups tracked; regular files queued for the
//! pipeline.

use super::dest::{self, components, show};
use super::metadata::{self, Target};
use super::pending::Pending;
use super::{Cause, Event, Extractor, Run};
use crate::error::{Error, Result};
use crate::format::item::{ChunkRef, Item};
use crate::patterns::Matcher;
use crate::progress::Progress;
use rustix::fd::OwnedFd;
use rustix::fs::{self, AtFlags, FileType, Mode};
use std::io::Write;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

/// Where a hard-link group's content is.
pub(super) enum Master {
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

impl<'r> Extractor<'r> {
    /// Streams the items, selects them and handles each (files are queued for the pipeline).
    pub(super) fn plan(
        &self,
        run: &mut Run<'_>,
        archive: &crate::repository::Archive<'_>,
        matcher: &mut Matcher,
        mut out: Option<&mut (dyn Write + '_)>,
    ) -> Result<()> {
        // (files are made in the destination, or only read: dry run, or streamed to `out`)
        let writes = run.dest.is_some();
        let partial = !matcher.is_empty() || self.opts.strip_components > 0;
        archive.each_item_on(run.workers.pool(), |item| {
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
            if let Some(why) = dest::too_deep(depth).filter(|_| out.is_none()) {
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
            if let Some(out) = out.as_deref_mut() {
                if let Some(chunks) = &item.chunks {
                    self.stream_to(out, chunks, &display, run)?;
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
    pub(super) fn discard(&self, run: &mut Run<'_>) {
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
                        Progress::count(self.opts.progress.as_deref(), 1, total);
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

    pub(super) fn meta(&self, run: &mut Run<'_>, target: Target<'_>, item: &Item, display: &str) {
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
}

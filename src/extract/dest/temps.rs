//! Temporary files: the names files are written under until they are complete, and the removal
//! of those an earlier, interrupted run left behind.

use super::{dir_flags, Destination};
use rustix::fd::OwnedFd;
use rustix::fs::{self, AtFlags, Mode};
#[cfg(not(target_os = "linux"))]
use rustix::io::Errno;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Destination {
    /// From now on, remove the temporary files an earlier, interrupted run left in every
    /// existing directory this restore enters (the destination itself included, at once):
    /// only names [`Destination::temp_name`] makes, of no running oxiborg. Counted by
    /// [`Destination::stale_removed`].
    pub fn sweep_stale_temps(&mut self) {
        self.sweep = true;
        let root = self.root.clone();
        self.sweep_dir(&root);
    }

    /// How many temporaries of earlier runs were removed so far.
    pub fn stale_removed(&self) -> u64 {
        self.stale_removed.load(Ordering::Relaxed)
    }

    /// Records a directory as looked at; `false` if it was already.
    #[allow(clippy::unnecessary_cast)] // the field widths differ between targets
    pub(super) fn mark_swept(&self, dir: &OwnedFd) -> bool {
        match fs::fstat(dir) {
            Ok(st) => self
                .swept
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert((st.st_dev as u64, st.st_ino as u64)),
            Err(_) => true,
        }
    }

    /// Removes the temporaries of earlier runs in `dir` (not below it), once per directory.
    pub(super) fn sweep_dir(&self, dir: &OwnedFd) {
        if !self.mark_swept(dir) {
            return;
        }
        let n = remove_temps_in(dir, self.pid, &mut |_, _| {});
        if n > 0 {
            self.stale_removed.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Removes the temporary files an interrupted run left anywhere below the destination
    /// (names made by [`Destination::temp_name`], except those of an oxiborg still running);
    /// returns how many. Symlinks are not followed; the walk ends early when `stop` says so.
    pub fn remove_stale_temps(&self, stop: &dyn Fn() -> bool) -> u64 {
        let mut removed = 0;
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            if stop() {
                break;
            }
            removed += remove_temps_in(&dir, self.pid, &mut |parent, name| {
                if let Ok(fd) = fs::openat(parent, name, dir_flags(), Mode::empty()) {
                    stack.push(Arc::new(fd));
                }
            });
        }
        removed
    }

    /// A fresh temporary name for a file being written.
    pub fn temp_name(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!(".oxiborg-{}-{n}.tmp", self.pid)
    }
}

/// Removes the stale temporaries in `dir` (see [`is_stale_temp`]); `subdir` is called for
/// every subdirectory. Returns how many were removed.
fn remove_temps_in(dir: &OwnedFd, own_pid: u32, subdir: &mut dyn FnMut(&OwnedFd, &[u8])) -> u64 {
    let Ok(list) = fs::Dir::read_from(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in list.flatten() {
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        if let Some(pid) = temp_pid(name) {
            if is_stale_temp(pid, own_pid) && fs::unlinkat(dir, name, AtFlags::empty()).is_ok() {
                removed += 1;
            }
            continue;
        }
        let is_dir = match entry.file_type() {
            fs::FileType::Directory => true,
            fs::FileType::Unknown => fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| fs::FileType::from_raw_mode(st.st_mode) == fs::FileType::Directory),
            _ => false,
        };
        if is_dir {
            subdir(dir, name);
        }
    }
    removed
}

/// Whether a temporary of process `pid` is left over from a run that is gone: not ours, and
/// `pid` is not a running oxiborg (on Linux: no process, or one with another command name than
/// ours; elsewhere: no process).
fn is_stale_temp(pid: u32, own_pid: u32) -> bool {
    if pid == own_pid {
        return false;
    }
    #[cfg(target_os = "linux")]
    {
        let comm = |p: &str| std::fs::read(format!("/proc/{p}/comm")).ok();
        match (comm(&pid.to_string()), comm("self")) {
            (Some(theirs), Some(ours)) => theirs != ours,
            (None, _) => true,
            // Cannot tell: keep it.
            (Some(_), None) => false,
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let alive = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .map(|p| {
                matches!(
                    rustix::process::test_kill_process(p),
                    Ok(()) | Err(Errno::PERM)
                )
            });
        alive == Some(false)
    }
}

/// The process id in a name [`Destination::temp_name`] makes (`.oxiborg-<pid>-<n>.tmp`).
fn temp_pid(name: &[u8]) -> Option<u32> {
    let mid = name.strip_prefix(b".oxiborg-")?.strip_suffix(b".tmp")?;
    let mut parts = mid.split(|b| *b == b'-');
    let digits = |p: &[u8]| !p.is_empty() && p.iter().all(u8::is_ascii_digit);
    let (pid, n) = (parts.next()?, parts.next()?);
    if !digits(pid) || !digits(n) || parts.next().is_some() {
        return None;
    }
    std::str::from_utf8(pid).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::dest::show;

    #[test]
    fn temp_names_and_stale_ones() {
        assert_eq!(temp_pid(b".oxiborg-123-4.tmp"), Some(123));
        for bad in [
            &b".oxiborg-123.tmp"[..],
            b".oxiborg--4.tmp",
            b".oxiborg-1-2-3.tmp",
            b"oxiborg-1-2.tmp",
            b".oxiborg-1-2.tmpx",
            b".oxiborg-99999999999-2.tmp",
        ] {
            assert!(temp_pid(bad).is_none(), "{}", show(bad));
        }
        let me = std::process::id();
        assert!(!is_stale_temp(me, me), "our own temporaries are in use");
        // pid 0 never runs oxiborg
        assert!(is_stale_temp(0, me));
    }
}

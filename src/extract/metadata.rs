//! Restoring an item's metadata in borg's order: owner, mode, times, ACLs, xattrs, flags.

use super::acl;
#[cfg(target_os = "linux")]
use super::dest::proc_path;
use crate::format::item::Item;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{self, AtFlags, Mode, Timespec, Timestamps, XattrFlags};
use std::collections::HashMap;
use std::sync::Mutex;

/// Which metadata to restore, and how owners are mapped.
#[derive(Debug, Clone, Default)]
pub struct MetaOptions {
    /// Use the stored uid/gid, not the names (borg's `--numeric-ids`).
    pub numeric_ids: bool,
    /// Do not restore ACLs.
    pub noacls: bool,
    /// Do not restore extended attributes.
    pub noxattrs: bool,
    /// Do not restore BSD-style flags.
    pub noflags: bool,
}

/// Caches of user and group name lookups, shared by the threads that finish files (the lookups
/// themselves are the reentrant ones of `getpwnam_r` and `getgrnam_r`).
#[derive(Default)]
pub struct Owners {
    users: Mutex<HashMap<Vec<u8>, Option<u32>>>,
    groups: Mutex<HashMap<Vec<u8>, Option<u32>>>,
}

fn cached(
    cache: &Mutex<HashMap<Vec<u8>, Option<u32>>>,
    name: &[u8],
    lookup: impl FnOnce(&[u8]) -> std::io::Result<Option<u32>>,
) -> Option<u32> {
    if let Some(v) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(name) {
        return *v;
    }
    // A failed lookup is taken as "no such name", as borg does: the stored id is used.
    let v = lookup(name).ok().flatten();
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(name.to_vec(), v);
    v
}

impl Owners {
    /// The local uid of a user name.
    pub fn uid(&self, name: &[u8]) -> Option<u32> {
        cached(&self.users, name, crate::users::user_id)
    }

    /// The local gid of a group name.
    pub fn gid(&self, name: &[u8]) -> Option<u32> {
        cached(&self.groups, name, crate::users::group_id)
    }

    fn ids(&self, item: &Item, numeric: bool) -> (u32, u32) {
        if numeric {
            return (item.uid, item.gid);
        }
        let uid = item
            .user
            .as_deref()
            .and_then(|n| self.uid(n))
            .unwrap_or(item.uid);
        let gid = item
            .group
            .as_deref()
            .and_then(|n| self.gid(n))
            .unwrap_or(item.gid);
        (uid, gid)
    }
}

/// What the metadata is applied to.
pub enum Target<'a> {
    /// An open regular file or directory.
    Fd(BorrowedFd<'a>),
    /// An entry of a directory that cannot be opened (symlink, device, fifo).
    At {
        /// Parent directory.
        dir: &'a OwnedFd,
        /// Entry name.
        name: &'a [u8],
        /// Is it a symlink (mode and xattrs are not applied through it)?
        symlink: bool,
    },
}

fn ts(ns: i64) -> Timespec {
    Timespec {
        tv_sec: ns.div_euclid(1_000_000_000),
        tv_nsec: ns.rem_euclid(1_000_000_000) as _,
    }
}

#[cfg(target_os = "linux")]
const BSD_NODUMP: u32 = 1;
#[cfg(target_os = "linux")]
const BSD_IMMUTABLE: u32 = 2;
#[cfg(target_os = "linux")]
const BSD_APPEND: u32 = 4;
#[cfg(target_os = "linux")]
const FS_IMMUTABLE_FL: libc::c_long = 0x10;
#[cfg(target_os = "linux")]
const FS_APPEND_FL: libc::c_long = 0x20;
#[cfg(target_os = "linux")]
const FS_NODUMP_FL: libc::c_long = 0x40;

/// Applies the item's metadata except, for regular files, the flags (see [`apply_flags`]);
/// problems that borg reports as warnings go to `warn`.
pub fn apply(
    target: Target<'_>,
    item: &Item,
    display: &str,
    opts: &MetaOptions,
    owners: &Owners,
    warn: &mut dyn FnMut(String),
) {
    let (uid, gid) = owners.ids(item, opts.numeric_ids);
    let owner = (Some(fs::Uid::from_raw(uid)), Some(fs::Gid::from_raw(gid)));
    let mode = Mode::from_raw_mode((item.mode & 0o7777) as _);
    let times = Timestamps {
        last_access: ts(item.atime.unwrap_or(item.mtime)),
        last_modification: ts(item.mtime),
    };
    match &target {
        Target::Fd(fd) => {
            let _ = fs::fchown(fd, owner.0, owner.1);
            if let Err(e) = fs::fchmod(fd, mode) {
                warn(format!("{display}: cannot set mode: {e}"));
            }
            let _ = fs::futimens(fd, &times);
        }
        Target::At { dir, name, symlink } => {
            let _ = fs::chownat(dir, *name, owner.0, owner.1, AtFlags::SYMLINK_NOFOLLOW);
            if !symlink {
                if let Err(e) = fs::chmodat(dir, *name, mode, AtFlags::empty()) {
                    warn(format!("{display}: cannot set mode: {e}"));
                }
            }
            let _ = fs::utimensat(dir, *name, &times, AtFlags::SYMLINK_NOFOLLOW);
        }
    }
    let is_symlink = matches!(target, Target::At { symlink: true, .. });
    let set = |k: &[u8], v: &[u8]| -> rustix::io::Result<()> {
        match &target {
            Target::Fd(fd) => fs::fsetxattr(fd, k, v, XattrFlags::empty()),
            #[cfg(target_os = "linux")]
            Target::At { dir, name, .. } => {
                fs::lsetxattr(proc_path(dir, name), k, v, XattrFlags::empty())
            }
            #[cfg(not(target_os = "linux"))]
            Target::At { .. } => Err(rustix::io::Errno::NOTSUP),
        }
    };
    if cfg!(target_os = "linux") && !opts.noacls && !is_symlink {
        for (text, xname) in [
            (&item.acl_access, &b"system.posix_acl_access"[..]),
            (&item.acl_default, &b"system.posix_acl_default"[..]),
        ] {
            let Some(text) = text else { continue };
            let mut resolve = |user: bool, name: &str, id: Option<u32>| {
                if opts.numeric_ids {
                    return id;
                }
                let local = if user {
                    owners.uid(name.as_bytes())
                } else {
                    owners.gid(name.as_bytes())
                };
                local.or(id).or_else(|| name.parse().ok())
            };
            match acl::text_to_xattr(text, &mut resolve) {
                Ok(v) => {
                    if let Err(e) = set(xname, &v) {
                        warn(format!("{display}: cannot set ACL: {e}"));
                    }
                }
                Err(e) => warn(format!("{display}: cannot restore ACL: {e}")),
            }
        }
    }
    if !opts.noxattrs {
        if let Some(xattrs) = &item.xattrs {
            for (k, v) in xattrs {
                if let Err(e) = set(k, v) {
                    let why = match e {
                        rustix::io::Errno::TOOBIG => "too big for this filesystem".to_string(),
                        rustix::io::Errno::NOTSUP => {
                            "xattrs not supported on this filesystem".to_string()
                        }
                        rustix::io::Errno::NOSPC => "fs full or xattr too big?".to_string(),
                        e => e.to_string(),
                    };
                    warn(format!(
                        "{display}: when setting extended attribute {}: {why}",
                        crate::text::display_bytes(k)
                    ));
                }
            }
        }
    }
    if let Target::Fd(fd) = target {
        apply_flags(fd, item, opts);
    }
}

/// Restores BSD-style flags; call it last (an immutable file accepts nothing after it).
/// [`apply`] does it for directories and files; a file being renamed into place gets its
/// flags after the rename (see `Extractor`).
pub fn apply_flags(fd: BorrowedFd<'_>, item: &Item, opts: &MetaOptions) {
    if !opts.noflags {
        if let Some(flags) = item.bsdflags {
            set_flags(fd, flags);
        }
    }
}

/// BSD-style flags on Linux: nodump, immutable and append map to the ext2-style inode flags set
/// with `FS_IOC_SETFLAGS` (errors are ignored, as borg ignores them).
#[cfg(target_os = "linux")]
fn set_flags(fd: BorrowedFd<'_>, flags: u32) {
    let mut lf: libc::c_long = 0;
    if flags & BSD_NODUMP != 0 {
        lf |= FS_NODUMP_FL;
    }
    if flags & BSD_IMMUTABLE != 0 {
        lf |= FS_IMMUTABLE_FL;
    }
    if flags & BSD_APPEND != 0 {
        lf |= FS_APPEND_FL;
    }
    if lf != 0 {
        use std::os::fd::AsRawFd;
        // Like borg 1.4, change only the bits borg restores and keep the others (e.g. ext4's
        // extents flag, an inherited noatime).
        let mut cur: libc::c_long = 0;
        // SAFETY: FS_IOC_GETFLAGS/SETFLAGS read or write one long at the pointer we pass.
        unsafe {
            if libc::ioctl(fd.as_fd().as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut cur) == 0 {
                let new = (cur & !(FS_NODUMP_FL | FS_IMMUTABLE_FL | FS_APPEND_FL)) | lf;
                libc::ioctl(fd.as_fd().as_raw_fd(), libc::FS_IOC_SETFLAGS, &new);
            }
        }
    }
}

/// BSD flags on the BSDs and macOS: `fchflags` takes them as stored.
#[cfg(any(
    target_os = "macos",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd"
))]
fn set_flags(fd: BorrowedFd<'_>, flags: u32) {
    use std::os::fd::AsRawFd;
    // SAFETY: plain syscall on a valid descriptor.
    unsafe {
        libc::fchflags(fd.as_fd().as_raw_fd(), flags as _);
    }
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "macos",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd"
)))]
fn set_flags(_fd: BorrowedFd<'_>, _flags: u32) {}

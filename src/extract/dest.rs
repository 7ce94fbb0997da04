//! The destination directory, confined: every file-system call is made relative to a directory
//! descriptor opened without following symlinks, so nothing an archive contains can make oxiborg
//! create, modify or follow anything outside the destination.

#[cfg(target_os = "linux")]
use rustix::fd::AsFd;
use rustix::fd::OwnedFd;
use rustix::fs::{self, AtFlags, Mode, OFlags};
use rustix::io::Errno;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const DIR_CACHE_LIMIT: usize = 4096;

/// An open destination directory.
pub struct Destination {
    root: Arc<OwnedFd>,
    root_path: PathBuf,
    dirs: Mutex<HashMap<Vec<u8>, Arc<OwnedFd>>>,
    counter: AtomicU64,
    pid: u32,
}

/// Splits an archive path into components, refusing `..` (after stripping leading `/`).
pub fn components(path: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    for c in path.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("path contains a '..' component".into()),
            c if c.contains(&0) => return Err("path contains a NUL byte".into()),
            c => out.push(c),
        }
    }
    Ok(out)
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

impl Destination {
    /// Opens (creating if needed) the destination directory.
    pub fn open(path: &Path) -> std::io::Result<Destination> {
        if !path.exists() {
            std::fs::create_dir_all(path)?;
        }
        let root = fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Destination {
            root: Arc::new(root),
            root_path: path.to_path_buf(),
            dirs: Mutex::new(HashMap::new()),
            counter: AtomicU64::new(0),
            pid: std::process::id(),
        })
    }

    /// The destination's own descriptor.
    pub fn root(&self) -> Arc<OwnedFd> {
        self.root.clone()
    }

    /// The destination path (for messages).
    pub fn path(&self) -> &Path {
        &self.root_path
    }

    /// The directory `comps`, created as needed (mode 0700: borg's `makedirs` under its umask
    /// 077). Refuses to pass through symlinks or non-directories.
    pub fn dir(&self, comps: &[&[u8]]) -> Result<Arc<OwnedFd>, String> {
        if comps.is_empty() {
            return Ok(self.root.clone());
        }
        let key = comps.join(&b'/');
        if let Some(fd) = self
            .dirs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(fd.clone());
        }
        let parent = self.dir(&comps[..comps.len() - 1])?;
        let name = comps[comps.len() - 1];
        let fd = match fs::openat(&*parent, name, dir_flags(), Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                // borg runs with umask 077, so implicit parents are private.
                match fs::mkdirat(&*parent, name, Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(format!("cannot create directory {}: {e}", show(&key))),
                }
                fs::openat(&*parent, name, dir_flags(), Mode::empty())
                    .map_err(|e| refuse_msg(&key, e))?
            }
            Err(e) => return Err(refuse_msg(&key, e)),
        };
        let fd = Arc::new(fd);
        let mut cache = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= DIR_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, fd.clone());
        Ok(fd)
    }

    /// Forgets cached descriptors of `prefix` and below (after it was removed or replaced).
    pub fn forget(&self, prefix: &[u8]) {
        let mut cache = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|k, _| {
            !(k == prefix || (k.starts_with(prefix) && k.get(prefix.len()) == Some(&b'/')))
        });
    }

    /// Removes whatever is at `name` in `dir` the way borg does before extracting an item:
    /// an empty directory is removed, a non-empty one is kept, anything else is unlinked.
    /// Returns `true` if a directory is still there.
    pub fn clear(&self, dir: &OwnedFd, name: &[u8], rel: &[u8]) -> bool {
        match fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if fs::FileType::from_raw_mode(st.st_mode) == fs::FileType::Directory => {
                if fs::unlinkat(dir, name, AtFlags::REMOVEDIR).is_ok() {
                    self.forget(rel);
                    false
                } else {
                    true
                }
            }
            Ok(_) => {
                let _ = fs::unlinkat(dir, name, AtFlags::empty());
                false
            }
            Err(_) => false,
        }
    }

    /// Makes something at `dir/name` with `make`; when the name is taken, clears it the way
    /// borg does ([`Destination::clear`]) and tries once more. (Trying first saves a `stat` per
    /// item when restoring into an empty destination, the common case.)
    pub fn place<T>(
        &self,
        dir: &OwnedFd,
        name: &[u8],
        rel: &[u8],
        mut make: impl FnMut() -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        match make() {
            Err(Errno::EXIST | Errno::ISDIR | Errno::NOTEMPTY) => {
                self.clear(dir, name, rel);
                make()
            }
            r => r,
        }
    }

    /// Removes the temporary files an interrupted run left anywhere below the destination
    /// (names made by [`Destination::temp_name`]); returns how many. Symlinks are not followed.
    pub fn remove_stale_temps(&self) -> u64 {
        let mut removed = 0;
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(list) = fs::Dir::read_from(&*dir) else {
                continue;
            };
            for entry in list.flatten() {
                let name = entry.file_name().to_bytes();
                if name == b"." || name == b".." {
                    continue;
                }
                if is_temp_name(name) {
                    if fs::unlinkat(&*dir, name, AtFlags::empty()).is_ok() {
                        removed += 1;
                    }
                    continue;
                }
                let is_dir = match entry.file_type() {
                    fs::FileType::Directory => true,
                    fs::FileType::Unknown => fs::statat(&*dir, name, AtFlags::SYMLINK_NOFOLLOW)
                        .is_ok_and(|st| {
                            fs::FileType::from_raw_mode(st.st_mode) == fs::FileType::Directory
                        }),
                    _ => false,
                };
                if is_dir {
                    if let Ok(fd) = fs::openat(&*dir, name, dir_flags(), Mode::empty()) {
                        stack.push(Arc::new(fd));
                    }
                }
            }
        }
        removed
    }

    /// A fresh temporary name for a file being written.
    pub fn temp_name(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!(".oxiborg-{}-{n}.tmp", self.pid)
    }
}

/// Whether `name` is one [`Destination::temp_name`] makes: `.oxiborg-<pid>-<n>.tmp`.
pub fn is_temp_name(name: &[u8]) -> bool {
    let Some(mid) = name
        .strip_prefix(b".oxiborg-")
        .and_then(|n| n.strip_suffix(b".tmp"))
    else {
        return false;
    };
    let mut parts = mid.split(|b| *b == b'-');
    let digits =
        |p: Option<&[u8]>| p.is_some_and(|p| !p.is_empty() && p.iter().all(u8::is_ascii_digit));
    digits(parts.next()) && digits(parts.next()) && parts.next().is_none()
}

fn refuse_msg(path: &[u8], e: Errno) -> String {
    match e {
        Errno::LOOP | Errno::NOTDIR => format!(
            "refusing to extract below {}: it is a symlink or not a directory",
            show(path)
        ),
        e => format!("cannot open directory {}: {e}", show(path)),
    }
}

/// A path for messages.
pub fn show(p: &[u8]) -> String {
    crate::archive::item::display_bytes(p)
}

#[cfg(target_os = "linux")]
/// A `/proc/self/fd/N/name` path for calls that have no `*at` form (xattrs of special files).
pub fn proc_path(dir: &impl AsFd, name: &[u8]) -> PathBuf {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_fd().as_raw_fd()));
    p.push(std::ffi::OsStr::from_bytes(name));
    p
}

/// Creates a fifo or device node (mode 0600; the real mode comes with the metadata).
#[cfg(not(target_vendor = "apple"))]
pub fn make_node(dir: &OwnedFd, name: &[u8], ftype: fs::FileType, dev: u64) -> Result<(), Errno> {
    fs::mknodat(dir, name, ftype, Mode::from_raw_mode(0o600), dev as _)
}

/// Creates a fifo or device node (mode 0600; the real mode comes with the metadata).
#[cfg(target_vendor = "apple")]
pub fn make_node(dir: &OwnedFd, name: &[u8], ftype: fs::FileType, dev: u64) -> Result<(), Errno> {
    use std::os::fd::AsRawFd;
    let c = std::ffi::CString::new(name).map_err(|_| Errno::INVAL)?;
    let kind = match ftype {
        fs::FileType::Fifo => libc::S_IFIFO,
        fs::FileType::CharacterDevice => libc::S_IFCHR,
        _ => libc::S_IFBLK,
    };
    // SAFETY: a valid directory descriptor and a NUL-terminated name.
    let rc = unsafe { libc::mknodat(dir.as_raw_fd(), c.as_ptr(), kind | 0o600, dev as _) };
    if rc == 0 {
        Ok(())
    } else {
        Err(Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO))
    }
}

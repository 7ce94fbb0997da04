//! Making something at a name inside a directory of the destination: clearing what is there
//! the way borg does, fifos and device nodes, and the `/proc` path for calls that have no `*at`
//! form.

use super::Destination;
#[cfg(target_os = "linux")]
use rustix::fd::AsFd;
use rustix::fd::OwnedFd;
#[cfg(not(target_vendor = "apple"))]
use rustix::fs::Mode;
use rustix::fs::{self, AtFlags};
use rustix::io::Errno;
#[cfg(target_os = "linux")]
use std::path::PathBuf;

impl Destination {
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
    ///
    /// # Errors
    ///
    /// The error of the last `make`.
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
///
/// # Errors
///
/// The system's error (devices need privileges).
#[cfg(not(target_vendor = "apple"))]
pub fn make_node(dir: &OwnedFd, name: &[u8], ftype: fs::FileType, dev: u64) -> Result<(), Errno> {
    fs::mknodat(dir, name, ftype, Mode::from_raw_mode(0o600), dev as _)
}

/// Creates a fifo or device node (mode 0600; the real mode comes with the metadata).
///
/// # Errors
///
/// The system's error (devices need privileges).
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

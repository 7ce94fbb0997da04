//! Lookups in the user and group databases (`/etc/passwd`, `/etc/group`, NSS) that are safe to
//! make from many threads at once: the reentrant `getpwnam_r`, `getpwuid_r` and `getgrnam_r`,
//! each with its own buffer (started at `sysconf(_SC_GETPW_R_SIZE_MAX)` /
//! `sysconf(_SC_GETGR_R_SIZE_MAX)` and doubled while the entry does not fit), never the
//! non-reentrant calls that return static storage.
//!
//! "No such entry" is `Ok(None)`; `Err` is a failure of the lookup itself (an NSS service that
//! cannot be reached, say).

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// A user database entry (the parts oxiborg uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub name: Vec<u8>,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: PathBuf,
}

impl User {
    /// The login name as text (lossy for names that are not UTF-8).
    pub fn name_lossy(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// The largest buffer tried before the lookup is given up as `ERANGE`.
const MAX_BUFFER: usize = 64 << 20;

fn start_size(key: libc::c_int) -> usize {
    // SAFETY: sysconf has no memory effects.
    let n = unsafe { libc::sysconf(key) };
    if n > 0 {
        (n as usize).clamp(256, 1 << 20)
    } else {
        1024
    }
}

/// Runs a `get*_r` call with a buffer grown on `ERANGE` (and retried on `EINTR`); `call` gets
/// the buffer and returns the call's result code and whether an entry was found.
fn with_buffer<T>(
    size_key: libc::c_int,
    mut call: impl FnMut(&mut [libc::c_char]) -> (libc::c_int, Option<T>),
) -> io::Result<Option<T>> {
    let mut buf: Vec<libc::c_char> = vec![0; start_size(size_key)];
    loop {
        match call(&mut buf) {
            (0, found) => return Ok(found),
            (libc::EINTR, _) => continue,
            (libc::ERANGE, _) if buf.len() < MAX_BUFFER => {
                let n = buf.len() * 2;
                buf.resize(n, 0);
            }
            // glibc answers ENOENT (and some NSS modules ESRCH, EBADF, EPERM) for "not there".
            (libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM, _) => return Ok(None),
            (e, _) => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

/// Copies the fields of a `passwd` filled by a `getpw*_r` call.
///
/// # Safety
/// `pw` must point to a `passwd` whose string fields are NULL or valid C strings (as the
/// `getpw*_r` functions leave it when they find an entry), alive for the call.
unsafe fn user_from(pw: *const libc::passwd) -> User {
    // SAFETY: by this function's contract.
    let (name, dir, uid, gid) =
        unsafe { ((*pw).pw_name, (*pw).pw_dir, (*pw).pw_uid, (*pw).pw_gid) };
    let text = |p: *const libc::c_char| -> Vec<u8> {
        if p.is_null() {
            Vec::new()
        } else {
            // SAFETY: a non-NULL field is a C string in the caller's buffer.
            unsafe { CStr::from_ptr(p) }.to_bytes().to_vec()
        }
    };
    User {
        name: text(name),
        uid,
        gid,
        home: PathBuf::from(OsStr::from_bytes(&text(dir))),
    }
}

/// The user with login name `name` (`getpwnam_r`).
pub fn user_by_name(name: &[u8]) -> io::Result<Option<User>> {
    let Ok(c) = CString::new(name) else {
        return Ok(None);
    };
    with_buffer(libc::_SC_GETPW_R_SIZE_MAX, |buf| {
        let mut pw = MaybeUninit::<libc::passwd>::uninit();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; `buf.len()` is the buffer's length.
        let rc = unsafe {
            libc::getpwnam_r(
                c.as_ptr(),
                pw.as_mut_ptr(),
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        // SAFETY: a non-NULL result points to `pw`, filled with strings in `buf`.
        let found = (rc == 0 && !result.is_null()).then(|| unsafe { user_from(result) });
        (rc, found)
    })
}

/// The user with id `uid` (`getpwuid_r`).
pub fn user_by_uid(uid: u32) -> io::Result<Option<User>> {
    with_buffer(libc::_SC_GETPW_R_SIZE_MAX, |buf| {
        let mut pw = MaybeUninit::<libc::passwd>::uninit();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: as in `user_by_name`.
        let rc = unsafe {
            libc::getpwuid_r(
                uid,
                pw.as_mut_ptr(),
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        // SAFETY: as in `user_by_name`.
        let found = (rc == 0 && !result.is_null()).then(|| unsafe { user_from(result) });
        (rc, found)
    })
}

/// The id of the group named `name` (`getgrnam_r`).
pub fn group_id(name: &[u8]) -> io::Result<Option<u32>> {
    let Ok(c) = CString::new(name) else {
        return Ok(None);
    };
    with_buffer(libc::_SC_GETGR_R_SIZE_MAX, |buf| {
        let mut gr = MaybeUninit::<libc::group>::uninit();
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: as in `user_by_name`.
        let rc = unsafe {
            libc::getgrnam_r(
                c.as_ptr(),
                gr.as_mut_ptr(),
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        // SAFETY: a non-NULL result points to the filled `gr`.
        let found = (rc == 0 && !result.is_null()).then(|| unsafe { (*result).gr_gid });
        (rc, found)
    })
}

/// The id of the user named `name`.
pub fn user_id(name: &[u8]) -> io::Result<Option<u32>> {
    Ok(user_by_name(name)?.map(|u| u.uid))
}

/// The entry of the process's real user (`getuid`), if the database has one.
pub fn current_user() -> Option<User> {
    user_by_uid(rustix::process::getuid().as_raw())
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_resolves_both_ways() {
        let root = user_by_uid(0).unwrap().expect("uid 0 has a passwd entry");
        assert_eq!((root.name.as_slice(), root.uid), (&b"root"[..], 0));
        assert_eq!(user_id(b"root").unwrap(), Some(0));
        assert_eq!(user_by_name(b"root").unwrap(), Some(root));
        assert_eq!(group_id(b"root").unwrap(), Some(0));
    }

    #[test]
    fn missing_names_are_none() {
        let name = b"oxiborg-no-such-user-9f3a";
        assert_eq!(user_by_name(name).unwrap(), None);
        assert_eq!(group_id(name).unwrap(), None);
        assert_eq!(user_by_name(b"bad\0name").unwrap(), None);
        // the largest uid is reserved ((uid_t)-1): never an entry
        assert_eq!(user_by_uid(u32::MAX).unwrap(), None);
    }

    #[test]
    fn a_tiny_start_buffer_grows() {
        // the ERANGE path: a 1-byte buffer cannot hold root's entry
        let mut sizes = Vec::new();
        let found = with_buffer(libc::_SC_GETPW_R_SIZE_MAX, |buf| {
            sizes.push(buf.len());
            if buf.len() < 4096 {
                (libc::ERANGE, None)
            } else {
                (0, Some(buf.len()))
            }
        })
        .unwrap();
        assert_eq!(found, sizes.last().copied());
        assert!(sizes.windows(2).all(|w| w[1] == w[0] * 2), "{sizes:?}");
    }

    #[test]
    fn lookups_from_many_threads_at_once() {
        // two different entries besides root (the tests may run as root)
        let me = current_user().expect("the test user has a passwd entry");
        let other = [&b"nobody"[..], b"daemon", b"bin"]
            .iter()
            .find_map(|n| user_by_name(n).unwrap().filter(|u| u.uid != me.uid))
            .expect("one of nobody, daemon, bin exists");
        let barrier = std::sync::Barrier::new(16);
        std::thread::scope(|s| {
            for i in 0..16 {
                let (barrier, me, other) = (&barrier, &me, &other);
                s.spawn(move || {
                    barrier.wait();
                    for _ in 0..200 {
                        // alternate names so that a shared static buffer would be overwritten
                        // between another thread's call and its read
                        let (a, b) = if i % 2 == 0 { (me, other) } else { (other, me) };
                        assert_eq!(user_by_uid(a.uid).unwrap().as_ref(), Some(a));
                        assert_eq!(user_by_name(&b.name).unwrap().as_ref(), Some(b));
                        assert_eq!(
                            user_by_uid(0).unwrap().map(|u| u.name),
                            Some(b"root".to_vec())
                        );
                        assert_eq!(group_id(b"root").unwrap(), Some(0));
                        assert_eq!(user_by_name(b"oxiborg-no-such-user-9f3a").unwrap(), None);
                    }
                });
            }
        });
    }
}

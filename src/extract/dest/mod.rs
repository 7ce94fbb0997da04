//! The destination directory, confined: every file-system call is made relative to a directory
//! descriptor opened without following symlinks, so nothing an archive contains can make oxiborg
//! create, modify or follow anything outside the destination.
//!
//! Directories are reached by walking one component at a time from the destination (never by
//! recursion, so no path depth can exhaust the stack); the descriptors of recently used
//! directories are kept in a cache bounded by the open-file limit. Paths deeper than
//! [`MAX_DEPTH`] components are refused.
//!
//! Layout: this file holds [`Destination`], [`DirError`] and the path helpers; `walk` reaches
//! directories (the walk and its descriptor cache), `place` makes things at a name (clearing
//! what is there, fifos and devices), `temps` names temporary files and removes those an
//! interrupted run left.

mod place;
mod temps;
mod walk;

pub use place::make_node;
#[cfg(target_os = "linux")]
pub use place::proc_path;

use rustix::fd::OwnedFd;
use rustix::fs::{self, Mode, OFlags};
use rustix::io::Errno;
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use walk::DirCache;

/// The deepest path (in components below the destination) that is restored; deeper items are
/// refused by name. borg 1.4.5 itself stops with a `RecursionError` (the whole extract fails)
/// on a path of about 1,000 components whose parents are not yet there, and no borg can create
/// such an archive from a real tree (its own recursion limit), so this only meets crafted
/// archives; it keeps the restored tree within what other tools can still walk and remove.
pub const MAX_DEPTH: usize = 10_000;

/// An open destination directory.
pub struct Destination {
    root: Arc<OwnedFd>,
    dirs: Mutex<DirCache>,
    counter: AtomicU64,
    pid: u32,
    /// Look for temporaries of an earlier run in each existing directory the restore enters.
    sweep: bool,
    /// Directories already looked at (device, inode).
    swept: Mutex<HashSet<(u64, u64)>>,
    /// Temporaries of earlier runs removed so far.
    stale_removed: AtomicU64,
}

/// Why a directory of the destination could not be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirError {
    /// Refused for safety or sanity: a symlink or a non-directory on the way, a path too deep.
    Refused(String),
    /// The file system would not create or open it.
    Io {
        /// The directory (relative to the destination, for messages).
        path: String,
        /// Whether it was being created (else opened).
        creating: bool,
        /// The error.
        errno: Errno,
    },
}

impl std::fmt::Display for DirError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DirError::Refused(m) => f.write_str(m),
            DirError::Io {
                path,
                creating: true,
                errno,
            } => write!(f, "cannot create directory {path}: {errno}"),
            DirError::Io { path, errno, .. } => write!(f, "cannot open directory {path}: {errno}"),
        }
    }
}

impl DirError {
    /// The system error, for an I/O failure.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            DirError::Io { errno, .. } => Some(*errno),
            DirError::Refused(_) => None,
        }
    }
}

/// Splits an archive path into components, refusing `..` (after stripping leading `/`).
///
/// # Errors
///
/// Why the path is refused, as a message.
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

/// The refusal for a path of `depth` components, or `None` when it is not too deep.
pub fn too_deep(depth: usize) -> Option<String> {
    (depth > MAX_DEPTH).then(|| {
        format!("path is {depth} levels deep; oxiborg restores at most {MAX_DEPTH} levels")
    })
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

impl Destination {
    /// Opens (creating if needed) the destination directory.
    ///
    /// # Errors
    ///
    /// When it cannot be created or opened as a directory.
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
            dirs: Mutex::new(DirCache::new()),
            counter: AtomicU64::new(0),
            pid: std::process::id(),
            sweep: false,
            swept: Mutex::new(HashSet::new()),
            stale_removed: AtomicU64::new(0),
        })
    }

    /// The destination's own descriptor.
    pub fn root(&self) -> Arc<OwnedFd> {
        self.root.clone()
    }
}

/// A path for messages.
pub fn show(p: &[u8]) -> String {
    crate::text::display_bytes(p)
}

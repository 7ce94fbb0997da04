//! The destination directory, confined: every file-system call is made relative to a directory
//! descriptor opened without following symlinks, so nothing an archive contains can make oxiborg
//! create, modify or follow anything outside the destination.
//!
//! Directories are reached by walking one component at a time from the destination (never by
//! recursion, so no path depth can exhaust the stack); the descriptors of recently used
//! directories are kept in a cache bounded by the open-file limit. Paths deeper than
//! [`MAX_DEPTH`] components are refused.

#[cfg(target_os = "linux")]
use rustix::fd::AsFd;
use rustix::fd::OwnedFd;
use rustix::fs::{self, AtFlags, Mode, OFlags};
use rustix::io::Errno;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The deepest path (in components below the destination) that is restored; deeper items are
/// refused by name. borg 1.4.5 itself stops with a `RecursionError` (the whole extract fails)
/// on a path of about 1,000 components whose parents are not yet there, and no borg can create
/// such an archive from a real tree (its own recursion limit), so this only meets crafted
/// archives; it keeps the restored tree within what other tools can still walk and remove.
pub const MAX_DEPTH: usize = 10_000;

/// At most this many directory descriptors are cached (fewer when the open-file limit is low).
const DIR_CACHE_LIMIT: usize = 4096;

/// An open destination directory.
pub struct Destination {
    root: Arc<OwnedFd>,
    root_path: PathBuf,
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

/// The known subdirectories of one directory: name → node.
type Children = HashMap<Vec<u8>, u64>;

/// At most this many directories are remembered by name (a few MB); more than [`MAX_DEPTH`],
/// so that every directory of a chain of any depth that is restored fits.
const NODE_LIMIT: usize = 4 * MAX_DEPTH;

/// The directories looked up so far, as a trie — `(parent node, name) → node`, node 0 being
/// the destination — and the descriptors of the recently used ones. Looking a path up costs
/// its length, whatever its depth (no path is hashed whole), and a directory that is replaced
/// is forgotten with everything below it by removing one entry. Descriptors are kept in two
/// generations of at most half the limit each: when the newer one is full it becomes the older
/// one (and the older one is closed), so what was used recently stays open and the number of
/// descriptors stays bounded. A walk starts from the deepest directory of the path whose
/// descriptor is still open.
struct DirCache {
    nodes: HashMap<u64, Children>,
    nodes_len: usize,
    next: u64,
    fds: HashMap<u64, Arc<OwnedFd>>,
    old_fds: HashMap<u64, Arc<OwnedFd>>,
    fd_limit: usize,
}

impl DirCache {
    fn child(&self, parent: u64, name: &[u8]) -> Option<u64> {
        self.nodes.get(&parent)?.get(name).copied()
    }

    /// The descriptor of `node`, if it is open (it then counts as recently used).
    fn fd(&mut self, node: u64) -> Option<Arc<OwnedFd>> {
        if let Some(fd) = self.fds.get(&node) {
            return Some(fd.clone());
        }
        let fd = self.old_fds.remove(&node)?;
        self.put_fd(node, fd.clone());
        Some(fd)
    }

    fn put_fd(&mut self, node: u64, fd: Arc<OwnedFd>) {
        if self.fds.len() >= (self.fd_limit / 2).max(1) {
            self.old_fds = std::mem::take(&mut self.fds);
        }
        self.fds.insert(node, fd);
    }

    /// Records the directory `parent/name` and its descriptor; returns its node.
    fn insert(&mut self, parent: u64, name: &[u8], fd: Arc<OwnedFd>) -> u64 {
        let node = match self.child(parent, name) {
            Some(node) => node,
            None => {
                if self.nodes_len >= NODE_LIMIT {
                    // (what is below a node that is gone can no longer be reached: emptying
                    // is always safe)
                    self.nodes.clear();
                    self.nodes_len = 0;
                    self.fds.clear();
                    self.old_fds.clear();
                }
                self.next += 1;
                self.nodes
                    .entry(parent)
                    .or_default()
                    .insert(name.to_vec(), self.next);
                self.nodes_len += 1;
                self.next
            }
        };
        self.put_fd(node, fd);
        node
    }

    /// Forgets `parent/name`, and so everything below it.
    fn remove(&mut self, parent: u64, name: &[u8]) {
        if let Some(node) = self.nodes.get_mut(&parent).and_then(|m| m.remove(name)) {
            self.nodes_len = self.nodes_len.saturating_sub(1);
            self.fds.remove(&node);
            self.old_fds.remove(&node);
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

/// How many directory descriptors the cache may hold: at most [`DIR_CACHE_LIMIT`], and an
/// eighth of the soft open-file limit (the rest is for the files being written, segments …).
fn cache_limit() -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1 << 20)
        .min(1 << 20) as usize;
    (soft / 8).clamp(16, DIR_CACHE_LIMIT)
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
            root_path: path.to_path_buf(),
            dirs: Mutex::new(DirCache {
                nodes: HashMap::new(),
                nodes_len: 0,
                next: 0,
                fds: HashMap::new(),
                old_fds: HashMap::new(),
                fd_limit: cache_limit(),
            }),
            counter: AtomicU64::new(0),
            pid: std::process::id(),
            sweep: false,
            swept: Mutex::new(HashSet::new()),
            stale_removed: AtomicU64::new(0),
        })
    }

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

    /// The destination's own descriptor.
    pub fn root(&self) -> Arc<OwnedFd> {
        self.root.clone()
    }

    /// The destination path (for messages).
    pub fn path(&self) -> &Path {
        &self.root_path
    }

    /// The directory `comps`, created as needed (mode 0700: borg's `makedirs` under its umask
    /// 077). Refuses to pass through symlinks or non-directories, and paths deeper than
    /// [`MAX_DEPTH`]. Walks one component at a time from the deepest directory of the path
    /// still open; at most two descriptors of the walk are open at once besides the cache.
    ///
    /// # Errors
    ///
    /// [`DirError::Refused`] for a symlink, a non-directory or a path too deep on the way, and
    /// the system's error when a directory cannot be made or opened.
    pub fn dir(&self, comps: &[&[u8]]) -> Result<Arc<OwnedFd>, DirError> {
        if let Some(why) = too_deep(comps.len()) {
            return Err(DirError::Refused(why));
        }
        // The deepest directory of the path whose descriptor is open.
        let (mut node, mut fd, mut done) = (0u64, self.root.clone(), 0);
        {
            let mut cache = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
            let mut known = Vec::new();
            let mut at = 0;
            for c in comps {
                match cache.child(at, c) {
                    Some(n) => {
                        known.push(n);
                        at = n;
                    }
                    None => break,
                }
            }
            for (i, n) in known.iter().enumerate().rev() {
                if let Some(f) = cache.fd(*n) {
                    (node, fd, done) = (*n, f, i + 1);
                    break;
                }
            }
        }
        while done < comps.len() {
            let name = comps[done];
            let shown = || show(&comps[..=done].join(&b'/'));
            let next = match fs::openat(&*fd, name, dir_flags(), Mode::empty()) {
                Ok(next) => {
                    if self.sweep {
                        self.sweep_dir(&next);
                    }
                    next
                }
                Err(Errno::NOENT) => {
                    // borg runs with umask 077, so implicit parents are private.
                    match fs::mkdirat(&*fd, name, Mode::from_raw_mode(0o700)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(errno) => {
                            return Err(DirError::Io {
                                path: shown(),
                                creating: true,
                                errno,
                            })
                        }
                    }
                    let next = fs::openat(&*fd, name, dir_flags(), Mode::empty())
                        .map_err(|e| refuse(shown(), e))?;
                    if self.sweep {
                        // Ours and empty: never to be looked at again.
                        self.mark_swept(&next);
                    }
                    next
                }
                Err(e) => return Err(refuse(shown(), e)),
            };
            let next = Arc::new(next);
            node = self.dirs.lock().unwrap_or_else(|e| e.into_inner()).insert(
                node,
                name,
                next.clone(),
            );
            fd = next;
            done += 1;
        }
        Ok(fd)
    }

    /// Forgets cached descriptors of `prefix` and below (after it was removed or replaced).
    pub fn forget(&self, prefix: &[u8]) {
        let comps: Vec<&[u8]> = prefix
            .split(|b| *b == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        let Some((last, parents)) = comps.split_last() else {
            return;
        };
        let mut cache = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
        let mut node = 0;
        for c in parents {
            match cache.child(node, c) {
                Some(n) => node = n,
                // Not known: nothing below it is either.
                None => return,
            }
        }
        cache.remove(node, last);
    }

    /// Records a directory as looked at; `false` if it was already.
    #[allow(clippy::unnecessary_cast)] // the field widths differ between targets
    fn mark_swept(&self, dir: &OwnedFd) -> bool {
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
    fn sweep_dir(&self, dir: &OwnedFd) {
        if !self.mark_swept(dir) {
            return;
        }
        let n = remove_temps_in(dir, self.pid, &mut |_, _| {});
        if n > 0 {
            self.stale_removed.fetch_add(n, Ordering::Relaxed);
        }
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

/// Whether `name` is one [`Destination::temp_name`] makes: `.oxiborg-<pid>-<n>.tmp`.
pub fn is_temp_name(name: &[u8]) -> bool {
    temp_pid(name).is_some()
}

fn refuse(path: String, e: Errno) -> DirError {
    match e {
        Errno::LOOP | Errno::NOTDIR => DirError::Refused(format!(
            "refusing to extract below {path}: it is a symlink or not a directory"
        )),
        errno => DirError::Io {
            path,
            creating: false,
            errno,
        },
    }
}

/// A path for messages.
pub fn show(p: &[u8]) -> String {
    crate::format::text::display_bytes(p)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Open descriptors of this process.
    fn open_fds() -> usize {
        std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
    }

    /// Removes a tree of any depth, without recursion and with two descriptors open (going
    /// back up through `..`: the tree is ours and has no symlinks to directories).
    fn remove_tree(p: &Path) {
        let mut fd = fs::open(p, dir_flags(), Mode::empty()).unwrap();
        let mut names: Vec<Vec<u8>> = Vec::new();
        loop {
            let mut sub = None;
            for e in fs::Dir::read_from(&fd).unwrap().flatten() {
                let name = e.file_name().to_bytes().to_vec();
                if name == b"." || name == b".." {
                    continue;
                }
                if e.file_type() == fs::FileType::Directory {
                    sub = Some(name);
                    break;
                }
                fs::unlinkat(&fd, name.as_slice(), AtFlags::empty()).unwrap();
            }
            match sub {
                Some(name) => {
                    fd = fs::openat(&fd, name.as_slice(), dir_flags(), Mode::empty()).unwrap();
                    names.push(name);
                }
                None => {
                    let Some(name) = names.pop() else { break };
                    fd = fs::openat(&fd, "..", dir_flags(), Mode::empty()).unwrap();
                    fs::unlinkat(&fd, name.as_slice(), AtFlags::REMOVEDIR).unwrap();
                }
            }
        }
        drop(fd);
        std::fs::remove_dir(p).unwrap();
    }

    /// Deterministic xorshift64*.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Property over path depth: for random paths of 0 to 1.5 × MAX_DEPTH components (sharing
    /// prefixes, so that cached and uncached walks mix), on a thread with a small stack:
    /// `dir` never overflows the stack, succeeds exactly up to MAX_DEPTH, refuses deeper paths,
    /// makes the directory it returns, and the process's descriptors stay bounded by the cache.
    #[test]
    fn dir_walks_any_depth_iteratively_with_bounded_descriptors() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("dest");
        let dest = Destination::open(&root).unwrap();
        let limit = dest.dirs.lock().unwrap().fd_limit;
        let before = open_fds();
        let walk_root = root.clone();
        std::thread::Builder::new()
            .stack_size(128 << 10)
            .spawn(move || {
                let mut rng = Rng(0x5eed_0123_4567_89ab);
                let names: [&[u8]; 4] = [b"a", b"bb", b"c", b"d.d"];
                let mut depths: Vec<usize> = vec![0, 1, 2, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1];
                depths.extend((0..10).map(|_| rng.below(MAX_DEPTH as u64 * 3 / 2) as usize));
                let mut peak = 0;
                for (k, depth) in depths.into_iter().enumerate() {
                    // mostly one name, so that paths share long prefixes (walks that are partly
                    // cached, partly not)
                    let comps: Vec<&[u8]> = (0..depth)
                        .map(|_| names[(rng.below(1024) / 1000) as usize + (k % 2)])
                        .collect();
                    let got = dest.dir(&comps);
                    peak = peak.max(open_fds());
                    if depth > MAX_DEPTH {
                        assert!(
                            matches!(&got, Err(DirError::Refused(m)) if m.contains("levels deep")),
                            "depth {depth}: {got:?}"
                        );
                        continue;
                    }
                    let fd = got.unwrap_or_else(|e| panic!("depth {depth}: {e}"));
                    // It is the directory at that path: a marker made through it is found by
                    // walking the path again without the cache.
                    let marker = format!("m{k}");
                    fs::mkdirat(&*fd, marker.as_str(), Mode::from_raw_mode(0o700)).unwrap();
                    let mut at = fs::open(&walk_root, dir_flags(), Mode::empty()).unwrap();
                    for c in &comps {
                        at = fs::openat(&at, *c, dir_flags(), Mode::empty()).unwrap();
                    }
                    assert!(fs::statat(&at, marker.as_str(), AtFlags::empty()).is_ok());
                    if k % 5 == 0 {
                        dest.forget(&comps[..depth / 2].join(&b'/'));
                    }
                }
                peak
            })
            .unwrap()
            .join()
            .map(|peak| {
                assert!(
                    peak <= before + limit + 8,
                    "{peak} descriptors open (cache limit {limit}, {before} before)"
                );
            })
            .unwrap();
        remove_tree(&root);
    }

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
            assert!(!is_temp_name(bad), "{}", show(bad));
        }
        let me = std::process::id();
        assert!(!is_stale_temp(me, me), "our own temporaries are in use");
        // pid 0 never runs oxiborg
        assert!(is_stale_temp(0, me));
    }
}

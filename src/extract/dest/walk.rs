//! Reaching the directories of the destination: the walk one component at a time from the
//! deepest directory still open, and the cache of directory descriptors it starts from.

use super::{dir_flags, show, too_deep, Destination, DirError, MAX_DEPTH};
use rustix::fd::OwnedFd;
use rustix::fs::{self, Mode};
use rustix::io::Errno;
use std::collections::HashMap;
use std::sync::Arc;

/// At most this many directory descriptors are cached (fewer when the open-file limit is low).
const DIR_CACHE_LIMIT: usize = 4096;

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
pub(super) struct DirCache {
    nodes: HashMap<u64, Children>,
    nodes_len: usize,
    next: u64,
    fds: HashMap<u64, Arc<OwnedFd>>,
    old_fds: HashMap<u64, Arc<OwnedFd>>,
    fd_limit: usize,
}

impl DirCache {
    /// An empty cache, its descriptor limit from [`cache_limit`].
    pub(super) fn new() -> DirCache {
        DirCache {
            nodes: HashMap::new(),
            nodes_len: 0,
            next: 0,
            fds: HashMap::new(),
            old_fds: HashMap::new(),
            fd_limit: cache_limit(),
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::AtFlags;
    use std::path::Path;

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
}

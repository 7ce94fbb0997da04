//! Opening a local repository: its config and version, a writer's lock (waited for, a stale
//! one ignored), the segment files, and the object map (`index.T` when it matches the last
//! committed segment, else a scan of the committed segments).

use super::{segment_path, IdMap, LocalOptions, LocalStore, ObjectMap, RepoConfig};
use crate::error::{Error, Result};
use crate::store::hashindex::HashIndex;
use crate::store::lock;
use crate::store::segment::{self, Tag};
use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

impl LocalStore {
    /// Opens the repository at `path` (`location` is how to name it in messages).
    pub fn open(path: &Path, location: &str, opts: &LocalOptions) -> Result<LocalStore> {
        let meta = std::fs::metadata(path)
            .map_err(|_| Error::RepositoryDoesNotExist(location.to_string()))?;
        let invalid = |reason: String| Error::InvalidRepository {
            location: location.to_string(),
            reason,
        };
        if !meta.is_dir() {
            return Err(invalid("not a directory".into()));
        }
        let config_path = path.join("config");
        let text = match std::fs::read(&config_path) {
            Ok(t) => String::from_utf8_lossy(&t).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if path.join("data").is_dir() || path.join("README").is_file() {
                    return Err(invalid("the config file is missing".into()));
                }
                return Err(invalid("no config file".into()));
            }
            Err(e) => return Err(Error::io(config_path, e)),
        };
        let config = RepoConfig::parse(&text).map_err(|reason| Error::InvalidRepositoryConfig {
            location: location.to_string(),
            reason,
        })?;
        if config.version != 1 {
            return Err(Error::InvalidRepositoryConfig {
                location: location.to_string(),
                reason: format!(
                    "repository version {} is not supported by oxiborg",
                    config.version
                ),
            });
        }
        if !opts.bypass_lock {
            wait_for_writer(path, opts.lock_wait)?;
        }
        let segments = list_segments(path, config.segments_per_dir)?;
        if segments
            .iter()
            .any(|&s| first_bytes_are(&segment_path(path, config.segments_per_dir, s), b"ATTICSEG"))
        {
            return Err(Error::Other(format!(
                "Attic repository detected. Please run \"borg upgrade {location}\"."
            )));
        }
        let transaction = segments
            .iter()
            .rev()
            .copied()
            .find(|&s| segment::is_committed(&segment_path(path, config.segments_per_dir, s)));
        let mut store = LocalStore {
            root: path.to_path_buf(),
            location: location.to_string(),
            config,
            transaction,
            segments,
            map: ObjectMap::Scanned(IdMap::default()),
            rescanned: std::sync::OnceLock::new(),
            stale_warned: std::sync::atomic::AtomicBool::new(false),
            files: Mutex::new(HashMap::new()),
            warnings: Mutex::new(Vec::new()),
        };
        let map = match store.load_index() {
            Some(idx) => ObjectMap::Index(idx),
            None => ObjectMap::Scanned(store.scan()?),
        };
        store.map = map;
        Ok(store)
    }

    /// `index.T` when it exists for exactly the last committed transaction and is sound.
    pub(super) fn load_index(&self) -> Option<HashIndex> {
        let t = self.transaction?;
        let newest = std::fs::read_dir(&self.root)
            .ok()?
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_prefix("index.")?
                    .parse::<u32>()
                    .ok()
            })
            .max()?;
        if newest != t {
            return None;
        }
        HashIndex::load(&self.root.join(format!("index.{t}"))).ok()
    }

    /// Rebuilds the object map from the committed segments.
    pub(super) fn scan(&self) -> Result<IdMap> {
        let mut map = IdMap::default();
        let Some(t) = self.transaction else {
            return Ok(map);
        };
        for &seg in self.segments.iter().filter(|&&s| s <= t) {
            let path = segment_path(&self.root, self.config.segments_per_dir, seg);
            let res = segment::scan(&path, seg, |e| match (e.tag, e.id) {
                (Tag::Put, Some(id)) => {
                    map.insert(id, (seg, e.offset));
                }
                (Tag::Delete, Some(id)) => {
                    map.remove(&id);
                }
                _ => {}
            });
            if let Err(e) = res {
                self.warn(format!("{e}; the rest of segment {seg} is ignored"));
            }
        }
        Ok(map)
    }
}

/// Waits up to `wait` for a writer's exclusive lock to go away. A lock held only by processes
/// of this host that are gone is stale (borg's rule, [`crate::store::lock`]) and does not
/// count; it is left where it is for borg to remove.
fn wait_for_writer(root: &Path, wait: Duration) -> Result<()> {
    let host = lock::ThisHost::detect();
    let start = Instant::now();
    loop {
        match lock::exclusive_lock(root, &host) {
            lock::LockState::Free(stale) => {
                for name in stale {
                    log::info!(
                        target: "borg.locking",
                        "Ignoring stale lock {name} (its process on this host is gone); \
                         borg removes it at its next run"
                    );
                }
                return Ok(());
            }
            lock::LockState::Held(holders) if start.elapsed() >= wait => {
                return Err(Error::LockTimeout(format!(
                    "{} — held by {} (a borg writer); wait for it to finish, or pass \
                     --bypass-lock to read anyway",
                    root.join("lock.exclusive").display(),
                    holders.join(", ")
                )));
            }
            lock::LockState::Held(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn first_bytes_are(path: &Path, magic: &[u8]) -> bool {
    let mut buf = vec![0u8; magic.len()];
    File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf))
        .is_ok()
        && buf == magic
}

/// Existing, non-empty, numerically named segment files, ascending.
fn list_segments(root: &Path, per_dir: u32) -> Result<Vec<u32>> {
    let data = root.join("data");
    let mut segs = Vec::new();
    let dirs = std::fs::read_dir(&data).map_err(|e| Error::io(&data, e))?;
    for d in dirs.flatten() {
        let name = d.file_name();
        let Some(dn) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(files) = std::fs::read_dir(d.path()) else {
            continue;
        };
        for f in files.flatten() {
            let fname = f.file_name();
            let Some(n) = fname
                .to_str()
                .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if n / per_dir != dn {
                continue;
            }
            if f.metadata()
                .map(|m| m.is_file() && m.len() > 0)
                .unwrap_or(false)
            {
                segs.push(n);
            }
        }
    }
    segs.sort_unstable();
    Ok(segs)
}

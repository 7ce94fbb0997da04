//! A repository directory on this machine, opened strictly read-only.
//!
//! The object map comes from the newest `index.T` when it matches the last committed segment,
//! else from a scan of the committed segments (PUT/DELETE in log order, anything after the last
//! COMMIT ignored). Nothing is ever written into the repository and no lock is taken; a live
//! writer's lock makes opening fail unless `bypass_lock` is set (a stale one is ignored, see
//! [`super::lock`]).

use super::hashindex::HashIndex;
use super::segment::{self, Tag};
use super::Store;
use crate::error::{Error, Result};
use crate::id::ObjectId;
use log::Level;
use std::collections::HashMap;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Options for opening a local repository.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Read even while a writer holds the lock (borg's `--bypass-lock`).
    pub bypass_lock: bool,
    /// How long to wait for a lock to go away (borg's `--lock-wait`, default 1 s).
    pub lock_wait: Duration,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            bypass_lock: false,
            lock_wait: Duration::from_secs(1),
        }
    }
}

/// The parsed `[repository]` section of `config`.
#[derive(Debug, Clone, Default)]
pub struct RepoConfig {
    /// Format version (1 for borg 1.x).
    pub version: u32,
    /// Segments per data directory.
    pub segments_per_dir: u32,
    /// Whether writers must only append.
    pub append_only: bool,
    /// Repository id.
    pub id: ObjectId,
    /// The repokey blob, if any (base64 text).
    pub key: Option<String>,
    /// Writers' segment size limit (informational).
    pub max_segment_size: u64,
}

impl RepoConfig {
    /// Parses borg's INI `config` text.
    pub fn parse(text: &str) -> std::result::Result<RepoConfig, String> {
        let mut values: HashMap<String, String> = HashMap::new();
        let mut section = String::new();
        let mut last_key: Option<String> = None;
        for line in text.lines() {
            if line.starts_with([' ', '\t']) && !line.trim().is_empty() {
                // configparser continuation line
                if let Some(k) = &last_key {
                    if let Some(v) = values.get_mut(k) {
                        v.push('\n');
                        v.push_str(line.trim());
                    }
                }
                continue;
            }
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
                continue;
            }
            if let Some(s) = t.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                section = s.trim().to_string();
                last_key = None;
                continue;
            }
            let (k, v) = t
                .split_once('=')
                .or_else(|| t.split_once(':'))
                .ok_or_else(|| format!("cannot parse line {t:?}"))?;
            if section == "repository" {
                let k = k.trim().to_ascii_lowercase();
                values.insert(k.clone(), v.trim().to_string());
                last_key = Some(k);
            }
        }
        if section.is_empty() && values.is_empty() {
            return Err("no [repository] section".into());
        }
        let get = |k: &str| values.get(k).map(String::as_str);
        let int = |k: &str, default: u64| -> std::result::Result<u64, String> {
            get(k)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| format!("{k} = {v:?} is not a number"))
                })
                .unwrap_or(Ok(default))
        };
        let version = int("version", 0)? as u32;
        let id_hex = get("id").ok_or("no repository id")?;
        let id_bytes = hex::decode(id_hex).map_err(|_| "repository id is not hex".to_string())?;
        let id: ObjectId = id_bytes
            .try_into()
            .map_err(|_| "repository id is not 32 bytes".to_string())?;
        let append_only = matches!(
            get("append_only").map(str::to_ascii_lowercase).as_deref(),
            Some("1" | "yes" | "true" | "on")
        );
        Ok(RepoConfig {
            version,
            segments_per_dir: (int("segments_per_dir", 1000)? as u32).max(1),
            append_only,
            id,
            key: get("key")
                .map(str::to_string)
                .filter(|k| !k.trim().is_empty()),
            max_segment_size: int("max_segment_size", 524_288_000)?,
        })
    }
}

/// Ids are random: their first eight bytes are a perfect hash.
#[derive(Default)]
struct IdHasher(u64);
impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(b);
        }
    }
}
type IdMap = HashMap<ObjectId, (u32, u32), BuildHasherDefault<IdHasher>>;

enum ObjectMap {
    Index(HashIndex),
    Scanned(IdMap),
}

impl ObjectMap {
    fn get(&self, id: &ObjectId) -> Option<(u32, u32)> {
        match self {
            ObjectMap::Index(i) => i.get(id),
            ObjectMap::Scanned(m) => m.get(id).copied(),
        }
    }
}

/// A local repository directory.
pub struct LocalStore {
    root: PathBuf,
    location: String,
    config: RepoConfig,
    transaction: Option<u32>,
    segments: Vec<u32>,
    map: ObjectMap,
    /// The object map from a scan of the segments, made at the first read error (when the map
    /// is the index) to find objects a stale index misplaces.
    rescanned: std::sync::OnceLock<Option<IdMap>>,
    /// The stale-index warning was given.
    stale_warned: std::sync::atomic::AtomicBool,
    files: Mutex<HashMap<u32, Arc<File>>>,
    warnings: Mutex<Vec<String>>,
}

const MAX_OPEN_SEGMENTS: usize = 128;

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

    /// The parsed config.
    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    /// The last committed segment (the transaction id), or `None` for an empty repository.
    pub fn transaction(&self) -> Option<u32> {
        self.transaction
    }

    /// Whether the object map came from `index.T` (true) or a segment scan.
    pub fn uses_index(&self) -> bool {
        matches!(self.map, ObjectMap::Index(_))
    }

    fn warn(&self, msg: String) {
        self.warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(msg);
    }

    /// `index.T` when it exists for exactly the last committed transaction and is sound.
    fn load_index(&self) -> Option<HashIndex> {
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
    fn scan(&self) -> Result<IdMap> {
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

    fn file(&self, seg: u32) -> Result<Arc<File>> {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = files.get(&seg) {
            return Ok(f.clone());
        }
        let path = segment_path(&self.root, self.config.segments_per_dir, seg);
        let f = Arc::new(File::open(&path).map_err(|e| {
            Error::Integrity(format!(
                "Segment {seg} cannot be opened ({}): {e}",
                path.display()
            ))
        })?);
        if files.len() >= MAX_OPEN_SEGMENTS {
            files.clear();
        }
        files.insert(seg, f.clone());
        Ok(f)
    }

    /// Where an object is stored, `(segment, offset)`.
    pub fn locate(&self, id: &ObjectId) -> Option<(u32, u32)> {
        self.map.get(id)
    }

    fn not_found(&self, id: &ObjectId) -> Error {
        Error::ObjectNotFound {
            id: hex::encode(id),
            location: self.location.clone(),
        }
    }

    fn read_at(&self, id: &ObjectId, seg: u32, off: u32, guess: Option<u32>) -> Result<Vec<u8>> {
        segment::read_put_sized(&*self.file(seg)?, seg, off, id, guess)
    }

    /// [`Store::get`] with a guess of the entry's length (see [`segment::read_put_sized`]).
    fn get_sized(&self, id: &ObjectId, guess: Option<u32>) -> Result<Vec<u8>> {
        let Some((seg, off)) = self.locate(id) else {
            return Err(self.not_found(id));
        };
        match self.read_at(id, seg, off, guess) {
            Ok(data) => Ok(data),
            Err(first) if self.uses_index() => {
                // The index may be stale: if a scan of the segments has the object elsewhere,
                // read it there. The index stays the map: one damaged entry must not hide the
                // intact objects that follow it in its segment (a scan stops at damage).
                let rescanned = self.rescanned.get_or_init(|| self.scan().ok());
                match rescanned.as_ref().and_then(|m| m.get(id)).copied() {
                    Some((s, o)) if (s, o) != (seg, off) => {
                        if !self
                            .stale_warned
                            .swap(true, std::sync::atomic::Ordering::Relaxed)
                        {
                            self.warn(format!(
                                "index.{} did not match the segments ({first}); objects it \
                                 misplaces are found by scanning",
                                self.transaction.unwrap_or(0),
                            ));
                        }
                        self.read_at(id, s, o, None)
                    }
                    // Where the index points is where the object is (or was): that is damage.
                    _ => Err(first),
                }
            }
            Err(e) => Err(e),
        }
    }
}

/// Waits up to `wait` for a writer's exclusive lock to go away. A lock held only by processes
/// of this host that are gone is stale (borg's rule, [`super::lock`]) and does not count; it is
/// left where it is for borg to remove.
fn wait_for_writer(root: &Path, wait: Duration) -> Result<()> {
    let host = super::lock::ThisHost::detect();
    let start = Instant::now();
    loop {
        match super::lock::exclusive_lock(root, &host) {
            super::lock::LockState::Free(stale) => {
                for name in stale {
                    log::info!(
                        target: "borg.locking",
                        "Ignoring stale lock {name} (its process on this host is gone); \
                         borg removes it at its next run"
                    );
                }
                return Ok(());
            }
            super::lock::LockState::Held(holders) if start.elapsed() >= wait => {
                return Err(Error::LockTimeout(format!(
                    "{} — held by {} (a borg writer); wait for it to finish, or pass \
                     --bypass-lock to read anyway",
                    root.join("lock.exclusive").display(),
                    holders.join(", ")
                )));
            }
            super::lock::LockState::Held(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn segment_path(root: &Path, per_dir: u32, seg: u32) -> PathBuf {
    root.join("data")
        .join((seg / per_dir).to_string())
        .join(seg.to_string())
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

impl Store for LocalStore {
    fn id(&self) -> ObjectId {
        self.config.id
    }

    fn location(&self) -> &str {
        &self.location
    }

    fn load_key(&self) -> Result<Option<String>> {
        Ok(self.config.key.clone())
    }

    fn get(&self, id: &ObjectId) -> Result<Vec<u8>> {
        self.get_sized(id, None)
    }

    fn get_many(
        &self,
        ids: &[ObjectId],
        sink: &mut dyn FnMut(usize, Result<Vec<u8>>) -> Result<()>,
    ) -> Result<()> {
        // Read in on-disk order.
        let mut order: Vec<(u32, u32, usize)> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let (s, o) = self.locate(id).unwrap_or((u32::MAX, u32::MAX));
                (s, o, i)
            })
            .collect();
        order.sort_unstable();
        for (k, &(seg, off, i)) in order.iter().enumerate() {
            // The next wanted entry of the same segment bounds this one: small entries that
            // lie back to back are then read with one system call each.
            let guess = order
                .get(k + 1)
                .filter(|(s, o, _)| *s == seg && seg != u32::MAX && *o > off)
                .map(|(_, o, _)| o - off);
            sink(i, self.get_sized(&ids[i], guess))?;
        }
        Ok(())
    }

    fn list_ids(&self) -> Result<Vec<ObjectId>> {
        Ok(match &self.map {
            ObjectMap::Index(i) => i.iter().map(|(id, _, _)| id).collect(),
            ObjectMap::Scanned(m) => m.keys().copied().collect(),
        })
    }

    /// Reads every committed segment (CRC of every entry), rebuilds the object map from them
    /// and compares it with `index.T`, reporting in borg's words. Nothing is written.
    fn check(&self, report: &mut dyn FnMut(Level, String)) -> Result<u64> {
        report(Level::Info, "Starting repository check".into());
        let Some(t) = self.transaction else {
            report(
                Level::Error,
                "This repository contains no valid data.".into(),
            );
            super::finish_repository_check(1, report);
            return Ok(1);
        };
        let mut problems = 0u64;
        let mut rebuilt = IdMap::default();
        for &seg in self.segments.iter().filter(|&&s| s <= t) {
            let path = segment_path(&self.root, self.config.segments_per_dir, seg);
            report(
                Level::Debug,
                format!("checking segment file {}...", path.display()),
            );
            let mut entries = Vec::new();
            // Like borg, a damaged segment contributes nothing (its index entries then show
            // up as mismatches below).
            match segment::scan(&path, seg, |e| entries.push((e.tag, e.id, e.offset))) {
                Ok(()) => {
                    for (tag, id, offset) in entries {
                        match (tag, id) {
                            (Tag::Put, Some(id)) => {
                                rebuilt.insert(id, (seg, offset));
                            }
                            (Tag::Delete, Some(id)) => {
                                rebuilt.remove(&id);
                            }
                            _ => {}
                        }
                    }
                }
                Err(e) => {
                    problems += 1;
                    report(Level::Error, e.to_string());
                }
            }
        }
        report(
            Level::Info,
            format!("finished segment check at segment {t}"),
        );
        report(Level::Info, "Starting repository index check".into());
        match self.load_index() {
            None => report(
                Level::Info,
                format!("No usable index.{t}: nothing to compare the segments with"),
            ),
            Some(idx) => {
                let show = |v: Option<(u32, u32)>| match v {
                    Some((s, o)) => format!("({s}, {o})"),
                    None => "<not found>".to_string(),
                };
                // (id, where the segments have it, where the index has it)
                type Loc = Option<(u32, u32)>;
                let mut mismatches: Vec<(ObjectId, Loc, Loc)> = Vec::new();
                if idx.len() != rebuilt.len() {
                    report(Level::Error, "Index object count mismatch.".into());
                    report(
                        Level::Error,
                        format!("committed index: {} objects", idx.len()),
                    );
                    report(
                        Level::Error,
                        format!("rebuilt index:   {} objects", rebuilt.len()),
                    );
                    problems += 1;
                } else {
                    report(Level::Info, "Index object count match.".into());
                }
                for (id, v) in &rebuilt {
                    let c = idx.get(id);
                    if c != Some(*v) {
                        mismatches.push((*id, Some(*v), c));
                    }
                }
                for (id, s, o) in idx.iter() {
                    if !rebuilt.contains_key(&id) {
                        mismatches.push((id, None, Some((s, o))));
                    }
                }
                for (id, r, c) in mismatches {
                    problems += 1;
                    report(
                        Level::Error,
                        format!(
                            "ID: {:<64} rebuilt index: {:<16} committed index: {:<16}",
                            hex::encode(id),
                            show(r),
                            show(c)
                        ),
                    );
                }
            }
        }
        super::finish_repository_check(problems, report);
        Ok(problems)
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

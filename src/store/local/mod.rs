//! A repository directory on this machine, opened strictly read-only.
//!
//! The object map comes from the newest `index.T` when it matches the last committed segment,
//! else from a scan of the committed segments (PUT/DELETE in log order, anything after the last
//! COMMIT ignored). Nothing is ever written into the repository and no lock is taken; a live
//! writer's lock makes opening fail unless `bypass_lock` is set (a stale one is ignored, see
//! [`super::lock`]).
//!
//! Layout: this file holds [`LocalStore`], its options and its object map, and implements
//! [`Store`]; `config` parses the repository's `config`; `open` checks the repository and the
//! writer's lock, lists the segments and loads the object map (`index.T` or a scan); `read`
//! reads objects (the open segment files, the stale-index fallback); `check` is the repository
//! part of `borg check`.

mod check;
pub(crate) mod config;
mod open;
mod read;

pub use config::RepoConfig;

use super::hashindex::HashIndex;
use super::Store;
use crate::error::Result;
use crate::id::ObjectId;
use log::Level;
use std::collections::HashMap;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

impl LocalStore {
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
}

fn segment_path(root: &Path, per_dir: u32, seg: u32) -> PathBuf {
    root.join("data")
        .join((seg / per_dir).to_string())
        .join(seg.to_string())
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
        self.check_segments(report)
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

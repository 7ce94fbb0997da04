//! borg 2.0.0b25 repositories: a borgstore tree of named files (read through [`Files`]) with
//! objects in packs, found through the chunk index.
//!
//! [`Borg2Store`] implements [`Store`] like the 1.x stores do — `get(id)` is the whole stored
//! object (header, meta and data slots), still sealed — so the fetch/decode engine is the same
//! for both formats. What only borg 2 has lives here too: the key blobs in `keys/`, the
//! archive pointers in `archives/`, and the index fragments (opened with the key by the caller,
//! since this layer holds no key).
//!
//! Layout: `config` tells the formats apart and reads `config/config`; `index` holds the chunk
//! index, its fragments and the pack walk that rebuilds it; `check` the repository check.

mod check;
pub(crate) mod config;
pub(crate) mod index;

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::store::files::{Files, Range};
use crate::store::Store;
use config::Borg2Config;
use index::{ChunkIndex, OBJECT_HEADER};
use std::sync::Mutex;

/// Opens a sealed store object of a namespace (the key's store-envelope opener; this layer
/// holds no key): `(namespace, envelope) → plaintext`.
pub(crate) type OpenStoreObject<'a> = dyn Fn(&str, &[u8]) -> Result<Vec<u8>> + 'a;

/// A borg 2.0.0b25 repository's objects.
pub(crate) struct Borg2Store {
    files: Box<dyn Files>,
    config: Borg2Config,
    index: ChunkIndex,
    warnings: Mutex<Vec<String>>,
}

/// The name of a pack file.
fn pack_name(pack: &ObjectId) -> String {
    let h = hex::encode(pack);
    format!("packs/{}/{h}", &h[..2])
}

impl Borg2Store {
    /// The store over `files`, whose `config/config` is `config` (see [`config::detect`]).
    /// Its chunk index is empty until [`Borg2Store::load_index`].
    pub(crate) fn new(files: Box<dyn Files>, config: Borg2Config) -> Borg2Store {
        Borg2Store {
            files,
            config,
            index: ChunkIndex::default(),
            warnings: Mutex::new(Vec::new()),
        }
    }

    /// The repository's `config/config`.
    pub(crate) fn config(&self) -> &Borg2Config {
        &self.config
    }

    /// The key blobs stored in the repository (`keys/*` whose bytes name this repository),
    /// by name, in name order.
    ///
    /// # Errors
    /// The store failing.
    pub(crate) fn key_blobs(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let want = format!("BORG_KEY {}", hex::encode(self.config.id));
        let mut out = Vec::new();
        for e in self.files.list("keys")?.unwrap_or_default() {
            if e.is_dir || is_temporary(&e.name) {
                continue;
            }
            if let Some(b) = self.files.load(&format!("keys/{}", e.name))? {
                if b.starts_with(want.as_bytes()) {
                    out.push((e.name, b));
                }
            }
        }
        Ok(out)
    }

    /// Loads the chunk index: the union of the `index/` fragments (each opened by `open`, the
    /// key's store-envelope opener), or — when `cache/chunkindex-invalid` marks them stale,
    /// there are none, or one cannot be read — a walk over every pack's headers, as borg
    /// rebuilds it (with a warning).
    ///
    /// # Errors
    /// The store failing, or a pack walk that meets a damaged pack header.
    pub(crate) fn load_index(&mut self, open: &OpenStoreObject<'_>) -> Result<()> {
        let reason = if self.files.kind("cache/chunkindex-invalid")?.is_some() {
            Some("cache/chunkindex-invalid marks the chunk index as stale".to_string())
        } else {
            match self.read_fragments(open) {
                Ok(Some(index)) => {
                    self.index = index;
                    return Ok(());
                }
                Ok(None) => Some("the repository has no chunk index fragments".to_string()),
                Err(e) => Some(format!("{e}")),
            }
        };
        if let Some(reason) = reason {
            self.warn(format!(
                "{reason}; rebuilding it by reading every pack's object headers"
            ));
        }
        self.index = self.walk_packs()?;
        Ok(())
    }

    /// The union of the index fragments; `None` when there are none.
    fn read_fragments(&self, open: &OpenStoreObject<'_>) -> Result<Option<ChunkIndex>> {
        let names: Vec<String> = self
            .files
            .list("index")?
            .unwrap_or_default()
            .into_iter()
            .filter(|e| !e.is_dir && !is_temporary(&e.name))
            .map(|e| e.name)
            .collect();
        if names.is_empty() {
            return Ok(None);
        }
        let mut index = ChunkIndex::default();
        for n in names {
            let name = format!("index/{n}");
            let Some(env) = self.files.load(&name)? else {
                // removed while listing (a concurrent compaction): what remains is incomplete
                return Err(Error::Integrity(format!(
                    "{name} vanished while it was read"
                )));
            };
            let plain = open("index", &env).map_err(|e| e.in_context(&format!("({name})")))?;
            index::add_fragment(&mut index, &plain)
                .map_err(|e| e.in_context(&format!("({name})")))?;
        }
        Ok(Some(index))
    }

    /// The chunk index rebuilt from the packs' object headers (no key needed).
    fn walk_packs(&self) -> Result<ChunkIndex> {
        let mut index = ChunkIndex::default();
        for dir in self.files.list("packs")?.unwrap_or_default() {
            if !dir.is_dir {
                continue;
            }
            let sub = format!("packs/{}", dir.name);
            for e in self.files.list(&sub)?.unwrap_or_default() {
                let Some(pack) = (!e.is_dir && !is_temporary(&e.name))
                    .then(|| hex::decode(&e.name).ok())
                    .flatten()
                    .and_then(|b| ObjectId::try_from(b).ok())
                else {
                    continue;
                };
                let name = format!("{sub}/{}", e.name);
                let mut offset = 0u64;
                while offset < e.size {
                    let header = self.files.load_range(&Range {
                        name: name.clone(),
                        offset,
                        len: (OBJECT_HEADER as u64).min(e.size - offset),
                    })?;
                    let (id, len) = index::parse_header(&header).map_err(|m| {
                        Error::Integrity(format!("{name}: at offset {offset}: {m}"))
                    })?;
                    if offset + len > e.size || offset > u64::from(u32::MAX) {
                        return Err(Error::Integrity(format!(
                            "{name}: the object at offset {offset} runs past the pack's end"
                        )));
                    }
                    index.insert(id, pack, offset as u32, len as u32);
                    offset += len;
                }
            }
        }
        Ok(index)
    }

    /// A named store object (such as `config/defaults`), still sealed; `None` when absent.
    ///
    /// # Errors
    /// The store failing.
    pub(crate) fn load_named(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.files.load(name)
    }

    /// The archive ids the `archives/` directory points at, skipping soft-deleted (`.del`)
    /// and unfinished ones.
    ///
    /// # Errors
    /// The store failing.
    pub(crate) fn archive_ids(&self) -> Result<Vec<ObjectId>> {
        let mut out = Vec::new();
        for e in self.files.list("archives")?.unwrap_or_default() {
            if e.is_dir || e.name.contains('.') {
                continue; // `.del`, `.tmp`, `.hid`
            }
            if let Some(id) = hex::decode(&e.name)
                .ok()
                .and_then(|b| ObjectId::try_from(b).ok())
            {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// Records a problem that did not stop the reading (shown as a warning).
    pub(crate) fn warn(&self, m: String) {
        self.warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(m);
    }

    fn range(&self, id: &ObjectId) -> Result<Range> {
        let loc = self
            .index
            .map
            .get(id)
            .ok_or_else(|| Error::ObjectNotFound {
                id: hex::encode(id),
                location: self.files.location().to_string(),
            })?;
        Ok(Range {
            name: pack_name(&self.index.packs[loc.pack as usize]),
            offset: u64::from(loc.offset),
            len: u64::from(loc.size),
        })
    }
}

/// A name borgstore writes while uploading, hides or soft-deletes.
fn is_temporary(name: &str) -> bool {
    name.ends_with(".tmp") || name.ends_with(".hid") || name.ends_with(".del")
}

impl Store for Borg2Store {
    fn id(&self) -> ObjectId {
        self.config.id
    }

    fn location(&self) -> &str {
        self.files.location()
    }

    fn load_key(&self) -> Result<Option<String>> {
        // (borg 2 keys are read with `key_blobs`; there is no 1.x repokey)
        Ok(None)
    }

    fn get(&self, id: &ObjectId) -> Result<Vec<u8>> {
        self.files.load_range(&self.range(id)?)
    }

    fn get_many(
        &self,
        ids: &[ObjectId],
        sink: &mut dyn FnMut(usize, Result<Vec<u8>>) -> Result<()>,
    ) -> Result<()> {
        // In pack order, each pack front to back; objects the index lacks fail at once.
        let mut order: Vec<(usize, Range)> = Vec::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            match self.range(id) {
                Ok(r) => order.push((i, r)),
                Err(e) => sink(i, Err(e))?,
            }
        }
        order.sort_by(|a, b| (&a.1.name, a.1.offset).cmp(&(&b.1.name, b.1.offset)));
        let (index, ranges): (Vec<usize>, Vec<Range>) = order.into_iter().unzip();
        self.files
            .load_ranges(&ranges, &mut |k, r| sink(index[k], r))
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn check(&self, report: &mut dyn FnMut(log::Level, String)) -> Result<u64> {
        self.check_packs(report)
    }

    fn list_ids(&self) -> Result<Vec<ObjectId>> {
        let mut ids: Vec<ObjectId> = self.index.map.keys().copied().collect();
        ids.sort_by_key(|id| {
            let l = self.index.map[id];
            (l.pack, l.offset)
        });
        Ok(ids)
    }
}

//! Opening a borg 2.0.0b25 repository: the key unlocked from a key file or the repository's
//! `keys/`, the chunk index loaded, and the archive list read from the `archives/` pointers
//! (borg 2 has no manifest: each archive's name and time are in its own metadata object).

use super::Repository;
use crate::error::{Error, Result};
use crate::format::{ArchiveEntry, ArchiveMeta, Manifest};
use crate::id::{Id, ObjectId};
use crate::key::blob2;
use crate::key::{Key, KeyType, StoreName};
use crate::location::Location;
use crate::store::borg2::Borg2Store;
use crate::store::Store;
use rayon::prelude::*;

use super::OpenOptions;

impl Repository {
    /// Unlocks a borg 2 repository's key, loads its chunk index and its archive list.
    pub(crate) fn from_borg2_store(
        mut store: Borg2Store,
        location: Location,
        options: &OpenOptions,
    ) -> Result<Repository> {
        let loc_text = location.canonical();
        let config = store.config().clone();
        let ktype = KeyType::from_borg2_config(&config.encryption, &config.id_hash)?;
        // borg 2's order: BORG_KEY_FILE (or the key files naming this repository), then every
        // key stored in the repository; the first the passphrase opens is the key.
        let mut candidates = blob2::borg2_key_files(
            &config.id,
            options.key_file.as_deref(),
            options.keys_dir.as_deref(),
        )?;
        for (name, data) in store.key_blobs()? {
            candidates.extend(blob2::borg2_repokey_blob(&name, data));
        }
        let key = blob2::unlock_borg2(
            ktype,
            &config.id,
            &candidates,
            &loc_text,
            &options.passphrase_sources(),
        )?;
        store.load_index(&|namespace, envelope| {
            key.open_store_object(StoreName::Hashed(namespace), envelope)
        })?;
        if let Some(dir) = &options.borg2_security_dir {
            super::security::assert_secure_borg2(
                &dir.join(hex::encode(config.id)),
                &key,
                &location,
            )?;
        }
        let archives = archive_entries(&store, &key)?;
        let defaults = match store.load_named("config/defaults")? {
            None => RepositoryDefaults::default(),
            Some(env) => {
                let plain = key
                    .open_store_object(StoreName::Named("config/defaults"), &env)
                    .map_err(|e| e.in_context("(config/defaults)"))?;
                RepositoryDefaults::parse(&plain)?
            }
        };
        Ok(Repository {
            store: Box::new(store),
            key,
            manifest: Manifest {
                version: 2,
                archives,
                timestamp: String::new(),
                id: [0; 32],
                tam_verified: false,
            },
            location,
            ignore_invalid_archive_tam: options.ignore_invalid_archive_tam,
            borg2: Some(defaults),
        })
    }

    /// A borg 2 archive's metadata, with its item-stream chunk ids resolved from its item
    /// pointers.
    pub(super) fn borg2_archive_meta(&self, entry: &ArchiveEntry) -> Result<ArchiveMeta> {
        let name = entry.display_name();
        let plain = open_typed(&*self.store, &self.key, &entry.id.0, b'A')
            .map_err(|e| e.in_context(&format!("(metadata of archive {name})")))?;
        let mut meta = ArchiveMeta::parse_borg2(&plain, &name)?;
        let mut items = Vec::new();
        for ptr in &meta.item_ptrs {
            let plain = open_typed(&*self.store, &self.key, ptr, b'C')
                .map_err(|e| e.in_context(&format!("(item pointers of archive {name})")))?;
            let ids: Vec<serde_bytes::ByteBuf> = rmp_serde::from_slice(&plain).map_err(|e| {
                Error::Integrity(format!(
                    "Archive {name}: item pointer object {} cannot be decoded: {e}",
                    hex::encode(ptr)
                ))
            })?;
            for id in ids {
                items.push(ObjectId::try_from(id.as_slice()).map_err(|_| {
                    Error::Integrity(format!(
                        "Archive {name}: an item chunk id of {} bytes",
                        id.len()
                    ))
                })?);
            }
        }
        meta.items = items;
        Ok(meta)
    }
}

/// A borg 2 repository's defaults for writers (`config/defaults`), as `repo-info` shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepositoryDefaults {
    /// The default compression (`repo-create`/`repo-compress`'s), if set.
    pub compression: Option<String>,
    /// The default chunker parameters, if set.
    pub chunker_params: Option<String>,
}

impl RepositoryDefaults {
    /// Decodes the msgpack map `{option: value}` of `config/defaults`.
    fn parse(plain: &[u8]) -> Result<RepositoryDefaults> {
        let map: std::collections::BTreeMap<String, rmpv::Value> = rmp_serde::from_slice(plain)
            .map_err(|e| Error::Integrity(format!("config/defaults cannot be decoded: {e}")))?;
        let text = |k: &str| {
            map.get(k).map(|v| match v {
                rmpv::Value::String(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
                other => other.to_string(),
            })
        };
        Ok(RepositoryDefaults {
            compression: text("compression"),
            chunker_params: text("chunker_params"),
        })
    }
}

/// Fetches and opens one object, requiring its metadata type letter to be `want`.
fn open_typed(store: &dyn Store, key: &Key, id: &ObjectId, want: u8) -> Result<Vec<u8>> {
    let blob = store.get(id)?;
    let (kind, plain) = key.open_blob(Some(id), blob, None)?;
    if kind != want {
        return Err(Error::Integrity(format!(
            "Object {}: a {:?} object where a {:?} object belongs",
            hex::encode(id),
            kind as char,
            want as char
        )));
    }
    Ok(plain)
}

/// Every archive the `archives/` directory points at, from its metadata object, oldest first.
/// A pointer whose object is missing or damaged is skipped with a warning (borg lists it as
/// `archive-does-not-exist`).
fn archive_entries(store: &Borg2Store, key: &Key) -> Result<Vec<ArchiveEntry>> {
    let ids = store.archive_ids()?;
    let mut raw: Vec<Option<Result<Vec<u8>>>> = (0..ids.len()).map(|_| None).collect();
    store.get_many(&ids, &mut |i, r| {
        raw[i] = Some(r);
        Ok(())
    })?;
    let opened: Vec<Result<ArchiveEntry>> = ids
        .par_iter()
        .zip(raw)
        .map(|(id, r)| {
            let blob = r.unwrap_or_else(|| Err(Error::Other("not delivered".into())))?;
            let (kind, plain) = key.open_blob(Some(id), blob, None)?;
            if kind != b'A' {
                return Err(Error::Integrity(format!(
                    "a {:?} object, not archive metadata",
                    kind as char
                )));
            }
            let meta = ArchiveMeta::parse_borg2(&plain, &hex::encode(id))?;
            let time_utc = crate::format::parse_time(&meta.time)
                .ok_or_else(|| Error::Integrity(format!("invalid archive time {:?}", meta.time)))?;
            Ok(ArchiveEntry {
                name: meta.name,
                id: Id(*id),
                time: meta.time,
                time_utc,
            })
        })
        .collect();
    let mut out = Vec::with_capacity(ids.len());
    for (id, r) in ids.iter().zip(opened) {
        match r {
            Ok(e) => out.push(e),
            Err(e) => store.warn(format!("Archive {}: {e} (it is skipped)", hex::encode(id))),
        }
    }
    out.sort_by(|a, b| a.time_utc.cmp(&b.time_utc).then(a.id.cmp(&b.id)));
    Ok(out)
}

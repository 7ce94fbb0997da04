//! The manifest: the list of archives, decoded and authenticated (TAM) from its plaintext.

use crate::error::{Error, Result};
use crate::id::{Id, ObjectId};
use crate::key::tam::{self, Tam, TamCheck};
use crate::key::{Key, KeyType};
use crate::text::display_bytes;
use chrono::NaiveDateTime;
use serde::Deserialize;
use serde_bytes::ByteBuf;
use std::collections::BTreeMap;

/// Parses borg's UTC timestamps (`2026-11-24T17:01:12.123456`, fraction optional).
pub fn parse_time(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok()
}

pub(crate) fn to_id(b: &[u8], what: &str) -> Result<ObjectId> {
    b.try_into()
        .map_err(|_| Error::Integrity(format!("{what}: id is {} bytes, not 32", b.len())))
}

#[derive(Deserialize)]
struct RawEntry {
    #[serde(with = "serde_bytes")]
    id: Vec<u8>,
    time: String,
}

#[derive(Deserialize, Default)]
struct RawFeatureOp {
    #[serde(default)]
    mandatory: Vec<ByteBuf>,
}

#[derive(Deserialize, Default)]
struct RawManifestConfig {
    #[serde(default)]
    feature_flags: BTreeMap<String, RawFeatureOp>,
}

#[derive(Deserialize)]
struct RawManifest {
    version: i64,
    archives: BTreeMap<ByteBuf, RawEntry>,
    timestamp: String,
    #[serde(default)]
    config: RawManifestConfig,
    #[serde(default)]
    tam: Option<Tam>,
}

/// One archive as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveEntry {
    /// The name (raw bytes; in practice UTF-8).
    pub name: Vec<u8>,
    /// The archive's id (its metadata object's), shown as hex.
    pub id: Id,
    /// Start time, UTC, as stored.
    pub time: String,
    /// Start time parsed (UTC).
    pub time_utc: NaiveDateTime,
}

impl ArchiveEntry {
    /// The name for display: undecodable bytes shown as `?`, as borg shows them.
    pub fn display_name(&self) -> String {
        display_bytes(&self.name)
    }
}

/// The decoded, authenticated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Manifest format version (1 or 2).
    pub version: i64,
    /// Archives sorted by start time (stable; ties keep name order), as `borg list` shows them.
    pub archives: Vec<ArchiveEntry>,
    /// Time of the last manifest write, UTC.
    pub timestamp: String,
    /// The manifest's id for display (`id_hash` of its plaintext).
    pub id: ObjectId,
    /// Whether a TAM was present and verified.
    pub tam_verified: bool,
}

impl Manifest {
    /// Decodes and verifies a manifest plaintext. `tam_required` is the key's requirement.
    pub(crate) fn parse(plain: &[u8], key: &Key, tam_required: bool) -> Result<Manifest> {
        if plain.starts_with(&[0xc1, 0xc1, 0xc1, 0xc1]) {
            return Err(Error::UnsupportedManifest);
        }
        let raw: RawManifest = rmp_serde::from_slice(plain)
            .map_err(|e| Error::Integrity(format!("Manifest: cannot decode: {e}")))?;
        if raw.version != 1 && raw.version != 2 {
            return Err(Error::Integrity(format!(
                "Manifest: unknown manifest version {}",
                raw.version
            )));
        }
        let required = tam_required && key.key_type() != KeyType::Plaintext;
        let tam_verified = match &raw.tam {
            Some(t) => match tam::check(key, plain, t, "manifest") {
                TamCheck::Valid => true,
                TamCheck::Invalid => return Err(Error::TamInvalid),
                TamCheck::UnknownSuite(s) if required => return Err(Error::TamUnsupportedSuite(s)),
                TamCheck::UnknownSuite(_) => false,
            },
            None if required => return Err(Error::TamRequired),
            None => false,
        };
        if let Some(op) = raw.config.feature_flags.get("read") {
            if !op.mandatory.is_empty() {
                let names: Vec<String> = op
                    .mandatory
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect();
                return Err(Error::MandatoryFeatureUnsupported(format!(
                    "{{{}}}",
                    names.join(", ")
                )));
            }
        }
        let mut archives = Vec::with_capacity(raw.archives.len());
        for (name, e) in raw.archives {
            let id = to_id(&e.id, "Manifest archive entry")?;
            let time_utc = parse_time(&e.time).ok_or_else(|| {
                Error::Integrity(format!(
                    "Manifest: archive {} has an invalid time {:?}",
                    String::from_utf8_lossy(&name),
                    e.time
                ))
            })?;
            archives.push(ArchiveEntry {
                name: name.into_vec(),
                id: Id(id),
                time: e.time,
                time_utc,
            });
        }
        archives.sort_by_key(|a| a.time_utc);
        Ok(Manifest {
            version: raw.version,
            archives,
            timestamp: raw.timestamp,
            id: key.id_hash(plain),
            tam_verified,
        })
    }

    /// The archive called `name` (names are bytes; a `&str` works too).
    pub fn find(&self, name: impl AsRef<[u8]>) -> Option<&ArchiveEntry> {
        let name = name.as_ref();
        self.archives.iter().find(|a| a.name == name)
    }

    /// The archive called `name`; as borg 2 selects, `aid:<hex prefix>` names an archive by
    /// its id (when several archives share a name, as borg 2 allows), and `name:` may prefix a
    /// name.
    ///
    /// # Errors
    ///
    /// [`Error::ArchiveDoesNotExist`] naming the nearest names the manifest has; an `aid:`
    /// prefix or a name that matches more than one archive ([`Error::InvalidInput`]).
    pub fn find_or_suggest(&self, name: impl AsRef<[u8]>) -> Result<&ArchiveEntry> {
        let name = name.as_ref();
        if let Some(prefix) = name.strip_prefix(b"aid:") {
            let prefix = String::from_utf8_lossy(prefix).to_ascii_lowercase();
            let found: Vec<&ArchiveEntry> = self
                .archives
                .iter()
                .filter(|a| a.id.to_hex().starts_with(&prefix))
                .collect();
            return match found[..] {
                [one] => Ok(one),
                _ => Err(Error::InvalidInput(format!(
                    "archive ID based match needs to match precisely one archive ID (aid:{prefix} \
                     matched {})",
                    found.len()
                ))),
            };
        }
        let name = name.strip_prefix(b"name:").unwrap_or(name);
        let mut found = self.archives.iter().filter(|a| a.name == name);
        match (found.next(), found.count()) {
            (Some(a), 0) => Ok(a),
            (Some(_), more) => Err(Error::InvalidInput(format!(
                "{} needed to match precisely one archive, but matched {}.",
                display_bytes(name),
                more + 1
            ))),
            (None, _) => {
                let names: Vec<String> = self.archives.iter().map(|a| a.display_name()).collect();
                Err(Error::archive_missing(
                    &display_bytes(name),
                    names.iter().map(String::as_str),
                ))
            }
        }
    }
}

//! An archive's metadata object: name, item-stream chunks, command line, host, times, sizes,
//! decoded and authenticated (TAM).

use super::item::{de_byte_list, de_ids, de_opt_byte_list};
use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::key::tam::{self, Tam, TamCheck};
use crate::key::Key;
use serde::Deserialize;

/// Archive metadata (the object the manifest points at).
#[derive(Debug, Clone, Deserialize)]
pub struct ArchiveMeta {
    /// Format version (1).
    pub version: i64,
    /// Name at creation.
    #[serde(with = "serde_bytes")]
    pub name: Vec<u8>,
    /// Ids of the item-stream chunks, in order (borg 2: resolved from `item_ptrs` when the
    /// archive is opened).
    #[serde(default, deserialize_with = "de_ids")]
    pub items: Vec<ObjectId>,
    /// borg 2: ids of the objects that list the item-stream chunks.
    #[serde(default, deserialize_with = "de_ids")]
    pub item_ptrs: Vec<ObjectId>,
    /// argv of the creating borg.
    #[serde(default, deserialize_with = "de_byte_list")]
    pub cmdline: Vec<Vec<u8>>,
    /// Host that made the archive.
    #[serde(default, with = "serde_bytes")]
    pub hostname: Vec<u8>,
    /// User that made the archive.
    #[serde(default, with = "serde_bytes")]
    pub username: Vec<u8>,
    /// Start time, UTC ISO.
    pub time: String,
    /// End time, UTC ISO (1.1+).
    #[serde(default)]
    pub time_end: Option<String>,
    /// Archive comment.
    #[serde(default, with = "serde_bytes")]
    pub comment: Option<Vec<u8>>,
    /// Chunker parameters as stored (4-tuple in 1.0/1.1, 5-tuple in 1.2+).
    #[serde(default)]
    pub chunker_params: Option<rmpv::Value>,
    /// argv of `borg recreate`, if any.
    #[serde(default, deserialize_with = "de_opt_byte_list")]
    pub recreate_cmdline: Option<Vec<Vec<u8>>>,
    /// Original size of all files (1.2+).
    #[serde(default)]
    pub size: Option<u64>,
    /// Stored size (1.2+).
    #[serde(default)]
    pub csize: Option<u64>,
    /// Number of files (1.2+).
    #[serde(default)]
    pub nfiles: Option<u64>,
    /// Same for part files (1.2+).
    #[serde(default)]
    pub size_parts: Option<u64>,
    /// Same for part files (1.2+).
    #[serde(default)]
    pub csize_parts: Option<u64>,
    /// Same for part files (1.2+).
    #[serde(default)]
    pub nfiles_parts: Option<u64>,
    /// Working directory at creation (1.4).
    #[serde(default, with = "serde_bytes")]
    pub cwd: Option<Vec<u8>>,
    /// Authentication tag.
    #[serde(default)]
    pub tam: Option<Tam>,
    /// borg 2: the creating command line, one shell-quoted string.
    #[serde(default, with = "serde_bytes")]
    pub command_line: Option<Vec<u8>>,
    /// borg 2: the command line of `borg recreate`, if any.
    #[serde(default, with = "serde_bytes")]
    pub recreate_command_line: Option<Vec<u8>>,
    /// borg 2: the archive's tags (sorted; `@PROT` marks a protected archive).
    #[serde(default)]
    pub tags: Vec<String>,
    /// borg 2: when creating started (`time` is the nominal archive time), UTC.
    #[serde(default)]
    pub start: Option<String>,
    /// borg 2: when creating ended, UTC.
    #[serde(default)]
    pub end: Option<String>,
}

impl ArchiveMeta {
    /// Decodes archive metadata and checks its TAM as borg 1.4.5 does for list/extract:
    /// a missing TAM is accepted; a wrong one is refused unless `ignore_invalid_tam`.
    pub(crate) fn parse(
        plain: &[u8],
        key: &Key,
        name: &str,
        ignore_invalid_tam: bool,
    ) -> Result<Self> {
        let meta: ArchiveMeta = rmp_serde::from_slice(plain).map_err(|e| {
            Error::Integrity(format!("Archive {name}: cannot decode metadata: {e}"))
        })?;
        if meta.version != 1 {
            return Err(Error::Integrity(format!(
                "Archive {name}: unknown archive metadata version {}",
                meta.version
            )));
        }
        if !meta.item_ptrs.is_empty() {
            return Err(Error::Integrity(format!(
                "Archive {name}: borg 2 item pointers in a borg 1.x archive"
            )));
        }
        if let Some(t) = &meta.tam {
            if tam::check(key, plain, t, "archive") != TamCheck::Valid && !ignore_invalid_tam {
                return Err(Error::ArchiveTamInvalid(name.to_string()));
            }
        }
        Ok(meta)
    }

    /// Decodes borg 2.0.0b25 archive metadata (version 1 or 2, no TAM: the object's AEAD
    /// binds it). Its times, stored with a UTC offset, are kept as UTC in borg 1.x's form
    /// (`time`, and `end` as `time_end`).
    pub(crate) fn parse_borg2(plain: &[u8], name: &str) -> Result<Self> {
        let mut meta: ArchiveMeta = rmp_serde::from_slice(plain).map_err(|e| {
            Error::Integrity(format!("Archive {name}: cannot decode metadata: {e}"))
        })?;
        if meta.version != 1 && meta.version != 2 {
            return Err(Error::Integrity(format!(
                "Archive {name}: unknown archive metadata version {}",
                meta.version
            )));
        }
        if !meta.items.is_empty() {
            return Err(Error::Integrity(format!(
                "Archive {name}: borg 1.x item list in a borg 2 archive"
            )));
        }
        let utc = |t: &str| {
            chrono::DateTime::parse_from_rfc3339(t)
                .map(|d| d.naive_utc().format("%Y-%m-%dT%H:%M:%S%.6f").to_string())
                .map_err(|e| Error::Integrity(format!("Archive {name}: invalid time {t:?}: {e}")))
        };
        meta.time = utc(&meta.time)?;
        meta.start = meta.start.as_deref().map(utc).transpose()?;
        meta.end = meta.end.as_deref().map(utc).transpose()?;
        meta.time_end = meta.end.clone();
        Ok(meta)
    }

    /// End time (falls back to the start time).
    pub fn time_end(&self) -> &str {
        self.time_end.as_deref().unwrap_or(&self.time)
    }
}

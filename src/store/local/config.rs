//! The `[repository]` section of a repository's `config` file (INI, as Python's configparser
//! writes it).

use crate::id::ObjectId;
use std::collections::HashMap;

/// The parsed `[repository]` section of `config`.
#[derive(Debug, Clone, Default)]
pub struct RepoConfig {
    /// Format version (1 for borg 1.x).
    pub version: u32,
    /// Segments per data directory.
    pub segments_per_dir: u32,
    /// Repository id.
    pub id: ObjectId,
    /// The repokey blob, if any (base64 text).
    pub key: Option<String>,
}

impl RepoConfig {
    /// Parses borg's INI `config` text.
    pub fn parse(text: &str) -> std::result::Result<RepoConfig, String> {
        let values = repository_section(text)?;
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
        // (a writer's limit, unused by a reader: checked only so that a malformed value is
        // reported, as borg reports it)
        int("max_segment_size", 524_288_000)?;
        Ok(RepoConfig {
            version,
            segments_per_dir: (int("segments_per_dir", 1000)? as u32).max(1),
            id,
            key: get("key")
                .map(str::to_string)
                .filter(|k| !k.trim().is_empty()),
        })
    }
}

/// The keys and values of the `[repository]` section of an INI text as Python's configparser
/// writes it (keys lower-cased; continuation lines joined with newlines). borg 2's
/// `config/config` has the same form.
pub(crate) fn repository_section(
    text: &str,
) -> std::result::Result<HashMap<String, String>, String> {
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
    Ok(values)
}

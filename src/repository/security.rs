//! borg's security directory: what the client remembers of each repository (location, key
//! type, newest manifest time) to refuse a replayed manifest or a changed key type.

use crate::error::{Error, Result};
use crate::format::Manifest;
use crate::key::{Key, KeyType};
use crate::location::{Location, Protocol};

/// borg's security-directory checks (`SecurityManager`) for a repository just opened: the key
/// type must be the one recorded at an earlier access, and the manifest must not be older than
/// the newest one seen (a replayed manifest could hide archives, or bring deleted ones back).
/// A repository seen for the first time is recorded (location, key type, manifest timestamp)
/// as borg records it; that is client-side state, nothing is written to the repository, and a
/// failure to write it is not an error.
pub(super) fn assert_secure(
    dir: &std::path::Path,
    key: &Key,
    manifest: &Manifest,
    location: &Location,
) -> Result<()> {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    let key_type = key.key_type().byte().to_string();
    let (known_type, known_ts, known_loc) = (
        read("key-type"),
        read("manifest-timestamp"),
        read("location"),
    );
    if let Some(t) = &known_type {
        if known_ts.is_some() && known_loc.is_some() && t.trim() != key_type {
            return Err(Error::EncryptionMethodMismatch);
        }
    }
    if let Some(ts) = known_ts.as_deref().filter(|t| !t.is_empty()) {
        if ts > manifest.timestamp.as_str() {
            return Err(if key.key_type() == KeyType::Plaintext {
                Error::RepositoryIdNotUnique
            } else {
                Error::RepositoryReplay
            });
        }
    }
    if known_type.is_none() || known_ts.is_none() || known_loc.is_none() {
        record(
            dir,
            &[
                ("location", borg_location(location)),
                ("key-type", key_type),
                ("manifest-timestamp", manifest.timestamp.clone()),
            ],
        );
    }
    Ok(())
}

/// Writes the files of a repository's security directory (each under a temporary name, then
/// renamed); a failure is client-side state not kept, logged at debug level, not an error.
fn record(dir: &std::path::Path, files: &[(&str, String)]) {
    let save = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        for (name, text) in files {
            let tmp = dir.join(format!(".{name}.oxiborg-tmp"));
            std::fs::write(&tmp, text)?;
            std::fs::rename(&tmp, dir.join(name))?;
        }
        Ok(())
    };
    if let Err(e) = save() {
        log::debug!(
            target: "borg.security",
            "security: cannot record the repository in {}: {e}",
            dir.display()
        );
    }
}

/// The location as borg records it in its security directory (`canonical_path`: absolute for
/// local repositories).
fn borg_location(loc: &Location) -> String {
    match loc.proto {
        Protocol::File => std::path::absolute(&loc.path)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| loc.path.clone()),
        Protocol::Ssh | Protocol::Sftp => loc.canonical(),
    }
}

/// borg 2's security-directory checks for a repository just opened: the key type must be the
/// one recorded at an earlier access (borg 2 has no manifest, so there is no replay check). A
/// repository seen for the first time is recorded (location, key type), as borg 2 records it;
/// a failure to write that is not an error.
pub(super) fn assert_secure_borg2(
    dir: &std::path::Path,
    key: &Key,
    location: &Location,
) -> Result<()> {
    let key_type = key.key_type().byte().to_string();
    let known_type = std::fs::read_to_string(dir.join("key-type")).ok();
    if let Some(t) = &known_type {
        if t.trim() != key_type {
            return Err(Error::EncryptionMethodMismatch);
        }
        return Ok(());
    }
    record(
        dir,
        &[
            ("location", borg_location(location)),
            ("key-type", key_type),
        ],
    );
    Ok(())
}

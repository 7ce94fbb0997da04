//! What a repository directory holds: borg 1.x (a `config` file), borg 2.0.0b25 (`config/config`
//! with version 5), or something oxiborg refuses by name (earlier borg 2 betas, no repository).

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::store::files::Files;

/// The format of a repository, from what its top level holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Format {
    /// borg 1.x: `config` is a file.
    Borg1,
    /// borg 2.0.0b25 (repository version 5).
    Borg2(Borg2Config),
}

/// borg 2's `config/config`: plain INI, neither encrypted nor authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Borg2Config {
    /// The repository id.
    pub id: ObjectId,
    /// `aes256-ocb`, `chacha20-poly1305`, `authenticated-sha256` or `authenticated-blake3`.
    pub encryption: String,
    /// `sha256` or `blake3`.
    pub id_hash: String,
}

impl Borg2Config {
    /// Parses `config/config`; anything but version 5 is refused.
    pub(crate) fn parse(text: &str) -> std::result::Result<Borg2Config, String> {
        let values = crate::store::local::config::repository_section(text)?;
        let get = |k: &str| values.get(k).map(String::as_str);
        match get("version") {
            Some("5") => {}
            Some(v) => {
                return Err(format!(
                    "borg 2 repository version {v}; oxiborg reads version 5 (borg 2.0.0b25)"
                ))
            }
            None => return Err("no repository version".into()),
        }
        let id_hex = get("id").ok_or("no repository id")?;
        let id: ObjectId = hex::decode(id_hex)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("repository id {id_hex:?} is not 64 hex digits"))?;
        let (Some(encryption), Some(id_hash)) = (get("encryption"), get("id_hash")) else {
            return Err(
                "no encryption or id_hash: a bare store without a key, not a borg \
                        repository"
                    .into(),
            );
        };
        Ok(Borg2Config {
            id,
            encryption: encryption.to_string(),
            id_hash: id_hash.to_string(),
        })
    }
}

/// Looks at the top of a store and says which format it is, refusing with one line what
/// oxiborg cannot read (naming what was found).
///
/// # Errors
/// No repository there, an earlier borg 2 beta, a damaged or unsupported `config/config`.
pub(crate) fn detect(files: &dyn Files) -> Result<Format> {
    let location = files.location().to_string();
    let invalid = |reason: String| Error::InvalidRepository {
        location: location.clone(),
        reason,
    };
    match files.kind("config")? {
        Some(false) => return Ok(Format::Borg1),
        Some(true) => {}
        None => {
            if files.kind("")?.is_none() {
                return Err(Error::RepositoryDoesNotExist(location));
            }
            return Err(invalid("no config file".into()));
        }
    }
    if let Some(text) = files.load("config/config")? {
        let text = String::from_utf8_lossy(&text);
        return Borg2Config::parse(&text)
            .map(Format::Borg2)
            .map_err(|reason| Error::InvalidRepositoryConfig {
                location: location.clone(),
                reason,
            });
    }
    if files.kind("config/version")?.is_some() {
        let version = files
            .load("config/version")?
            .map(|v| String::from_utf8_lossy(&v).trim().to_string())
            .unwrap_or_default();
        let beta = if files.kind("packs")?.is_some() {
            "2.0.0b22 to b24"
        } else {
            "2.0.0b21 or older"
        };
        return Err(invalid(format!(
            "a borg {beta} repository (config/version {version:?}); oxiborg reads borg 1.x and \
             borg 2.0.0b25 repositories, and borg 2 betas cannot read each other's"
        )));
    }
    Err(invalid(
        "a config directory without config/config (not a borg repository)".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::files::LocalFiles;

    const B25: &str =
        "# This is a Borg Backup repository.\n# See https://borgbackup.readthedocs.io/\n\n\
        [repository]\nversion = 5\n\
        id = cf497af3f951a4aa3612bceed8d85a1395522943df87d1b176910259343f3add\n\
        encryption = chacha20-poly1305\nid_hash = blake3\n\n";

    #[test]
    fn formats_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let files = LocalFiles::new(dir.path(), "r");
        let line = |f: &LocalFiles| detect(f).unwrap_err().to_string();
        assert!(line(&files).contains("no config file"), "{}", line(&files));
        std::fs::write(dir.path().join("config"), "[repository]\nversion = 1\n").unwrap();
        assert_eq!(detect(&files).unwrap(), Format::Borg1);
        std::fs::remove_file(dir.path().join("config")).unwrap();
        std::fs::create_dir(dir.path().join("config")).unwrap();
        std::fs::write(dir.path().join("config/version"), "3\n").unwrap();
        assert!(
            line(&files).contains("2.0.0b21 or older"),
            "{}",
            line(&files)
        );
        std::fs::create_dir(dir.path().join("packs")).unwrap();
        assert!(line(&files).contains("b22 to b24"), "{}", line(&files));
        std::fs::write(dir.path().join("config/config"), B25).unwrap();
        let Format::Borg2(c) = detect(&files).unwrap() else {
            panic!("not borg 2")
        };
        assert_eq!(
            (c.encryption.as_str(), c.id_hash.as_str()),
            ("chacha20-poly1305", "blake3")
        );
        assert_eq!(
            hex::encode(c.id),
            "cf497af3f951a4aa3612bceed8d85a1395522943df87d1b176910259343f3add"
        );
        std::fs::write(dir.path().join("config/config"), B25.replace("= 5", "= 6")).unwrap();
        assert!(line(&files).contains("version 6"), "{}", line(&files));
        let missing = LocalFiles::new(&dir.path().join("nope"), "nope");
        assert!(matches!(
            detect(&missing),
            Err(Error::RepositoryDoesNotExist(_))
        ));
    }
}

//! Opening a repository: the options (credentials, remote settings, lock behaviour), the store
//! for a location, the key unlocked, the manifest verified.

use super::security::assert_secure;
use super::Repository;
use crate::error::{Error, Result};
use crate::format::Manifest;
use crate::id::MANIFEST_ID;
use crate::key::blob::{self, BorgDirs, KeyBlob};
use crate::key::passphrase::{ConfiguredPassphrase, Passphrase};
use crate::key::{Key, KeyType};
use crate::location::{Location, Protocol};
use crate::store::local::{LocalOptions, LocalStore};
use crate::store::Store;
use std::path::PathBuf;
use std::time::Duration;

/// How to open a repository. [`OpenOptions::from_env`] reads the `BORG_*` variables borg reads.
#[derive(Debug)]
pub struct OpenOptions {
    /// Read without checking for a writer's lock (`--bypass-lock`).
    pub bypass_lock: bool,
    /// How long to wait for a lock (`--lock-wait`).
    pub lock_wait: Duration,
    /// A passphrase given by the caller; `None` asks `configured_passphrase`, the environment,
    /// then the terminal.
    pub passphrase: Option<Passphrase>,
    /// A configuration file's passphrase setting (borgmatic's), used instead of the
    /// environment's and named when it is wrong.
    pub configured_passphrase: Option<ConfiguredPassphrase>,
    /// `BORG_KEY_FILE`.
    pub key_file: Option<PathBuf>,
    /// borg's directories (keys, security).
    pub dirs: BorgDirs,
    /// `BORG_WORKAROUNDS=ignore_invalid_archive_tam`.
    pub ignore_invalid_archive_tam: bool,
    /// How to reach `borg serve` for `ssh://` locations (`BORG_RSH`, `BORG_REMOTE_PATH`, …).
    pub remote: crate::remote::RemoteOptions,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            bypass_lock: false,
            lock_wait: Duration::from_secs(1),
            passphrase: None,
            configured_passphrase: None,
            key_file: None,
            dirs: BorgDirs::from_env(),
            ignore_invalid_archive_tam: false,
            remote: crate::remote::RemoteOptions::default(),
        }
    }
}

impl OpenOptions {
    /// Options from the environment: `BORG_KEY_FILE`, `BORG_KEYS_DIR`, `BORG_BASE_DIR`,
    /// `BORG_WORKAROUNDS`, … (the passphrase variables are read when the key is unlocked).
    pub fn from_env() -> OpenOptions {
        let workarounds = std::env::var("BORG_WORKAROUNDS").unwrap_or_default();
        OpenOptions {
            key_file: std::env::var_os("BORG_KEY_FILE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            ignore_invalid_archive_tam: workarounds
                .split(',')
                .any(|w| w.trim() == "ignore_invalid_archive_tam"),
            remote: crate::remote::RemoteOptions::from_env(),
            ..OpenOptions::default()
        }
    }
}

impl Repository {
    /// Opens the repository at `location`: reads its objects, unlocks its key and verifies
    /// its manifest.
    pub fn open(location: &Location, options: &OpenOptions) -> Result<Repository> {
        let store = Self::open_store(location, options)?;
        Self::from_store(store, location.clone(), options)
    }

    /// Opens only the object store at `location` (local directory or `borg serve`), without
    /// the key or the manifest: what `check` needs to look at a repository whose manifest may
    /// be damaged.
    pub fn open_store(location: &Location, options: &OpenOptions) -> Result<Box<dyn Store>> {
        Ok(match location.proto {
            Protocol::File => {
                let path = std::path::absolute(&location.path)
                    .unwrap_or_else(|_| PathBuf::from(&location.path));
                Box::new(LocalStore::open(
                    &path,
                    &location.path,
                    &LocalOptions {
                        bypass_lock: options.bypass_lock,
                        lock_wait: options.lock_wait,
                    },
                )?)
            }
            Protocol::Ssh => {
                let mut remote = options.remote.clone();
                remote.bypass_lock = options.bypass_lock;
                remote.lock_wait = options.lock_wait.as_secs_f64();
                let n = match remote.connections {
                    0 => crate::remote::default_connections(),
                    n => n,
                };
                Box::new(crate::remote::RemotePool::connect(location, &remote, n)?)
            }
        })
    }

    /// Opens a repository over any [`Store`] (local, remote, or one of your own).
    pub fn from_store(
        store: Box<dyn Store>,
        location: Location,
        options: &OpenOptions,
    ) -> Result<Repository> {
        let loc_text = location.canonical();
        let mobj = store.get(&MANIFEST_ID).map_err(|e| match e {
            Error::ObjectNotFound { .. } => Error::Other(format!(
                "Repository {loc_text} has no manifest (no archives were ever created, or it is damaged)."
            )),
            other => other,
        })?;
        let key = Self::unlock_key(&*store, &mobj, &loc_text, options)?;
        Self::with_key(store, key, mobj, location, options, true).map_err(|(_, _, e)| e)
    }

    /// Unlocks the repository's key. Its type comes from the first byte of `sample`, a stored
    /// object (normally the manifest; any object when the manifest is damaged).
    pub fn unlock_key(
        store: &dyn Store,
        sample: &[u8],
        location: &str,
        options: &OpenOptions,
    ) -> Result<Key> {
        let tbyte = *sample
            .first()
            .ok_or_else(|| Error::Integrity("Manifest: empty object".into()))?;
        let ktype = KeyType::from_byte(tbyte)?;
        let repo_id = store.id();
        let tam_fallback = options
            .dirs
            .security
            .join(hex::encode(repo_id))
            .join("tam_required")
            .exists();
        Ok(match ktype {
            KeyType::Plaintext => Key::plaintext(),
            KeyType::Passphrase => blob::legacy_passphrase_key(
                &repo_id,
                options.passphrase.as_ref(),
                options.configured_passphrase.as_ref(),
                location,
                |k| k.decrypt("Manifest", sample).is_ok(),
            )?,
            k if k.is_keyfile() => {
                let blob = blob::find_key_file(
                    &repo_id,
                    location,
                    options.key_file.as_deref(),
                    &options.dirs.keys,
                )?;
                blob::unlock(
                    k,
                    &blob,
                    location,
                    options.passphrase.as_ref(),
                    options.configured_passphrase.as_ref(),
                    tam_fallback,
                )?
            }
            k => {
                let text = store
                    .load_key()?
                    .ok_or_else(|| Error::RepoKeyNotFound(location.to_string()))?;
                let blob = KeyBlob {
                    text: zeroize::Zeroizing::new(text),
                    origin: "repository config".into(),
                    file: None,
                };
                blob::unlock(
                    k,
                    &blob,
                    location,
                    options.passphrase.as_ref(),
                    options.configured_passphrase.as_ref(),
                    tam_fallback,
                )?
            }
        })
    }

    /// Verifies the manifest object `mobj` (decryption, TAM and, when `secure`, borg's
    /// security-directory checks: replay, key type) and makes the repository; on failure the
    /// store and key come back with the error. (`borg check` skips the security directory.)
    #[allow(clippy::result_large_err)]
    pub fn with_key(
        store: Box<dyn Store>,
        key: Key,
        mobj: Vec<u8>,
        location: Location,
        options: &OpenOptions,
        secure: bool,
    ) -> std::result::Result<Repository, (Box<dyn Store>, Key, Error)> {
        let manifest = key
            .open_owned(None, mobj, None)
            .and_then(|plain| Manifest::parse(&plain, &key, key.tam_required()))
            .and_then(|m| {
                if !secure {
                    return Ok(m);
                }
                let security = options.dirs.security.join(hex::encode(store.id()));
                assert_secure(&security, &key, &m, &location).map(|()| m)
            });
        match manifest {
            Ok(manifest) => Ok(Repository {
                store,
                key,
                manifest,
                location,
                ignore_invalid_archive_tam: options.ignore_invalid_archive_tam,
            }),
            Err(e) => Err((store, key, e)),
        }
    }
}

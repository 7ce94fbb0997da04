//! Opening a repository: the options (credentials, remote settings, lock behaviour), the store
//! for a location, the key unlocked, the manifest verified.

use super::security::assert_secure;
use super::Repository;
use crate::error::{Error, Result};
use crate::format::Manifest;
use crate::id::MANIFEST_ID;
use crate::key::blob::{self, BorgDirs, KeyBlob};
use crate::key::passphrase::{ConfiguredPassphrase, Passphrase, PassphraseSources, Prompt};
use crate::key::{Key, KeyType};
use crate::location::{Location, Protocol};
use crate::store::borg2::config::{detect, Format};
use crate::store::borg2::Borg2Store;
use crate::store::files::LocalFiles;
use crate::store::local::{LocalOptions, LocalStore};
use crate::store::Store;
use std::path::PathBuf;
use std::time::Duration;

/// A repository's store, by format (a borg 2 store needs the key before it can read objects:
/// its chunk index is encrypted).
pub(crate) enum AnyStore {
    /// borg 1.x: a local directory or `borg serve`.
    Borg1(Box<dyn Store>),
    /// borg 2.0.0b25: local files or `borg serve --rest`.
    Borg2(Box<Borg2Store>),
}

/// How to open a repository, and with which credentials.
///
/// `OpenOptions::default()` reads nothing from the environment, writes nothing and asks
/// nothing: give the passphrase (and, for keyfile repositories, the key file or the keys
/// directory) yourself. [`OpenOptions::from_env`] is the opt-in to everything borg reads
/// (`BORG_PASSPHRASE`, `BORG_PASSCOMMAND`, `BORG_KEY_FILE`, `BORG_KEYS_DIR`, `BORG_RSH`, …) and
/// to borg's security directory; the `oxiborg` command line uses it, plus a terminal prompt.
///
/// ```
/// use oxiborg::{OpenOptions, Passphrase};
/// let opts = OpenOptions {
///     passphrase: Some(Passphrase::new("correct horse")),
///     ..OpenOptions::default()
/// };
/// # let _ = opts;
/// ```
#[derive(Clone)]
pub struct OpenOptions {
    /// Read without checking for a writer's lock (`--bypass-lock`).
    pub bypass_lock: bool,
    /// How long to wait for a writer's lock to go away (`--lock-wait`).
    pub lock_wait: Duration,
    /// The passphrase of the key.
    pub passphrase: Option<Passphrase>,
    /// A configuration file's passphrase setting (borgmatic's), tried after `passphrase` and
    /// named when it is wrong.
    pub configured_passphrase: Option<ConfiguredPassphrase>,
    /// Read borg's passphrase variables (`BORG_PASSPHRASE`, `BORG_PASSCOMMAND`,
    /// `BORG_PASSPHRASE_FD`) when the key needs a passphrase and none is given above.
    pub passphrase_from_env: bool,
    /// Asked (up to three times) when no passphrase is given; `None`: a key that needs one
    /// fails with [`Error::NoPassphrase`].
    pub prompt: Option<Prompt>,
    /// The key file of a keyfile-mode repository (`BORG_KEY_FILE`).
    pub key_file: Option<PathBuf>,
    /// Where key files are looked for (`BORG_KEYS_DIR`).
    pub keys_dir: Option<PathBuf>,
    /// borg's security directory (`BORG_SECURITY_DIR`): when set, a repository's key type and
    /// newest manifest time are checked against what was recorded there (refusing a replayed
    /// manifest or a changed key type), and recorded the first time, as borg does. `None`:
    /// nothing is checked or written.
    pub security_dir: Option<PathBuf>,
    /// borg 2's security directory (`BORG_SECURITY_DIR`, else `<data dir>/security`): for
    /// borg 2 repositories, as `security_dir` for 1.x ones (key type and location; borg 2
    /// has no manifest to replay).
    pub borg2_security_dir: Option<PathBuf>,
    /// Read archives whose TAM does not verify (`BORG_WORKAROUNDS=ignore_invalid_archive_tam`).
    pub ignore_invalid_archive_tam: bool,
    /// How to reach `borg serve` for `ssh://` locations (`BORG_RSH`, `BORG_REMOTE_PATH`, …).
    pub remote: crate::remote::RemoteOptions,
}

impl std::fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenOptions")
            .field("bypass_lock", &self.bypass_lock)
            .field("lock_wait", &self.lock_wait)
            .field("passphrase", &self.passphrase)
            .field("configured_passphrase", &self.configured_passphrase)
            .field("passphrase_from_env", &self.passphrase_from_env)
            .field("prompt", &self.prompt.is_some())
            .field("key_file", &self.key_file)
            .field("keys_dir", &self.keys_dir)
            .field("security_dir", &self.security_dir)
            .field("borg2_security_dir", &self.borg2_security_dir)
            .field(
                "ignore_invalid_archive_tam",
                &self.ignore_invalid_archive_tam,
            )
            .field("remote", &self.remote)
            .finish()
    }
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            bypass_lock: false,
            lock_wait: Duration::from_secs(1),
            passphrase: None,
            configured_passphrase: None,
            passphrase_from_env: false,
            prompt: None,
            key_file: None,
            keys_dir: None,
            security_dir: None,
            borg2_security_dir: None,
            ignore_invalid_archive_tam: false,
            remote: crate::remote::RemoteOptions::default(),
        }
    }
}

impl OpenOptions {
    /// Everything from the environment, as borg reads it: the passphrase variables (read when
    /// a key needs them), `BORG_KEY_FILE`, the keys and security directories (`BORG_KEYS_DIR`,
    /// `BORG_SECURITY_DIR`, `BORG_BASE_DIR`, `XDG_CONFIG_HOME`), `BORG_WORKAROUNDS`, and the
    /// remote settings ([`crate::remote::RemoteOptions::from_env`]). No prompt: set
    /// [`OpenOptions::prompt`] for one.
    pub fn from_env() -> OpenOptions {
        let workarounds = std::env::var("BORG_WORKAROUNDS").unwrap_or_default();
        let dirs = BorgDirs::from_env();
        OpenOptions {
            key_file: std::env::var_os("BORG_KEY_FILE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            passphrase_from_env: true,
            keys_dir: Some(dirs.keys),
            security_dir: Some(dirs.security),
            borg2_security_dir: Some(dirs.borg2_security),
            ignore_invalid_archive_tam: workarounds
                .split(',')
                .any(|w| w.trim() == "ignore_invalid_archive_tam"),
            remote: crate::remote::RemoteOptions::from_env(),
            ..OpenOptions::default()
        }
    }

    /// Where the key's passphrase may come from.
    pub(super) fn passphrase_sources(&self) -> PassphraseSources<'_> {
        PassphraseSources {
            given: self.passphrase.as_ref(),
            configured: self.configured_passphrase.as_ref(),
            environment: self.passphrase_from_env,
            prompt: self.prompt.as_ref(),
        }
    }
}

impl Repository {
    /// Opens the repository at `location`: reads its objects, unlocks its key and verifies
    /// its manifest.
    ///
    /// # Errors
    ///
    /// No repository there (or one borg 1.x cannot read), a writer's lock (unless
    /// `bypass_lock`), a missing or wrong passphrase or key file, a damaged manifest, a
    /// manifest older than the security directory remembers, and any remote failure
    /// ([`Error::Remote`]).
    pub fn open(location: &Location, options: &OpenOptions) -> Result<Repository> {
        match Self::open_any_store(location, options)? {
            AnyStore::Borg1(store) => Self::from_store(store, location.clone(), options),
            AnyStore::Borg2(store) => Self::from_borg2_store(*store, location.clone(), options),
        }
    }

    /// The store at `location`, whatever its format: a local directory is looked at (borg
    /// 1.x's `config` file or borg 2's `config/`); over `ssh://` borg 1.x's `borg serve` is
    /// asked first and, when the server turns out to be borg 2 (whose `borg serve` refuses the
    /// 1.x RPC at once), the repository is read over `borg serve --rest` with borg 2's path
    /// rules ([`Location::borg2_path`]).
    ///
    /// # Errors
    /// As [`Repository::open_store`]; a borg 2 server without a borg 2 repository there.
    pub(crate) fn open_any_store(location: &Location, options: &OpenOptions) -> Result<AnyStore> {
        if location.proto == Protocol::File {
            let path = std::path::absolute(&location.path)
                .unwrap_or_else(|_| PathBuf::from(&location.path));
            if path.join("config").is_dir() {
                let files = LocalFiles::new(&path, &location.path);
                if let Format::Borg2(config) = detect(&files)? {
                    return Ok(AnyStore::Borg2(Box::new(Borg2Store::new(
                        Box::new(files),
                        config,
                    ))));
                }
            }
            return Self::open_store(location, options).map(AnyStore::Borg1);
        }
        match Self::open_store(location, options) {
            Ok(store) => Ok(AnyStore::Borg1(store)),
            Err(e) if crate::remote::is_borg2_server(&e) => {
                let files = crate::remote::rest::connect(location, &options.remote)?;
                match detect(&files)? {
                    Format::Borg2(config) => Ok(AnyStore::Borg2(Box::new(Borg2Store::new(
                        Box::new(files),
                        config,
                    )))),
                    Format::Borg1 => Err(Error::InvalidRepository {
                        location: location.canonical(),
                        reason: format!(
                            "a borg 1.x repository at {:?} behind a borg 2 borg serve, which \
                             serves borg 1.x repositories only to borg 2's own client",
                            location.borg2_path()
                        ),
                    }),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Opens only the object store at `location` (local directory or `borg serve`), without
    /// the key or the manifest: what `check` needs to look at a repository whose manifest may
    /// be damaged.
    pub(crate) fn open_store(location: &Location, options: &OpenOptions) -> Result<Box<dyn Store>> {
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
                // (remote reads take no lock: `bypass_lock` and `lock_wait` do not apply)
                let remote = &options.remote;
                let n = match remote.connections {
                    0 => crate::remote::default_connections(),
                    n => n,
                };
                Box::new(crate::remote::RemotePool::connect(location, remote, n)?)
            }
            Protocol::Sftp => {
                return Err(Error::Other(format!(
                    "{location}: sftp:// is being built (issue #15)"
                )))
            }
        })
    }

    /// Opens a repository over any `Store` (local, remote, or one of your own).
    pub(crate) fn from_store(
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
    pub(crate) fn unlock_key(
        store: &dyn Store,
        sample: &[u8],
        location: &str,
        options: &OpenOptions,
    ) -> Result<Key> {
        let tbyte = *sample
            .first()
            .ok_or_else(|| Error::Integrity("Manifest: empty object".into()))?;
        let ktype = KeyType::from_byte(tbyte)?;
        if ktype.is_borg2() {
            // A borg 2 type byte in a borg 1.x repository: as unknown to borg 1.x as to this path.
            return Err(Error::UnsupportedPayload(tbyte));
        }
        let repo_id = store.id();
        let tam_fallback = options
            .security_dir
            .as_ref()
            .is_some_and(|d| d.join(hex::encode(repo_id)).join("tam_required").exists());
        let sources = options.passphrase_sources();
        Ok(match ktype {
            KeyType::Plaintext => Key::plaintext(),
            KeyType::Passphrase => {
                blob::legacy_passphrase_key(&repo_id, &sources, location, |k| {
                    k.decrypt("Manifest", sample).is_ok()
                })?
            }
            k if k.is_keyfile() => {
                let blob = blob::find_key_file(
                    &repo_id,
                    location,
                    options.key_file.as_deref(),
                    options.keys_dir.as_deref(),
                )?;
                blob::unlock(k, &blob, location, &sources, tam_fallback)?
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
                blob::unlock(k, &blob, location, &sources, tam_fallback)?
            }
        })
    }

    /// Verifies the manifest object `mobj` (decryption, TAM and, when `secure`, borg's
    /// security-directory checks: replay, key type) and makes the repository; on failure the
    /// store and key come back with the error. (`borg check` skips the security directory.)
    #[allow(clippy::result_large_err)]
    pub(crate) fn with_key(
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
            .and_then(|m| match &options.security_dir {
                Some(dir) if secure => {
                    let security = dir.join(hex::encode(store.id()));
                    assert_secure(&security, &key, &m, &location).map(|()| m)
                }
                _ => Ok(m),
            });
        match manifest {
            Ok(manifest) => Ok(Repository {
                store,
                key,
                manifest,
                location,
                ignore_invalid_archive_tam: options.ignore_invalid_archive_tam,
                borg2: None,
            }),
            Err(e) => Err((store, key, e)),
        }
    }
}

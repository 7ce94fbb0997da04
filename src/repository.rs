//! An opened repository: a [`Store`], its [`Key`] and its verified [`Manifest`].
//!
//! ```no_run
//! use oxiborg::{Location, OpenOptions, Repository};
//! # fn main() -> oxiborg::Result<()> {
//! let repo = Repository::open(&Location::parse("/srv/backup/repo")?, &OpenOptions::from_env())?;
//! for entry in repo.archives() {
//!     println!("{} {}", entry.display_name(), entry.time);
//! }
//! # Ok(()) }
//! ```

use crate::archive::item::Item;
use crate::archive::stream::{ChunkPrefetcher, ItemStream};
use crate::archive::{ArchiveEntry, ArchiveMeta, Manifest};
use crate::error::{Error, Result};
use crate::key::blob::{self, BorgDirs, KeyBlob};
use crate::key::passphrase::{ConfiguredPassphrase, Passphrase};
use crate::key::{Key, KeyType, Sealed};
use crate::location::{Location, Protocol};
use crate::store::local::{LocalOptions, LocalStore};
use crate::store::Store;
use crate::{ObjectId, MANIFEST_ID};
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
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

/// An opened, authenticated repository.
pub struct Repository {
    store: Box<dyn Store>,
    key: Key,
    manifest: Manifest,
    location: Location,
    ignore_invalid_archive_tam: bool,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("location", &self.location.canonical())
            .field("key", &self.key)
            .finish_non_exhaustive()
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
                // (remote reads take no lock: `bypass_lock` and `lock_wait` do not apply)
                let remote = &options.remote;
                let n = match remote.connections {
                    0 => crate::remote::default_connections(),
                    n => n,
                };
                Box::new(crate::remote::RemotePool::connect(location, remote, n)?)
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

    /// A repository whose manifest is lost or damaged, with a manifest rebuilt in memory from
    /// the archive metadata objects found among all objects (borg check's `rebuild_manifest`;
    /// nothing is written). Findings go to `report`; the second value counts the problems.
    pub fn with_rebuilt_manifest(
        store: Box<dyn Store>,
        key: Key,
        location: Location,
        options: &OpenOptions,
        report: &mut dyn FnMut(log::Level, String),
    ) -> Result<(Repository, u64)> {
        use log::Level;
        report(
            Level::Info,
            "Rebuilding missing manifest, this might take some time...".into(),
        );
        let ids: Vec<ObjectId> = store
            .list_ids()?
            .into_iter()
            .filter(|id| *id != MANIFEST_ID)
            .collect();
        // (index in ids, the plaintext of a likely archive, or why an object is unreadable)
        type Candidate = (usize, std::result::Result<Vec<u8>, String>);
        let found: std::sync::Mutex<Vec<Candidate>> = std::sync::Mutex::new(Vec::new());
        open_many(&*store, &key, &ids, 128 << 20, &|i, r| {
            let r = match r {
                // borg's cheap test first: archive metadata has these keys
                Opened::Plain(p)
                    if contains(&p, b"cmdline") && contains(&p, b"\xa7version\x01") =>
                {
                    Ok(p)
                }
                Opened::Plain(_) => return,
                Opened::Unreadable(e) | Opened::Damaged(e) => Err(e.to_string()),
            };
            found.lock().unwrap_or_else(|e| e.into_inner()).push((i, r));
        })?;
        let mut found = found.into_inner().unwrap_or_else(|e| e.into_inner());
        found.sort_by_key(|(i, _)| *i);
        let mut problems = 0;
        let mut archives: Vec<ArchiveEntry> = Vec::new();
        for (i, r) in found {
            let plain = match r {
                Ok(p) => p,
                Err(e) => {
                    problems += 1;
                    report(Level::Error, format!("Skipping corrupted chunk: {e}"));
                    continue;
                }
            };
            let meta = match ArchiveMeta::parse(&plain, &key, "(rebuilt)", false) {
                Ok(m) => m,
                Err(e @ Error::ArchiveTamInvalid(_)) => {
                    problems += 1;
                    report(
                        Level::Error,
                        format!(
                            "Archive TAM authentication issue for archive {}: {e}",
                            hex::encode(ids[i])
                        ),
                    );
                    report(
                        Level::Error,
                        "This archive will *not* be added to the rebuilt manifest! It will be deleted."
                            .into(),
                    );
                    continue;
                }
                Err(_) => continue,
            };
            let mut name = meta.name.clone();
            report(
                Level::Info,
                format!(
                    "Found archive {}",
                    crate::archive::item::display_bytes(&name)
                ),
            );
            if archives.iter().any(|a| a.name == name) {
                let base = name.clone();
                let mut n = 1;
                while archives.iter().any(|a| a.name == name) {
                    name = [base.as_slice(), format!(".{n}").as_bytes()].concat();
                    n += 1;
                }
                report(
                    Level::Warn,
                    format!(
                        "Duplicate archive name {}, storing as {}",
                        crate::archive::item::display_bytes(&base),
                        crate::archive::item::display_bytes(&name)
                    ),
                );
            }
            archives.push(ArchiveEntry {
                name,
                id: ids[i],
                time_utc: crate::archive::parse_time(&meta.time).unwrap_or_default(),
                time: meta.time,
            });
        }
        report(Level::Info, "Manifest rebuild complete.".into());
        report(
            Level::Warn,
            "The rebuilt manifest will only be committed when using --repair!".into(),
        );
        archives.sort_by_key(|a| a.time_utc);
        let manifest = Manifest {
            version: 1,
            archives,
            timestamp: String::new(),
            id: [0; 32],
            tam_verified: false,
        };
        Ok((
            Repository {
                store,
                key,
                manifest,
                location,
                ignore_invalid_archive_tam: options.ignore_invalid_archive_tam,
            },
            problems,
        ))
    }

    /// The location this repository was opened from.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The object store underneath.
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// The unlocked key.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The verified manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// All archives, oldest first (borg's `list` order).
    pub fn archives(&self) -> &[ArchiveEntry] {
        &self.manifest.archives
    }

    /// Fetches an object and returns its verified plaintext.
    pub fn get_object(&self, id: &ObjectId, size_hint: Option<usize>) -> Result<Vec<u8>> {
        let obj = self.store.get(id)?;
        self.key.open_owned(Some(id), obj, size_hint)
    }

    /// Fetches and verifies many objects in parallel: they are read in the store's preferred
    /// order (segments in order locally, pipelined remotely), decoded in groups on rayon (MAC,
    /// decryption, decompression, id check; the manifest's all-zero id is not checked), and
    /// `f` gets each object's index in `ids` with what became of it, on whichever thread has
    /// it. At most `budget` stored bytes are in flight.
    pub fn open_many(
        &self,
        ids: &[ObjectId],
        budget: u64,
        f: &(dyn Fn(usize, Opened) + Sync),
    ) -> Result<()> {
        open_many(&*self.store, &self.key, ids, budget, f)
    }

    /// [`Repository::open_many`] for a file's chunks: each chunk's size (from the archive)
    /// sizes its buffer, so a chunk bigger than [`crate::compress::MAX_PLAINTEXT`] is read too.
    /// The fetching stops with [`Error::Interrupted`] once `interrupt` is set.
    pub fn open_chunks(
        &self,
        chunks: &[crate::archive::item::ChunkRef],
        budget: u64,
        interrupt: Option<&AtomicBool>,
        f: &(dyn Fn(usize, Opened) + Sync),
    ) -> Result<()> {
        let ids: Vec<ObjectId> = chunks.iter().map(|c| c.id).collect();
        let sizes: Vec<Option<usize>> = chunks
            .iter()
            .map(|c| usize::try_from(c.size).ok())
            .collect();
        open_many_with(&*self.store, &self.key, &ids, &sizes, budget, interrupt, f)
    }

    /// Opens the archive called `name` (names are bytes; a `&str` works too).
    pub fn archive(&self, name: impl AsRef<[u8]>) -> Result<Archive<'_>> {
        let entry = self.manifest.find_or_suggest(name)?;
        self.archive_by_entry(entry)
    }

    /// Opens the archive a manifest entry points at.
    pub fn archive_by_entry(&self, entry: &ArchiveEntry) -> Result<Archive<'_>> {
        let name = entry.display_name();
        let plain = self.get_object(&entry.id, None).map_err(|e| match e {
            Error::ObjectNotFound { id, .. } => Error::Integrity(format!(
                "Archive {name}: metadata object {id} is missing from the repository"
            )),
            // Say which archive and object the damage is in.
            other => other.in_context(&format!(
                "(metadata object {} of archive {name})",
                hex::encode(entry.id)
            )),
        })?;
        let meta = ArchiveMeta::parse(&plain, &self.key, &name, self.ignore_invalid_archive_tam)?;
        Ok(Archive {
            repo: self,
            entry: entry.clone(),
            meta,
        })
    }

    /// A reader of a regular file's content, chunk by chunk, verified.
    pub fn open_file(&self, item: &Item) -> FileReader<'_> {
        FileReader {
            repo: self,
            chunks: item.chunks.clone().unwrap_or_default(),
            next: 0,
            current: Vec::new(),
            pos: 0,
            path: item.display_path(),
        }
    }
}

/// borg's security-directory checks (`SecurityManager`) for a repository just opened: the key
/// type must be the one recorded at an earlier access, and the manifest must not be older than
/// the newest one seen (a replayed manifest could hide archives, or bring deleted ones back).
/// A repository seen for the first time is recorded (location, key type, manifest timestamp)
/// as borg records it; that is client-side state, nothing is written to the repository, and a
/// failure to write it is not an error.
fn assert_secure(
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
        let save = || -> std::io::Result<()> {
            std::fs::create_dir_all(dir)?;
            for (name, text) in [
                ("location", borg_location(location)),
                ("key-type", key_type.clone()),
                ("manifest-timestamp", manifest.timestamp.clone()),
            ] {
                let tmp = dir.join(format!(".{name}.oxiborg-tmp"));
                std::fs::write(&tmp, text)?;
                std::fs::rename(&tmp, dir.join(name))?;
            }
            Ok(())
        };
        if let Err(e) = save() {
            log::debug!(target: "borg.security", "{}", format!(
                    "security: cannot record the repository in {}: {e}",
                    dir.display()
                ),
            );
        }
    }
    Ok(())
}

/// The location as borg records it in its security directory (`canonical_path`: absolute for
/// local repositories).
fn borg_location(loc: &Location) -> String {
    match loc.proto {
        Protocol::File => std::path::absolute(&loc.path)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| loc.path.clone()),
        Protocol::Ssh => loc.canonical(),
    }
}

/// One archive of an opened repository.
pub struct Archive<'r> {
    repo: &'r Repository,
    /// The manifest entry (name, id, time).
    pub entry: ArchiveEntry,
    /// The archive metadata.
    pub meta: ArchiveMeta,
}

impl<'r> Archive<'r> {
    /// The archive's name for display.
    pub fn name(&self) -> String {
        self.entry.display_name()
    }

    /// Calls `f` with every item, in archive order, while a second thread fetches, decodes and
    /// parses the item stream ahead (so parsing and the caller's work overlap). Stops at the
    /// first error of either side.
    pub fn each_item(&self, mut f: impl FnMut(Item) -> Result<()>) -> Result<()> {
        const BATCH: usize = 512;
        std::thread::scope(|scope| {
            // Three stages: chunks fetched and decoded (on rayon) → items parsed → `f`.
            let (ctx, crx) = std::sync::mpsc::sync_channel::<Result<Vec<u8>>>(32);
            let mut chunks =
                ChunkPrefetcher::new(self.repo.store(), self.repo.key(), self.meta.items.clone());
            let fetcher = scope.spawn(move || {
                while let Some(c) = chunks.next_chunk() {
                    if ctx.send(c).is_err() {
                        return; // the parser stopped
                    }
                }
            });
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<Item>>>(8);
            let stream = ItemStream::from_channel(crx, self.name());
            let producer = scope.spawn(move || {
                let mut batch = Vec::with_capacity(BATCH);
                for item in stream {
                    match item {
                        Ok(i) => batch.push(i),
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                    if batch.len() == BATCH
                        && tx
                            .send(Ok(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))))
                            .is_err()
                    {
                        return; // the consumer stopped
                    }
                }
                if !batch.is_empty() {
                    let _ = tx.send(Ok(batch));
                }
            });
            let mut result = Ok(());
            for batch in rx.iter() {
                match batch.and_then(|b| b.into_iter().try_for_each(&mut f)) {
                    Ok(()) => {}
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            drop(rx);
            let _ = producer.join();
            let _ = fetcher.join();
            result
        })
    }

    /// The archive's items, decoded lazily (item-stream chunks are fetched ahead in parallel).
    /// Part files of checkpoints are included; see [`Item::part`].
    pub fn items(&self) -> ItemStream<'r> {
        ItemStream::new(
            self.repo.store(),
            self.repo.key(),
            self.meta.items.clone(),
            self.name(),
        )
    }
}

/// Reads one file's content from the repository (`std::io::Read`).
///
/// Every chunk is MAC- and id-verified; a damaged or missing chunk is an `io::Error` of kind
/// `InvalidData` naming the file and chunk.
pub struct FileReader<'r> {
    repo: &'r Repository,
    chunks: Vec<crate::archive::item::ChunkRef>,
    next: usize,
    current: Vec<u8>,
    pos: usize,
    path: String,
}

impl Read for FileReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.current.len() {
            let Some(c) = self.chunks.get(self.next) else {
                return Ok(0);
            };
            self.next += 1;
            let size = usize::try_from(c.size).ok();
            let data = self.repo.get_object(&c.id, size).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: chunk {}: {e}", self.path, hex::encode(c.id)),
                )
            })?;
            if data.len() as u64 != c.size {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "{}: chunk {} has {} bytes, the archive says {}",
                        self.path,
                        hex::encode(c.id),
                        data.len(),
                        c.size
                    ),
                ));
            }
            self.current = data;
            self.pos = 0;
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// [`Repository::open_many`] on a store and key that need not make a repository yet (a
/// damaged manifest).
pub fn open_many(
    store: &dyn Store,
    key: &Key,
    ids: &[ObjectId],
    budget: u64,
    f: &(dyn Fn(usize, Opened) + Sync),
) -> Result<()> {
    open_many_with(store, key, ids, &[], budget, None, f)
}

/// [`open_many`] with the expected plaintext size of each object where known (`sizes[i]` for
/// `ids[i]`; an empty slice for none), stopping with [`Error::Interrupted`] (what is in flight is
/// still handed to `f`) once `interrupt` is set.
pub fn open_many_with(
    store: &dyn Store,
    key: &Key,
    ids: &[ObjectId],
    sizes: &[Option<usize>],
    budget: u64,
    interrupt: Option<&AtomicBool>,
    f: &(dyn Fn(usize, Opened) + Sync),
) -> Result<()> {
    let budget = Budget::new(budget);
    let decode = |group: Vec<(usize, Vec<u8>)>| {
        let index: Vec<usize> = group.iter().map(|(i, _)| *i).collect();
        let mut sealed: Vec<Sealed> = group
            .into_iter()
            .map(|(i, data)| Sealed {
                id: Some(ids[i]).filter(|id| *id != MANIFEST_ID),
                data,
                size_hint: sizes.get(i).copied().flatten(),
            })
            .collect();
        for (i, r) in index.into_iter().zip(key.open_objects(&mut sealed)) {
            f(i, r.map_or_else(Opened::Damaged, Opened::Plain));
        }
    };
    rayon::in_place_scope(|s| {
        let (budget, decode) = (&budget, &decode);
        let spawn = |group: Vec<(usize, Vec<u8>)>, cost: u64| {
            budget.take(cost);
            s.spawn(move |_| {
                decode(group);
                budget.give(cost);
            });
        };
        let mut group = Vec::with_capacity(Key::GROUP);
        let mut cost = 0u64;
        let fetched = store.get_many(ids, &mut |i, r| {
            if interrupt.is_some_and(|f| f.load(std::sync::atomic::Ordering::Relaxed)) {
                return Err(Error::Interrupted);
            }
            match r {
                Ok(obj) => {
                    cost += obj.len() as u64;
                    group.push((i, obj));
                    if group.len() >= Key::GROUP || cost >= budget.limit / 4 {
                        spawn(std::mem::take(&mut group), std::mem::take(&mut cost));
                    }
                }
                Err(e) => f(i, Opened::Unreadable(e)),
            }
            Ok(())
        });
        if !group.is_empty() {
            spawn(group, cost);
        }
        fetched
    })
}

/// Whether `needle` occurs in `hay`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// What became of one object of [`Repository::open_many`].
#[derive(Debug)]
pub enum Opened {
    /// Its verified plaintext.
    Plain(Vec<u8>),
    /// The store could not deliver it (missing, unreadable, failing its segment CRC).
    Unreadable(Error),
    /// It was delivered but failed verification (MAC, envelope, decompression, id).
    Damaged(Error),
}

/// Bytes in flight between a fetch loop and the threads that consume what it fetched: the
/// fetch loop waits while taking more would pass the limit (a single grant larger than the
/// limit is let through when nothing else is in flight).
pub(crate) struct Budget {
    used: std::sync::Mutex<u64>,
    freed: std::sync::Condvar,
    /// The limit.
    pub(crate) limit: u64,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub(crate) fn new(limit: u64) -> Budget {
        Budget {
            used: std::sync::Mutex::new(0),
            freed: std::sync::Condvar::new(),
            limit: limit.max(1),
        }
    }

    /// Takes `n` bytes, waiting for room.
    pub(crate) fn take(&self, n: u64) {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used > 0 && used.saturating_add(n) > self.limit {
            used = self.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used = used.saturating_add(n);
    }

    /// Gives `n` bytes back.
    pub(crate) fn give(&self, n: u64) {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        *used = used.saturating_sub(n);
        self.freed.notify_all();
    }
}

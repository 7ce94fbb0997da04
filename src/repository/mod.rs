//! An opened repository: its object store, its key and its verified manifest — and what is
//! read through it: archives ([`Archive`]), their items ([`ItemStream`]) and files
//! ([`FileReader`]).
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

mod archive;
mod borg2;
mod items;
mod open;
mod reader;
mod rebuild;
mod security;
mod select;

pub use archive::Archive;
pub use borg2::RepositoryDefaults;
pub use items::ItemStream;
pub(crate) use open::AnyStore;
pub use open::OpenOptions;
pub use reader::FileReader;
pub use select::{ArchiveFilter, SortKey};

use crate::error::{Error, Result};
use crate::fetch::{open_many_with, Opened};
use crate::format::{ArchiveEntry, ArchiveMeta, Item, Manifest};
use crate::id::Id;
use crate::id::ObjectId;
use crate::key::Key;
use crate::key::KeyType;
use crate::location::Location;
use crate::store::Store;
use std::sync::atomic::AtomicBool;

/// An opened, authenticated repository.
pub struct Repository {
    store: Box<dyn Store>,
    key: Key,
    manifest: Manifest,
    location: Location,
    ignore_invalid_archive_tam: bool,
    /// A borg 2.0.0b25 repository's defaults (`None`: a borg 1.x repository).
    borg2: Option<RepositoryDefaults>,
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
    /// The location this repository was opened from.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The object store underneath (for the crate's tests and benchmarks).
    #[doc(hidden)]
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// The unlocked key (for the crate's tests and benchmarks).
    #[doc(hidden)]
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The repository's id (its `config` file's `id`), as borg prints it.
    pub fn id(&self) -> Id {
        Id(self.store.id())
    }

    /// Is this a borg 2.0.0b25 repository (repository version 5)? Everything reads the same
    /// either way; only what borg itself shows differs (its output formats, its key modes).
    pub fn is_borg2(&self) -> bool {
        self.borg2.is_some()
    }

    /// A borg 2 repository's writer defaults (`config/defaults`); `None` for borg 1.x.
    pub fn borg2_defaults(&self) -> Option<&RepositoryDefaults> {
        self.borg2.as_ref()
    }

    /// How the repository is encrypted and authenticated.
    pub fn key_type(&self) -> KeyType {
        self.key.key_type()
    }

    /// Where the key came from: `repokey`'s "repository", or the key file's path (what borg's
    /// `info` prints as "Key file").
    pub fn key_origin(&self) -> &str {
        self.key.origin()
    }

    /// What the store noticed while opening (for example an unfinished transaction it reads
    /// past); the CLI prints these as borg prints its warnings.
    pub fn warnings(&self) -> Vec<String> {
        self.store.warnings()
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
    ///
    /// # Errors
    ///
    /// A missing object, or one that fails verification (MAC, decompression, id).
    pub fn get_object(&self, id: &ObjectId, size_hint: Option<usize>) -> Result<Vec<u8>> {
        let obj = self.store.get(id)?;
        self.key.open_owned(Some(id), obj, size_hint)
    }

    /// Fetches and verifies a file's chunks in parallel (as the fetch engine does: the store's
    /// order, grouped decoding, at most `budget` stored bytes in flight); each chunk's size
    /// (from the archive) sizes its buffer, so a chunk bigger than borg's 128 MiB limit is read too.
    /// The fetching stops with [`Error::Interrupted`] once `interrupt` is set.
    pub(crate) fn open_chunks(
        &self,
        chunks: &[crate::format::item::ChunkRef],
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
    ///
    /// # Errors
    ///
    /// No such archive (naming the nearest names), or its metadata object is missing or
    /// damaged.
    pub fn archive(&self, name: impl AsRef<[u8]>) -> Result<Archive<'_>> {
        let entry = self.manifest.find_or_suggest(name)?;
        self.archive_by_entry(entry)
    }

    /// Opens the archive a manifest entry points at.
    ///
    /// # Errors
    ///
    /// Its metadata object is missing, damaged or fails its TAM.
    pub fn archive_by_entry(&self, entry: &ArchiveEntry) -> Result<Archive<'_>> {
        let name = entry.display_name();
        if self.borg2.is_some() {
            let meta = self.borg2_archive_meta(entry)?;
            return Ok(Archive {
                repo: self,
                entry: entry.clone(),
                meta,
            });
        }
        let plain = self.get_object(&entry.id.0, None).map_err(|e| match e {
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

    /// A reader of the content of `item`'s own chunks (`Read`, `Seek`, `read_at`), verified.
    /// A hard-link member has no chunks of its own in borg 1.x: open it with
    /// [`Archive::open_file`], which finds its master's.
    pub fn open_chunks_reader(&self, item: &Item) -> FileReader<'_> {
        FileReader::new(
            self,
            item.chunks.clone().unwrap_or_default(),
            item.display_path(),
        )
    }
}

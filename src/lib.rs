//! # oxiborg
//!
//! A pure-Rust client for [BorgBackup](https://www.borgbackup.org/) 1.x repositories: open a
//! repository — a local directory, or behind `borg serve` over SSH — verify and decrypt it,
//! list its archives and items, read files back, restore them in parallel, check them and
//! export them as tar; with no borg installed, and never writing to the repository.
//!
//! ## The API
//!
//! - [`Repository::open`] with [`OpenOptions`]: explicit and side-effect free by default (no
//!   environment, no prompt, nothing written); [`OpenOptions::from_env`] reads the `BORG_*`
//!   variables as borg does, [`OpenOptions::prompt`] asks for a missing passphrase,
//!   [`OpenOptions::security_dir`] records what borg records. [`RemoteOptions`] for `ssh://`.
//! - Archives: [`Repository::archives`], [`ArchiveFilter`] (borg's globs, sort, first/last),
//!   [`Repository::latest`], [`Repository::find_archive`] (name, `latest` or hex id), then
//!   [`Archive`]: [`Archive::items`], [`Archive::find`], [`Archive::open_file`] → a
//!   [`FileReader`] (`Read + Seek`, `read_at`, reading ahead in parallel).
//! - [`extract::Extractor`] restores (a thread count or the caller's pool, an interrupt flag,
//!   any `Write` for `--stdout`); [`check`] verifies, [`export_tar`] writes tar; all three
//!   count into a shared [`Progress`].
//! - [`Error`] is `#[non_exhaustive]`, with an [`ErrorKind`] (and [`RemoteErrorKind`]) to match.
//!   Messages go through the [`log`](https://docs.rs/log) facade, with borg's logger names as
//!   targets; the binary installs the logger.
//!
//! The programs in `examples/` (`list_archives`, `cat_file`, `walk`, `read_at`, `restore`) are
//! short uses of all of it, and run in the test suite.
//!
//! ## Inside
//!
//! Data flows one way, and no module imports one above it: `id` (object ids) and `text` (bytes
//! shown as text) → `location` → `store` (local segments) / `remote` (`borg serve` over SSH):
//! bytes by id → `key` (MAC, decryption, id check) → `compress` → `format` (manifest, archive
//! metadata, items: pure decoding) → `fetch` (the parallel fetch engine) → [`repository`]
//! (opening, selection, file reading) → [`extract`], [`export_tar`], [`check`], [`stats`]. [`patterns`] and
//! [`borgmatic`] turn borg's (and borgmatic's) arguments into selections and settings. The
//! command line is the `oxiborg` binary (`src/bin/oxiborg/`, the default `cli` feature).
//!
//! ```no_run
//! use oxiborg::{Location, OpenOptions, Repository};
//! use std::io::Read;
//! # fn main() -> oxiborg::Result<()> {
//! let repo = Repository::open(&Location::parse("/srv/backup/repo")?, &OpenOptions::from_env())?;
//! let archive = repo.archive_by_entry(repo.latest(&oxiborg::ArchiveFilter::default())?)?;
//! if let Some(item) = archive.find("etc/hostname")? {
//!     let mut text = String::new();
//!     archive.open_file(&item)?.read_to_string(&mut text)?;
//!     print!("{text}");
//! }
//! # Ok(()) }
//! ```

#![forbid(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]
#![warn(clippy::missing_errors_doc)]
#![deny(rustdoc::broken_intra_doc_links, rustdoc::private_intra_doc_links)]

pub mod borgmatic;
pub mod check;
pub(crate) mod compress;
pub mod error;
pub mod export_tar;
pub mod extract;
pub(crate) mod fetch;
pub(crate) mod format;
#[doc(hidden)]
pub mod fuzzing;
pub(crate) mod id;
pub(crate) mod key;
pub mod location;
pub(crate) mod origin;
pub mod patterns;
pub(crate) mod placeholders;
pub mod progress;
pub(crate) mod remote;
pub mod repository;
pub mod stats;
pub(crate) mod store;
pub(crate) mod text;
pub(crate) mod users;

pub use error::{Error, ErrorKind, RemoteErrorKind, Result};
pub use extract::{ExtractOptions, Extractor};
pub use format::{parse_time, ArchiveEntry, ArchiveMeta, Item, ItemKind, Manifest};
pub use id::{Id, ObjectId, MANIFEST_ID};
pub use key::blob::BorgDirs;
pub use key::passphrase::{terminal_prompt, Passphrase, Prompt};
pub use key::KeyType;
pub use location::Location;
pub use origin::Origin;
pub use progress::Progress;
pub use remote::ssh::{HostKeyPrompt, UnknownHost};
pub use remote::RemoteOptions;
pub use repository::{Archive, ArchiveFilter, FileReader, OpenOptions, Repository, SortKey};
pub use text::display_bytes;

//! # oxiborg
//!
//! A pure-Rust client for [BorgBackup](https://www.borgbackup.org/) 1.x repositories: open a
//! repository — a local directory, or behind `borg serve` over SSH — verify and decrypt it,
//! list its archives and items, restore them in parallel, check them, export them as tar, and
//! read files back; with no borg installed, and never writing to the repository.
//!
//! Data flows one way:
//! [`location`] → [`store`] / [`remote`] (bytes by id) → [`key`] (MAC, decrypt, id check) →
//! [`compress`] → [`archive`] (manifest, archive metadata, items) → [`repository`] (an opened
//! repository) → [`extract`], [`export_tar`], [`check`], [`stats`] → the [`cli`]; the three
//! long-running ones count into a shared [`Progress`].
//! [`patterns`], [`placeholders`] and [`borgmatic`] turn borg's (and borgmatic's) arguments
//! into selections and settings.
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
#![warn(missing_docs)]

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
pub mod store;
pub(crate) mod users;

pub use error::{Error, ErrorKind, RemoteErrorKind, Result};
pub use format::text::display_bytes;
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

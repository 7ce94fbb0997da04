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
//! repository) → [`extract`], [`export_tar`], [`check`], [`stats`] → the [`cli`].
//! [`patterns`], [`placeholders`] and [`borgmatic`] turn borg's (and borgmatic's) arguments
//! into selections and settings.
//!
//! ```no_run
//! use oxiborg::{Location, OpenOptions, Repository};
//! use std::io::Read;
//! # fn main() -> oxiborg::Result<()> {
//! let repo = Repository::open(&Location::parse("/srv/backup/repo")?, &OpenOptions::from_env())?;
//! let newest = repo.archives().last().expect("no archives");
//! let archive = repo.archive_by_entry(newest)?;
//! for item in archive.items() {
//!     let item = item?;
//!     if item.path == b"etc/hostname" {
//!         let mut text = String::new();
//!         repo.open_file(&item).read_to_string(&mut text).map_err(|e| oxiborg::Error::Other(e.to_string()))?;
//!         print!("{text}");
//!     }
//! }
//! # Ok(()) }
//! ```

#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod archive;
pub mod borgmatic;
pub mod check;
pub mod cli;
pub mod compress;
pub mod error;
pub mod export_tar;
pub mod extract;
#[doc(hidden)]
pub mod fuzzing;
pub mod key;
pub mod location;
pub mod origin;
pub mod patterns;
pub mod placeholders;
pub mod remote;
pub mod repository;
pub mod stats;
pub mod store;
pub mod users;

pub use error::{Error, ErrorKind, RemoteErrorKind, Result};
pub use location::Location;
pub use repository::{Archive, FileReader, OpenOptions, Repository};

/// A 32-byte object id.
pub type ObjectId = [u8; 32];

/// The manifest's fixed id: 32 zero bytes.
pub const MANIFEST_ID: ObjectId = [0u8; 32];

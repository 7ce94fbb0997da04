//! borg 1.x's msgpack structures, decoded from verified plaintext: pure functions of bytes, no
//! I/O. [`manifest`] (the archive list), [`archive`] (an archive's metadata), [`item`] (one
//! file-system object) and [`items`] (an archive's item stream, chunk by chunk), over a
//! hand-written [`msgpack`] reader.

pub mod archive;
pub mod item;
pub(crate) mod items;
pub mod manifest;
pub mod msgpack;

pub use archive::ArchiveMeta;
pub use item::{ChunkRef, Item, ItemKind};
pub use manifest::{parse_time, ArchiveEntry, Manifest};

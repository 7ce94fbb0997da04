//! One archived file-system object, with every item key borg 1.x and borg 2 write.
//!
//! Layout: this file holds [`Item`] (its fields and sizes), [`ChunkRef`] and [`Xattrs`];
//! `kind` the file type ([`ItemKind`], the `S_IF*` mode bits, symlinks and hard-link members);
//! `decode` the item map decoded from msgpack ([`Item::decode`]) and the serde helpers for
//! lists of ids and byte strings.

mod decode;
mod kind;

pub(crate) use decode::{de_byte_list, de_ids, de_opt_byte_list};
pub use kind::{ItemKind, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG};

use crate::id::ObjectId;
use crate::text::display_bytes;
use std::collections::BTreeMap;

/// A reference to one content chunk of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRef {
    /// The chunk's id.
    pub id: ObjectId,
    /// Plaintext size.
    pub size: u64,
    /// Stored size, where the archive records it (1.x always does; borg 2 does not).
    pub csize: Option<u64>,
}

/// Extended attributes: name → value.
pub type Xattrs = BTreeMap<Vec<u8>, Vec<u8>>;

/// One file-system object of an archive. Unknown keys are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Item {
    /// Path, relative, `/`-separated, raw bytes.
    pub path: Vec<u8>,
    /// `st_mode` including the file type bits.
    pub mode: u32,
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Owner name at backup time (`None`: the id had no name).
    pub user: Option<Vec<u8>>,
    /// Group name at backup time.
    pub group: Option<Vec<u8>>,
    /// Modification time, ns since the epoch.
    pub mtime: i64,
    /// Access time, ns.
    pub atime: Option<i64>,
    /// Change time, ns.
    pub ctime: Option<i64>,
    /// Birth time, ns (macOS/BSD).
    pub birthtime: Option<i64>,
    /// File size (1.1+ regular files).
    pub size: Option<u64>,
    /// Content chunks of a regular file.
    pub chunks: Option<Vec<ChunkRef>>,
    /// The original chunk list, when `borg check --repair` replaced missing chunks.
    pub chunks_healthy: Option<Vec<ChunkRef>>,
    /// Symlink target, or hard-link master path (see [`Item::is_symlink`]).
    pub source: Option<Vec<u8>>,
    /// First item of a hard-link group (1.1+; absent in 1.0).
    pub hardlink_master: Option<bool>,
    /// Device number of char/block devices.
    pub rdev: Option<u64>,
    /// Extended attributes, name → value.
    pub xattrs: Option<Xattrs>,
    /// POSIX access ACL, text form.
    pub acl_access: Option<Vec<u8>>,
    /// POSIX default ACL, text form.
    pub acl_default: Option<Vec<u8>>,
    /// macOS ACL text.
    pub acl_extended: Option<Vec<u8>>,
    /// NFSv4 ACL text.
    pub acl_nfs4: Option<Vec<u8>>,
    /// BSD-style flags.
    pub bsdflags: Option<u32>,
    /// Part number of a checkpoint part file.
    pub part: Option<u64>,
    /// borg 2: the id shared by every member of a hard-link group (each member also carries
    /// the content). The item stream marks the group's first member as its master and points
    /// the others at it through `source`, as borg 1.x stores them.
    pub hlid: Option<ObjectId>,
    /// borg 2: the inode number the file had (native borg 2 items).
    pub inode: Option<u64>,
}

impl Item {
    /// The modification time.
    pub fn modified(&self) -> std::time::SystemTime {
        ns_to_time(self.mtime)
    }
    /// Size of the file's content: `size` if recorded, else the sum of its chunks.
    pub fn content_size(&self) -> u64 {
        self.size.unwrap_or_else(|| self.chunks_size())
    }
    /// The size `borg list` shows (`{size}`): the recorded size, else the sum of the chunks;
    /// a symlink's target length (in characters, an undecodable byte counting as one).
    pub fn listed_size(&self) -> u64 {
        match (self.size, self.link_target()) {
            (Some(s), _) => s,
            (None, Some(t)) => display_bytes(t).chars().count() as u64,
            (None, None) => self.chunks_size(),
        }
    }
    /// Sum of the chunk sizes.
    pub fn chunks_size(&self) -> u64 {
        self.chunks
            .as_ref()
            .map(|c| c.iter().map(|c| c.size).sum())
            .unwrap_or(0)
    }
    /// The path for display (`?` for undecodable bytes).
    pub fn display_path(&self) -> String {
        display_bytes(&self.path)
    }
}

/// A time in ns since the epoch (negative: before it).
fn ns_to_time(ns: i64) -> std::time::SystemTime {
    let d = std::time::Duration::from_nanos(ns.unsigned_abs());
    if ns >= 0 {
        std::time::UNIX_EPOCH + d
    } else {
        std::time::UNIX_EPOCH - d
    }
}

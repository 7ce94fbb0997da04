//! One archived file-system object, with every item key borg 1.x writes.

use crate::ObjectId;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use serde_bytes::ByteBuf;
use std::collections::BTreeMap;
use std::fmt;

/// File type bits of `st_mode`.
pub const S_IFMT: u32 = 0o170000;
/// Regular file.
pub const S_IFREG: u32 = 0o100000;
/// Directory.
pub const S_IFDIR: u32 = 0o040000;
/// Symbolic link.
pub const S_IFLNK: u32 = 0o120000;
/// FIFO.
pub const S_IFIFO: u32 = 0o010000;
/// Character device.
pub const S_IFCHR: u32 = 0o020000;
/// Block device.
pub const S_IFBLK: u32 = 0o060000;
/// Socket.
pub const S_IFSOCK: u32 = 0o140000;

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

impl<'de> Deserialize<'de> for ChunkRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ChunkRef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a chunk entry [id, size, csize]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<ChunkRef, A::Error> {
                let id: ByteBuf = s
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("chunk entry without id"))?;
                let id: ObjectId = id
                    .as_slice()
                    .try_into()
                    .map_err(|_| de::Error::custom(format!("chunk id of {} bytes", id.len())))?;
                let size: u64 = s
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("chunk entry without size"))?;
                let csize: Option<u64> = s.next_element()?;
                while s.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(ChunkRef { id, size, csize })
            }
        }
        d.deserialize_seq(V)
    }
}

/// A timestamp in nanoseconds: an int, or (borg 1.0 bigints) little-endian signed bytes.
fn de_ns<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a timestamp in ns")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            Ok(i64::try_from(v).unwrap_or(i64::MAX))
        }
        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<i64, E> {
            if v.is_empty() || v.len() > 16 {
                return Err(E::custom("bad bigint timestamp"));
            }
            let neg = v[v.len() - 1] & 0x80 != 0;
            let mut buf = [if neg { 0xff } else { 0 }; 16];
            buf[..v.len()].copy_from_slice(v);
            let n = i128::from_le_bytes(buf);
            Ok(n.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
            self.visit_bytes(v.as_bytes())
        }
    }
    d.deserialize_any(V)
}

fn de_opt_ns<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    de_ns(d).map(Some)
}

/// A list of 32-byte ids.
pub(crate) fn de_ids<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ObjectId>, D::Error> {
    let raw: Vec<ByteBuf> = Deserialize::deserialize(d)?;
    raw.into_iter()
        .map(|b| {
            b.as_slice()
                .try_into()
                .map_err(|_| de::Error::custom(format!("id of {} bytes", b.len())))
        })
        .collect()
}

/// A list of byte strings.
pub(crate) fn de_byte_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
    let raw: Vec<ByteBuf> = Deserialize::deserialize(d)?;
    Ok(raw.into_iter().map(ByteBuf::into_vec).collect())
}

pub(crate) fn de_opt_byte_list<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<Vec<u8>>>, D::Error> {
    let raw: Option<Vec<ByteBuf>> = Deserialize::deserialize(d)?;
    Ok(raw.map(|v| v.into_iter().map(ByteBuf::into_vec).collect()))
}

/// Extended attributes: name → value.
pub type Xattrs = BTreeMap<Vec<u8>, Vec<u8>>;

fn de_xattrs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Xattrs>, D::Error> {
    // borg stores an empty value as nil.
    let raw: Option<BTreeMap<ByteBuf, Option<ByteBuf>>> = Deserialize::deserialize(d)?;
    Ok(raw.map(|m| {
        m.into_iter()
            .map(|(k, v)| (k.into_vec(), v.map(ByteBuf::into_vec).unwrap_or_default()))
            .collect()
    }))
}

/// One file-system object of an archive. Unknown keys are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Item {
    /// Path, relative, `/`-separated, raw bytes.
    #[serde(with = "serde_bytes")]
    pub path: Vec<u8>,
    /// `st_mode` including the file type bits.
    #[serde(default)]
    pub mode: u32,
    /// Numeric owner.
    #[serde(default)]
    pub uid: u32,
    /// Numeric group.
    #[serde(default)]
    pub gid: u32,
    /// Owner name at backup time (`None`: the id had no name).
    #[serde(default, with = "serde_bytes")]
    pub user: Option<Vec<u8>>,
    /// Group name at backup time.
    #[serde(default, with = "serde_bytes")]
    pub group: Option<Vec<u8>>,
    /// Modification time, ns since the epoch.
    #[serde(default, deserialize_with = "de_ns")]
    pub mtime: i64,
    /// Access time, ns.
    #[serde(default, deserialize_with = "de_opt_ns")]
    pub atime: Option<i64>,
    /// Change time, ns.
    #[serde(default, deserialize_with = "de_opt_ns")]
    pub ctime: Option<i64>,
    /// Birth time, ns (macOS/BSD).
    #[serde(default, deserialize_with = "de_opt_ns")]
    pub birthtime: Option<i64>,
    /// File size (1.1+ regular files).
    #[serde(default)]
    pub size: Option<u64>,
    /// Content chunks of a regular file.
    #[serde(default)]
    pub chunks: Option<Vec<ChunkRef>>,
    /// The original chunk list, when `borg check --repair` replaced missing chunks.
    #[serde(default)]
    pub chunks_healthy: Option<Vec<ChunkRef>>,
    /// Symlink target, or hard-link master path (see [`Item::is_symlink`]).
    #[serde(default, with = "serde_bytes")]
    pub source: Option<Vec<u8>>,
    /// First item of a hard-link group (1.1+; absent in 1.0).
    #[serde(default)]
    pub hardlink_master: Option<bool>,
    /// Device number of char/block devices.
    #[serde(default)]
    pub rdev: Option<u64>,
    /// Extended attributes, name → value.
    #[serde(default, deserialize_with = "de_xattrs")]
    pub xattrs: Option<Xattrs>,
    /// POSIX access ACL, text form.
    #[serde(default, with = "serde_bytes")]
    pub acl_access: Option<Vec<u8>>,
    /// POSIX default ACL, text form.
    #[serde(default, with = "serde_bytes")]
    pub acl_default: Option<Vec<u8>>,
    /// macOS ACL text.
    #[serde(default, with = "serde_bytes")]
    pub acl_extended: Option<Vec<u8>>,
    /// NFSv4 ACL text.
    #[serde(default, with = "serde_bytes")]
    pub acl_nfs4: Option<Vec<u8>>,
    /// BSD-style flags.
    #[serde(default)]
    pub bsdflags: Option<u32>,
    /// Part number of a checkpoint part file.
    #[serde(default)]
    pub part: Option<u64>,
}

impl Item {
    /// The file type bits.
    pub fn file_type(&self) -> u32 {
        self.mode & S_IFMT
    }
    /// A regular file?
    pub fn is_regular(&self) -> bool {
        self.file_type() == S_IFREG
    }
    /// A directory?
    pub fn is_dir(&self) -> bool {
        self.file_type() == S_IFDIR
    }
    /// A symbolic link?
    pub fn is_symlink(&self) -> bool {
        self.file_type() == S_IFLNK
    }
    /// A hard-link member pointing at its master (`source` on a non-symlink).
    pub fn is_hardlink_slave(&self) -> bool {
        !self.is_symlink() && self.source.is_some()
    }
    /// The symlink target, for symlinks.
    pub fn link_target(&self) -> Option<&[u8]> {
        if self.is_symlink() {
            self.source.as_deref()
        } else {
            None
        }
    }
    /// Size of the file's content: `size` if recorded, else the sum of its chunks.
    pub fn content_size(&self) -> u64 {
        self.size.unwrap_or_else(|| self.chunks_size())
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

/// Decodes bytes as UTF-8 for display, replacing every undecodable byte with `?` (borg's rule).
pub fn display_bytes(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => {
            let mut out = String::with_capacity(b.len());
            for chunk in b.utf8_chunks() {
                out.push_str(chunk.valid());
                for _ in chunk.invalid() {
                    out.push('?');
                }
            }
            out
        }
    }
}

/// Decodes bytes as borg's surrogateescape text would re-encode to JSON: valid UTF-8 as is,
/// every undecodable byte `b` as the lone surrogate `U+DC00+b` (how Python's `json` writes it,
/// `\udcXX`). Returns the JSON string literal including quotes.
pub fn json_surrogateescape(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() + 2);
    out.push('"');
    for chunk in b.utf8_chunks() {
        let s = serde_json::to_string(chunk.valid()).unwrap_or_default();
        out.push_str(&s[1..s.len() - 1]);
        for byte in chunk.invalid() {
            out.push_str(&format!("\\udc{byte:02x}"));
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_replaces_undecodable() {
        assert_eq!(display_bytes(b"caf\xe9-latin1.txt"), "caf?-latin1.txt");
        assert_eq!(display_bytes("ünï".as_bytes()), "ünï");
        assert_eq!(json_surrogateescape(b"a\"\xe9"), "\"a\\\"\\udce9\"");
    }

    #[test]
    fn bigint_and_csize_variants() {
        // {"path": "x", "mtime": <bytes 0x0100 = 256>, "chunks": [[id, 5]]}
        let id = [3u8; 32];
        let mut buf = Vec::new();
        rmp::encode::write_map_len(&mut buf, 3).unwrap();
        rmp::encode::write_str(&mut buf, "path").unwrap();
        rmp::encode::write_str(&mut buf, "x").unwrap();
        rmp::encode::write_str(&mut buf, "mtime").unwrap();
        rmp::encode::write_bin(&mut buf, &[0x00, 0x01]).unwrap();
        rmp::encode::write_str(&mut buf, "chunks").unwrap();
        rmp::encode::write_array_len(&mut buf, 1).unwrap();
        rmp::encode::write_array_len(&mut buf, 2).unwrap();
        rmp::encode::write_bin(&mut buf, &id).unwrap();
        rmp::encode::write_uint(&mut buf, 5).unwrap();
        let item: Item = rmp_serde::from_slice(&buf).unwrap();
        assert_eq!(item.mtime, 256);
        let c = item.chunks.unwrap();
        assert_eq!((c[0].id, c[0].size, c[0].csize), (id, 5, None));
    }
}

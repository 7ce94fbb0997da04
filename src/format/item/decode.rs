//! Decoding items from msgpack: [`Item::decode`], a hand-written decoder over the
//! [`Reader`] (every key borg 1.x writes, str or bin keys, each value's type checked), and the
//! serde helpers for lists of ids and byte strings that archive metadata uses.

use super::{ChunkRef, Item, Xattrs};
use crate::format::msgpack::{Int, ReadError, Reader};
use crate::id::ObjectId;
use crate::text::display_bytes;
use serde::de::{self, Deserializer};
use serde::Deserialize;
use serde_bytes::ByteBuf;

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

impl Item {
    /// Decodes one item map from the front of `buf`, returning the item and the bytes it used.
    /// Keys may be str or bin; unknown keys are skipped, a repeated key or a missing `path` is
    /// an error, and so is a value of the wrong type. `ReadError::Short` means `buf` ends
    /// inside the item.
    pub(crate) fn decode(buf: &[u8]) -> std::result::Result<(Item, usize), ReadError> {
        let mut r = Reader::new(buf);
        let n = r.map_len()?;
        let mut item = Item::default();
        let mut seen: u32 = 0;
        let mut has_path = false;
        for _ in 0..n {
            let key = r.bytes()?;
            let Some(bit) = ITEM_KEYS.iter().position(|k| *k == key) else {
                r.skip()?;
                continue;
            };
            if seen & (1 << bit) != 0 {
                return Err(invalid(format!("duplicate key {}", display_bytes(key))));
            }
            seen |= 1 << bit;
            let k = ITEM_KEYS[bit];
            let field = |e: ReadError| match e {
                ReadError::Invalid(m) => invalid(format!("{}: {m}", display_bytes(k))),
                short => short,
            };
            match k {
                b"path" => {
                    item.path = r.bytes().map_err(field)?.to_vec();
                    has_path = true;
                }
                b"mode" => item.mode = r.uint(u32::MAX.into(), "value").map_err(field)? as u32,
                b"uid" => item.uid = r.uint(u32::MAX.into(), "value").map_err(field)? as u32,
                b"gid" => item.gid = r.uint(u32::MAX.into(), "value").map_err(field)? as u32,
                b"user" => item.user = opt_bytes(&mut r).map_err(field)?,
                b"group" => item.group = opt_bytes(&mut r).map_err(field)?,
                b"mtime" => item.mtime = ns(&mut r).map_err(field)?,
                b"atime" => item.atime = Some(ns(&mut r).map_err(field)?),
                b"ctime" => item.ctime = Some(ns(&mut r).map_err(field)?),
                b"birthtime" => item.birthtime = Some(ns(&mut r).map_err(field)?),
                b"size" => item.size = opt_uint(&mut r, u64::MAX).map_err(field)?,
                b"chunks" => item.chunks = chunk_list(&mut r).map_err(field)?,
                b"chunks_healthy" => item.chunks_healthy = chunk_list(&mut r).map_err(field)?,
                b"source" => item.source = opt_bytes(&mut r).map_err(field)?,
                b"hardlink_master" => {
                    item.hardlink_master = if r.nil()? {
                        None
                    } else {
                        Some(r.bool().map_err(field)?)
                    }
                }
                b"rdev" => item.rdev = opt_uint(&mut r, u64::MAX).map_err(field)?,
                b"xattrs" => item.xattrs = xattrs(&mut r).map_err(field)?,
                b"acl_access" => item.acl_access = opt_bytes(&mut r).map_err(field)?,
                b"acl_default" => item.acl_default = opt_bytes(&mut r).map_err(field)?,
                b"acl_extended" => item.acl_extended = opt_bytes(&mut r).map_err(field)?,
                b"acl_nfs4" => item.acl_nfs4 = opt_bytes(&mut r).map_err(field)?,
                b"bsdflags" => {
                    item.bsdflags = opt_uint(&mut r, u32::MAX.into())
                        .map_err(field)?
                        .map(|v| v as u32)
                }
                b"part" => item.part = opt_uint(&mut r, u64::MAX).map_err(field)?,
                // borg 2: a symlink's target (1.x keeps it in `source`), and the id every
                // member of a hard-link group shares.
                b"target" => item.source = opt_bytes(&mut r).map_err(field)?,
                b"inode" => item.inode = opt_uint(&mut r, u64::MAX).map_err(field)?,
                b"hlid" => {
                    item.hlid =
                        match opt_bytes(&mut r).map_err(field)? {
                            None => None,
                            Some(b) => Some(b.as_slice().try_into().map_err(|_| {
                                invalid(format!("hlid: {} bytes, not 32", b.len()))
                            })?),
                        }
                }
                _ => r.skip()?,
            }
        }
        if !has_path {
            return Err(invalid("missing key path".into()));
        }
        Ok((item, r.position()))
    }
}

/// The item keys [`Item::decode`] knows (a key's index is its bit in the duplicate check).
const ITEM_KEYS: [&[u8]; 26] = [
    b"path",
    b"mode",
    b"uid",
    b"gid",
    b"user",
    b"group",
    b"mtime",
    b"atime",
    b"ctime",
    b"birthtime",
    b"size",
    b"chunks",
    b"chunks_healthy",
    b"source",
    b"hardlink_master",
    b"rdev",
    b"xattrs",
    b"acl_access",
    b"acl_default",
    b"acl_extended",
    b"acl_nfs4",
    b"bsdflags",
    b"part",
    b"target",
    b"hlid",
    b"inode",
];

fn invalid(m: String) -> ReadError {
    ReadError::Invalid(m)
}

fn opt_bytes(r: &mut Reader<'_>) -> std::result::Result<Option<Vec<u8>>, ReadError> {
    if r.nil()? {
        return Ok(None);
    }
    Ok(Some(r.bytes()?.to_vec()))
}

fn opt_uint(r: &mut Reader<'_>, max: u64) -> std::result::Result<Option<u64>, ReadError> {
    if r.nil()? {
        return Ok(None);
    }
    r.uint(max, "value").map(Some)
}

/// A timestamp in nanoseconds: an int, (borg 1.0 bigints) little-endian signed bytes, or
/// (borg 2) a msgpack timestamp.
fn ns(r: &mut Reader<'_>) -> std::result::Result<i64, ReadError> {
    let m = r.peek()?;
    if matches!(m, 0xd6 | 0xd7 | 0xc7) {
        return r.timestamp();
    }
    if (0xa0..=0xbf).contains(&m) || matches!(m, 0xc4..=0xc6 | 0xd9..=0xdb) {
        let v = r.bytes()?;
        if v.is_empty() || v.len() > 16 {
            return Err(invalid("bad bigint timestamp".into()));
        }
        let neg = v[v.len() - 1] & 0x80 != 0;
        let mut buf = [if neg { 0xff } else { 0 }; 16];
        buf[..v.len()].copy_from_slice(v);
        let n = i128::from_le_bytes(buf);
        return Ok(n.clamp(i64::MIN as i128, i64::MAX as i128) as i64);
    }
    Ok(match r.int()? {
        Int::U(v) => i64::try_from(v).unwrap_or(i64::MAX),
        Int::I(v) => v,
    })
}

/// `[[id, size, csize], ...]` (csize absent in some writers), or nil.
fn chunk_list(r: &mut Reader<'_>) -> std::result::Result<Option<Vec<ChunkRef>>, ReadError> {
    if r.nil()? {
        return Ok(None);
    }
    let n = r.array_len()?;
    let mut out = Vec::with_capacity(n.min(1 << 16));
    let mut total = 0u64;
    for _ in 0..n {
        let fields = r.array_len()?;
        if fields < 2 {
            return Err(invalid(format!("chunk entry with {fields} fields")));
        }
        let id = r.bytes()?;
        let id: ObjectId = id
            .try_into()
            .map_err(|_| invalid(format!("chunk id of {} bytes", id.len())))?;
        // Any size borg can write is accepted (what is allocated for a chunk is bounded where
        // it is allocated); only a file whose chunks add up to more than a file can hold is
        // refused, so that the sums of sizes cannot overflow.
        let size = r.uint(u64::MAX, "chunk size")?;
        total = total
            .checked_add(size)
            .filter(|t| *t <= i64::MAX as u64)
            .ok_or_else(|| invalid("chunk sizes add up to more than 2^63 bytes".into()))?;
        let csize = if fields >= 3 {
            Some(r.uint(u64::MAX, "chunk csize")?)
        } else {
            None
        };
        for _ in 3..fields {
            r.skip()?;
        }
        out.push(ChunkRef { id, size, csize });
    }
    Ok(Some(out))
}

/// name → value; borg stores an empty value as nil.
fn xattrs(r: &mut Reader<'_>) -> std::result::Result<Option<Xattrs>, ReadError> {
    if r.nil()? {
        return Ok(None);
    }
    let n = r.map_len()?;
    let mut out = Xattrs::new();
    for _ in 0..n {
        let k = r.bytes()?.to_vec();
        let v = opt_bytes(r)?.unwrap_or_default();
        out.insert(k, v);
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An item with every key, written with str or bin keys, plus unknown keys holding nested
    /// values; every prefix of it must be "short", and the whole of it decode to the fields.
    #[test]
    fn every_key_and_every_prefix() {
        use rmpv::Value;
        let b = |s: &[u8]| Value::Binary(s.to_vec());
        let chunk =
            |n: u8, size: u64| Value::Array(vec![b(&[n; 32]), size.into(), (size / 2).into()]);
        for bin_keys in [false, true] {
            let key = |k: &str| {
                if bin_keys {
                    b(k.as_bytes())
                } else {
                    Value::from(k)
                }
            };
            let entries = vec![
                (
                    key("zz-unknown"),
                    Value::Map(vec![(
                        b(b"x"),
                        Value::Array(vec![Value::Nil, 1.5f64.into()]),
                    )]),
                ),
                (
                    key("path"),
                    Value::String(rmpv::Utf8String::from("dir/f\u{e9}")),
                ),
                (key("mode"), 0o100644u32.into()),
                (key("uid"), 1000u32.into()),
                (key("gid"), 0u32.into()),
                (key("user"), b(b"me")),
                (key("group"), Value::Nil),
                (key("mtime"), (-5_000_000_000i64).into()),
                (key("atime"), b(&[0x00, 0x01])),
                (key("ctime"), u64::MAX.into()),
                (key("birthtime"), 7i64.into()),
                (key("size"), 300u64.into()),
                (
                    key("chunks"),
                    Value::Array(vec![
                        chunk(1, 100),
                        Value::Array(vec![b(&[2; 32]), 200u64.into()]),
                    ]),
                ),
                (key("chunks_healthy"), Value::Array(vec![chunk(3, 300)])),
                (key("source"), b(b"other")),
                (key("hardlink_master"), false.into()),
                (key("rdev"), 259u64.into()),
                (
                    key("xattrs"),
                    Value::Map(vec![
                        (b(b"user.a"), b(b"1")),
                        (b(b"user.empty"), Value::Nil),
                    ]),
                ),
                (key("acl_access"), b(b"user::rw-")),
                (key("acl_default"), Value::Nil),
                (key("acl_extended"), b(b"ext")),
                (key("acl_nfs4"), b(b"nfs4")),
                (key("bsdflags"), 0x20u32.into()),
                (key("part"), 2u64.into()),
            ];
            let mut buf = Vec::new();
            rmpv::encode::write_value(&mut buf, &Value::Map(entries)).unwrap();
            let (item, used) = Item::decode(&buf).unwrap();
            assert_eq!(used, buf.len());
            assert_eq!(item.path, "dir/f\u{e9}".as_bytes());
            assert_eq!((item.mode, item.uid, item.gid), (0o100644, 1000, 0));
            assert_eq!(
                (item.user.as_deref(), item.group.as_deref()),
                (Some(&b"me"[..]), None)
            );
            assert_eq!(
                (item.mtime, item.atime, item.ctime, item.birthtime),
                (-5_000_000_000, Some(256), Some(i64::MAX), Some(7))
            );
            assert_eq!(
                (item.size, item.rdev, item.bsdflags, item.part),
                (Some(300), Some(259), Some(0x20), Some(2))
            );
            let chunks = item.chunks.clone().unwrap();
            assert_eq!(
                (chunks[0].id, chunks[0].size, chunks[0].csize),
                ([1; 32], 100, Some(50))
            );
            assert_eq!(
                (chunks[1].id, chunks[1].size, chunks[1].csize),
                ([2; 32], 200, None)
            );
            assert_eq!(item.chunks_healthy.as_ref().map(Vec::len), Some(1));
            assert_eq!(
                (item.source.as_deref(), item.hardlink_master),
                (Some(&b"other"[..]), Some(false))
            );
            let x = item.xattrs.clone().unwrap();
            assert_eq!(
                (
                    x[&b"user.a"[..]].as_slice(),
                    x[&b"user.empty"[..]].as_slice()
                ),
                (&b"1"[..], &b""[..])
            );
            assert_eq!(item.acl_access.as_deref(), Some(&b"user::rw-"[..]));
            assert_eq!(item.acl_default, None);
            assert_eq!(
                (item.acl_extended.as_deref(), item.acl_nfs4.as_deref()),
                (Some(&b"ext"[..]), Some(&b"nfs4"[..]))
            );
            for cut in 0..buf.len() {
                assert_eq!(
                    Item::decode(&buf[..cut]),
                    Err(ReadError::Short),
                    "prefix of {cut} bytes"
                );
            }
        }
    }

    #[test]
    fn wrong_types_duplicates_and_missing_path_are_errors() {
        use rmpv::Value;
        let enc = |entries: Vec<(&str, Value)>| {
            let mut buf = Vec::new();
            let map = entries
                .into_iter()
                .map(|(k, v)| (Value::from(k), v))
                .collect();
            rmpv::encode::write_value(&mut buf, &Value::Map(map)).unwrap();
            buf
        };
        let p = || ("path", Value::from("x"));
        for (entries, want) in [
            (vec![("mode", 1.into())], "missing key path"),
            (vec![p(), p()], "duplicate key path"),
            (vec![p(), ("mode", (-1).into())], "mode"),
            (vec![p(), ("uid", (1u64 << 33).into())], "uid"),
            (vec![p(), ("mtime", 1.5f64.into())], "mtime"),
            (vec![p(), ("mtime", Value::Nil)], "mtime"),
            (
                vec![
                    p(),
                    (
                        "chunks",
                        Value::Array(vec![Value::Array(vec![
                            Value::Binary(vec![1; 31]),
                            1.into(),
                        ])]),
                    ),
                ],
                "chunk id of 31 bytes",
            ),
            (
                vec![p(), ("chunks", Value::Array(vec![1.into()]))],
                "chunks",
            ),
            (vec![p(), ("hardlink_master", 1.into())], "hardlink_master"),
            (vec![p(), ("xattrs", Value::Array(vec![]))], "xattrs"),
            (vec![("path", 5.into())], "path"),
        ] {
            match Item::decode(&enc(entries)) {
                Err(ReadError::Invalid(m)) => assert!(m.contains(want), "{m} lacks {want}"),
                other => panic!("{want}: {other:?}"),
            }
        }
        assert!(matches!(
            Item::decode(&[0x93, 1, 2, 3]),
            Err(ReadError::Invalid(_))
        ));
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
        let (item, used) = Item::decode(&buf).unwrap();
        assert_eq!(used, buf.len());
        assert_eq!(item.mtime, 256);
        let c = item.chunks.unwrap();
        assert_eq!((c[0].id, c[0].size, c[0].csize), (id, 5, None));
    }
}

//! borg 2's chunk index: where each object is (pack, offset, size). Read from the `index/`
//! fragments (borghash tables in the key's store envelope), or rebuilt by walking the pack
//! headers when the fragments are missing or marked invalid.

use crate::error::{Error, Result};
use crate::id::ObjectId;
use std::collections::HashMap;

/// Where one object is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Loc {
    /// Index into the store's list of packs.
    pub pack: u32,
    /// Offset of the object's header in the pack.
    pub offset: u32,
    /// Length of the whole object (header, meta and data slots).
    pub size: u32,
}

/// The chunk index: object id → location, and the packs the locations name.
#[derive(Debug, Default)]
pub(crate) struct ChunkIndex {
    /// Pack ids, indexed by [`Loc::pack`].
    pub packs: Vec<ObjectId>,
    pack_numbers: HashMap<ObjectId, u32>,
    /// Object id → location.
    pub map: HashMap<ObjectId, Loc>,
}

impl ChunkIndex {
    /// Records `id` at `offset`/`size` in `pack` (a later record of the same id wins, as borg
    /// merges its fragments).
    pub(crate) fn insert(&mut self, id: ObjectId, pack: ObjectId, offset: u32, size: u32) {
        let n = match self.pack_numbers.get(&pack) {
            Some(n) => *n,
            None => {
                let n = self.packs.len() as u32;
                self.packs.push(pack);
                self.pack_numbers.insert(pack, n);
                n
            }
        };
        self.map.insert(
            id,
            Loc {
                pack: n,
                offset,
                size,
            },
        );
    }
}

/// The size of an object header: magic, version, id, meta and data sizes.
pub(crate) const OBJECT_HEADER: usize = 49;

/// The magic that starts every object in a pack.
pub(crate) const OBJECT_MAGIC: &[u8; 8] = b"BORG_OBJ";

/// Parses an object header: its id and the object's whole length.
///
/// # Errors
/// A header without the magic or with an unknown version.
pub(crate) fn parse_header(h: &[u8]) -> std::result::Result<(ObjectId, u64), String> {
    if h.len() < OBJECT_HEADER {
        return Err(format!("object header of {} bytes", h.len()));
    }
    if &h[..8] != OBJECT_MAGIC {
        return Err("no BORG_OBJ magic".into());
    }
    if h[8] != 2 {
        return Err(format!("object format version {}", h[8]));
    }
    let id: ObjectId = h[9..41].try_into().unwrap_or_default();
    let meta = u32::from_le_bytes([h[41], h[42], h[43], h[44]]);
    let data = u32::from_le_bytes([h[45], h[46], h[47], h[48]]);
    Ok((id, OBJECT_HEADER as u64 + u64::from(meta) + u64::from(data)))
}

/// Adds the entries of one decrypted index fragment (a serialized borghash table:
/// `BORGHASH`, version 1, a JSON description, then `used` key/value records) to `index`.
///
/// # Errors
/// A fragment that is not such a table, describes another layout, or is cut short.
pub(crate) fn add_fragment(index: &mut ChunkIndex, plain: &[u8]) -> Result<()> {
    let bad = |m: String| Error::Integrity(format!("chunk index fragment: {m}"));
    if plain.len() < 16 || &plain[..8] != b"BORGHASH" {
        return Err(bad("no BORGHASH header".into()));
    }
    let version = u32::from_le_bytes([plain[8], plain[9], plain[10], plain[11]]);
    if version != 1 {
        return Err(bad(format!("borghash version {version}")));
    }
    let meta_len = u32::from_le_bytes([plain[12], plain[13], plain[14], plain[15]]) as usize;
    let meta = plain
        .get(16..16usize.saturating_add(meta_len))
        .ok_or_else(|| bad("description cut short".into()))?;
    let meta: serde_json::Value =
        serde_json::from_slice(meta).map_err(|e| bad(format!("description: {e}")))?;
    let field = |k: &str| meta.get(k).cloned().unwrap_or(serde_json::Value::Null);
    let want_format = serde_json::json!(["I", "I", "32s", "I", "I"]);
    if field("key_size") != serde_json::json!(32)
        || field("value_size") != serde_json::json!(48)
        || field("value_format") != want_format
        || field("byte_order") != serde_json::json!("little")
    {
        return Err(bad(format!(
            "unknown layout (key_size {}, value_size {}, value_format {}, byte_order {})",
            field("key_size"),
            field("value_size"),
            field("value_format"),
            field("byte_order")
        )));
    }
    let used = field("used")
        .as_u64()
        .ok_or_else(|| bad("no entry count".into()))?;
    let records = &plain[16 + meta_len..];
    if records.len() as u64 != used.saturating_mul(80) {
        return Err(bad(format!(
            "{} bytes of entries for {used} entries of 80 bytes",
            records.len()
        )));
    }
    index.map.reserve(used as usize);
    for r in records.chunks_exact(80) {
        let id: ObjectId = r[..32].try_into().unwrap_or_default();
        // value: flags u32, size u32, pack id [32], offset u32, object size u32
        let v = &r[32..];
        let pack: ObjectId = v[8..40].try_into().unwrap_or_default();
        let offset = u32::from_le_bytes([v[40], v[41], v[42], v[43]]);
        let size = u32::from_le_bytes([v[44], v[45], v[46], v[47]]);
        if (size as usize) < OBJECT_HEADER {
            return Err(bad(format!(
                "object {} has a size of {size} bytes",
                hex::encode(id)
            )));
        }
        index.insert(id, pack, offset, size);
    }
    Ok(())
}

#[cfg(test)]
/// A fragment as borg writes it, for tests: `entries` of (id, pack, offset, size).
pub(crate) fn fragment_for_tests(entries: &[(ObjectId, ObjectId, u32, u32)]) -> Vec<u8> {
    let meta = serde_json::json!({
        "key_size": 32, "value_size": 48, "byte_order": "little",
        "value_type_name": "ChunkIndexEntry",
        "value_type_fields": ["flags", "size", "pack_id", "obj_offset", "obj_size"],
        "value_format_name": "ChunkIndexEntryFormatT",
        "value_format_fields": ["flags", "size", "pack_id", "obj_offset", "obj_size"],
        "value_format": ["I", "I", "32s", "I", "I"],
        "capacity": entries.len().max(1), "used": entries.len(),
    })
    .to_string();
    let mut out = b"BORGHASH".to_vec();
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(meta.as_bytes());
    for (id, pack, offset, size) in entries {
        out.extend_from_slice(id);
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(pack);
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_parse_and_bad_ones_are_named() {
        let frag = fragment_for_tests(&[([1; 32], [9; 32], 0, 100), ([2; 32], [9; 32], 100, 60)]);
        let mut index = ChunkIndex::default();
        add_fragment(&mut index, &frag).unwrap();
        assert_eq!(index.packs, vec![[9; 32]]);
        assert_eq!(
            index.map[&[2; 32]],
            Loc {
                pack: 0,
                offset: 100,
                size: 60
            }
        );
        for cut in 0..frag.len() {
            assert!(add_fragment(&mut ChunkIndex::default(), &frag[..cut]).is_err());
        }
        let other = String::from_utf8_lossy(&frag).replace("\"32s\"", "\"16s\"");
        let err = add_fragment(&mut ChunkIndex::default(), other.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("unknown layout"), "{err}");
        let tiny = fragment_for_tests(&[([1; 32], [9; 32], 0, 10)]);
        assert!(add_fragment(&mut ChunkIndex::default(), &tiny).is_err());
    }

    #[test]
    fn headers_parse() {
        let mut h = b"BORG_OBJ\x02".to_vec();
        h.extend_from_slice(&[5; 32]);
        h.extend_from_slice(&10u32.to_le_bytes());
        h.extend_from_slice(&20u32.to_le_bytes());
        assert_eq!(parse_header(&h).unwrap(), ([5; 32], 79));
        h[8] = 1;
        assert!(parse_header(&h).unwrap_err().contains("version 1"));
        assert!(parse_header(&h[..48]).is_err());
    }
}

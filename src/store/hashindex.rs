//! borg's on-disk hash index (`index.T`, NSIndex flavour): id → (segment, offset).
//!
//! The file is used in place: lookups probe the bucket array the way borg does (start at
//! `u32le(id[0..4]) % buckets`, linear probing), so opening a huge index costs one read.

use crate::error::{Error, Result};
use crate::id::ObjectId;
use std::path::Path;

const MAGIC: &[u8; 8] = b"BORG_IDX";
const HEADER: usize = 18;
const KEY: usize = 32;
const VALUE: usize = 8;
const BUCKET: usize = KEY + VALUE;
const EMPTY: u32 = 0xffff_ffff;
const DELETED: u32 = 0xffff_fffe;

/// A loaded `index.T` file.
pub struct HashIndex {
    data: Vec<u8>,
    buckets: usize,
    entries: usize,
}

impl HashIndex {
    /// Reads and validates an index file.
    pub fn load(path: &Path) -> Result<HashIndex> {
        let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(data)
            .map_err(|reason| Error::Integrity(format!("Hash index {}: {reason}", path.display())))
    }

    /// Validates an index image.
    pub fn from_bytes(data: Vec<u8>) -> std::result::Result<HashIndex, String> {
        if data.len() < HEADER || &data[..8] != MAGIC {
            return Err("bad magic".into());
        }
        let entries = i32::from_le_bytes([data[8], data[9], data[10], data[11]]);
        let buckets = i32::from_le_bytes([data[12], data[13], data[14], data[15]]);
        if data[16] as usize != KEY || data[17] as usize != VALUE {
            return Err(format!(
                "unexpected key/value size {}/{}",
                data[16], data[17]
            ));
        }
        if entries < 0 || buckets <= 0 || entries > buckets {
            return Err(format!(
                "bad counts: {entries} entries in {buckets} buckets"
            ));
        }
        let buckets = buckets as usize;
        if data.len() != HEADER + buckets * BUCKET {
            return Err(format!(
                "length {} does not match {} buckets",
                data.len(),
                buckets
            ));
        }
        Ok(HashIndex {
            data,
            buckets,
            entries: entries as usize,
        })
    }

    /// Number of live entries, as recorded in the header.
    pub fn len(&self) -> usize {
        self.entries
    }

    fn bucket(&self, i: usize) -> (&[u8], u32, u32) {
        let b = &self.data[HEADER + i * BUCKET..HEADER + (i + 1) * BUCKET];
        let seg = u32::from_le_bytes([b[32], b[33], b[34], b[35]]);
        let off = u32::from_le_bytes([b[36], b[37], b[38], b[39]]);
        (&b[..KEY], seg, off)
    }

    /// Finds `(segment, offset)` of an id.
    pub fn get(&self, id: &ObjectId) -> Option<(u32, u32)> {
        let start = u32::from_le_bytes([id[0], id[1], id[2], id[3]]) as usize % self.buckets;
        let mut i = start;
        loop {
            let (key, seg, off) = self.bucket(i);
            if seg == EMPTY {
                return None;
            }
            if seg != DELETED && key == id {
                return Some((seg, off));
            }
            i = (i + 1) % self.buckets;
            if i == start {
                return None;
            }
        }
    }

    /// Every live entry, in bucket order.
    pub fn iter(&self) -> impl Iterator<Item = (ObjectId, u32, u32)> + '_ {
        (0..self.buckets).filter_map(|i| {
            let (key, seg, off) = self.bucket(i);
            (seg != EMPTY && seg != DELETED).then(|| {
                let mut id = [0u8; 32];
                id.copy_from_slice(key);
                (id, seg, off)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(entries: &[(ObjectId, u32, u32)], buckets: usize) -> Vec<u8> {
        let mut data = MAGIC.to_vec();
        data.extend_from_slice(&(entries.len() as i32).to_le_bytes());
        data.extend_from_slice(&(buckets as i32).to_le_bytes());
        data.extend_from_slice(&[32, 8]);
        let mut table = vec![[0u8; BUCKET]; buckets];
        for t in table.iter_mut() {
            t[32..36].copy_from_slice(&EMPTY.to_le_bytes());
        }
        for (id, seg, off) in entries {
            let mut i = u32::from_le_bytes([id[0], id[1], id[2], id[3]]) as usize % buckets;
            while u32::from_le_bytes(table[i][32..36].try_into().unwrap()) != EMPTY {
                i = (i + 1) % buckets;
            }
            table[i][..32].copy_from_slice(id);
            table[i][32..36].copy_from_slice(&seg.to_le_bytes());
            table[i][36..40].copy_from_slice(&off.to_le_bytes());
        }
        for t in table {
            data.extend_from_slice(&t);
        }
        data
    }

    #[test]
    fn lookup_with_collisions() {
        let a = [1u8; 32];
        let mut b = [1u8; 32];
        b[31] = 2; // same start bucket as a
        let c = [9u8; 32];
        let idx = HashIndex::from_bytes(build(&[(a, 1, 8), (b, 2, 50), (c, 3, 99)], 7)).unwrap();
        assert_eq!(idx.get(&a), Some((1, 8)));
        assert_eq!(idx.get(&b), Some((2, 50)));
        assert_eq!(idx.get(&c), Some((3, 99)));
        assert_eq!(idx.get(&[5u8; 32]), None);
        assert_eq!(idx.iter().count(), 3);
    }

    #[test]
    fn rejects_damage() {
        let img = build(&[([1; 32], 1, 8)], 7);
        assert!(HashIndex::from_bytes(img[..img.len() - 1].to_vec()).is_err());
        let mut bad = img.clone();
        bad[0] = b'X';
        assert!(HashIndex::from_bytes(bad).is_err());
        assert!(HashIndex::from_bytes(vec![]).is_err());
    }
}

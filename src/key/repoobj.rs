//! borg 2 repository objects ("blobs", what packs are made of) and store objects.
//!
//! A blob:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `BORG_OBJ` |
//! | 8 | 1 | version, 0x02 |
//! | 9 | 32 | chunk id |
//! | 41 | 4 | meta_size (u32 LE) |
//! | 45 | 4 | data_size (u32 LE) |
//! | 49 | meta_size | meta slot: envelope of the msgpack metadata map, AAD `blob[0:41] ‖ "M"` |
//! | 49 + meta_size | data_size | data slot: envelope of the compressed data, AAD `blob[0:41] ‖ "D"` |
//!
//! The metadata map ([`ObjMeta`]) names the object's type (`A`, `C`, `S`, `F`), its compressor
//! (`ctype`, `clevel`; the data has no compression header), the stored size `csize`, the
//! plaintext `size` (absent with `auto,X` compression) and, for obfuscated objects, the payload
//! size `psize` (the data is zero-padded beyond it).
//!
//! Store objects (index fragments, `cache/*`, `config/defaults`, locks) are one envelope whose
//! AAD is `"borg-store-object\0" ‖ repository id ‖ "h" namespace | "n" full name` and whose id is
//! empty ([`StoreName`]).

use super::Key;
use crate::compress;
use crate::error::{Error, Result};
use crate::format::msgpack::{ReadError, Reader};
use crate::id::ObjectId;
use subtle::ConstantTimeEq;

/// A blob's header length.
pub(crate) const BLOB_HEADER: usize = 49;
/// A blob's magic.
pub(crate) const BLOB_MAGIC: &[u8; 8] = b"BORG_OBJ";
/// The blob format version b25 writes and reads.
pub(crate) const BLOB_VERSION: u8 = 2;
/// The part of the header every slot's AAD starts with: magic, version, id.
const HEADER_AAD: usize = 41;
/// The AAD prefix of store objects.
const STORE_AAD: &[u8] = b"borg-store-object\0";

/// How a store object is named in its envelope's AAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreName<'a> {
    /// A content-addressed object (`index/<hash>`, `locks/<hash>`): its namespace ("index").
    Hashed(&'a str),
    /// Any other object: its full name ("config/defaults", "cache/checked-packs").
    Named(&'a str),
}

/// A blob's header.
#[derive(Debug, Clone, Copy)]
struct Header {
    id: ObjectId,
    meta_size: usize,
    data_size: usize,
}

/// The metadata of a repository object (the meta slot's msgpack map).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ObjMeta {
    /// The object type: `b'A'` archive metadata, `b'C'` item-stream chunk list, `b'S'` item
    /// stream chunk, `b'F'` file content (others are passed on for the caller to refuse).
    pub otype: u8,
    /// The compressor: 0 none, 1 lz4, 2 lzma, 3 zstd, 5 zlib.
    pub ctype: u8,
    /// The compression level byte (zstd's is signed: 251 is -5).
    pub clevel: u8,
    /// The length of the stored (compressed, maybe padded) data.
    pub csize: u64,
    /// The plaintext length; absent for objects written with `auto,X` compression.
    pub size: Option<u64>,
    /// The compressed payload's length when obfuscation padded it (bytes beyond are zero).
    pub psize: Option<u64>,
    /// The obfuscation level, where there is one.
    pub olevel: Option<i64>,
}

impl ObjMeta {
    /// Decodes the meta slot's plaintext. Keys borg 2 does not write are skipped; `type`,
    /// `ctype`, `clevel` and `csize` are required, as borg requires them.
    fn decode(buf: &[u8]) -> std::result::Result<ObjMeta, String> {
        let describe = |e: ReadError| match e {
            ReadError::Short => "truncated msgpack".to_string(),
            ReadError::Invalid(m) => m,
        };
        let mut r = Reader::new(buf);
        let n = r.map_len().map_err(describe)?;
        let (mut otype, mut ctype, mut clevel, mut csize) = (None, None, None, None);
        let (mut size, mut psize, mut olevel) = (None, None, None);
        for _ in 0..n {
            let key = r.bytes().map_err(describe)?;
            match key {
                b"type" => {
                    let t = r.bytes().map_err(describe)?;
                    match t {
                        [b] => otype = Some(*b),
                        _ => {
                            return Err(format!(
                                "type {:?} is not one letter",
                                String::from_utf8_lossy(t)
                            ))
                        }
                    }
                }
                b"ctype" => ctype = Some(r.uint(255, "ctype").map_err(describe)? as u8),
                b"clevel" => clevel = Some(r.uint(255, "clevel").map_err(describe)? as u8),
                b"csize" => csize = Some(r.uint(u64::MAX, "csize").map_err(describe)?),
                b"size" => size = Some(r.uint(u64::MAX, "size").map_err(describe)?),
                b"psize" => psize = Some(r.uint(u64::MAX, "psize").map_err(describe)?),
                b"olevel" => {
                    olevel = Some(match r.int().map_err(describe)? {
                        crate::format::msgpack::Int::U(v) => i64::try_from(v).unwrap_or(i64::MAX),
                        crate::format::msgpack::Int::I(v) => v,
                    })
                }
                _ => r.skip().map_err(describe)?,
            }
        }
        if r.position() != buf.len() {
            return Err(format!("{} bytes after the map", buf.len() - r.position()));
        }
        let missing = |k: &str| format!("no {k}");
        Ok(ObjMeta {
            otype: otype.ok_or_else(|| missing("type"))?,
            ctype: ctype.ok_or_else(|| missing("ctype"))?,
            clevel: clevel.ok_or_else(|| missing("clevel"))?,
            csize: csize.ok_or_else(|| missing("csize"))?,
            size,
            psize,
            olevel,
        })
    }
}

/// How a chunk is named in errors.
fn chunk(id: &ObjectId) -> String {
    format!("Chunk {}", hex::encode(id))
}

/// Reads and checks a blob's header: magic, version, and (with `whole`) sizes that add up to
/// exactly `blob.len()`, else at least to the end of the meta slot. `want` names the chunk
/// asked for, which the header must name too.
fn parse_header(blob: &[u8], want: Option<&ObjectId>, whole: bool) -> Result<Header> {
    let named = || want.map(chunk).unwrap_or_else(|| "Object".into());
    if blob.len() < BLOB_HEADER {
        return Err(Error::Integrity(format!(
            "{}: object too small: expected at least {BLOB_HEADER} header bytes, got {} bytes",
            named(),
            blob.len()
        )));
    }
    if &blob[..8] != BLOB_MAGIC {
        return Err(Error::Integrity(format!(
            "{}: no object header (no BORG_OBJ magic)",
            named()
        )));
    }
    if blob[8] != BLOB_VERSION {
        return Err(Error::Integrity(format!(
            "{}: unsupported object version {} (borg 2.0.0b25 writes {BLOB_VERSION})",
            named(),
            blob[8]
        )));
    }
    let mut id = [0u8; 32];
    id.copy_from_slice(&blob[9..41]);
    if let Some(want) = want {
        if !bool::from(want.ct_eq(&id)) {
            return Err(Error::Integrity(format!(
                "{}: the object's header names chunk {}",
                chunk(want),
                hex::encode(id)
            )));
        }
    }
    let u32le =
        |at: usize| u32::from_le_bytes([blob[at], blob[at + 1], blob[at + 2], blob[at + 3]]);
    let (meta_size, data_size) = (u32le(41) as usize, u32le(45) as usize);
    let expected = BLOB_HEADER as u64 + meta_size as u64 + if whole { data_size as u64 } else { 0 };
    let ok = if whole {
        expected == blob.len() as u64
    } else {
        expected <= blob.len() as u64
    };
    if !ok {
        return Err(Error::Integrity(format!(
            "{}: object size inconsistent: the header says {expected} bytes \
             (meta {meta_size}, data {data_size}), got {}",
            chunk(&id),
            blob.len()
        )));
    }
    Ok(Header {
        id,
        meta_size,
        data_size,
    })
}

impl Key {
    /// The AAD of a slot: the header's first 41 bytes and the slot's letter.
    pub(super) fn slot_aad(blob: &[u8], slot: u8) -> [u8; HEADER_AAD + 1] {
        let mut aad = [0u8; HEADER_AAD + 1];
        aad[..HEADER_AAD].copy_from_slice(&blob[..HEADER_AAD]);
        aad[HEADER_AAD] = slot;
        aad
    }

    /// Opens a blob's meta slot in place and decodes it.
    fn open_meta(&self, blob: &mut [u8], h: &Header) -> Result<ObjMeta> {
        let aad = Self::slot_aad(blob, b'M');
        let what = || format!("{} metadata slot", chunk(&h.id));
        let slot = &mut blob[BLOB_HEADER..BLOB_HEADER + h.meta_size];
        let r = self.open_envelope(&aad, &h.id, slot, &what)?;
        ObjMeta::decode(&slot[r])
            .map_err(|m| Error::Integrity(format!("{}: metadata: {m}", chunk(&h.id))))
    }

    /// Verifies and decodes a borg 2 repository object (a blob cut from a pack): header, meta
    /// slot, data slot, decompression by the metadata, and the id check. `id` is the chunk
    /// asked for (the header must name it; `None` takes the header's), `size_hint` the
    /// expected plaintext size where known (it only sizes buffers). Returns the object's type
    /// letter (`b'A'`, `b'C'`, `b'S'`, `b'F'`) and its plaintext; `blob` is decrypted in place.
    ///
    /// # Errors
    ///
    /// [`Error::Integrity`] for a malformed header, sizes that do not add up, an envelope of
    /// another suite, bad metadata or a failed id check; [`Error::MacFailed`] for a slot that
    /// does not authenticate; [`Error::Decompression`] / [`Error::NoMemory`] for the data.
    /// Each names the chunk.
    pub(crate) fn open_blob(
        &self,
        id: Option<&ObjectId>,
        mut blob: Vec<u8>,
        size_hint: Option<usize>,
    ) -> Result<(u8, Vec<u8>)> {
        if !self.ktype.is_borg2() {
            return Err(Error::Other(format!(
                "{}: a borg 1.x key cannot open a borg 2 object",
                id.map(chunk).unwrap_or_else(|| "Object".into())
            )));
        }
        let h = parse_header(&blob, id, true)?;
        let what = chunk(&h.id);
        let meta = self.open_meta(&mut blob, &h)?;
        let aad = Self::slot_aad(&blob, b'D');
        let start = BLOB_HEADER + h.meta_size;
        let slot = &mut blob[start..start + h.data_size];
        let r = self.open_envelope(&aad, &h.id, slot, &|| format!("{what} data slot"))?;
        let csize = r.len() as u64;
        if meta.csize != csize {
            return Err(Error::Integrity(format!(
                "{what}: metadata says csize {}, the data slot holds {csize} bytes",
                meta.csize
            )));
        }
        let psize = meta.psize.unwrap_or(csize);
        if psize > csize {
            return Err(Error::Integrity(format!(
                "{what}: metadata says psize {psize}, more than csize {csize}"
            )));
        }
        // The payload to the front of the buffer: no second buffer for stored (`none`) data.
        let from = start + r.start;
        blob.truncate(from + psize as usize);
        blob.drain(..from);
        let size = meta.size.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        let plain =
            compress::decompress_ctype(meta.ctype, blob, size, size_hint).map_err(|e| match e {
                Error::Decompression(m) => Error::Decompression(format!("{what}: {m}")),
                e => e,
            })?;
        if !bool::from(self.id_hash(&plain).ct_eq(&h.id)) {
            return Err(Error::Integrity(format!("{what}: id verification failed")));
        }
        Ok((meta.otype, plain))
    }

    /// The metadata of a borg 2 repository object without its data (borg's `parse_meta`):
    /// `prefix` holds at least the header and the meta slot (more is ignored, the data slot is
    /// not read). For a pack walk or `check`: it tells an object's type and sizes cheaply.
    ///
    /// # Errors
    ///
    /// As [`Key::open_blob`], for the header and the meta slot.
    pub(crate) fn open_blob_meta(&self, id: Option<&ObjectId>, prefix: &[u8]) -> Result<ObjMeta> {
        let h = parse_header(prefix, id, false)?;
        let mut head = prefix[..BLOB_HEADER + h.meta_size].to_vec();
        self.open_meta(&mut head, &h)
    }

    /// The AAD of a store object.
    pub(super) fn store_aad(&self, name: StoreName<'_>) -> Vec<u8> {
        let (tag, text) = match name {
            StoreName::Hashed(ns) => (b'h', ns),
            StoreName::Named(n) => (b'n', n),
        };
        let mut aad = STORE_AAD.to_vec();
        aad.extend_from_slice(&self.borg2.repository_id);
        aad.push(tag);
        aad.extend_from_slice(text.as_bytes());
        aad
    }

    /// Verifies (and decrypts) a store object's envelope: an index fragment, `cache/*`,
    /// `config/defaults`, a lock. `name` is how it is named in the AAD: a content-addressed
    /// object by its namespace, any other by its full name.
    ///
    /// # Errors
    ///
    /// [`Error::Integrity`] for a truncated envelope or one of another suite,
    /// [`Error::MacFailed`] when it does not authenticate (a wrong name, another repository).
    pub(crate) fn open_store_object(
        &self,
        name: StoreName<'_>,
        envelope: &[u8],
    ) -> Result<Vec<u8>> {
        let what = || match name {
            StoreName::Hashed(ns) => format!("Store object {ns}/…"),
            StoreName::Named(n) => format!("Store object {n}"),
        };
        if !self.ktype.is_borg2() {
            return Err(Error::Other(format!(
                "{}: a borg 1.x key cannot open a borg 2 store object",
                what()
            )));
        }
        let aad = self.store_aad(name);
        let mut buf = envelope.to_vec();
        let r = self.open_envelope(&aad, b"", &mut buf, &what)?;
        buf.truncate(r.end);
        buf.drain(..r.start);
        Ok(buf)
    }
}

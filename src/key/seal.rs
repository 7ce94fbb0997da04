//! Building borg 2 objects the way 2.0.0b25 writes them — repository objects (blobs), store
//! objects and key blobs — with the same crates that open them: for tests, fuzzing and benches.
//! Nothing here is used to write a repository.

use super::blob2::ALGORITHM;
use super::repoobj::{BLOB_MAGIC, BLOB_VERSION};
use super::{Key, ObjMeta, StoreName};
use crate::id::ObjectId;
use base64::Engine;
use chacha20poly1305::aead::generic_array::GenericArray;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use zeroize::Zeroizing;

impl Key {
    /// Builds a store object the way borg 2 writes one: for tests and fuzzing.
    pub(crate) fn seal_store_object(&self, name: StoreName<'_>, payload: &[u8]) -> Vec<u8> {
        self.seal_envelope(&self.store_aad(name), b"", payload, &[0x42; 24], 7)
    }

    /// Builds a blob the way borg 2 writes one, from packed metadata and stored data (the data
    /// slot is sealed first, with message counter `iv`, the meta slot with `iv + 1`): for tests
    /// and fuzzing.
    pub(crate) fn seal_blob(&self, id: &ObjectId, meta: &[u8], data: &[u8], iv: u64) -> Vec<u8> {
        let session = [0x24; 24];
        let mut head = BLOB_MAGIC.to_vec();
        head.push(BLOB_VERSION);
        head.extend_from_slice(id);
        let data_env = self.seal_envelope(&Self::slot_aad(&head, b'D'), id, data, &session, iv);
        let meta_env = self.seal_envelope(&Self::slot_aad(&head, b'M'), id, meta, &session, iv + 1);
        head.extend_from_slice(&(meta_env.len() as u32).to_le_bytes());
        head.extend_from_slice(&(data_env.len() as u32).to_le_bytes());
        head.extend_from_slice(&meta_env);
        head.extend_from_slice(&data_env);
        head
    }
}

/// Packs an object's metadata map as borg 2 writes it (str keys, in borg's order): for tests
/// and fuzzing.
pub(crate) fn pack_meta(m: &ObjMeta) -> Vec<u8> {
    let mut out = Vec::new();
    let n = 4 + u32::from(m.size.is_some()) + 2 * u32::from(m.psize.is_some());
    let _ = rmp::encode::write_map_len(&mut out, n);
    let _ = rmp::encode::write_str(&mut out, "type");
    let _ = rmp::encode::write_str(&mut out, std::str::from_utf8(&[m.otype]).unwrap_or("?"));
    if let Some(size) = m.size {
        let _ = rmp::encode::write_str(&mut out, "size");
        let _ = rmp::encode::write_uint(&mut out, size);
    }
    for (k, v) in [
        ("ctype", u64::from(m.ctype)),
        ("clevel", u64::from(m.clevel)),
        ("csize", m.csize),
    ] {
        let _ = rmp::encode::write_str(&mut out, k);
        let _ = rmp::encode::write_uint(&mut out, v);
    }
    if let Some(psize) = m.psize {
        let _ = rmp::encode::write_str(&mut out, "psize");
        let _ = rmp::encode::write_uint(&mut out, psize);
        let _ = rmp::encode::write_str(&mut out, "olevel");
        let _ = rmp::encode::write_sint(&mut out, m.olevel.unwrap_or(0));
    }
    out
}

impl Key {
    /// Compresses `plain` with `ctype` (0 none, 1 lz4, 3 zstd, 5 zlib, 2 lzma) and seals it as
    /// a blob of type `otype` with its id, metadata as borg 2 writes it (`size` left out when
    /// `with_size` is false, as `auto,X` does; `pad` zero bytes of obfuscation padding): for
    /// tests and fuzzing. Returns the id and the blob.
    pub(crate) fn seal_plain_blob(
        &self,
        otype: u8,
        plain: &[u8],
        ctype: u8,
        with_size: bool,
        pad: usize,
    ) -> (ObjectId, Vec<u8>) {
        use std::io::Write;
        let id = self.id_hash(plain);
        let mut data = match ctype {
            1 => lz4_flex::block::compress(plain),
            3 => zstd::bulk::compress(plain, 3).unwrap_or_default(),
            5 => {
                let mut z =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
                let _ = z.write_all(plain);
                z.finish().unwrap_or_default()
            }
            2 => {
                let mut x = xz2::write::XzEncoder::new(Vec::new(), 1);
                let _ = x.write_all(plain);
                x.finish().unwrap_or_default()
            }
            _ => plain.to_vec(),
        };
        let psize = data.len() as u64;
        data.resize(data.len() + pad, 0);
        let meta = ObjMeta {
            otype,
            ctype,
            clevel: if ctype == 0 || ctype == 1 { 255 } else { 3 },
            csize: data.len() as u64,
            size: with_size.then_some(plain.len() as u64),
            psize: (pad > 0).then_some(psize),
            olevel: (pad > 0).then_some(110),
        };
        (
            id,
            self.seal_blob(&id, &pack_meta(&meta), &data, 2 * plain.len() as u64),
        )
    }
}

/// Argon2 parameters for [`seal_key_blob`]: (time cost, memory KiB, lanes).
pub(crate) type Argon2Costs = (u32, u32, u32);

/// Builds a key blob (`BORG_KEY` line and wrapped base64) the way borg 2 writes one, holding
/// `key`'s material under `passphrase` with the given Argon2id costs (borg's are (3, 65536,
/// 4)): for tests and fuzzing.
#[cfg(test)]
pub(crate) fn seal_key_blob(
    key: &Key,
    passphrase: &str,
    costs: Argon2Costs,
    salt: [u8; 16],
) -> String {
    use zeroize::Zeroize;
    let b2 = &key.borg2;
    let mut plain = Vec::new();
    let _ = rmp::encode::write_map_len(&mut plain, 5);
    let _ = rmp::encode::write_str(&mut plain, "version");
    let _ = rmp::encode::write_uint(&mut plain, 2);
    for (k, v) in [
        ("repository_id", &b2.repository_id[..]),
        ("crypt_key", &b2.crypt_key[..]),
        ("id_key", &b2.id_key[..]),
    ] {
        let _ = rmp::encode::write_str(&mut plain, k);
        let _ = rmp::encode::write_bin(&mut plain, v);
    }
    let _ = rmp::encode::write_str(&mut plain, "chunk_seed");
    let _ = rmp::encode::write_sint(&mut plain, i64::from(b2.chunk_seed));
    let blob = seal_key_plain(&plain, passphrase, costs, salt);
    plain.zeroize();
    format!("{}\n{blob}\n", super::blob2::header(&b2.repository_id))
}

/// The wrapped base64 of an envelope around any `plain` key map: for tests and fuzzing.
pub(crate) fn seal_key_plain(
    plain: &[u8],
    passphrase: &str,
    costs: Argon2Costs,
    salt: [u8; 16],
) -> String {
    let (t, m, p) = costs;
    let mut kek = Zeroizing::new([0u8; 32]);
    let params = argon2::Params::new(m, t, p, Some(32)).unwrap_or_default();
    let mut memory = vec![argon2::Block::default(); params.block_count()];
    let _ = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into_with_memory(passphrase.as_bytes(), &salt, &mut *kek, &mut memory);
    let mut ct = plain.to_vec();
    let tag = chacha20poly1305::ChaCha20Poly1305::new(GenericArray::from_slice(&*kek))
        .encrypt_in_place_detached(GenericArray::from_slice(&[0u8; 12]), b"", &mut ct)
        .map(|t| t.to_vec())
        .unwrap_or_default();
    let mut env = Vec::new();
    let _ = rmp::encode::write_map_len(&mut env, 9);
    let strs = [("version", None), ("algorithm", Some(ALGORITHM))];
    for (k, v) in strs {
        let _ = rmp::encode::write_str(&mut env, k);
        match v {
            Some(s) => drop(rmp::encode::write_str(&mut env, s)),
            None => drop(rmp::encode::write_uint(&mut env, 1)),
        }
    }
    let _ = rmp::encode::write_str(&mut env, "salt");
    let _ = rmp::encode::write_bin(&mut env, &salt);
    for (k, v) in [
        ("argon2_time_cost", t),
        ("argon2_memory_cost", m),
        ("argon2_parallelism", p),
    ] {
        let _ = rmp::encode::write_str(&mut env, k);
        let _ = rmp::encode::write_uint(&mut env, u64::from(v));
    }
    let _ = rmp::encode::write_str(&mut env, "argon2_type");
    let _ = rmp::encode::write_str(&mut env, "id");
    let _ = rmp::encode::write_str(&mut env, "data");
    let _ = rmp::encode::write_bin(&mut env, &[&tag[..], &ct[..]].concat());
    let _ = rmp::encode::write_str(&mut env, "label");
    let _ = rmp::encode::write_str(&mut env, "admin");
    let b64 = base64::engine::general_purpose::STANDARD.encode(env);
    b64.as_bytes()
        .chunks(70)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

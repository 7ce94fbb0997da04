//! The primitives behind ids, MACs and decryption, as borg 1.x uses them: HMAC-SHA256 or
//! borg's BLAKE2b-256 prefix construction (several inputs hashed side by side with multi-buffer
//! SIMD), and AES-256-CTR; and borg 2's ids (HMAC-SHA256 or keyed BLAKE3). Nothing here is
//! hand-rolled: the hashes and ciphers are the `sha2`, `hmac`, `blake2b_simd`, `blake3` and
//! `aes`/`ctr` crates.

use super::{Key, KeyType};
use crate::id::ObjectId;
use aes::cipher::{KeyIvInit, StreamCipher};
use hmac::Mac;
use sha2::Digest;
use sha2::Sha256;

type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;
type HmacSha256 = hmac::Hmac<Sha256>;

impl Key {
    /// The id of a plaintext, as borg computes it for this key type.
    pub fn id_hash(&self, data: &[u8]) -> ObjectId {
        match self.ktype {
            KeyType::Plaintext => Sha256::digest(data).into(),
            k if k.is_blake3() => blake3::keyed_hash(&self.borg2.id_key, data).into(),
            k if k.is_borg2() => hmac_sha256(&self.borg2.id_key, data),
            k if k.is_blake2() => blake2_prefix(&self.secrets.id_key, &[data]),
            _ => {
                let mut m = <HmacSha256 as Mac>::new_from_slice(&self.secrets.id_key)
                    .expect("HMAC accepts any key length");
                m.update(data);
                m.finalize().into_bytes().into()
            }
        }
    }

    /// The MAC of an envelope body (IV and ciphertext).
    pub(super) fn mac(&self, data: &[u8]) -> [u8; 32] {
        if self.ktype.is_blake2() {
            blake2_prefix(&self.secrets.enc_hmac_key, &[data])
        } else {
            let mut m = <HmacSha256 as Mac>::new_from_slice(&self.secrets.enc_hmac_key)
                .expect("HMAC accepts any key length");
            m.update(data);
            m.finalize().into_bytes().into()
        }
    }

    /// AES-256-CTR with the envelope's 8-byte IV as the counter block's low half.
    pub(super) fn decrypt_in_place(&self, iv_low: &[u8], data: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[8..].copy_from_slice(iv_low);
        let mut cipher = Aes256Ctr::new(&self.secrets.enc_key.into(), &iv.into());
        cipher.apply_keystream(data);
    }

    /// The MACs of several envelope bodies (IV and ciphertext).
    pub(super) fn macs(&self, bodies: &[&[u8]]) -> Vec<[u8; 32]> {
        if self.ktype.is_blake2() {
            blake2_prefix_many(&self.secrets.enc_hmac_key, bodies)
        } else {
            bodies.iter().map(|b| self.mac(b)).collect()
        }
    }

    /// The ids of several plaintexts.
    pub(super) fn id_hashes(&self, texts: &[&[u8]]) -> Vec<ObjectId> {
        if self.ktype.is_blake2() {
            blake2_prefix_many(&self.secrets.id_key, texts)
        } else {
            texts.iter().map(|t| self.id_hash(t)).collect()
        }
    }
}

/// borg's BLAKE2b-256 construction: unkeyed BLAKE2b over `key ‖ data…` (not the keyed mode).
/// `blake2b_simd` (AVX2) is used on this hot path: about twice the `blake2` crate's speed.
fn blake2_prefix(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut h = blake2b_simd::Params::new().hash_length(32).to_state();
    h.update(key);
    for p in parts {
        h.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(h.finalize().as_bytes());
    out
}

/// [`blake2_prefix`] of several inputs with one key, hashed side by side (multi-buffer SIMD).
fn blake2_prefix_many(key: &[u8], inputs: &[&[u8]]) -> Vec<[u8; 32]> {
    if inputs.len() < 2 {
        return inputs.iter().map(|i| blake2_prefix(key, &[i])).collect();
    }
    let mut base = blake2b_simd::Params::new().hash_length(32).to_state();
    base.update(key);
    // Longest first keeps all SIMD lanes busy for longer (the implementation refills a lane
    // from the queue when an input is exhausted).
    let mut order: Vec<usize> = (0..inputs.len()).collect();
    order.sort_by_key(|i| std::cmp::Reverse(inputs[*i].len()));
    let mut states: Vec<blake2b_simd::State> = inputs.iter().map(|_| base.clone()).collect();
    blake2b_simd::many::update_many(states.iter_mut().zip(order.iter().map(|i| inputs[*i])));
    let mut out = vec![[0u8; 32]; inputs.len()];
    for (s, i) in states.iter_mut().zip(order) {
        out[i].copy_from_slice(s.finalize().as_bytes());
    }
    out
}

/// HMAC-SHA256 as a one-shot, shared with the key blob code.
pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

/// AES-256-CTR with an all-zero initial counter block (key blobs).
pub(crate) fn aes_ctr_zero_iv(key: &[u8; 32], data: &mut [u8]) {
    let mut cipher = Aes256Ctr::new(key.into(), &[0u8; 16].into());
    cipher.apply_keystream(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blake2_is_prefix_not_keyed() {
        // BLAKE2b-256 of 128 zero bytes followed by "abc" (unkeyed), computed independently.
        let got = blake2_prefix(&[0u8; 128], &[b"abc"]);
        let mut h = blake2::Blake2b::<blake2::digest::consts::U32>::new();
        h.update([0u8; 128]);
        h.update(b"abc");
        assert_eq!(got, <[u8; 32]>::from(h.finalize()));
    }
}

//! borg 2's envelopes: what wraps every slot of a repository object and every store object.
//!
//! AEAD suites (0x10–0x40):
//!
//! ```text
//! type:1 ‖ 0x00 ‖ iv:6 (BE) ‖ session_id:24 ‖ tag:16 ‖ ciphertext
//! key   = SHA-256(crypt_key ‖ session_id ‖ "borg-session-key-" ‖ "AES256_OCB" | "CHACHA20_POLY1305")
//! nonce = 00 00 00 00 00 00 ‖ iv
//! AD    = aad ‖ id ‖ envelope[0:32]
//! ```
//!
//! MAC suites (0x50, 0x60): `type:1 ‖ 0x00 ‖ tag:32 ‖ payload`, the tag being HMAC-SHA256 or
//! keyed BLAKE3 under SHA-256(crypt_key ‖ domain) over `envelope[0:2] ‖ u16be(len(aad ‖ id)) ‖
//! aad ‖ id ‖ payload`.
//!
//! The tag comes *before* the ciphertext, so the AEADs are used through their detached-tag
//! in-place API: nothing is copied. Session keys are derived per envelope (one SHA-256 over
//! about 120 bytes, well under a microsecond: cheaper than a lock around a cache would be when
//! the objects of a read are opened on several threads). Nothing is hand-rolled: `sha2`,
//! `hmac`, `blake3`, `chacha20poly1305` and `ocb3` (over `aes`) do the work.

use super::{Key, KeyType};
use crate::error::{Error, Result};
use chacha20poly1305::aead::generic_array::GenericArray;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use hmac::Mac;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

type Aes256Ocb = ocb3::Ocb3<aes::Aes256>;
type HmacSha256 = hmac::Hmac<Sha256>;

/// Bytes an AEAD envelope adds: type, reserved, iv, session id, tag.
pub(crate) const AEAD_OVERHEAD: usize = 1 + 1 + 6 + 24 + 16;
/// Bytes a MAC envelope adds: type, reserved, tag.
pub(crate) const MAC_OVERHEAD: usize = 1 + 1 + 32;
/// The part of an AEAD envelope that is authenticated as associated data.
const AEAD_HEADER: usize = 32;

/// SHA-256 over the concatenation of `crypt_key` and `parts`: borg 2's `derive_key`.
pub(super) fn derive_key(crypt_key: &[u8; 64], parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(crypt_key);
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The domain of the tag key of a MAC suite; `None` for the others.
pub(super) fn mac_domain(ktype: KeyType) -> Option<&'static [u8]> {
    match ktype {
        KeyType::AuthenticatedSha256 => Some(b"borg-repoobj-mac-hmac-sha256"),
        KeyType::AuthenticatedBlake3 => Some(b"borg-repoobj-mac-blake3"),
        _ => None,
    }
}

/// The cipher name that ends the session-key domain of an AEAD suite.
fn cipher_name(ktype: KeyType) -> &'static [u8] {
    match ktype {
        KeyType::Aes256OcbSha256 | KeyType::Aes256OcbBlake3 => b"AES256_OCB",
        _ => b"CHACHA20_POLY1305",
    }
}

impl Key {
    /// Bytes this key's envelope adds to a payload (48 AEAD, 34 MAC, 0 for borg 1.x keys).
    pub(crate) fn envelope_overhead(&self) -> usize {
        if self.ktype.is_aead() {
            AEAD_OVERHEAD
        } else if mac_domain(self.ktype).is_some() {
            MAC_OVERHEAD
        } else {
            0
        }
    }

    /// The session key of `session_id`.
    fn session_key(&self, session_id: &[u8]) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(derive_key(
            &self.borg2.crypt_key,
            &[session_id, b"borg-session-key-", cipher_name(self.ktype)],
        ))
    }

    /// The tag of a MAC envelope: over its first two bytes, the length-prefixed `aad ‖ id`,
    /// and the payload. `None` when `aad ‖ id` is too long to be length-prefixed.
    fn mac_tag(&self, head: &[u8], aad: &[u8], id: &[u8], payload: &[u8]) -> Option<[u8; 32]> {
        let len = u16::try_from(aad.len() + id.len()).ok()?.to_be_bytes();
        let key = &self.borg2.tag_key;
        Some(if self.ktype == KeyType::AuthenticatedBlake3 {
            let mut h = blake3::Hasher::new_keyed(key);
            for p in [head, &len, aad, id, payload] {
                h.update(p);
            }
            h.finalize().into()
        } else {
            let mut m =
                <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
            for p in [head, &len, aad, id, payload] {
                m.update(p);
            }
            m.finalize().into_bytes().into()
        })
    }

    /// Opens one envelope in place: checks its type byte and authenticates it with `aad ‖ id`,
    /// decrypting an AEAD payload where it lies. Returns where the payload is in `env`. `what`
    /// names the envelope in errors ("Chunk <id> data slot").
    ///
    /// # Errors
    ///
    /// [`Error::Integrity`] for an envelope too short or of another suite,
    /// [`Error::MacFailed`] when it does not authenticate.
    pub(super) fn open_envelope(
        &self,
        aad: &[u8],
        id: &[u8],
        env: &mut [u8],
        what: &dyn Fn() -> String,
    ) -> Result<std::ops::Range<usize>> {
        let overhead = self.envelope_overhead();
        if overhead == 0 {
            return Err(Error::Other(format!(
                "{}: a borg 1.x key cannot open a borg 2 envelope",
                what()
            )));
        }
        if env.len() < overhead {
            return Err(Error::Integrity(format!(
                "{}: truncated envelope ({} bytes, at least {overhead} expected)",
                what(),
                env.len()
            )));
        }
        if env[0] != self.ktype.byte() {
            let found = KeyType::from_byte(env[0])
                .map(|k| format!(" ({})", k.mode_name()))
                .unwrap_or_default();
            return Err(Error::Integrity(format!(
                "{}: envelope of type 0x{:02x}{found}, but this repository's is 0x{:02x} ({}, {})",
                what(),
                env[0],
                self.ktype.byte(),
                self.ktype.mode_name(),
                self.ktype.id_hash_name()
            )));
        }
        if !self.ktype.is_aead() {
            let (head, payload) = env.split_at(MAC_OVERHEAD);
            let ok = self
                .mac_tag(&head[..2], aad, id, payload)
                .is_some_and(|tag| bool::from(tag.ct_eq(&head[2..])));
            return if ok {
                Ok(MAC_OVERHEAD..env.len())
            } else {
                Err(Error::MacFailed(what()))
            };
        }
        let (head, ct) = env.split_at_mut(AEAD_OVERHEAD);
        let mut ad = Vec::with_capacity(aad.len() + id.len() + AEAD_HEADER);
        ad.extend_from_slice(aad);
        ad.extend_from_slice(id);
        ad.extend_from_slice(&head[..AEAD_HEADER]);
        let mut nonce = [0u8; 12];
        nonce[6..].copy_from_slice(&head[2..8]);
        let key = self.session_key(&head[8..32]);
        let tag = GenericArray::from_slice(&head[AEAD_HEADER..]);
        let nonce = GenericArray::from_slice(&nonce);
        let opened = match self.ktype {
            KeyType::Aes256OcbSha256 | KeyType::Aes256OcbBlake3 => {
                Aes256Ocb::new(GenericArray::from_slice(&*key))
                    .decrypt_in_place_detached(nonce, &ad, ct, tag)
            }
            _ => chacha20poly1305::ChaCha20Poly1305::new(GenericArray::from_slice(&*key))
                .decrypt_in_place_detached(nonce, &ad, ct, tag),
        };
        match opened {
            Ok(()) => Ok(AEAD_OVERHEAD..env.len()),
            Err(_) => Err(Error::MacFailed(what())),
        }
    }

    /// Builds an envelope the way borg 2 writes one (session `session_id`, message counter
    /// `iv`; both ignored by the MAC suites): for tests and fuzzing.
    pub(crate) fn seal_envelope(
        &self,
        aad: &[u8],
        id: &[u8],
        payload: &[u8],
        session_id: &[u8; 24],
        iv: u64,
    ) -> Vec<u8> {
        let mut env = vec![self.ktype.byte(), 0];
        if !self.ktype.is_aead() {
            let tag = self.mac_tag(&env[..2], aad, id, payload).unwrap_or([0; 32]);
            env.extend_from_slice(&tag);
            env.extend_from_slice(payload);
            return env;
        }
        env.extend_from_slice(&iv.to_be_bytes()[2..]);
        env.extend_from_slice(session_id);
        let mut ad = aad.to_vec();
        ad.extend_from_slice(id);
        ad.extend_from_slice(&env);
        let mut nonce = [0u8; 12];
        nonce[6..].copy_from_slice(&env[2..8]);
        let nonce = GenericArray::from_slice(&nonce);
        let key = self.session_key(session_id);
        let mut body = payload.to_vec();
        let tag = match self.ktype {
            KeyType::Aes256OcbSha256 | KeyType::Aes256OcbBlake3 => {
                Aes256Ocb::new(GenericArray::from_slice(&*key))
                    .encrypt_in_place_detached(nonce, &ad, &mut body)
            }
            _ => chacha20poly1305::ChaCha20Poly1305::new(GenericArray::from_slice(&*key))
                .encrypt_in_place_detached(nonce, &ad, &mut body),
        }
        .map(|t| t.to_vec())
        .unwrap_or_default();
        env.extend_from_slice(&tag);
        env.extend_from_slice(&body);
        env
    }
}

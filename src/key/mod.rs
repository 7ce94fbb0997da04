//! Keys, ids and the object envelope: MAC → decrypt → decompress → id check.
//!
//! [`Key`] holds the key material of one repository (zeroized on drop, never printed) and turns
//! stored objects into verified plaintext with [`Key::open_object`]. Where the key blob comes
//! from (config, key file, `load_key`) and how the passphrase is obtained live in [`blob`] and
//! [`passphrase`]; manifest and archive authentication in [`tam`].
//!
//! Both generations of borg are here. borg 1.x: type bytes 0x00–0x07, AES-CTR + HMAC/BLAKE2b
//! envelopes around a compression-headed payload. borg 2.0.0b25 ("repository version 5"):
//! type bytes 0x10–0x60 ([`KeyType::is_borg2`]), Argon2id-protected key blobs ([`blob2`]), and
//! repository objects ("blobs": a 49-byte header, an encrypted metadata slot and an encrypted
//! data slot) opened by the same [`Key::open_objects`].
//!
//! Layout: this file holds [`KeyType`] and [`Key`] (its construction and accessors); `crypto`
//! the primitives (ids, MACs, AES-CTR, borg's BLAKE2b construction, side by side for a group);
//! `open` the envelope checks and the opening of one object or a group ([`Sealed`]); `envelope`
//! borg 2's AEAD and MAC envelopes; `repoobj` borg 2's repository objects and store objects;
//! [`blob2`] borg 2's key blobs; `seal` builds all three as b25 does, for tests, fuzzing and
//! benches.

pub mod blob;
pub mod blob2;
mod crypto;
mod envelope;
mod open;
pub mod passphrase;
pub mod tam;

pub(crate) use crypto::{aes_ctr_zero_iv, hmac_sha256};
pub use open::Sealed;
pub(crate) use repoobj::{ObjMeta, StoreName};
pub(crate) use seal::pack_meta;

mod repoobj;
mod seal;
#[cfg(test)]
mod tests_keyblob2;
#[cfg(test)]
mod tests_objects2;
#[cfg(test)]
mod vectors;

use crate::error::{Error, Result};
use crate::id::ObjectId;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The key type byte that starts every object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// `keyfile` (0x00).
    Keyfile,
    /// legacy `passphrase` mode (0x01), from borg < 1.0.
    Passphrase,
    /// `none` (0x02).
    Plaintext,
    /// `repokey` (0x03).
    Repokey,
    /// `keyfile-blake2` (0x04).
    Blake2Keyfile,
    /// `repokey-blake2` (0x05).
    Blake2Repokey,
    /// `authenticated-blake2` (0x06).
    Blake2Authenticated,
    /// `authenticated` (0x07).
    Authenticated,
    /// borg 2 `aes256-ocb` with `sha256` ids (0x10): AES-256-OCB envelopes, HMAC-SHA256 ids.
    Aes256OcbSha256,
    /// borg 2 `chacha20-poly1305` with `sha256` ids (0x20): ChaCha20-Poly1305 envelopes,
    /// HMAC-SHA256 ids.
    ChaCha20Poly1305Sha256,
    /// borg 2 `aes256-ocb` with `blake3` ids (0x30): AES-256-OCB envelopes, keyed BLAKE3 ids.
    Aes256OcbBlake3,
    /// borg 2 `chacha20-poly1305` with `blake3` ids (0x40): ChaCha20-Poly1305 envelopes, keyed
    /// BLAKE3 ids.
    ChaCha20Poly1305Blake3,
    /// borg 2 `authenticated-sha256` (0x50): objects in clear, HMAC-SHA256 tags and ids.
    AuthenticatedSha256,
    /// borg 2 `authenticated-blake3` (0x60): objects in clear, keyed BLAKE3 tags and ids.
    AuthenticatedBlake3,
}

/// The borg 2 suites: type, config `encryption`, config `id_hash`.
const BORG2_SUITES: [(KeyType, &str, &str); 6] = [
    (KeyType::Aes256OcbSha256, "aes256-ocb", "sha256"),
    (
        KeyType::ChaCha20Poly1305Sha256,
        "chacha20-poly1305",
        "sha256",
    ),
    (KeyType::Aes256OcbBlake3, "aes256-ocb", "blake3"),
    (
        KeyType::ChaCha20Poly1305Blake3,
        "chacha20-poly1305",
        "blake3",
    ),
    (
        KeyType::AuthenticatedSha256,
        "authenticated-sha256",
        "sha256",
    ),
    (
        KeyType::AuthenticatedBlake3,
        "authenticated-blake3",
        "blake3",
    ),
];

impl KeyType {
    /// Decodes a type byte (borg 1.x's and borg 2's); unknown types are
    /// [`Error::UnsupportedPayload`].
    pub(crate) fn from_byte(b: u8) -> Result<KeyType> {
        Ok(match b {
            0x00 => KeyType::Keyfile,
            0x01 => KeyType::Passphrase,
            0x02 => KeyType::Plaintext,
            0x03 => KeyType::Repokey,
            0x04 => KeyType::Blake2Keyfile,
            0x05 => KeyType::Blake2Repokey,
            0x06 => KeyType::Blake2Authenticated,
            0x07 => KeyType::Authenticated,
            0x10 => KeyType::Aes256OcbSha256,
            0x20 => KeyType::ChaCha20Poly1305Sha256,
            0x30 => KeyType::Aes256OcbBlake3,
            0x40 => KeyType::ChaCha20Poly1305Blake3,
            0x50 => KeyType::AuthenticatedSha256,
            0x60 => KeyType::AuthenticatedBlake3,
            other => return Err(Error::UnsupportedPayload(other)),
        })
    }

    /// The type byte.
    pub fn byte(self) -> u8 {
        match self {
            KeyType::Keyfile => 0x00,
            KeyType::Passphrase => 0x01,
            KeyType::Plaintext => 0x02,
            KeyType::Repokey => 0x03,
            KeyType::Blake2Keyfile => 0x04,
            KeyType::Blake2Repokey => 0x05,
            KeyType::Blake2Authenticated => 0x06,
            KeyType::Authenticated => 0x07,
            KeyType::Aes256OcbSha256 => 0x10,
            KeyType::ChaCha20Poly1305Sha256 => 0x20,
            KeyType::Aes256OcbBlake3 => 0x30,
            KeyType::ChaCha20Poly1305Blake3 => 0x40,
            KeyType::AuthenticatedSha256 => 0x50,
            KeyType::AuthenticatedBlake3 => 0x60,
        }
    }

    /// The mode name as `borg init -e` and `borg info --json` spell it. For borg 2 the
    /// encryption as `borg repo-create -e`, the repository config's `encryption` and b25's
    /// `borg repo-info --json` (`encryption.encryption`; it has no `mode`) spell it: the id hash
    /// is not part of it (see [`KeyType::id_hash_name`]).
    pub fn mode_name(self) -> &'static str {
        match self {
            KeyType::Keyfile => "keyfile",
            KeyType::Passphrase => "passphrase",
            KeyType::Plaintext => "none",
            KeyType::Repokey => "repokey",
            KeyType::Blake2Keyfile => "keyfile-blake2",
            KeyType::Blake2Repokey => "repokey-blake2",
            KeyType::Blake2Authenticated => "authenticated-blake2",
            KeyType::Authenticated => "authenticated",
            KeyType::Aes256OcbSha256 | KeyType::Aes256OcbBlake3 => "aes256-ocb",
            KeyType::ChaCha20Poly1305Sha256 | KeyType::ChaCha20Poly1305Blake3 => {
                "chacha20-poly1305"
            }
            KeyType::AuthenticatedSha256 => "authenticated-sha256",
            KeyType::AuthenticatedBlake3 => "authenticated-blake3",
        }
    }

    /// The id hash as borg 2 names it (`borg repo-create -i`, the config's `id_hash`, b25's
    /// `borg repo-info --json` `encryption.id_hash`): `sha256` (HMAC-SHA256, or plain SHA-256
    /// for 1.x `none`), `blake3` (keyed BLAKE3), or `blake2` for borg 1.x's BLAKE2b keys.
    pub fn id_hash_name(self) -> &'static str {
        if self.is_blake2() {
            "blake2"
        } else if self.is_blake3() {
            "blake3"
        } else {
            "sha256"
        }
    }

    /// A borg 2.0.0b25 suite (type bytes 0x10–0x60).
    pub fn is_borg2(self) -> bool {
        self.byte() >= 0x10
    }

    /// The borg 2 suite named by a repository's `config/config` (`encryption`, `id_hash`).
    ///
    /// # Errors
    ///
    /// [`Error::MandatoryFeatureUnsupported`] naming both values when no b25 suite has them.
    pub(crate) fn from_borg2_config(encryption: &str, id_hash: &str) -> Result<KeyType> {
        BORG2_SUITES
            .iter()
            .find(|(_, e, i)| *e == encryption && *i == id_hash)
            .map(|(k, _, _)| *k)
            .ok_or_else(|| {
                Error::MandatoryFeatureUnsupported(format!(
                    "crypto suite: encryption \"{encryption}\", id hash \"{id_hash}\" (borg \
                     2.0.0b25 has aes256-ocb or chacha20-poly1305 with sha256 or blake3, \
                     authenticated-sha256 and authenticated-blake3)"
                ))
            })
    }

    /// Objects are encrypted: AES-CTR and a MAC (borg 1.x), or an AEAD cipher (borg 2).
    pub fn is_encrypted(self) -> bool {
        matches!(
            self,
            KeyType::Keyfile
                | KeyType::Passphrase
                | KeyType::Repokey
                | KeyType::Blake2Keyfile
                | KeyType::Blake2Repokey
        ) || self.is_aead()
    }

    /// borg 2 AEAD suites (AES-256-OCB or ChaCha20-Poly1305).
    pub(crate) fn is_aead(self) -> bool {
        matches!(
            self,
            KeyType::Aes256OcbSha256
                | KeyType::ChaCha20Poly1305Sha256
                | KeyType::Aes256OcbBlake3
                | KeyType::ChaCha20Poly1305Blake3
        )
    }

    /// borg 2 suites whose ids (and, for `authenticated-blake3`, tags) are keyed BLAKE3.
    pub fn is_blake3(self) -> bool {
        matches!(
            self,
            KeyType::Aes256OcbBlake3
                | KeyType::ChaCha20Poly1305Blake3
                | KeyType::AuthenticatedBlake3
        )
    }

    /// Ids and MACs use borg's BLAKE2b-256 prefix construction.
    pub fn is_blake2(self) -> bool {
        matches!(
            self,
            KeyType::Blake2Keyfile | KeyType::Blake2Repokey | KeyType::Blake2Authenticated
        )
    }

    /// The key blob lives in a local key file (borg 1.x; a borg 2 type does not say where its
    /// key is: see [`Key::origin`]).
    pub fn is_keyfile(self) -> bool {
        matches!(self, KeyType::Keyfile | KeyType::Blake2Keyfile)
    }

    /// The key blob lives in the repository config (borg 1.x; false for borg 2 types).
    pub fn is_repokey(self) -> bool {
        matches!(
            self,
            KeyType::Repokey
                | KeyType::Blake2Repokey
                | KeyType::Blake2Authenticated
                | KeyType::Authenticated
        )
    }

    /// Does an object with type byte `b` belong to a repository of this type?
    fn accepts(self, b: u8) -> bool {
        b == self.byte() || (self == KeyType::Repokey && b == KeyType::Passphrase.byte())
    }
}

/// Secret key material of one repository.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct Secrets {
    pub enc_key: [u8; 32],
    pub enc_hmac_key: Vec<u8>,
    pub id_key: Vec<u8>,
}

/// borg 2 key material (all zero in a borg 1.x key, whose [`Secrets`] are empty in turn in a
/// borg 2 key).
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct Borg2Secrets {
    /// The AEAD/MAC master key: session keys and the MAC key derive from it.
    pub crypt_key: [u8; 64],
    /// The id hash key (HMAC-SHA256 or keyed BLAKE3).
    pub id_key: [u8; 32],
    /// The repository id the key was made for (store-object AAD).
    pub repository_id: [u8; 32],
    /// `authenticated-*`: the tag key, SHA-256(crypt_key ‖ domain).
    pub tag_key: [u8; 32],
    /// The buzhash chunker seed (kept for completeness; reading does not chunk).
    pub chunk_seed: i32,
}

impl Borg2Secrets {
    fn zero() -> Borg2Secrets {
        Borg2Secrets {
            crypt_key: [0; 64],
            id_key: [0; 32],
            repository_id: [0; 32],
            tag_key: [0; 32],
            chunk_seed: 0,
        }
    }
}

/// The key of an opened repository. Zeroized on drop; `Debug` shows no secrets.
pub struct Key {
    ktype: KeyType,
    secrets: Secrets,
    borg2: Borg2Secrets,
    tam_required: bool,
    /// Where the key came from, for messages ("key file /x", "repository config").
    pub(crate) origin: String,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("type", &self.ktype)
            .field("tam_required", &self.tam_required)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// The key of a `none` repository.
    pub fn plaintext() -> Key {
        Key {
            ktype: KeyType::Plaintext,
            secrets: Secrets {
                enc_key: [0; 32],
                enc_hmac_key: Vec::new(),
                id_key: Vec::new(),
            },
            borg2: Borg2Secrets::zero(),
            tam_required: false,
            origin: String::new(),
        }
    }

    pub(crate) fn from_secrets(
        ktype: KeyType,
        secrets: Secrets,
        tam_required: bool,
        origin: String,
    ) -> Result<Key> {
        if ktype.is_borg2() {
            return Err(Error::UnsupportedPayload(ktype.byte()));
        }
        let want = if ktype.is_blake2() { 128 } else { 32 };
        if secrets.id_key.len() != want || secrets.enc_hmac_key.len() != want {
            return Err(Error::Integrity(format!(
                "key material has the wrong size for a {} key",
                ktype.mode_name()
            )));
        }
        Ok(Key {
            ktype,
            secrets,
            borg2: Borg2Secrets::zero(),
            tam_required,
            origin,
        })
    }

    /// A borg 2 key from its decrypted material: `crypt_key` 64 bytes, `id_key` 32 bytes.
    ///
    /// # Errors
    ///
    /// `ktype` not a borg 2 type, or material of the wrong size.
    pub(crate) fn from_borg2(
        ktype: KeyType,
        crypt_key: &[u8],
        id_key: &[u8],
        repository_id: &ObjectId,
        chunk_seed: i32,
        origin: String,
    ) -> Result<Key> {
        if !ktype.is_borg2() {
            return Err(Error::Other(format!(
                "{:?} is not a borg 2 key type",
                ktype
            )));
        }
        let mut b2 = Borg2Secrets::zero();
        if crypt_key.len() != b2.crypt_key.len() || id_key.len() != b2.id_key.len() {
            return Err(Error::Integrity(format!(
                "key material has the wrong size for a borg 2 {} key (crypt_key {} bytes, \
                 id_key {} bytes; 64 and 32 expected)",
                ktype.mode_name(),
                crypt_key.len(),
                id_key.len()
            )));
        }
        b2.crypt_key.copy_from_slice(crypt_key);
        b2.id_key.copy_from_slice(id_key);
        b2.repository_id = *repository_id;
        b2.chunk_seed = chunk_seed;
        if let Some(domain) = envelope::mac_domain(ktype) {
            b2.tag_key = envelope::derive_key(&b2.crypt_key, &[domain]);
        }
        Ok(Key {
            ktype,
            secrets: Secrets {
                enc_key: [0; 32],
                enc_hmac_key: Vec::new(),
                id_key: Vec::new(),
            },
            borg2: b2,
            tam_required: false,
            origin,
        })
    }

    /// The id of the repository a borg 2 key was made for (from the decrypted key); `None` for
    /// a borg 1.x key. (The store's `config/config` names the repository; this is for tests.)
    #[cfg(test)]
    pub(crate) fn repository_id(&self) -> Option<ObjectId> {
        self.ktype.is_borg2().then_some(self.borg2.repository_id)
    }

    /// The key type.
    pub fn key_type(&self) -> KeyType {
        self.ktype
    }

    /// Where the key came from: a key file path, "repository config" (borg 1.x repokey),
    /// "repository" (a borg 2 repokey), or "" for `none`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Does this key demand an authenticated manifest?
    pub fn tam_required(&self) -> bool {
        self.tam_required
    }

    /// The input key material of TAM (`id_key ‖ enc_key ‖ enc_hmac_key`).
    pub(crate) fn tam_ikm(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let s = &self.secrets;
        let mut v = Vec::with_capacity(s.id_key.len() + 32 + s.enc_hmac_key.len());
        v.extend_from_slice(&s.id_key);
        v.extend_from_slice(&s.enc_key);
        v.extend_from_slice(&s.enc_hmac_key);
        zeroize::Zeroizing::new(v)
    }
}

impl Key {
    /// A key of type `ktype` with fixed, publicly known secrets: for tests and fuzzing only.
    pub(crate) fn fixed_for_tests(ktype: KeyType) -> Key {
        let n = if ktype.is_blake2() { 128 } else { 32 };
        Key {
            ktype,
            secrets: Secrets {
                enc_key: [7; 32],
                enc_hmac_key: vec![8; n],
                id_key: vec![9; n],
            },
            borg2: Borg2Secrets::zero(),
            tam_required: true,
            origin: "test".into(),
        }
    }

    /// A borg 2 key of type `ktype` with fixed, publicly known secrets, made for the repository
    /// `repo_id`: for tests and fuzzing only.
    pub(crate) fn fixed_borg2_for_tests(ktype: KeyType, repo_id: ObjectId) -> Key {
        let crypt_key: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
        let id_key: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(11) ^ 0xa5).collect();
        match Key::from_borg2(ktype, &crypt_key, &id_key, &repo_id, 0, "test".into()) {
            Ok(k) => k,
            // Only a borg 1.x type gets here: a borg 2 test key with 1.x test secrets.
            Err(_) => Key::fixed_for_tests(ktype),
        }
    }

    /// Builds an object the way borg writes one (type byte, then MAC and IV when encrypted):
    /// for tests and fuzzing.
    pub(crate) fn seal(&self, payload: &[u8], iv: u64) -> Vec<u8> {
        let mut obj = vec![self.ktype.byte()];
        if !self.ktype.is_encrypted() {
            obj.extend_from_slice(payload);
            return obj;
        }
        let mut body = iv.to_be_bytes().to_vec();
        body.extend_from_slice(payload);
        self.decrypt_in_place(&iv.to_be_bytes(), &mut body[8..]);
        let mac = self.mac(&body);
        obj.extend_from_slice(&mac);
        obj.extend_from_slice(&body);
        obj
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn seal(key: &Key, payload: &[u8], iv: u64) -> Vec<u8> {
        key.seal(payload, iv)
    }

    pub(crate) fn test_key(ktype: KeyType) -> Key {
        Key::fixed_for_tests(ktype)
    }
}

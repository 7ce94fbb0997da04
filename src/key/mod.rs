//! Keys, ids and the object envelope: MAC → decrypt → decompress → id check.
//!
//! [`Key`] holds the key material of one repository (zeroized on drop, never printed) and turns
//! stored objects into verified plaintext with [`Key::open_object`]. Where the key blob comes
//! from (config, key file, `load_key`) and how the passphrase is obtained live in [`blob`] and
//! [`passphrase`]; manifest and archive authentication in [`tam`].
//!
//! Layout: this file holds [`KeyType`] and [`Key`] (its construction and accessors); `crypto`
//! the primitives (ids, MACs, AES-CTR, borg's BLAKE2b construction, side by side for a group);
//! `open` the envelope checks and the opening of one object or a group ([`Sealed`]).

pub mod blob;
mod crypto;
mod open;
pub mod passphrase;
pub mod tam;

pub(crate) use crypto::{aes_ctr_zero_iv, hmac_sha256};
pub use open::Sealed;

use crate::error::{Error, Result};
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
}

impl KeyType {
    /// Decodes a type byte; borg 2 and unknown types are [`Error::UnsupportedPayload`].
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
        }
    }

    /// The mode name as `borg init -e` and `borg info --json` spell it.
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
        }
    }

    /// Objects are AES-CTR encrypted and MAC'd.
    pub fn is_encrypted(self) -> bool {
        matches!(
            self,
            KeyType::Keyfile
                | KeyType::Passphrase
                | KeyType::Repokey
                | KeyType::Blake2Keyfile
                | KeyType::Blake2Repokey
        )
    }

    /// Ids and MACs use borg's BLAKE2b-256 prefix construction.
    pub fn is_blake2(self) -> bool {
        matches!(
            self,
            KeyType::Blake2Keyfile | KeyType::Blake2Repokey | KeyType::Blake2Authenticated
        )
    }

    /// The key blob lives in a local key file.
    pub fn is_keyfile(self) -> bool {
        matches!(self, KeyType::Keyfile | KeyType::Blake2Keyfile)
    }

    /// The key blob lives in the repository config.
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

/// The key of an opened repository. Zeroized on drop; `Debug` shows no secrets.
pub struct Key {
    ktype: KeyType,
    secrets: Secrets,
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
            tam_required,
            origin,
        })
    }

    /// The key type.
    pub fn key_type(&self) -> KeyType {
        self.ktype
    }

    /// Where the key came from: a key file path, "repository config", or "" for `none`.
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
            tam_required: true,
            origin: "test".into(),
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

//! Keys, ids and the object envelope: MAC → decrypt → decompress → id check.
//!
//! [`Key`] holds the key material of one repository (zeroized on drop, never printed) and turns
//! stored objects into verified plaintext with [`Key::open_object`]. Where the key blob comes
//! from (config, key file, `load_key`) and how the passphrase is obtained live in [`blob`] and
//! [`passphrase`]; manifest and archive authentication in [`tam`].

pub mod blob;
pub mod passphrase;
pub mod tam;

use crate::compress;
use crate::error::{Error, Result};
use crate::id::ObjectId;
use aes::cipher::{KeyIvInit, StreamCipher};
use hmac::Mac;
use sha2::Digest;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;
type HmacSha256 = hmac::Hmac<Sha256>;

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
    pub fn from_byte(b: u8) -> Result<KeyType> {
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

/// A stored object handed to [`Key::open_objects`].
#[derive(Debug, Clone, Default)]
pub struct Sealed {
    /// The id the plaintext must hash to (`None` for the manifest, which has no content id).
    pub id: Option<ObjectId>,
    /// The stored bytes; consumed (decrypted in place) by [`Key::open_objects`].
    pub data: Vec<u8>,
    /// The expected plaintext size, where known (it only sizes buffers).
    pub size_hint: Option<usize>,
}

/// Length of the encrypted envelope header: type, MAC, IV.
const ENVELOPE_HEADER: usize = 1 + 32 + 8;

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

    /// The id of a plaintext, as borg computes it for this key type.
    pub fn id_hash(&self, data: &[u8]) -> ObjectId {
        match self.ktype {
            KeyType::Plaintext => Sha256::digest(data).into(),
            k if k.is_blake2() => blake2_prefix(&self.secrets.id_key, &[data]),
            _ => {
                let mut m = <HmacSha256 as Mac>::new_from_slice(&self.secrets.id_key)
                    .expect("HMAC accepts any key length");
                m.update(data);
                m.finalize().into_bytes().into()
            }
        }
    }

    fn mac(&self, data: &[u8]) -> [u8; 32] {
        if self.ktype.is_blake2() {
            blake2_prefix(&self.secrets.enc_hmac_key, &[data])
        } else {
            let mut m = <HmacSha256 as Mac>::new_from_slice(&self.secrets.enc_hmac_key)
                .expect("HMAC accepts any key length");
            m.update(data);
            m.finalize().into_bytes().into()
        }
    }

    /// Verifies and decrypts an object's envelope, returning the compressed payload.
    ///
    /// `what` names the object in errors (its id, or "manifest").
    pub fn decrypt(&self, what: &str, obj: &[u8]) -> Result<Vec<u8>> {
        self.check_envelope(obj, &|| what.to_string())?;
        if !self.ktype.is_encrypted() {
            return Ok(obj[1..].to_vec());
        }
        let mac = self.mac(&obj[33..]);
        if !bool::from(mac.ct_eq(&obj[1..33])) {
            return Err(Error::MacFailed(what.to_string()));
        }
        let mut out = obj[41..].to_vec();
        self.decrypt_in_place(&obj[33..41], &mut out);
        Ok(out)
    }

    /// AES-256-CTR with the envelope's 8-byte IV as the counter block's low half.
    fn decrypt_in_place(&self, iv_low: &[u8], data: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[8..].copy_from_slice(iv_low);
        let mut cipher = Aes256Ctr::new(&self.secrets.enc_key.into(), &iv.into());
        cipher.apply_keystream(data);
    }

    /// Turns a stored object into verified plaintext: envelope, decompression and — unless
    /// `id` is `None` (the manifest) — the id check. `size_hint` is the expected plaintext size.
    pub fn open_object(
        &self,
        id: Option<&ObjectId>,
        obj: &[u8],
        size_hint: Option<usize>,
    ) -> Result<Vec<u8>> {
        self.open_owned(id, obj.to_vec(), size_hint)
    }

    /// [`Key::open_object`] on an object the caller owns: it is decrypted in place, so no copy
    /// of the ciphertext is made.
    pub fn open_owned(
        &self,
        id: Option<&ObjectId>,
        obj: Vec<u8>,
        size_hint: Option<usize>,
    ) -> Result<Vec<u8>> {
        let mut one = [Sealed {
            id: id.copied(),
            data: obj,
            size_hint,
        }];
        let mut out = self.open_objects(&mut one);
        out.pop()
            .unwrap_or_else(|| Err(Error::Other("no object".into())))
    }

    /// Opens a group of objects at once, with the same checks and errors as
    /// [`Key::open_object`] for each. The objects are decrypted in place (their `data` is
    /// consumed), and with BLAKE2b keys the MACs and the ids of the whole group are computed
    /// together with multi-buffer SIMD — about twice the single-stream throughput, which is what
    /// bounds decoding for those keys. Groups of [`Key::GROUP`] objects use that fully.
    pub fn open_objects(&self, objs: &mut [Sealed]) -> Vec<Result<Vec<u8>>> {
        let mut out: Vec<Option<Result<Vec<u8>>>> = (0..objs.len()).map(|_| None).collect();
        let encrypted = self.ktype.is_encrypted();
        // 1. Envelope: type byte, length, then the MAC of every object still in the running.
        for (o, slot) in objs.iter().zip(out.iter_mut()) {
            if let Err(e) = self.check_envelope(&o.data, &|| Self::what(o.id.as_ref())) {
                *slot = Some(Err(e));
            }
        }
        if encrypted {
            let live: Vec<usize> = (0..objs.len()).filter(|i| out[*i].is_none()).collect();
            let bodies: Vec<&[u8]> = live.iter().map(|i| &objs[*i].data[33..]).collect();
            let macs = self.macs(&bodies);
            for (i, mac) in live.into_iter().zip(macs) {
                if !bool::from(mac.ct_eq(&objs[i].data[1..33])) {
                    out[i] = Some(Err(Error::MacFailed(Self::what(objs[i].id.as_ref()))));
                    continue;
                }
                let (head, body) = objs[i].data.split_at_mut(ENVELOPE_HEADER);
                self.decrypt_in_place(&head[33..], body);
            }
        }
        // 2. Decompression.
        let start = if encrypted { ENVELOPE_HEADER } else { 1 };
        let mut plains: Vec<Option<Vec<u8>>> = (0..objs.len()).map(|_| None).collect();
        for ((o, slot), plain) in objs.iter_mut().zip(out.iter_mut()).zip(plains.iter_mut()) {
            if slot.is_some() {
                continue;
            }
            let data = std::mem::take(&mut o.data);
            match compress::decompress_owned(data, start, o.size_hint, encrypted) {
                Ok(p) => *plain = Some(p),
                Err(Error::Decompression(m)) => {
                    *slot = Some(Err(Error::Decompression(format!(
                        "{}: {m}",
                        Self::what(o.id.as_ref())
                    ))))
                }
                Err(e) => *slot = Some(Err(e)),
            }
        }
        // 3. The id check, for every object that has an id.
        let live: Vec<usize> = (0..objs.len())
            .filter(|i| plains[*i].is_some() && objs[*i].id.is_some())
            .collect();
        let texts: Vec<&[u8]> = live
            .iter()
            .map(|i| plains[*i].as_deref().unwrap_or_default())
            .collect();
        let ids = self.id_hashes(&texts);
        for (i, computed) in live.into_iter().zip(ids) {
            let id = objs[i].id.unwrap_or_default();
            if !bool::from(computed.ct_eq(&id)) {
                plains[i] = None;
                out[i] = Some(Err(Error::Integrity(format!(
                    "Chunk {}: id verification failed",
                    hex::encode(id)
                ))));
            }
        }
        out.into_iter()
            .zip(plains)
            .map(|(slot, plain)| match (slot, plain) {
                (Some(r), _) => r,
                (None, Some(p)) => Ok(p),
                (None, None) => Err(Error::Other("object not decoded".into())),
            })
            .collect()
    }

    /// How many objects [`Key::open_objects`] hashes side by side (the SIMD degree).
    pub const GROUP: usize = 8;

    /// How an object is named in errors.
    fn what(id: Option<&ObjectId>) -> String {
        match id {
            Some(id) => format!("Chunk {}", hex::encode(id)),
            None => "Manifest".to_string(),
        }
    }

    /// The type byte and length of an envelope; `what` names the object in errors.
    fn check_envelope(&self, data: &[u8], what: &dyn Fn() -> String) -> Result<()> {
        let Some(&tbyte) = data.first() else {
            return Err(Error::Integrity(format!("{}: empty object", what())));
        };
        if !self.ktype.accepts(tbyte) {
            KeyType::from_byte(tbyte)?;
            return Err(Error::Integrity(format!(
                "{}: Invalid encryption envelope",
                what(),
            )));
        }
        if self.ktype.is_encrypted() && data.len() < ENVELOPE_HEADER {
            return Err(Error::Integrity(format!(
                "{}: object too short ({} bytes) for an encrypted envelope",
                what(),
                data.len()
            )));
        }
        Ok(())
    }

    /// The MACs of several envelope bodies (IV and ciphertext).
    fn macs(&self, bodies: &[&[u8]]) -> Vec<[u8; 32]> {
        if self.ktype.is_blake2() {
            blake2_prefix_many(&self.secrets.enc_hmac_key, bodies)
        } else {
            bodies.iter().map(|b| self.mac(b)).collect()
        }
    }

    /// The ids of several plaintexts.
    fn id_hashes(&self, texts: &[&[u8]]) -> Vec<ObjectId> {
        if self.ktype.is_blake2() {
            blake2_prefix_many(&self.secrets.id_key, texts)
        } else {
            texts.iter().map(|t| self.id_hash(t)).collect()
        }
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
pub(crate) mod tests {
    use super::*;

    pub(crate) fn seal(key: &Key, payload: &[u8], iv: u64) -> Vec<u8> {
        key.seal(payload, iv)
    }

    pub(crate) fn test_key(ktype: KeyType) -> Key {
        Key::fixed_for_tests(ktype)
    }

    #[test]
    fn blake2_is_prefix_not_keyed() {
        // BLAKE2b-256 of 128 zero bytes followed by "abc" (unkeyed), computed independently.
        let got = blake2_prefix(&[0u8; 128], &[b"abc"]);
        let mut h = blake2::Blake2b::<blake2::digest::consts::U32>::new();
        h.update([0u8; 128]);
        h.update(b"abc");
        assert_eq!(got, <[u8; 32]>::from(h.finalize()));
    }

    #[test]
    fn envelope_roundtrip_and_tamper() {
        for kt in [KeyType::Repokey, KeyType::Blake2Keyfile] {
            let key = test_key(kt);
            let plain = b"hello world".to_vec();
            let mut payload = vec![0u8, 0];
            payload.extend_from_slice(&plain);
            let id = key.id_hash(&plain);
            let obj = seal(&key, &payload, 42);
            assert_eq!(key.open_object(Some(&id), &obj, None).unwrap(), plain);
            let mut bad = obj.clone();
            *bad.last_mut().unwrap() ^= 1;
            let err = key
                .open_object(Some(&id), &bad, None)
                .unwrap_err()
                .located();
            assert!(
                err.contains("MAC") && err.contains(&hex::encode(id)),
                "{err}"
            );
            let other = key.id_hash(b"other");
            let err = key
                .open_object(Some(&other), &obj, None)
                .unwrap_err()
                .to_string();
            assert!(err.contains("id verification failed"), "{err}");
            assert!(key.open_object(None, &obj[..20], None).is_err());
        }
    }

    #[test]
    fn groups_open_like_single_objects() {
        for kt in [
            KeyType::Repokey,
            KeyType::Blake2Repokey,
            KeyType::Blake2Authenticated,
        ] {
            let key = test_key(kt);
            let mut group = Vec::new();
            for n in 0..11usize {
                let plain: Vec<u8> = (0..n * 997).map(|i| (i * 7 + n) as u8).collect();
                let mut payload = vec![1u8, 0];
                payload.extend_from_slice(&lz4_flex::block::compress(&plain));
                let id = key.id_hash(&plain);
                let mut obj = if kt.is_encrypted() {
                    seal(&key, &payload, n as u64)
                } else {
                    let mut o = vec![kt.byte()];
                    o.extend_from_slice(&payload);
                    o
                };
                match n {
                    3 if kt.is_encrypted() => *obj.last_mut().unwrap() ^= 1, // bad MAC
                    5 => obj.truncate(0),                                    // empty
                    7 => obj[0] = 0x11,                                      // unknown type
                    _ => {}
                }
                let id = if n == 9 { key.id_hash(b"other") } else { id };
                group.push(Sealed {
                    id: Some(id),
                    data: obj,
                    size_hint: Some(plain.len()),
                });
            }
            let single: Vec<String> = group
                .iter()
                .map(
                    |s| match key.open_object(s.id.as_ref(), &s.data, s.size_hint) {
                        Ok(p) => format!("ok {}", hex::encode(key.id_hash(&p))),
                        Err(e) => format!("err {e}"),
                    },
                )
                .collect();
            let grouped: Vec<String> = key
                .open_objects(&mut group)
                .into_iter()
                .map(|r| match r {
                    Ok(p) => format!("ok {}", hex::encode(key.id_hash(&p))),
                    Err(e) => format!("err {e}"),
                })
                .collect();
            assert_eq!(grouped, single, "{kt:?}");
            let errors = single.iter().filter(|s| s.starts_with("err")).count();
            assert_eq!(errors, if kt.is_encrypted() { 4 } else { 3 }, "{single:?}");
            assert!(
                single[9].contains("id verification failed"),
                "{}",
                single[9]
            );
        }
    }

    #[test]
    fn type_byte_checked() {
        let key = test_key(KeyType::Repokey);
        let mut payload = vec![0u8, 0];
        payload.extend_from_slice(b"x");
        let mut obj = seal(&key, &payload, 1);
        obj[0] = 0x01; // legacy passphrase objects are accepted by repokey
        assert!(key.open_object(None, &obj, None).is_ok());
        obj[0] = 0x05;
        assert!(key.open_object(None, &obj, None).is_err());
        obj[0] = 0x11;
        assert!(matches!(
            key.open_object(None, &obj, None),
            Err(Error::UnsupportedPayload(0x11))
        ));
    }
}

//! Opening stored objects: the envelope's checks (type byte, length, MAC), decryption in
//! place, decompression and the id check, for one object or a group of them ([`Sealed`]).

use super::{Key, KeyType};
use crate::compress;
use crate::error::{Error, Result};
use crate::id::ObjectId;
use subtle::ConstantTimeEq;

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
    /// Verifies and decrypts a borg 1.x object's envelope, returning the compressed payload.
    ///
    /// `what` names the object in errors (its id, or "manifest").
    ///
    /// # Errors
    ///
    /// An object too short, of another key type, or failing its MAC; any object under a borg 2
    /// key (whose objects are opened whole, [`Key::open_objects`]).
    pub fn decrypt(&self, what: &str, obj: &[u8]) -> Result<Vec<u8>> {
        if self.ktype.is_borg2() {
            return Err(Error::Other(format!(
                "{what}: a borg 2 key has no borg 1.x envelope to decrypt"
            )));
        }
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

    /// Turns a stored object into verified plaintext: envelope, decompression and — unless
    /// `id` is `None` (the manifest) — the id check. `size_hint` is the expected plaintext size.
    ///
    /// # Errors
    ///
    /// As [`Key::decrypt`], then a payload that does not decompress or whose id is not `id`.
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
    ///
    /// # Errors
    ///
    /// As [`Key::open_object`].
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
    ///
    /// With a borg 2 key each `data` is one whole repository object (a blob cut from a pack),
    /// opened as [`Key::open_blob`] does (its type letter is not returned).
    pub fn open_objects(&self, objs: &mut [Sealed]) -> Vec<Result<Vec<u8>>> {
        if self.ktype.is_borg2() {
            return objs
                .iter_mut()
                .map(|o| {
                    let data = std::mem::take(&mut o.data);
                    self.open_blob(o.id.as_ref(), data, o.size_hint)
                        .map(|(_, plain)| plain)
                })
                .collect();
        }
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::tests::{seal, test_key};

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

//! Tests of borg 2 repository objects and store objects made here the way b25 writes them (see
//! `seal`): round trips under every suite, and every kind of damage → a clear error, no panic.
//! Objects made by a real borg 2.0.0b25 are opened in `vectors`; key blobs are `tests_keyblob2`.

use super::seal::pack_meta;
use super::{Key, KeyType, ObjMeta, Sealed, StoreName};
use crate::error::Error;
use crate::id::ObjectId;

pub(crate) const SUITES: [KeyType; 6] = [
    KeyType::Aes256OcbSha256,
    KeyType::ChaCha20Poly1305Sha256,
    KeyType::Aes256OcbBlake3,
    KeyType::ChaCha20Poly1305Blake3,
    KeyType::AuthenticatedSha256,
    KeyType::AuthenticatedBlake3,
];

const REPO: ObjectId = [0x77; 32];

fn key(kt: KeyType) -> Key {
    Key::fixed_borg2_for_tests(kt, REPO)
}

fn text() -> Vec<u8> {
    (0..5000u32)
        .flat_map(|i| format!("line {} of some text\n", i % 97).into_bytes())
        .collect()
}

/// The error of opening `blob` as chunk `id`, located (with the object it names).
fn err(key: &Key, id: Option<&ObjectId>, blob: Vec<u8>) -> String {
    match key.open_blob(id, blob, None) {
        Ok(_) => panic!("opened"),
        Err(e) => e.located(),
    }
}

#[test]
fn key_types_of_borg2() {
    for (kt, enc, ih) in super::BORG2_SUITES {
        assert_eq!(KeyType::from_byte(kt.byte()).unwrap(), kt);
        assert_eq!(KeyType::from_borg2_config(enc, ih).unwrap(), kt);
        assert_eq!((kt.mode_name(), kt.id_hash_name()), (enc, ih));
        assert!(kt.is_borg2() && !kt.is_keyfile() && !kt.is_repokey() && !kt.is_blake2());
        assert_eq!(
            kt.is_encrypted(),
            !enc.starts_with("authenticated"),
            "{kt:?}"
        );
    }
    assert!(!KeyType::Blake2Repokey.is_borg2() && KeyType::Blake2Repokey.is_encrypted());
    for (enc, ih) in [
        ("aes256-ocb", "blake2"),
        ("authenticated-sha256", "blake3"),
        ("", ""),
    ] {
        let e = KeyType::from_borg2_config(enc, ih).unwrap_err().to_string();
        assert!(
            e.contains(&format!("\"{enc}\"")) && e.contains(&format!("\"{ih}\"")),
            "{e}"
        );
    }
    assert!(KeyType::from_byte(0x70).is_err());
}

#[test]
fn blobs_round_trip_in_every_suite_and_compression() {
    let plain = text();
    for kt in SUITES {
        let key = key(kt);
        assert_eq!(key.repository_id(), Some(REPO));
        for ctype in [0u8, 1, 2, 3, 5] {
            for (with_size, pad) in [(true, 0), (false, 0), (true, 333)] {
                let (id, blob) = key.seal_plain_blob(b'F', &plain, ctype, with_size, pad);
                assert_eq!(id, key.id_hash(&plain));
                let meta = key.open_blob_meta(Some(&id), &blob).unwrap();
                assert_eq!((meta.ctype, meta.size.is_some()), (ctype, with_size));
                let (t, got) = key.open_blob(Some(&id), blob.clone(), None).unwrap();
                assert!(t == b'F' && got == plain, "{kt:?} ctype {ctype}");
                assert_eq!(
                    key.open_blob(None, blob.clone(), Some(10)).unwrap().1,
                    plain
                );
                // Through the 1.x entry points: one object, and a group.
                assert_eq!(key.open_object(Some(&id), &blob, None).unwrap(), plain);
                let mut group = vec![
                    Sealed {
                        id: Some(id),
                        data: blob.clone(),
                        size_hint: Some(plain.len()),
                    },
                    Sealed {
                        id: Some([1; 32]),
                        data: blob,
                        size_hint: None,
                    },
                ];
                let out = key.open_objects(&mut group);
                assert_eq!(out[0].as_ref().unwrap(), &plain);
                assert!(out[1].is_err());
            }
        }
        let (id, blob) = key.seal_plain_blob(b'A', b"", 0, true, 0);
        assert_eq!(
            key.open_blob(Some(&id), blob, None).unwrap(),
            (b'A', vec![])
        );
    }
}

#[test]
fn every_damaged_byte_and_every_cut_is_an_error() {
    for kt in SUITES {
        let key = key(kt);
        let (id, blob) = key.seal_plain_blob(b'S', b"some item stream bytes", 1, true, 0);
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x40;
            let e = err(&key, Some(&id), bad.clone());
            let what = match i {
                0..=7 => "no object header",
                8 => "unsupported object version",
                9..=40 => "the object's header names chunk",
                41..=48 => "object size inconsistent",
                _ => "",
            };
            assert!(e.contains(what), "{kt:?} byte {i}: {e}");
            assert!(
                e.contains(&hex::encode(id)) || i < 9,
                "{kt:?} byte {i}: {e}"
            );
            // Without the id asked for, a damaged id still fails (the AAD binds it).
            assert!(key.open_blob(None, bad, None).is_err(), "{kt:?} byte {i}");
        }
        for n in 0..blob.len() {
            assert!(key.open_blob(Some(&id), blob[..n].to_vec(), None).is_err());
        }
        let mut longer = blob.clone();
        longer.push(0);
        assert!(err(&key, Some(&id), longer).contains("object size inconsistent"));
        // The slots, by name.
        let meta_size = u32::from_le_bytes(blob[41..45].try_into().unwrap()) as usize;
        let mut bad = blob.clone();
        *bad.last_mut().unwrap() ^= 1;
        let e = err(&key, Some(&id), bad);
        assert!(e.contains("data slot: MAC Authentication failed"), "{e}");
        let mut bad = blob.clone();
        bad[49 + meta_size - 1] ^= 1;
        let e = err(&key, Some(&id), bad);
        assert!(
            e.contains("metadata slot: MAC Authentication failed"),
            "{e}"
        );
        let mut bad = blob.clone();
        bad[49 + meta_size] = 0x30 ^ kt.byte() ^ 0x10; // another suite's type byte
        let e = err(&key, Some(&id), bad);
        assert!(e.contains("data slot: envelope of type"), "{e}");
        // Another id asked for.
        let e = err(&key, Some(&[3; 32]), blob.clone());
        assert!(
            e.contains("header names chunk") && e.contains(&"03".repeat(32)),
            "{e}"
        );
    }
}

#[test]
fn objects_of_another_suite_or_slot_do_not_open() {
    let plain = b"file content".to_vec();
    for kt in SUITES {
        for other in SUITES.into_iter().filter(|o| *o != kt) {
            let (id, blob) = key(other).seal_plain_blob(b'F', &plain, 0, true, 0);
            let e = err(&key(kt), Some(&id), blob);
            assert!(e.contains("envelope of type"), "{kt:?} {other:?}: {e}");
        }
        // The same key material under a type byte changed to this suite's: still refused.
        let key = key(kt);
        let id = key.id_hash(&plain);
        let meta = pack_meta(&ObjMeta {
            otype: b'F',
            ctype: 0,
            clevel: 255,
            csize: plain.len() as u64,
            size: Some(plain.len() as u64),
            psize: None,
            olevel: None,
        });
        // Slots swapped: the metadata sealed as data and the data as metadata.
        let good = key.seal_blob(&id, &meta, &plain, 0);
        let ms = u32::from_le_bytes(good[41..45].try_into().unwrap()) as usize;
        let ds = good.len() - 49 - ms;
        let mut swapped = good[..41].to_vec();
        swapped.extend_from_slice(&(ds as u32).to_le_bytes());
        swapped.extend_from_slice(&(ms as u32).to_le_bytes());
        swapped.extend_from_slice(&good[49 + ms..]);
        swapped.extend_from_slice(&good[49..49 + ms]);
        let e = err(&key, Some(&id), swapped);
        assert!(
            e.contains("metadata slot: MAC Authentication failed"),
            "{e}"
        );
        // A slot moved to another object: its AAD names the other id.
        let other = key.id_hash(b"other");
        let mut moved = good.clone();
        moved[9..41].copy_from_slice(&other);
        let e = err(&key, Some(&other), moved);
        assert!(e.contains("MAC Authentication failed"), "{e}");
    }
}

#[test]
fn metadata_that_lies_is_an_error() {
    let plain = text();
    let small = lz4_flex::block::compress(b"abc");
    let cases: [(&str, ObjMeta, &[u8]); 7] = {
        let m = |ctype, csize, size, psize| ObjMeta {
            otype: b'F',
            ctype,
            clevel: 255,
            csize,
            size,
            psize,
            olevel: None,
        };
        let n = plain.len() as u64;
        let s = small.len() as u64;
        [
            ("csize", m(0, n + 1, Some(n), None), &plain),
            ("psize", m(0, n, Some(n), Some(n + 1)), &plain),
            ("its metadata says", m(0, n, Some(n - 1), None), &plain),
            ("unknown compression type 4", m(4, n, Some(n), None), &plain),
            ("unknown compression type 8", m(8, n, None, None), &plain),
            // A size far beyond memory is not allocated.
            ("Decompression error", m(1, n, Some(1 << 40), None), &plain),
            ("its metadata says", m(1, s, Some(1 << 20), None), &small),
        ]
    };
    for kt in SUITES {
        let key = key(kt);
        for (want, meta, data) in &cases {
            let id = key.id_hash(&plain);
            let blob = key.seal_blob(&id, &pack_meta(meta), data, 4);
            let e = err(&key, Some(&id), blob);
            assert!(
                e.contains(want) && e.contains(&hex::encode(id)),
                "{want}: {e}"
            );
        }
        // Metadata that is no map, misses a field, or has trailing bytes.
        let id = key.id_hash(&plain);
        for (meta, want) in [
            (&b"\x92\x01\x02"[..], "expected a map"),
            (b"\x81\xa4type\xa1F", "no ctype"),
            (b"\x81\xa4type\xa2FF", "not one letter"),
            (b"\x80\x00", "after the map"),
            (b"\x84\xa4type", "truncated"),
        ] {
            let blob = key.seal_blob(&id, meta, &plain, 0);
            let e = err(&key, Some(&id), blob);
            assert!(e.contains("metadata") && e.contains(want), "{want}: {e}");
        }
        // The data is not what the id says.
        let (_, blob) = key.seal_plain_blob(b'F', b"not this", 1, true, 0);
        let mut forged = blob.clone();
        forged[9..41].copy_from_slice(&id);
        assert!(key.open_blob(Some(&id), forged, None).is_err());
        let meta = pack_meta(&ObjMeta {
            otype: b'F',
            ctype: 0,
            clevel: 255,
            csize: 8,
            size: Some(8),
            psize: None,
            olevel: None,
        });
        let blob = key.seal_blob(&id, &meta, b"not this", 0);
        assert!(err(&key, Some(&id), blob).contains("id verification failed"));
    }
}

#[test]
fn header_sizes_far_beyond_the_object() {
    let key = key(KeyType::ChaCha20Poly1305Blake3);
    let (id, blob) = key.seal_plain_blob(b'F', b"x", 0, true, 0);
    for (at, v) in [(41, u32::MAX), (45, u32::MAX), (41, 0), (45, 0), (45, 47)] {
        let mut bad = blob.clone();
        bad[at..at + 4].copy_from_slice(&v.to_le_bytes());
        let e = err(&key, Some(&id), bad.clone());
        assert!(e.contains("size inconsistent"), "{e}");
        assert!(key.open_blob_meta(Some(&id), &bad).is_err() || at == 45);
    }
    // A consistent header with a slot shorter than any envelope.
    let mut short = blob[..49].to_vec();
    short[41..49].copy_from_slice(&[3, 0, 0, 0, 0, 0, 0, 0]);
    short.extend_from_slice(&[0x40, 0, 1]);
    assert!(err(&key, Some(&id), short).contains("truncated envelope"));
}

#[test]
fn store_objects() {
    for kt in SUITES {
        let key = key(kt);
        let env = key.seal_store_object(StoreName::Hashed("index"), b"BORGHASH...");
        assert_eq!(
            key.open_store_object(StoreName::Hashed("index"), &env)
                .unwrap(),
            b"BORGHASH..."
        );
        for wrong in [
            StoreName::Hashed("locks"),
            StoreName::Named("index"),
            StoreName::Named("index/x"),
        ] {
            let e = key.open_store_object(wrong, &env).unwrap_err();
            assert!(matches!(e, Error::MacFailed(_)), "{e:?}");
        }
        let env = key.seal_store_object(StoreName::Named("config/defaults"), b"\x80");
        let got = key.open_store_object(StoreName::Named("config/defaults"), &env);
        assert_eq!(got.unwrap(), b"\x80");
        // Another repository's key material is the same, its id is not.
        let elsewhere = Key::fixed_borg2_for_tests(kt, [1; 32]);
        let e = elsewhere
            .open_store_object(StoreName::Named("config/defaults"), &env)
            .unwrap_err()
            .located();
        assert!(e.contains("Store object config/defaults"), "{e}");
        for n in 0..env.len() {
            let r = key.open_store_object(StoreName::Named("config/defaults"), &env[..n]);
            assert!(r.is_err());
        }
    }
    let old = Key::fixed_for_tests(KeyType::Repokey);
    assert!(old.open_store_object(StoreName::Named("x"), b"").is_err());
    assert!(old.open_blob(None, vec![0; 60], None).is_err());
    assert!(old.repository_id().is_none());
}

#[test]
fn borg2_keys_keep_their_secrets() {
    let key = key(KeyType::AuthenticatedBlake3);
    let shown = format!("{key:?}");
    assert!(
        !shown.contains("crypt") && shown.contains("AuthenticatedBlake3"),
        "{shown}"
    );
    // The 1.x envelope code refuses borg 2 keys rather than misreading their objects.
    assert!(key.decrypt("x", &[0x60; 50]).is_err());
}

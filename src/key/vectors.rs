//! Objects made by a real borg 2.0.0b25: the repositories in `testdata/borg2-vectors/` (see its
//! README and `make-vectors.sh`) are unlocked with their passphrases and every object in them
//! is opened — each pack blob, each index fragment (whose entries must point at blobs that open
//! with their ids), `config/defaults` — and the files of the archive are found among the
//! plaintexts. These tests need no borg installed.

use super::blob2::{borg2_key_files, borg2_repokey_blob, unlock_borg2};
use super::passphrase::PassphraseSources;
use super::{Key, KeyType, StoreName};
use crate::error::Error;
use crate::id::ObjectId;
use crate::Passphrase;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/borg2-vectors")
}

/// Every file under `dir`, sorted, with its path relative to `dir`.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// One vector repository: its suite, id and key, unlocked with its (first) passphrase.
struct Vector {
    dir: PathBuf,
    ktype: KeyType,
    id: ObjectId,
    key: Key,
}

fn config_value(config: &str, name: &str) -> String {
    config
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} = ")))
        .unwrap_or_else(|| panic!("no {name} in the config"))
        .to_string()
}

fn unlock(dir: &Path, ktype: KeyType, id: &ObjectId, pass: &str) -> crate::Result<Key> {
    let mut candidates = borg2_key_files(id, None, Some(&dir.join("keyfiles")))?;
    for (name, data) in files(&dir.join("repo/keys")) {
        candidates.extend(borg2_repokey_blob(&name, data));
    }
    let pass = Passphrase::new(pass);
    let sources = PassphraseSources {
        given: Some(&pass),
        ..Default::default()
    };
    unlock_borg2(ktype, id, &candidates, &dir.display().to_string(), &sources)
}

fn vector(name: &str) -> Vector {
    let dir = vectors().join(name);
    let config = std::fs::read_to_string(dir.join("repo/config/config")).unwrap();
    assert_eq!(config_value(&config, "version"), "5");
    let ktype = KeyType::from_borg2_config(
        &config_value(&config, "encryption"),
        &config_value(&config, "id_hash"),
    )
    .unwrap();
    let id: ObjectId = hex::decode(config_value(&config, "id"))
        .unwrap()
        .try_into()
        .unwrap();
    let pass = std::fs::read_to_string(dir.join("passphrase")).unwrap();
    let key = unlock(&dir, ktype, &id, pass.lines().next().unwrap()).unwrap();
    Vector {
        dir,
        ktype,
        id,
        key,
    }
}

/// The blobs of a pack: (id, offset, length), walked by the header sizes.
fn walk(pack: &[u8]) -> Vec<(ObjectId, usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < pack.len() {
        let h = &pack[at..at + 49];
        assert_eq!(&h[..9], b"BORG_OBJ\x02");
        let size = |o: usize| u32::from_le_bytes(h[o..o + 4].try_into().unwrap()) as usize;
        let len = 49 + size(41) + size(45);
        out.push((h[9..41].try_into().unwrap(), at, len));
        at += len;
    }
    assert_eq!(at, pack.len());
    out
}

/// What a vector holds, opened: the plaintexts by type letter, and each blob's metadata.
struct Opened {
    by_type: BTreeMap<u8, Vec<Vec<u8>>>,
    metas: Vec<super::ObjMeta>,
}

/// Opens every pack blob, every index fragment (checking each entry against the packs),
/// `config/defaults`, and finds the archive's object.
fn open_all(v: &Vector) -> Opened {
    let repo = v.dir.join("repo");
    let packs: BTreeMap<String, Vec<u8>> = files(&repo.join("packs"))
        .into_iter()
        .map(|(rel, data)| (rel.rsplit('/').next().unwrap().to_string(), data))
        .collect();
    let mut opened = Opened {
        by_type: BTreeMap::new(),
        metas: Vec::new(),
    };
    let mut ids = Vec::new();
    for pack in packs.values() {
        for (id, at, len) in walk(pack) {
            let blob = &pack[at..at + len];
            let meta = v.key.open_blob_meta(Some(&id), blob).unwrap();
            let (t, plain) = v.key.open_blob(Some(&id), blob.to_vec(), None).unwrap();
            assert_eq!(t, meta.otype);
            assert_eq!(v.key.id_hash(&plain), id);
            opened.by_type.entry(t).or_default().push(plain);
            opened.metas.push(meta);
            ids.push(id);
        }
    }
    // The index: every entry points at a blob that opens as its id.
    let mut entries = 0;
    for (name, envelope) in files(&repo.join("index")) {
        let plain = v
            .key
            .open_store_object(StoreName::Hashed("index"), &envelope)
            .unwrap_or_else(|e| panic!("index/{name}: {e}"));
        assert_eq!(&plain[..8], b"BORGHASH");
        assert_eq!(u32::from_le_bytes(plain[8..12].try_into().unwrap()), 1);
        let meta_len = u32::from_le_bytes(plain[12..16].try_into().unwrap()) as usize;
        let meta: serde_json::Value = serde_json::from_slice(&plain[16..16 + meta_len]).unwrap();
        assert_eq!(
            (meta["key_size"].as_u64(), meta["value_size"].as_u64()),
            (Some(32), Some(48))
        );
        let table = &plain[16 + meta_len..];
        assert_eq!(table.len() as u64, 80 * meta["used"].as_u64().unwrap());
        for e in table.chunks(80) {
            let id: ObjectId = e[..32].try_into().unwrap();
            let pack_id = hex::encode(&e[40..72]);
            let off = u32::from_le_bytes(e[72..76].try_into().unwrap()) as usize;
            let size = u32::from_le_bytes(e[76..80].try_into().unwrap()) as usize;
            let blob = packs[&pack_id][off..off + size].to_vec();
            v.key.open_blob(Some(&id), blob, None).unwrap();
            entries += 1;
        }
        // Under another name the fragment does not open.
        let e = v
            .key
            .open_store_object(StoreName::Hashed("locks"), &envelope);
        assert!(matches!(e, Err(Error::MacFailed(_))));
    }
    assert_eq!(entries, ids.len(), "the index covers every blob");
    let defaults = std::fs::read(repo.join("config/defaults")).unwrap();
    let plain = v
        .key
        .open_store_object(StoreName::Named("config/defaults"), &defaults)
        .unwrap();
    assert_eq!(plain, b"\x80", "repo-create writes empty defaults");
    for (name, _) in files(&repo.join("archives")) {
        let aid: ObjectId = hex::decode(&name).unwrap().try_into().unwrap();
        let at = ids
            .iter()
            .position(|i| *i == aid)
            .expect("the archive's object");
        assert_eq!(opened.metas[at].otype, b'A');
    }
    opened
}

/// The files of the archive are among the `F` plaintexts.
fn has_the_files(o: &Opened) {
    let f = &o.by_type[&b'F'];
    for (name, data) in files(&vectors().join("src")) {
        assert!(f.contains(&data), "{name} is not among the file chunks");
    }
    for t in [b'A', b'C', b'S'] {
        assert!(o.by_type.contains_key(&t), "no {} object", t as char);
    }
}

#[test]
fn every_suite_opens_real_borg2_objects() {
    for (name, kt, keyfile) in [
        ("aes256-ocb-sha256-repokey", KeyType::Aes256OcbSha256, false),
        (
            "chacha20-poly1305-sha256-keyfile",
            KeyType::ChaCha20Poly1305Sha256,
            true,
        ),
        ("aes256-ocb-blake3-keyfile", KeyType::Aes256OcbBlake3, true),
        (
            "chacha20-poly1305-blake3-repokey",
            KeyType::ChaCha20Poly1305Blake3,
            false,
        ),
        (
            "authenticated-sha256-repokey",
            KeyType::AuthenticatedSha256,
            false,
        ),
        (
            "authenticated-blake3-keyfile",
            KeyType::AuthenticatedBlake3,
            true,
        ),
    ] {
        let v = vector(name);
        assert_eq!(v.ktype, kt);
        assert_eq!(v.key.repository_id(), Some(v.id));
        if keyfile {
            assert!(v.key.origin().contains("/keyfiles/"), "{}", v.key.origin());
        } else {
            assert_eq!(v.key.origin(), "repository");
        }
        let o = open_all(&v);
        has_the_files(&o);
        assert!(o
            .metas
            .iter()
            .all(|m| m.size.is_some() && m.psize.is_none()));
    }
}

#[test]
fn auto_compression_leaves_the_size_out() {
    let v = vector("auto-zstd");
    let o = open_all(&v);
    has_the_files(&o);
    assert!(
        o.metas.iter().any(|m| m.size.is_none() && m.ctype == 3),
        "zstd without size"
    );
    assert!(
        o.metas.iter().any(|m| m.ctype == 0),
        "random data stored as is"
    );
}

#[test]
fn obfuscation_pads_file_chunks() {
    let v = vector("obfuscate-lz4");
    let o = open_all(&v);
    has_the_files(&o);
    for m in &o.metas {
        let psize = m.psize.expect("psize");
        assert_eq!(m.olevel, Some(110));
        assert!(m.otype == b'F' || psize == m.csize, "{m:?}");
    }
    assert!(o.metas.iter().any(|m| m.psize.unwrap() < m.csize));
}

#[test]
fn every_passphrase_of_a_multikey_repository() {
    let v = vector("multikey");
    has_the_files(&open_all(&v));
    let second = unlock(&v.dir, v.ktype, &v.id, "second").unwrap();
    assert_eq!(second.origin(), "repository");
    let pack = files(&v.dir.join("repo/packs")).remove(0).1;
    let (id, at, len) = walk(&pack)[0];
    let blob = pack[at..at + len].to_vec();
    assert_eq!(
        second.open_blob(Some(&id), blob.clone(), None).unwrap(),
        v.key.open_blob(Some(&id), blob, None).unwrap()
    );
    let e = unlock(&v.dir, v.ktype, &v.id, "third").unwrap_err();
    assert!(matches!(e, Error::PassphraseWrong(None)), "{e:?}");
}

#[test]
fn damaged_real_objects_do_not_open() {
    let v = vector("chacha20-poly1305-blake3-repokey");
    let pack = files(&v.dir.join("repo/packs"))
        .into_iter()
        .map(|(_, d)| d)
        .max_by_key(Vec::len)
        .unwrap();
    for (id, at, len) in walk(&pack) {
        let blob = &pack[at..at + len];
        for i in (0..len).step_by(len / 29 + 1).chain([len - 1]) {
            let mut bad = blob.to_vec();
            bad[i] ^= 0x01;
            assert!(v.key.open_blob(Some(&id), bad, None).is_err(), "byte {i}");
        }
        // Another repository's key (same suite) opens none of them.
        let other = Key::fixed_borg2_for_tests(v.ktype, v.id);
        let e = other.open_blob(Some(&id), blob.to_vec(), None).unwrap_err();
        assert!(
            e.located().contains("MAC Authentication failed"),
            "{}",
            e.located()
        );
    }
    // The right key, a wrong suite: an AES-OCB key with the same material is refused.
    let wrong = Key::fixed_borg2_for_tests(KeyType::Aes256OcbBlake3, v.id);
    let (id, at, len) = walk(&pack)[0];
    let e = wrong.open_blob(Some(&id), pack[at..at + len].to_vec(), None);
    assert!(e.unwrap_err().to_string().contains("envelope of type 0x40"));
}

#[test]
fn the_unicode_passphrase_and_wrong_ones() {
    let dir = vectors().join("aes256-ocb-blake3-keyfile");
    let v = vector("aes256-ocb-blake3-keyfile");
    assert!(std::fs::read_to_string(dir.join("passphrase"))
        .unwrap()
        .starts_with("pässwörd"));
    let e = unlock(&dir, v.ktype, &v.id, "passwort").unwrap_err();
    assert!(matches!(e, Error::PassphraseWrong(None)), "{e:?}");
    // The key file of one repository is no candidate for another.
    let other = vector("authenticated-blake3-keyfile");
    let found = borg2_key_files(&other.id, None, Some(&dir.join("keyfiles"))).unwrap();
    assert!(found.is_empty());
}

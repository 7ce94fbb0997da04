//! Tests of borg 2 key blobs made here the way b25 writes them (see `seal`, with tiny Argon2
//! costs): the candidates tried in order, passphrases as for borg 1.x keys, key files found by
//! their first line, and hostile or broken blobs refused with clear errors. Key blobs made by a
//! real borg 2.0.0b25 are unlocked in `vectors`.

use super::blob::KeyBlob;
use super::blob2::{borg2_key_files, unlock_borg2};
use super::passphrase::{PassphraseSources, Prompt};
use super::seal::{seal_key_blob, seal_key_plain};
use super::{Key, KeyType};
use crate::error::Error;
use crate::id::ObjectId;
use crate::Passphrase;
use zeroize::Zeroizing;

const REPO: ObjectId = [0x77; 32];

fn key(kt: KeyType) -> Key {
    Key::fixed_borg2_for_tests(kt, REPO)
}

/// Tiny Argon2 costs, so that the tests do not spend seconds in the KDF.
const CHEAP: (u32, u32, u32) = (1, 8, 1);

fn given(p: &str) -> PassphraseSources<'static> {
    PassphraseSources {
        given: Some(Box::leak(Box::new(Passphrase::new(p)))),
        ..Default::default()
    }
}

fn blob_of(text: String, origin: &str) -> KeyBlob {
    KeyBlob {
        text: Zeroizing::new(text),
        origin: origin.into(),
        file: None,
    }
}

#[test]
fn the_borg1_key_blob_code_refuses_a_borg2_type() {
    let blob = KeyBlob {
        text: Zeroizing::new(String::new()),
        origin: "x".into(),
        file: None,
    };
    let e = super::blob::unlock(KeyType::Aes256OcbBlake3, &blob, "r", &given("x"), false);
    assert!(matches!(e, Err(Error::UnsupportedPayload(0x30))));
}

#[test]
fn key_blobs_unlock_in_order_and_skip_what_is_not_theirs() {
    let kt = KeyType::ChaCha20Poly1305Blake3;
    let original = key(kt);
    let a = seal_key_blob(&original, "alpha", CHEAP, [1; 16]);
    let b = seal_key_blob(&original, "beta", CHEAP, [2; 16]);
    let other = seal_key_blob(
        &Key::fixed_borg2_for_tests(kt, [9; 32]),
        "beta",
        CHEAP,
        [3; 16],
    );
    let cands = vec![
        blob_of("BORG_KEY zz\nnot base64 at all!".into(), "corrupt"),
        blob_of(other, "other repository"),
        blob_of(a, "first"),
        blob_of(b.clone(), "second"),
    ];
    for pass in ["alpha", "beta"] {
        let k = unlock_borg2(kt, &REPO, &cands, "repo", &given(pass)).unwrap();
        assert_eq!(k.origin(), "repository");
        let (id, blob) = original.seal_plain_blob(b'F', b"data", 1, true, 0);
        assert_eq!(k.open_blob(Some(&id), blob, None).unwrap().1, b"data");
        assert_eq!(k.repository_id(), Some(REPO));
    }
    let e = unlock_borg2(kt, &REPO, &cands, "repo", &given("gamma")).unwrap_err();
    assert!(matches!(e, Error::PassphraseWrong(None)), "{e:?}");
    let e = unlock_borg2(kt, &REPO, &[], "repo", &given("x")).unwrap_err();
    assert!(
        e.to_string().contains("key files directory") && e.to_string().contains("keys/"),
        "{e}"
    );
    // None parses: the first one's error.
    let e = unlock_borg2(kt, &REPO, &cands[..2], "repo", &given("x")).unwrap_err();
    assert!(matches!(e, Error::KeyfileMismatch { .. }), "{e:?}");
    // Without the BORG_KEY line (a borg 1.x style repokey text), too.
    let body = b.split_once('\n').unwrap().1.to_string();
    assert!(unlock_borg2(kt, &REPO, &[blob_of(body, "bare")], "r", &given("beta")).is_ok());
    // A key type that is not borg 2's.
    assert!(unlock_borg2(KeyType::Repokey, &REPO, &cands, "r", &given("beta")).is_err());
}

#[test]
fn passphrases_come_as_for_borg1_keys() {
    let kt = KeyType::AuthenticatedSha256;
    let empty = seal_key_blob(&key(kt), "", CHEAP, [4; 16]);
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = asked.clone();
    let prompt: Prompt = std::sync::Arc::new(move |_: &str| {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(Passphrase::new("wrong"))
    });
    let sources = PassphraseSources {
        prompt: Some(&prompt),
        ..Default::default()
    };
    // The empty passphrase is tried silently first.
    assert!(unlock_borg2(kt, &REPO, &[blob_of(empty, "e")], "r", &sources).is_ok());
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 0);
    // Then the prompt, three times.
    let set = seal_key_blob(&key(kt), "right", CHEAP, [5; 16]);
    let e = unlock_borg2(kt, &REPO, &[blob_of(set, "s")], "r", &sources).unwrap_err();
    assert!(matches!(e, Error::PasswordRetriesExceeded), "{e:?}");
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 3);
    // Nothing to ask with: borg's message.
    let set = seal_key_blob(&key(kt), "right", CHEAP, [5; 16]);
    let e = unlock_borg2(kt, &REPO, &[blob_of(set, "s")], "r", &Default::default());
    assert!(matches!(e, Err(Error::NoPassphrase(_))));
}

#[test]
fn hostile_or_broken_key_blobs_are_refused_clearly() {
    let kt = KeyType::Aes256OcbSha256;
    let good = key(kt);
    let env = |costs, salt: [u8; 16]| {
        let t = seal_key_blob(&good, "p", costs, salt);
        blob_of(t, "hostile")
    };
    // Costs beyond the bounds: refused before any work.
    for costs in [(1, 1 << 21, 1), (1 << 10, 1 << 20, 1), (1, 1 << 10, 1000)] {
        let text = seal_key_plain(b"\x80", "p", (1, 8, 1), [0; 16]);
        let mut raw = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            text.replace('\n', ""),
        )
        .unwrap();
        // Rewrite the three cost values in place (each is packed as a uint after its key).
        for (name, v) in [
            ("argon2_time_cost", costs.0),
            ("argon2_memory_cost", costs.1),
            ("argon2_parallelism", costs.2),
        ] {
            let at = raw
                .windows(name.len())
                .position(|w| w == name.as_bytes())
                .unwrap();
            let mut packed = Vec::new();
            rmp::encode::write_u32(&mut packed, v).unwrap();
            raw.splice(at + name.len()..at + name.len() + 1, packed);
        }
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &raw);
        let e = unlock_borg2(kt, &REPO, &[blob_of(b64, "hostile")], "r", &given("p"));
        let e = e.unwrap_err().to_string();
        assert!(
            e.contains("more than oxiborg accepts") && e.contains("hostile"),
            "{e}"
        );
    }
    // A key map that opens but is not a key: an error naming it, not "wrong passphrase".
    for (plain, want) in [(&b"\x80"[..], "missing field"), (b"\x92\x01\x02", "key")] {
        let t = seal_key_plain(plain, "p", CHEAP, [6; 16]);
        let e = unlock_borg2(kt, &REPO, &[blob_of(t, "odd")], "r", &given("p")).unwrap_err();
        assert!(matches!(e, Error::KeyfileInvalid { .. }), "{e:?}");
        assert!(e.to_string().contains(want), "{e}");
    }
    // The key of another repository inside a blob that claims this one.
    let other = Key::fixed_borg2_for_tests(kt, [8; 32]);
    let t = seal_key_blob(&other, "p", CHEAP, [7; 16]);
    let t = t.replacen(&hex::encode([8u8; 32]), &hex::encode(REPO), 1);
    let e = unlock_borg2(kt, &REPO, &[blob_of(t, "swapped")], "r", &given("p")).unwrap_err();
    assert!(e.to_string().contains("the key is for repository"), "{e}");
    // Every cut of a valid blob: an error or (the whole) a key, never a panic.
    let whole = seal_key_blob(&good, "p", CHEAP, [9; 16]);
    for n in (0..whole.len()).step_by(7) {
        let _ = unlock_borg2(
            kt,
            &REPO,
            &[blob_of(whole[..n].into(), "cut")],
            "r",
            &given("p"),
        );
    }
    assert!(unlock_borg2(kt, &REPO, &[env(CHEAP, [9; 16])], "r", &given("p")).is_ok());
}

#[test]
fn key_files_are_found_by_their_first_line() {
    let dir = tempfile::tempdir().unwrap();
    let kt = KeyType::ChaCha20Poly1305Sha256;
    let mine = seal_key_blob(&key(kt), "p", CHEAP, [1; 16]);
    let theirs = seal_key_blob(
        &Key::fixed_borg2_for_tests(kt, [5; 32]),
        "p",
        CHEAP,
        [1; 16],
    );
    std::fs::write(dir.path().join("b-mine"), &mine).unwrap();
    std::fs::write(dir.path().join("a-mine"), &mine).unwrap();
    std::fs::write(dir.path().join("c-theirs"), &theirs).unwrap();
    std::fs::write(dir.path().join("d-junk"), b"\xff\xfe").unwrap();
    std::fs::create_dir(dir.path().join("e-dir")).unwrap();
    let found = borg2_key_files(&REPO, None, Some(dir.path())).unwrap();
    let names: Vec<_> = found
        .iter()
        .map(|b| b.file.as_ref().unwrap().file_name().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["a-mine", "b-mine"]);
    let k = unlock_borg2(kt, &REPO, &found, "r", &given("p")).unwrap();
    assert_eq!(k.origin(), dir.path().join("a-mine").display().to_string());
    assert!(borg2_key_files(&REPO, None, Some(&dir.path().join("none")))
        .unwrap()
        .is_empty());
    assert!(borg2_key_files(&REPO, None, None).unwrap().is_empty());
    // BORG_KEY_FILE: that file alone, and it must be this repository's.
    let one = borg2_key_files(&REPO, Some(&dir.path().join("b-mine")), Some(dir.path()));
    assert_eq!(one.unwrap().len(), 1);
    let e = borg2_key_files(&REPO, Some(&dir.path().join("c-theirs")), None).unwrap_err();
    assert!(matches!(e, Error::KeyfileMismatch { .. }), "{e:?}");
    let e = borg2_key_files(&REPO, Some(&dir.path().join("d-junk")), None).unwrap_err();
    assert!(matches!(e, Error::KeyfileInvalid { .. }), "{e:?}");
    let e = borg2_key_files(&REPO, Some(&dir.path().join("gone")), None).unwrap_err();
    assert!(e.to_string().contains("cannot read it"), "{e}");
}

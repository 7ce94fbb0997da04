//! Damaged data during extract: a file whose chunk fails its MAC, or is missing, is reported by
//! name, is not left behind under its real name (nor as a temporary file), and the rest of the
//! archive is still restored. Runs on the committed fixtures; no borg needed.

mod common;

use common::*;
use oxiborg::{Location, OpenOptions, Repository};
use std::fs;
use std::path::Path;

const REPO: &str = "repokey-blake2-lz4";
const VICTIM: &str = "tree/random.bin";
const BYSTANDER: &str = "tree/hello.txt";

/// The ids of the chunks of `path` in the first archive, read with the library.
fn chunk_ids(repo: &Path, archive: &str, path: &str) -> Vec<[u8; 32]> {
    let mut opts = OpenOptions::from_env();
    opts.passphrase = Some(oxiborg::Passphrase::new("oxiborg-test"));
    let repo = Repository::open(&Location::parse(repo.to_str().unwrap()).unwrap(), &opts).unwrap();
    let archive = repo.archive(archive).unwrap();
    for item in archive.items() {
        let item = item.unwrap();
        if item.path == path.as_bytes() {
            return item.chunks.unwrap().iter().map(|c| c.id).collect();
        }
    }
    panic!("{path} not in the archive");
}

fn extract(env: &TestEnv, repo: &Path, archive: &str, dest: &Path) -> Output {
    env.oxiborg([
        std::ffi::OsStr::new("extract"),
        std::ffi::OsStr::new("-C"),
        dest.as_os_str(),
        repo_archive(repo, archive).as_os_str(),
    ])
}

fn assert_victim_not_restored(out: &Output, dest: &Path) {
    out.assert_error(&[VICTIM]);
    assert!(
        !dest.join(VICTIM).exists(),
        "damaged file left under its real name"
    );
    assert!(
        dest.join(BYSTANDER).is_file(),
        "the undamaged rest must still be restored"
    );
    let mut leftovers = Vec::new();
    for dir in [dest.join("tree"), dest.to_path_buf()] {
        for e in fs::read_dir(&dir).unwrap().flatten() {
            if e.file_name().to_string_lossy().starts_with(".oxiborg-") {
                leftovers.push(e.path());
            }
        }
    }
    assert!(
        leftovers.is_empty(),
        "temporary files left behind: {leftovers:?}"
    );
}

#[test]
fn chunk_failing_its_mac_is_reported_and_not_left_behind() {
    let mut env = TestEnv::new();
    env.set("BORG_PASSPHRASE", "oxiborg-test");
    let repo = fixture_repo(&mut env, REPO);
    let (archive, _) = expected_archives(REPO)[0].clone();
    let ids = chunk_ids(&repo, &archive, VICTIM);
    assert!(ids.len() > 1, "the victim should have several chunks");
    let (seg, e) = find_put(&repo, &ids[ids.len() / 2]).expect("chunk in a segment");
    let mut bytes = fs::read(&seg).unwrap();
    let pos = e.offset + 41 + (e.size - 41) / 2;
    bytes[pos] ^= 0x40;
    fix_entry_crc(&mut bytes, &e);
    fs::write(&seg, &bytes).unwrap();
    let dest = env.path().join("dest");
    let out = extract(&env, &repo, &archive, &dest);
    assert_victim_not_restored(&out, &dest);
    let stderr = &out.stderr;
    assert!(stderr.contains("MAC"), "the reason is named: {stderr}");
    assert_eq!(out.code, 2);
}

#[test]
fn missing_chunk_is_reported_and_not_left_behind() {
    let mut env = TestEnv::new();
    env.set("BORG_PASSPHRASE", "oxiborg-test");
    let repo = fixture_repo(&mut env, REPO);
    let (archive, _) = expected_archives(REPO)[0].clone();
    let ids = chunk_ids(&repo, &archive, VICTIM);
    let victim = ids[0];
    // Rename the chunk's entry to another id and drop the index: the object is gone.
    let (seg, e) = find_put(&repo, &victim).expect("chunk in a segment");
    let mut bytes = fs::read(&seg).unwrap();
    bytes[e.offset + 9] ^= 0xff;
    fix_entry_crc(&mut bytes, &e);
    fs::write(&seg, &bytes).unwrap();
    for f in fs::read_dir(&repo).unwrap().flatten() {
        let n = f.file_name().to_string_lossy().into_owned();
        if n.starts_with("index.") || n.starts_with("hints.") || n.starts_with("integrity.") {
            fs::remove_file(f.path()).unwrap();
        }
    }
    let dest = env.path().join("dest");
    let out = extract(&env, &repo, &archive, &dest);
    assert_victim_not_restored(&out, &dest);
    let stderr = &out.stderr;
    assert!(
        stderr.contains(&hex_encode(&victim)),
        "the missing chunk is named: {stderr}"
    );
    assert_eq!(out.code, 2);
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

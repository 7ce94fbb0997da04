//! Error contract: damaged repositories, wrong secrets, missing things. Every case works on a
//! fresh copy of a committed fixture repository (no borg needed) and expects exit code 2, no
//! panic and the documented message — except the "index deleted" cases, which must still
//! produce borg's output.

mod common;

use common::*;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

const REPOKEY: &str = "repokey-blake2-lz4"; // BLAKE2 MAC
const REPOKEY_HMAC: &str = "repokey-auto-zstd"; // HMAC-SHA256 MAC
const KEYFILE: &str = "keyfile-zstd";
const KEYFILE_OTHER: &str = "keyfile-blake2-obfuscate";

fn list_repo(env: &TestEnv, repo: &Path) -> Output {
    env.oxiborg([OsStr::new("list"), repo.as_os_str()])
}

fn list_archive(env: &TestEnv, repo: &Path, archive: &str, extra: &[&str]) -> Output {
    let mut args: Vec<std::ffi::OsString> = vec!["list".into()];
    args.extend(extra.iter().map(Into::into));
    args.push(repo_archive(repo, archive));
    env.oxiborg(args)
}

// ---------------------------------------------------------------------------------------
// secrets
// ---------------------------------------------------------------------------------------

#[test]
fn wrong_passphrase_repokey() {
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, REPOKEY);
    env.set("BORG_PASSPHRASE", "not-the-passphrase");
    list_repo(&env, &repo).assert_error(&["passphrase", "incorrect"]);
}

#[test]
fn wrong_passphrase_keyfile() {
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, KEYFILE);
    env.set("BORG_PASSPHRASE", "not-the-passphrase");
    list_repo(&env, &repo).assert_error(&["passphrase", "incorrect"]);
}

#[test]
fn wrong_passphrase_from_passcommand() {
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, REPOKEY_HMAC);
    env.unset("BORG_PASSPHRASE");
    env.set("BORG_PASSCOMMAND", "echo not-the-passphrase");
    list_repo(&env, &repo).assert_error(&["passphrase", "incorrect"]);
}

#[test]
fn empty_passphrase_counts_as_set() {
    // BORG_PASSPHRASE="" is the (wrong) empty passphrase, not "no passphrase"
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, REPOKEY);
    env.set("BORG_PASSPHRASE", "");
    list_repo(&env, &repo).assert_error(&["passphrase", "incorrect"]);
}

#[test]
fn key_file_of_another_repository() {
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, KEYFILE);
    env.set(
        "BORG_KEY_FILE",
        testdata().join("keys").join(format!("{KEYFILE_OTHER}.key")),
    );
    list_repo(&env, &repo).assert_error(&["Mismatch between repository"]);
}

#[test]
fn no_key_file_found() {
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, KEYFILE);
    let empty = env.path().join("empty-keys");
    fs::create_dir_all(&empty).unwrap();
    env.set("BORG_KEYS_DIR", &empty);
    list_repo(&env, &repo).assert_error(&["No key file for repository"]);
}

#[test]
fn no_passphrase_and_no_terminal() {
    // without any passphrase source and without a controlling terminal: error, no hang
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, REPOKEY);
    env.unset("BORG_PASSPHRASE");
    if std::process::Command::new("setsid")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("note: skipping: setsid not available");
        return;
    }
    let mut cmd = env.command("setsid");
    cmd.arg("-w").arg(oxiborg_bin()).arg("list").arg(&repo);
    let out = run_command(cmd);
    out.assert_no_panic();
    assert_eq!(out.code, 2, "expected exit code 2\n{}", out.describe());
}

// ---------------------------------------------------------------------------------------
// damaged objects
// ---------------------------------------------------------------------------------------

/// Flips one byte inside the ciphertext of the first archive's metadata object (the archive
/// object lives in the big data segment, next to the file and item chunks; `borg list`
/// reads it but not file chunks, so this is the object whose damage a listing must detect).
/// With `fix_crc` the segment entry's CRC-32 is recomputed so that the damage gets past the
/// segment layer and must be caught by the MAC check. Returns (archive name, object id hex,
/// segment path, entry offset).
fn flip_archive_object(repo: &Path, name: &str, fix_crc: bool) -> (String, String, PathBuf, usize) {
    let (archive, id_hex) = expected_archives(name)[0].clone();
    let id = hex_to_id(&id_hex);
    let (seg, e) = find_put(repo, &id).expect("archive object not found in the segments");
    assert_eq!(
        seg,
        largest_segment(repo),
        "expected the first archive's object in the largest segment"
    );
    let mut bytes = fs::read(&seg).unwrap();
    let data = e.offset + 41; // entry header: crc32 size tag id
    let obj_len = e.size - 41;
    // encrypted envelope: type(1) mac(32) iv(8) ciphertext
    assert!(obj_len > 41 + 8, "object too small: {obj_len}");
    let pos = data + 41 + (obj_len - 41) / 2;
    bytes[pos] ^= 0x01;
    if fix_crc {
        fix_entry_crc(&mut bytes, &e);
    }
    fs::write(&seg, &bytes).unwrap();
    (archive, id_hex, seg, e.offset)
}

fn flipped_byte_is_a_mac_error(name: &str) {
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, name);
    let (archive, id_hex, _, _) = flip_archive_object(&repo, name, true);
    list_archive(&env, &repo, &archive, &[]).assert_error(&["Data integrity error", &id_hex]);
    list_archive(&env, &repo, &archive, &["--json-lines"])
        .assert_error(&["Data integrity error", &id_hex]);
}

#[test]
fn flipped_byte_blake2_mac() {
    flipped_byte_is_a_mac_error(REPOKEY);
}

#[test]
fn flipped_byte_hmac_sha256_mac() {
    flipped_byte_is_a_mac_error(REPOKEY_HMAC);
}

#[test]
fn flipped_byte_keyfile_mac() {
    flipped_byte_is_a_mac_error(KEYFILE);
}

/// A borg 1.x repository whose manifest carries a borg 2 type byte (0x10..0x60): as unknown to
/// the 1.x reader as to borg 1.x ("Unsupported payload type 16"), not a missing key.
#[test]
fn borg2_type_byte_in_a_borg1_manifest() {
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, "none-zlib");
    let (seg, e) = find_put(&repo, &[0; 32]).expect("the manifest");
    let mut bytes = fs::read(&seg).unwrap();
    bytes[e.offset + 41] = 0x10;
    fix_entry_crc(&mut bytes, &e);
    fs::write(&seg, &bytes).unwrap();
    list_repo(&env, &repo).assert_error(&["Unsupported payload type 16"]);
}

#[test]
fn flipped_byte_without_crc_fix_is_a_segment_error() {
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, REPOKEY);
    let (archive, _, seg, off) = flip_archive_object(&repo, REPOKEY, false);
    let out = list_archive(&env, &repo, &archive, &[]);
    out.assert_no_panic();
    assert_eq!(out.code, 2, "expected exit code 2\n{}", out.describe());
    let low = out.stderr.to_lowercase();
    assert!(
        (low.contains("segment") && low.contains("offset"))
            || low.contains("crc")
            || low.contains("integrity"),
        "stderr should name the segment and offset, or say CRC/integrity \
         (damaged entry: {} offset {off})\n{}",
        seg.display(),
        out.describe()
    );
}

#[test]
fn truncated_data_segment() {
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, REPOKEY);
    let (archive, id_hex) = expected_archives(REPOKEY)[0].clone();
    let seg = largest_segment(&repo);
    let (aseg, _) = find_put(&repo, &hex_to_id(&id_hex)).unwrap();
    assert_eq!(
        aseg, seg,
        "first archive's object should be in the largest segment"
    );
    let len = fs::metadata(&seg).unwrap().len();
    let f = fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    list_archive(&env, &repo, &archive, &[]).assert_error(&["segment"]);
}

// ---------------------------------------------------------------------------------------
// repository and archive lookup
// ---------------------------------------------------------------------------------------

#[test]
fn missing_config() {
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, REPOKEY);
    fs::remove_file(repo.join("config")).unwrap();
    list_repo(&env, &repo).assert_error(&["is not a valid repository"]);
}

#[test]
fn nonexistent_archive() {
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, REPOKEY);
    list_archive(&env, &repo, "no-such-archive", &[])
        .assert_error(&["Archive no-such-archive does not exist"]);
    env.oxiborg([
        OsStr::new("info"),
        repo_archive(&repo, "no-such-archive").as_os_str(),
    ])
    .assert_error(&["Archive no-such-archive does not exist"]);
}

/// A typo in an archive name: the error lists the nearest existing names, for every command
/// that takes an archive.
#[test]
fn archive_name_typo_lists_the_nearest_names() {
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, REPOKEY);
    let names: Vec<String> = expected_archives(REPOKEY)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(
        names.contains(&"docs-2024-01-15".to_string()),
        "fixture archives: {names:?}"
    );
    let typo = "docs-2024-10-15";
    let hint = "(nearest names: docs-2024-01-15, docs-2024-02-15)";
    let wanted = format!("Archive {typo} does not exist {hint}");
    let out_file = env.path().join("t.tar");
    let dest = env.path().join("dest");
    let cases: Vec<(&str, Vec<std::ffi::OsString>)> = vec![
        ("list", vec!["list".into(), repo_archive(&repo, typo)]),
        ("info", vec!["info".into(), repo_archive(&repo, typo)]),
        (
            "extract",
            vec![
                "extract".into(),
                "-C".into(),
                dest.clone().into_os_string(),
                repo_archive(&repo, typo),
            ],
        ),
        (
            "export-tar",
            vec![
                "export-tar".into(),
                repo_archive(&repo, typo),
                out_file.clone().into_os_string(),
            ],
        ),
        ("check", vec!["check".into(), repo_archive(&repo, typo)]),
    ];
    for (what, args) in cases {
        let out = env.oxiborg(args);
        assert_eq!(out.code, 2, "{what}\n{}", out.describe());
        assert!(
            out.stderr.contains(&wanted),
            "{what}: expected {wanted:?}\n{}",
            out.describe()
        );
    }
}

#[test]
fn nonexistent_repository() {
    let env = TestEnv::new();
    let repo = env.path().join("there-is-no-repo-here");
    list_repo(&env, &repo).assert_error(&["does not exist"]);
}

// ---------------------------------------------------------------------------------------
// the index is only a cache
// ---------------------------------------------------------------------------------------

fn remove_index_files(repo: &Path) -> Vec<String> {
    let mut removed = Vec::new();
    for e in fs::read_dir(repo).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        if n.starts_with("index.") || n.starts_with("hints.") || n.starts_with("integrity.") {
            fs::remove_file(repo.join(&n)).unwrap();
            removed.push(n);
        }
    }
    assert!(!removed.is_empty(), "no index files in {}", repo.display());
    removed
}

fn index_deleted_still_lists(name: &str) {
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, name);
    remove_index_files(&repo);
    let mut diffs = Vec::new();
    for (archive, _) in expected_archives(name) {
        let out = list_archive(&env, &repo, &archive, &["--json-lines"]);
        out.assert_ok();
        let exp = fs::read_to_string(expected_dir(name).join(format!("{archive}.jsonl"))).unwrap();
        let mut d = Vec::new();
        jsonl_diff(&exp, &out.stdout_str(), &mut d);
        diffs.extend(d.into_iter().map(|m| format!("{archive}: {m}")));
    }
    let out = list_repo(&env, &repo);
    out.assert_ok();
    text_diff(
        &fs::read(expected_dir(name).join("list.txt")).unwrap(),
        &out.stdout,
        &mut diffs,
    );
    // a read-only client rebuilds the map in memory; it must not write a new index
    for e in fs::read_dir(&repo).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        if n.starts_with("index.") || n.starts_with("hints.") || n.starts_with("integrity.") {
            diffs.push(format!("oxiborg wrote {n} into the repository"));
        }
    }
    assert_no_diffs(&format!("{name} without index"), &diffs);
}

#[test]
fn index_deleted_repokey() {
    index_deleted_still_lists(REPOKEY);
}

#[test]
fn index_deleted_none() {
    index_deleted_still_lists("none-zlib");
}

#[test]
fn uncommitted_tail_is_ignored() {
    // A crashed writer leaves segments after the last COMMIT; readers ignore them. Append a
    // segment with a PUT of a (garbage) manifest and a PUT of another object, but no COMMIT.
    for drop_index in [false, true] {
        let mut env = TestEnv::new();
        let repo = fixture_repo(&mut env, REPOKEY);
        if drop_index {
            remove_index_files(&repo);
        }
        let (last_n, last_path) = segment_files(&repo).pop().unwrap();
        let next = last_path.with_file_name((last_n + 1).to_string());
        let mut seg = b"BORG_SEG".to_vec();
        for (id, data) in [
            ([0u8; 32], vec![0x05u8; 100]),
            ([0xabu8; 32], pseudo_random(7, 200)),
        ] {
            let start = seg.len();
            let size = (41 + data.len()) as u32;
            seg.extend_from_slice(&[0, 0, 0, 0]);
            seg.extend_from_slice(&size.to_le_bytes());
            seg.push(TAG_PUT);
            seg.extend_from_slice(&id);
            seg.extend_from_slice(&data);
            let e = Entry {
                offset: start,
                size: size as usize,
                tag: TAG_PUT,
                id: Some(id),
            };
            fix_entry_crc(&mut seg, &e);
        }
        fs::write(&next, &seg).unwrap();
        let out = list_repo(&env, &repo);
        let mut d = Vec::new();
        out.assert_ok();
        text_diff(
            &fs::read(expected_dir(REPOKEY).join("list.txt")).unwrap(),
            &out.stdout,
            &mut d,
        );
        let (archive, _) = expected_archives(REPOKEY)[1].clone();
        let out = list_archive(&env, &repo, &archive, &["--json-lines"]);
        out.assert_ok();
        let exp =
            fs::read_to_string(expected_dir(REPOKEY).join(format!("{archive}.jsonl"))).unwrap();
        jsonl_diff(&exp, &out.stdout_str(), &mut d);
        assert!(next.exists(), "the uncommitted segment was removed");
        assert_no_diffs(
            &format!("uncommitted tail (index removed: {drop_index})"),
            &d,
        );
    }
}

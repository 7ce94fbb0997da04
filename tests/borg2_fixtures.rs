//! The borg 2.0.0b25 test repositories, checked with borg 2.0.0b25 itself (oxiborg does not read
//! borg 2 repositories yet; these tests keep the fixtures honest until it does):
//!
//! * `tests/borg2/make_repos.sh` (run once for this binary by `borg2_repos()`): every
//!   repository it lists in `repos.tsv` has the suite it claims in `config/config`, its keys
//!   where its key location says, and opens with every listed passphrase to exactly the listed
//!   archives; the special repositories are in the state their names promise (soft-deleted
//!   pointers, compacted packs, an invalid chunk index, a multi-chunk item stream).
//! * the committed `testdata/borg2/` fixtures: complete (needs no borg), and borg 2.0.0b25 still
//!   prints exactly the recorded output for every line of their `cases.tsv`.
//!
//! Skipped (with a note) when borg 2.0.0b25 is missing, unless `OXIBORG_REQUIRE_BORG=1`.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::Path;

/// The repositories make_repos.sh always makes (plus `transferred` and
/// `transferred-source-borg1` when borg 1.4 is there).
const ALWAYS: &[&str] = &[
    "aes256-ocb-sha256-repokey",
    "aes256-ocb-sha256-keyfile",
    "aes256-ocb-blake3-repokey",
    "aes256-ocb-blake3-keyfile",
    "chacha20-poly1305-sha256-repokey",
    "chacha20-poly1305-sha256-keyfile",
    "chacha20-poly1305-blake3-repokey",
    "chacha20-poly1305-blake3-keyfile",
    "authenticated-sha256-repokey",
    "authenticated-sha256-keyfile",
    "authenticated-blake3-repokey",
    "authenticated-blake3-keyfile",
    "compression",
    "samename-deleted",
    "samename",
    "samename-compact0",
    "multikey",
    "repo-compress",
    "index-invalid",
    "big-items",
];

/// `-r REPO ARGS...` (borg 2 names the repository with `-r`)
fn b2_args(repo: &Path, args: &[&str]) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec!["-r".into(), repo.into()];
    v.extend(args.iter().map(OsString::from));
    v
}

/// `key = value` of config/config's [repository] section.
fn config_value(repo: &Path, key: &str) -> Option<String> {
    let text = fs::read_to_string(repo.join("config/config")).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

/// Files under `dir` whose content starts with `BORG_KEY <repository id>`.
fn key_blobs_for(dir: &Path, repo_id: &str) -> usize {
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    let first_line = format!("BORG_KEY {repo_id}\n");
    rd.filter_map(|e| fs::read(e.ok()?.path()).ok())
        .filter(|b| b.starts_with(first_line.as_bytes()))
        .count()
}

/// Names in `archives/` (the store's archive pointers), split into live and `.del`.
fn archive_pointers(repo: &Path) -> (usize, usize) {
    let mut live = 0;
    let mut deleted = 0;
    for e in fs::read_dir(repo.join("archives")).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        if n.ends_with(".del") {
            deleted += 1;
        } else {
            live += 1;
        }
    }
    (live, deleted)
}

fn tree_bytes(dir: &Path) -> u64 {
    let mut n = 0;
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let ty = e.file_type().unwrap();
        if ty.is_dir() {
            n += tree_bytes(&e.path());
        } else if ty.is_file() {
            n += e.metadata().unwrap().len();
        }
    }
    n
}

fn archive_names(out: &Output) -> Vec<String> {
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e})\n{}", out.describe()));
    v["archives"]
        .as_array()
        .unwrap_or_else(|| panic!("no \"archives\"\n{}", out.describe()))
        .iter()
        .map(|a| a["name"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[test]
fn make_repos_every_repo_opens_and_lists_its_archives() {
    let Some(dir) = borg2_repos() else { return };
    let Some(b2) = borg2() else { return };
    let manifest = borg2_manifest(&dir);
    let names: BTreeSet<&str> = manifest.iter().map(|r| r.name.as_str()).collect();
    for want in ALWAYS {
        assert!(names.contains(want), "repos.tsv has no {want}: {names:?}");
    }
    if require_borg() {
        assert!(
            names.contains("transferred") && names.contains("transferred-source-borg1"),
            "OXIBORG_REQUIRE_BORG=1 but repos.tsv has no transferred repositories: {names:?}"
        );
    }
    let mut env = borg2_env(&dir);
    let mut failures = Vec::new();
    for r in &manifest {
        let repo = dir.join(&r.name);
        if r.is_borg1() {
            let Some(b14) = borg("1.4") else { continue };
            env.set("BORG_PASSPHRASE", &r.passphrases[0]);
            let out = env.borg(
                &b14,
                [OsStr::new("list"), OsStr::new("--json"), repo.as_os_str()],
            );
            if out.code != 0 {
                failures.push(format!(
                    "{}: borg 1.4 list failed\n{}",
                    r.name,
                    out.describe()
                ));
            } else if archive_names(&out) != r.archives {
                failures.push(format!(
                    "{}: borg 1.4 lists {:?}, repos.tsv says {:?}",
                    r.name,
                    archive_names(&out),
                    r.archives
                ));
            }
            continue;
        }
        // the suite in config/config (plaintext) is the one repos.tsv names
        assert_eq!(
            config_value(&repo, "version").as_deref(),
            Some("5"),
            "{}",
            r.name
        );
        for (key, want) in [("encryption", &r.encryption), ("id_hash", &r.id_hash)] {
            let got = config_value(&repo, key);
            if got.as_deref() != Some(want.as_str()) {
                failures.push(format!("{}: config {key} = {got:?}, want {want}", r.name));
            }
        }
        // keys where the key location says: in the repository (one blob per passphrase) or a
        // key file in <dir>/keys
        let id = config_value(&repo, "id").unwrap_or_default();
        let (in_repo, in_keys_dir) = (
            key_blobs_for(&repo.join("keys"), &id),
            key_blobs_for(&dir.join("keys"), &id),
        );
        let want = match r.key_location.as_str() {
            "repokey" => (r.passphrases.len(), 0),
            "keyfile" => (0, 1),
            other => panic!("{}: unknown key location {other}", r.name),
        };
        if (in_repo, in_keys_dir) != want {
            failures.push(format!(
                "{}: {in_repo} key blob(s) in the repository and {in_keys_dir} key file(s), want {want:?}",
                r.name
            ));
        }
        // borg itself lists the archives with every passphrase; a borg command rebuilds the
        // index of index-invalid, so that one is listed from a copy
        let target = if r.name == "index-invalid" {
            copy_borg2_repo(&env, &dir, &r.name)
        } else {
            repo.clone()
        };
        for pass in &r.passphrases {
            env.set("BORG_PASSPHRASE", pass);
            let out = env.borg(&b2, b2_args(&target, &["repo-list", "--json"]));
            if out.code != 0 {
                failures.push(format!(
                    "{} ({pass}): repo-list failed\n{}",
                    r.name,
                    out.describe()
                ));
            } else if archive_names(&out) != r.archives {
                failures.push(format!(
                    "{} ({pass}): borg lists {:?}, repos.tsv says {:?}",
                    r.name,
                    archive_names(&out),
                    r.archives
                ));
            }
        }
    }
    assert_no_diffs("tests/borg2/make_repos.sh repositories", &failures);
}

#[test]
fn make_repos_special_repos_are_in_the_promised_state() {
    let Some(dir) = borg2_repos() else { return };
    let Some(b2) = borg2() else { return };
    let mut env = borg2_env(&dir);

    // samename-deleted: the deleted "same" and the renamed archive's old pointer are soft-deleted
    assert_eq!(archive_pointers(&dir.join("samename-deleted")), (3, 2));
    let out = env.borg_ok(
        &b2,
        b2_args(
            &dir.join("samename-deleted"),
            &["repo-list", "--deleted", "--json"],
        ),
    );
    assert_eq!(archive_names(&out), ["same", "other"], "{}", out.describe());
    // compact drops the .del pointers; only --threshold 0 also rewrites the pack that holds the
    // deleted archive's chunks next to live ones
    assert_eq!(archive_pointers(&dir.join("samename")), (3, 0));
    assert_eq!(archive_pointers(&dir.join("samename-compact0")), (3, 0));
    let packs = |r: &str| tree_bytes(&dir.join(r).join("packs"));
    assert!(
        packs("samename-compact0") < packs("samename"),
        "compact --threshold 0 reclaimed nothing more than compact: {} vs {} pack bytes",
        packs("samename-compact0"),
        packs("samename")
    );

    // index-invalid: the marker is there and one index fragment less than its source
    let ii = dir.join("index-invalid");
    assert!(
        ii.join("cache/chunkindex-invalid").is_file(),
        "no marker in {}",
        ii.display()
    );
    let fragments = |r: &Path| fs::read_dir(r.join("index")).unwrap().count();
    assert_eq!(
        fragments(&ii) + 1,
        fragments(&dir.join("chacha20-poly1305-blake3-repokey"))
    );
    // borg lists the same items as in the source repository (from a copy: it rebuilds the index)
    let copy = copy_borg2_repo(&env, &dir, "index-invalid");
    let a = env.borg_ok(&b2, b2_args(&copy, &["list", "--json-lines", "first"]));
    let b = env.borg_ok(
        &b2,
        b2_args(
            &dir.join("chacha20-poly1305-blake3-repokey"),
            &["list", "--json-lines", "first"],
        ),
    );
    assert!(
        a.stdout.len() > 1000 && a.stdout == b.stdout,
        "index-invalid lists differently"
    );
    assert!(
        !copy.join("cache/chunkindex-invalid").exists(),
        "borg kept the marker: then it did not rebuild the index, and the copy was useless"
    );

    // big-items: thousands of items, more than one item-stream chunk (borg's own dump writes
    // one file per item-stream chunk into the working directory)
    let out = env.borg_ok(
        &b2,
        b2_args(&dir.join("big-items"), &["list", "--short", "many"]),
    );
    let items = out.stdout_str().lines().count();
    assert!(items > 4000, "big-items has {items} items");
    let dump = env.path().join("dump");
    fs::create_dir_all(&dump).unwrap();
    let mut cmd = env.borg_cmd(
        &b2,
        b2_args(
            &dir.join("big-items"),
            &["debug", "dump-archive-items", "many"],
        ),
    );
    cmd.current_dir(&dump);
    let out = run_command(cmd);
    assert_eq!(out.code, 0, "{}", out.describe());
    let chunks = fs::read_dir(&dump).unwrap().count();
    assert!(chunks >= 3, "big-items' item stream has {chunks} chunk(s)");

    // multikey: a wrong passphrase opens nothing
    env.set("BORG_PASSPHRASE", "wrong");
    let out = env.borg(&b2, b2_args(&dir.join("multikey"), &["repo-list"]));
    assert_ne!(
        out.code,
        0,
        "a wrong passphrase opened multikey\n{}",
        out.describe()
    );

    // the shared directory still has the marker (no test ran borg on index-invalid itself)
    assert!(ii.join("cache/chunkindex-invalid").is_file());
}

#[test]
fn committed_borg2_fixtures_are_complete() {
    let repos = borg2_testdata().join("repos");
    let mut on_disk: Vec<String> = fs::read_dir(&repos)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut known: Vec<String> = BORG2_FIXTURE_REPOS.iter().map(|s| s.to_string()).collect();
    known.sort();
    assert_eq!(
        on_disk, known,
        "testdata/borg2/repos and BORG2_FIXTURE_REPOS disagree"
    );
    for name in BORG2_FIXTURE_REPOS {
        let repo = repos.join(name);
        assert_eq!(
            config_value(&repo, "version").as_deref(),
            Some("5"),
            "{name}"
        );
        let id = config_value(&repo, "id").unwrap();
        let keys = key_blobs_for(&repo.join("keys"), &id)
            + key_blobs_for(&borg2_testdata().join("keys"), &id);
        assert_eq!(keys, 1, "{name}: {keys} key blobs for repository id {id}");
        assert_eq!(archive_pointers(&repo), (2, 0), "{name}");
        let exp = borg2_expected_dir(name);
        let cases = cases_in(&exp);
        assert!(
            cases.iter().any(|c| c.file.ends_with(".jsonl")),
            "{name}: no .jsonl case"
        );
        assert!(
            cases.iter().any(|c| c.file == "repo-list.json"),
            "{name}: no repo-list.json"
        );
        for c in &cases {
            assert!(exp.join(&c.file).is_file(), "{name}: {} missing", c.file);
        }
        for e in fs::read_dir(&exp).unwrap() {
            let f = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                f == "cases.tsv" || f == "borg-version" || cases.iter().any(|c| c.file == f),
                "{name}: {f} is not listed in cases.tsv"
            );
        }
    }
}

/// Drops the values that depend on the machine that ran borg (paths of the repository, cache
/// and security dir), wherever they are.
fn drop_machine_paths(v: &mut Value) {
    if let Some(o) = v.as_object_mut() {
        o.remove("security_dir");
        if let Some(r) = o.get_mut("repository").and_then(Value::as_object_mut) {
            r.remove("location");
        }
        if let Some(c) = o.get_mut("cache").and_then(Value::as_object_mut) {
            c.remove("path");
        }
        // the key file's path is where the checkout is
        if let Some(e) = o.get_mut("encryption").and_then(Value::as_object_mut) {
            e.remove("keyfile");
        }
    }
}

#[test]
fn committed_borg2_fixtures_match_borg2() {
    let Some(b2) = borg2() else { return };
    let mut failures = Vec::new();
    for name in BORG2_FIXTURE_REPOS {
        let mut env = TestEnv::new();
        let repo = borg2_fixture_repo(&mut env, name);
        let exp_dir = borg2_expected_dir(name);
        let version = fs::read_to_string(exp_dir.join("borg-version")).unwrap();
        assert_eq!(
            version.trim(),
            b2.version,
            "{name}: recorded by another borg"
        );
        for case in cases_in(&exp_dir) {
            let out = env.borg(&b2, case.args_for(&repo));
            let label = format!("{name}/{} [borg {}]", case.file, case.args.join(" "));
            if out.code != 0 {
                failures.push(format!("{label}: exit code {}: {}", out.code, out.stderr));
                continue;
            }
            let exp = fs::read(exp_dir.join(&case.file)).unwrap();
            let mut d = Vec::new();
            recorded_diff(&case.file, &exp, &out.stdout, &drop_machine_paths, &mut d);
            failures.extend(d.into_iter().map(|m| format!("{label}: {m}")));
        }
    }
    assert_no_diffs("testdata/borg2 against borg 2.0.0b25", &failures);
}

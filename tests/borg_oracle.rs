//! Real borg as the oracle: repositories are made on the fly with every available borg
//! (1.2: `OXIBORG_BORG12`, 1.4: `OXIBORG_BORG14`) and oxiborg's listings are compared with
//! borg's own.
//!
//! One test per borg version × key mode (so cargo runs them in parallel). Each test makes ONE
//! repository and one archive per compression (none, lz4, zstd,3, zlib,6, lzma,1,
//! auto,zstd,3, obfuscate,3,zstd) plus one per chunker variant (10,16,12,4095 and
//! fixed,65536). Before every `borg create` a file with new content is written, so every
//! archive has new file chunks and new item chunks stored with its own compression (the
//! rest of the tree is deduplicated against the first archive; the compression order is
//! rotated per key mode so that the shared chunks, too, are stored with every compression
//! somewhere).
//!
//! Compared: `list --json-lines REPO::A` (every line as parsed JSON, field for field), `list
//! REPO::A` (text), `list REPO` (text), `list --json REPO` (archive names/ids/start/time and
//! repository.id).
//!
//! A missing borg version skips its tests with a note, or fails them when
//! `OXIBORG_REQUIRE_BORG=1`.

mod common;

use common::*;
use serde_json::Value;
use std::ffi::{OsStr, OsString};
use std::path::Path;

const COMPRESSIONS: &[&str] = &[
    "none",
    "lz4",
    "zstd,3",
    "zlib,6",
    "lzma,1",
    "auto,zstd,3",
    "obfuscate,3,zstd",
];
const CHUNKERS: &[&str] = &["10,16,12,4095", "fixed,65536"];
const MODES: &[&str] = &[
    "none",
    "authenticated",
    "authenticated-blake2",
    "repokey",
    "keyfile",
    "repokey-blake2",
    "keyfile-blake2",
];

fn archive_name(prefix: &str, spec: &str) -> String {
    format!("{prefix}-{}", spec.replace(',', "-"))
}

/// Runs borg and oxiborg with the same arguments; returns (borg output, oxiborg output).
fn both(env: &TestEnv, borg: &Borg, args: &[OsString]) -> (Output, Output) {
    let b = env.borg(borg, args);
    assert_eq!(
        b.code,
        0,
        "borg failed (test setup problem)\n{}",
        b.describe()
    );
    let o = env.oxiborg(args);
    (b, o)
}

fn check_exit(o: &Output, diffs: &mut Vec<String>) -> bool {
    if o.code != 0 || o.stderr.contains("panicked") {
        let first: Vec<&str> = o.stderr.lines().take(3).collect();
        diffs.push(format!(
            "`{}` exited {}: {}",
            o.cmdline,
            o.code,
            first.join(" | ")
        ));
        false
    } else {
        true
    }
}

/// Compares every listing of `repo` (archives `archives`) between borg and oxiborg.
fn compare_repo(env: &TestEnv, borg: &Borg, repo: &Path, archives: &[String]) -> Vec<String> {
    let mut diffs = Vec::new();
    let r = || repo.as_os_str().to_owned();

    // list REPO
    let (b, o) = both(env, borg, &["list".into(), r()]);
    if check_exit(&o, &mut diffs) {
        let mut d = Vec::new();
        text_diff(&b.stdout, &o.stdout, &mut d);
        diffs.extend(d.into_iter().map(|m| format!("list REPO: {m}")));
    }

    // list --json REPO
    let (b, o) = both(env, borg, &["list".into(), "--json".into(), r()]);
    if check_exit(&o, &mut diffs) {
        let bv: Value = serde_json::from_slice(&b.stdout).unwrap();
        match serde_json::from_slice::<Value>(&o.stdout) {
            Err(e) => diffs.push(format!("list --json REPO: not JSON ({e})")),
            Ok(ov) => {
                let ba = bv["archives"].as_array().unwrap();
                let oa = ov["archives"].as_array().cloned().unwrap_or_default();
                if ba.len() != oa.len() {
                    diffs.push(format!(
                        "list --json REPO: {} archives, borg has {}",
                        oa.len(),
                        ba.len()
                    ));
                }
                for (i, (x, y)) in ba.iter().zip(&oa).enumerate() {
                    for k in ["name", "id", "start", "time"] {
                        if x.get(k) != y.get(k) {
                            diffs.push(format!(
                                "list --json REPO: archives[{i}].{k}: borg {}, oxiborg {}",
                                x.get(k).unwrap_or(&Value::Null),
                                y.get(k)
                                    .map(|v| v.to_string())
                                    .unwrap_or("<missing>".into())
                            ));
                        }
                    }
                }
                if bv["repository"]["id"] != ov["repository"]["id"] {
                    diffs.push(format!(
                        "list --json REPO: repository.id: borg {}, oxiborg {}",
                        bv["repository"]["id"], ov["repository"]["id"]
                    ));
                }
            }
        }
    }

    for a in archives {
        let ra = repo_archive(repo, a);
        // list --json-lines REPO::A
        let (b, o) = both(
            env,
            borg,
            &["list".into(), "--json-lines".into(), ra.clone()],
        );
        if check_exit(&o, &mut diffs) {
            let mut d = Vec::new();
            jsonl_diff(&b.stdout_str(), &o.stdout_str(), &mut d);
            diffs.extend(
                d.into_iter()
                    .map(|m| format!("list --json-lines ::{a}: {m}")),
            );
        }
        // list REPO::A
        let (b, o) = both(env, borg, &["list".into(), ra]);
        if check_exit(&o, &mut diffs) {
            let mut d = Vec::new();
            text_diff(&b.stdout, &o.stdout, &mut d);
            diffs.extend(d.into_iter().map(|m| format!("list ::{a}: {m}")));
        }
    }
    diffs
}

fn oracle(label: &str, mode: &str) {
    let Some(borg) = borg(label) else { return };
    let env = TestEnv::new();
    let src = env.path().join("src");
    let tree = src.join("tree");
    make_source_tree(&tree);
    let repo = env.path().join("repo");
    env.borg_init(&borg, &repo, mode, &[]);

    let rot = MODES.iter().position(|m| *m == mode).unwrap() % COMPRESSIONS.len();
    let mut variants: Vec<(String, Vec<&str>)> = Vec::new();
    for i in 0..COMPRESSIONS.len() {
        let c = COMPRESSIONS[(i + rot) % COMPRESSIONS.len()];
        variants.push((archive_name("c", c), vec!["-C", c]));
    }
    for ch in CHUNKERS {
        variants.push((
            archive_name("ch", ch),
            vec!["-C", "lz4", "--chunker-params", ch],
        ));
    }
    let mut names = Vec::new();
    for (i, (name, args)) in variants.iter().enumerate() {
        set_unique_file(&tree, i as u64);
        env.borg_create(&borg, &repo, name, &src, &["tree"], args);
        names.push(name.clone());
    }
    let diffs = compare_repo(&env, &borg, &repo, &names);
    assert_no_diffs(&format!("{} -e {mode}", borg.version), &diffs);
}

macro_rules! oracle_tests {
    ($($name:ident: $label:expr, $mode:expr;)*) => {
        $(
            #[test]
            fn $name() {
                oracle($label, $mode);
            }
        )*
    };
}

oracle_tests! {
    borg12_none: "1.2", "none";
    borg12_authenticated: "1.2", "authenticated";
    borg12_authenticated_blake2: "1.2", "authenticated-blake2";
    borg12_repokey: "1.2", "repokey";
    borg12_keyfile: "1.2", "keyfile";
    borg12_repokey_blake2: "1.2", "repokey-blake2";
    borg12_keyfile_blake2: "1.2", "keyfile-blake2";
    borg14_none: "1.4", "none";
    borg14_authenticated: "1.4", "authenticated";
    borg14_authenticated_blake2: "1.4", "authenticated-blake2";
    borg14_repokey: "1.4", "repokey";
    borg14_keyfile: "1.4", "keyfile";
    borg14_repokey_blake2: "1.4", "repokey-blake2";
    borg14_keyfile_blake2: "1.4", "keyfile-blake2";
}

/// Append-only repository (`borg init --append-only`) where one of three archives was
/// deleted (DELETE entries, nothing compacted), and a normal repository after `borg delete`
/// + `borg compact` (live objects copied into new segments, old segments removed).
fn deleted_archives(label: &str) {
    let Some(borg) = borg(label) else { return };
    let env = TestEnv::new();
    let src = env.path().join("src");
    let tree = src.join("tree");
    make_source_tree(&tree);
    for (repo_name, init_extra, compact) in [
        ("append-only", &["--append-only"][..], false),
        ("compacted", &[][..], true),
    ] {
        let repo = env.path().join(repo_name);
        env.borg_init(&borg, &repo, "repokey", init_extra);
        for (i, a) in ["one", "two", "three"].iter().enumerate() {
            set_unique_file(&tree, 100 + i as u64);
            env.borg_create(
                &borg,
                &repo,
                a,
                &src,
                &["tree"],
                &["-C", "lz4", "--chunker-params", "10,16,12,4095"],
            );
        }
        env.borg_ok(
            &borg,
            [OsString::from("delete"), repo_archive(&repo, "two")],
        );
        if compact {
            env.borg_ok(&borg, [OsStr::new("compact"), repo.as_os_str()]);
        }
        let mut diffs = compare_repo(&env, &borg, &repo, &["one".into(), "three".into()]);
        // the deleted archive is gone for both
        let o = env.oxiborg([OsString::from("list"), repo_archive(&repo, "two")]);
        if o.code != 2 || !o.stderr.contains("Archive two does not exist") {
            diffs.push(format!(
                "listing the deleted archive: expected exit 2 and \"Archive two does not exist\", got {}: {}",
                o.code,
                o.stderr.lines().next().unwrap_or("")
            ));
        }
        assert_no_diffs(&format!("{} {repo_name}", borg.version), &diffs);
    }
}

#[test]
fn borg12_deleted_archives_append_only_and_compacted() {
    deleted_archives("1.2");
}

#[test]
fn borg14_deleted_archives_append_only_and_compacted() {
    deleted_archives("1.4");
}

/// Local-time rendering in other time zones (POSIX TZ strings, so no tzdata is needed):
/// India (+05:30, no DST) and US Eastern with DST rules.
#[test]
fn time_zones() {
    let Some(borg) = any_borg() else { return };
    let mut env = TestEnv::new();
    let src = env.path().join("src");
    let tree = src.join("tree");
    make_source_tree(&tree);
    let repo = env.path().join("repo");
    env.borg_init(&borg, &repo, "repokey", &[]);
    // one archive in winter, one in summer (DST)
    env.borg_create(
        &borg,
        &repo,
        "winter",
        &src,
        &["tree"],
        &["--timestamp", "2024-01-15T23:30:00"],
    );
    set_unique_file(&tree, 7);
    env.borg_create(
        &borg,
        &repo,
        "summer",
        &src,
        &["tree"],
        &["--timestamp", "2024-07-04T02:15:00"],
    );
    let mut diffs = Vec::new();
    for tz in ["<+0530>-5:30", "EST5EDT,M3.2.0,M11.1.0"] {
        env.set("TZ", tz);
        let d = compare_repo(&env, &borg, &repo, &["winter".into(), "summer".into()]);
        diffs.extend(d.into_iter().map(|m| format!("TZ={tz}: {m}")));
    }
    assert_no_diffs(&format!("{} time zones", borg.version), &diffs);
}

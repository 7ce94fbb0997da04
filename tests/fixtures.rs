//! Compares oxiborg with borg's own output recorded in testdata/expected/ for the committed
//! repositories in testdata/repos/ (made by testdata/make-fixtures.sh). Needs no borg.
//!
//! For every repository, every line `FILE<TAB>ARGS…` of testdata/expected/<repo>/cases.tsv is
//! run as `oxiborg ARGS…` (on a copy of the repository) and compared with FILE:
//! * `*.txt`: byte for byte;
//! * `*.jsonl`: same number of lines, each line as parsed JSON, field for field;
//! * `list.json`: per archive `name`, `id`, `start`, `time` (plus `archive`, if present), and
//!   `repository.id` (plus `encryption.mode` and `repository.last_modified`, if present);
//! * `info*.json`: a few fields must be present; every field present in both outputs must be
//!   equal, except the ones that depend on the machine (paths of cache, security dir,
//!   repository) and `stats.deduplicated_size` (depends on borg's chunk cache and differs
//!   between borg 1.2 and 1.4 for the same repository).
//!
//! The rest of the file checks the location/passphrase/key-file/lock environment contract.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------
// recorded output
// ---------------------------------------------------------------------------------------

fn compare_list_json(exp: &Value, act: &Value, out: &mut Vec<String>) {
    let (Some(ea), Some(aa)) = (exp["archives"].as_array(), act["archives"].as_array()) else {
        out.push(format!("no \"archives\" array in {}", act));
        return;
    };
    if ea.len() != aa.len() {
        out.push(format!("expected {} archives, got {}", ea.len(), aa.len()));
    }
    for (i, (e, a)) in ea.iter().zip(aa).enumerate() {
        for key in ["name", "id", "start", "time"] {
            if e.get(key) != a.get(key) {
                out.push(format!(
                    "archives[{i}].{key}: expected {}, got {}",
                    e.get(key).unwrap_or(&Value::Null),
                    a.get(key)
                        .map(|v| v.to_string())
                        .unwrap_or("<missing>".into())
                ));
            }
        }
        if let Some(v) = a.get("archive") {
            if Some(v) != e.get("archive") {
                out.push(format!(
                    "archives[{i}].archive: expected {:?}, got {v}",
                    e.get("archive")
                ));
            }
        }
    }
    if exp["repository"]["id"] != act["repository"]["id"] {
        out.push(format!(
            "repository.id: expected {}, got {}",
            exp["repository"]["id"], act["repository"]["id"]
        ));
    }
    for (sect, key) in [("encryption", "mode"), ("repository", "last_modified")] {
        if let Some(v) = act.get(sect).and_then(|s| s.get(key)) {
            if *v != exp[sect][key] {
                out.push(format!(
                    "{sect}.{key}: expected {}, got {v}",
                    exp[sect][key]
                ));
            }
        }
    }
}

/// Compares only what both sides have (objects: common keys; arrays: element-wise).
fn json_diff_common(path: &str, exp: &Value, act: &Value, out: &mut Vec<String>) {
    match (exp, act) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                if let Some(av) = a.get(k) {
                    json_diff_common(&format!("{path}.{k}"), ev, av, out);
                }
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                json_diff_common(&format!("{path}[{i}]"), ev, av, out);
            }
        }
        _ => json_diff(path, exp, act, out),
    }
}

fn strip_machine_fields(v: &mut Value) {
    if let Some(o) = v.as_object_mut() {
        o.remove("security_dir");
        if let Some(c) = o.get_mut("cache").and_then(Value::as_object_mut) {
            c.remove("path");
        }
        if let Some(r) = o.get_mut("repository").and_then(Value::as_object_mut) {
            r.remove("location");
        }
        // the key file is compared by file name (the checkout's path differs)
        if let Some(Value::String(k)) = o.get_mut("encryption").and_then(|e| e.get_mut("keyfile")) {
            *k = Path::new(k.as_str())
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
        }
        if let Some(archives) = o.get_mut("archives").and_then(Value::as_array_mut) {
            for a in archives {
                if let Some(s) = a.get_mut("stats").and_then(Value::as_object_mut) {
                    s.remove("deduplicated_size");
                }
            }
        }
    }
}

fn compare_info_json(exp: &Value, act: &Value, out: &mut Vec<String>) {
    let mut exp = exp.clone();
    let mut act = act.clone();
    strip_machine_fields(&mut exp);
    strip_machine_fields(&mut act);
    let mut required: Vec<String> = vec!["/repository/id".into(), "/encryption/mode".into()];
    if let Some(archives) = exp["archives"].as_array() {
        match act["archives"].as_array() {
            Some(a) if a.len() == archives.len() => {}
            Some(a) => out.push(format!(
                "expected {} archives, got {}",
                archives.len(),
                a.len()
            )),
            None => out.push("no \"archives\" array".into()),
        }
        for i in 0..archives.len() {
            for k in [
                "name",
                "id",
                "start",
                "end",
                "duration",
                "hostname",
                "username",
                "comment",
                "command_line",
                "chunker_params",
                "stats/original_size",
                "stats/compressed_size",
                "stats/nfiles",
            ] {
                required.push(format!("/archives/{i}/{k}"));
            }
        }
    }
    for p in &required {
        if exp.pointer(p).is_some() && act.pointer(p).is_none() {
            out.push(format!(
                "{p}: missing (expected {})",
                exp.pointer(p).unwrap()
            ));
        }
    }
    json_diff_common("", &exp, &act, out);
}

/// Relative paths and sizes/contents of every file under `dir`.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if e.file_type().unwrap().is_dir() {
                out.insert(rel.join(""), Vec::new());
                walk(root, &p, out);
            } else {
                out.insert(rel, fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn check_fixture(name: &str) {
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, name);
    let before = snapshot(&repo);
    let cases = cases(name);
    let mut failures = Vec::new();

    // every recorded file has a case
    for e in fs::read_dir(expected_dir(name)).unwrap() {
        let f = e.unwrap().file_name().to_string_lossy().into_owned();
        if f != "cases.tsv" && f != "borg-version" && !cases.iter().any(|c| c.file == f) {
            failures.push(format!("{f}: not listed in cases.tsv"));
        }
    }

    for case in &cases {
        let out = env.oxiborg(case.args_for(&repo));
        let label = format!("{} [oxiborg {}]", case.file, case.args.join(" "));
        if out.stderr.contains("panicked") || out.code != 0 {
            let first: Vec<&str> = out.stderr.lines().take(3).collect();
            failures.push(format!(
                "{label}: exit code {}: {}",
                out.code,
                first.join(" | ")
            ));
            continue;
        }
        let exp_path = expected_dir(name).join(&case.file);
        let exp = fs::read(&exp_path).unwrap();
        let mut d = Vec::new();
        if case.file.ends_with(".jsonl") {
            jsonl_diff(&String::from_utf8_lossy(&exp), &out.stdout_str(), &mut d);
        } else if case.file.ends_with(".json") {
            let ev: Value = serde_json::from_slice(&exp).unwrap();
            match serde_json::from_slice::<Value>(&out.stdout) {
                Err(e) => d.push(format!("output is not JSON ({e}): {}", out.stdout_str())),
                Ok(av) => {
                    if case.file == "list.json" {
                        compare_list_json(&ev, &av, &mut d);
                    } else {
                        compare_info_json(&ev, &av, &mut d);
                    }
                }
            }
        } else {
            text_diff(&exp, &out.stdout, &mut d);
        }
        failures.extend(d.into_iter().map(|m| format!("{label}: {m}")));
    }

    // a read-only client leaves the repository as it was (no index rewrite, no lock debris)
    let after = snapshot(&repo);
    for (p, c) in &after {
        match before.get(p) {
            None => failures.push(format!("repository gained {}", p.display())),
            Some(b) if b != c => failures.push(format!("repository file changed: {}", p.display())),
            _ => {}
        }
    }
    for p in before.keys() {
        if !after.contains_key(p) {
            failures.push(format!("repository lost {}", p.display()));
        }
    }
    assert_no_diffs(&format!("fixture {name}"), &failures);
}

#[test]
fn fixture_repokey_blake2_lz4() {
    check_fixture("repokey-blake2-lz4");
}

#[test]
fn fixture_keyfile_zstd() {
    check_fixture("keyfile-zstd");
}

#[test]
fn fixture_none_zlib() {
    check_fixture("none-zlib");
}

#[test]
fn fixture_authenticated_lzma() {
    check_fixture("authenticated-lzma");
}

#[test]
fn fixture_repokey_auto_zstd() {
    check_fixture("repokey-auto-zstd");
}

#[test]
fn fixture_keyfile_blake2_obfuscate() {
    check_fixture("keyfile-blake2-obfuscate");
}

#[test]
fn every_fixture_repo_is_tested() {
    let mut on_disk: Vec<String> = fs::read_dir(testdata().join("repos"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut known: Vec<String> = FIXTURE_REPOS.iter().map(|s| s.to_string()).collect();
    known.sort();
    assert_eq!(on_disk, known, "testdata/repos and FIXTURE_REPOS disagree");
    for r in FIXTURE_REPOS {
        assert!(
            expected_dir(r).join("cases.tsv").is_file(),
            "{r}: no cases.tsv"
        );
    }
}

// ---------------------------------------------------------------------------------------
// locations, passphrase sources, key files, locks
// ---------------------------------------------------------------------------------------

const EXAMPLE: &str = "repokey-blake2-lz4";

fn expected(name: &str, file: &str) -> Vec<u8> {
    fs::read(expected_dir(name).join(file)).unwrap()
}

fn first_archive(name: &str) -> String {
    expected_archives(name)[0].0.clone()
}

fn assert_stdout(out: &Output, name: &str, file: &str) {
    out.assert_ok();
    let mut d = Vec::new();
    text_diff(&expected(name, file), &out.stdout, &mut d);
    assert_no_diffs(&out.cmdline, &d);
}

#[test]
fn location_from_borg_repo() {
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, EXAMPLE);
    env.set("BORG_REPO", &repo);
    assert_stdout(&env.oxiborg(["list"]), EXAMPLE, "list.txt");
    let a = first_archive(EXAMPLE);
    assert_stdout(
        &env.oxiborg(["list".to_string(), format!("::{a}")]),
        EXAMPLE,
        &format!("{a}.list.txt"),
    );
}

#[test]
fn location_file_url() {
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, EXAMPLE);
    let url = format!("file://{}", repo.display());
    assert_stdout(&env.oxiborg(["list", url.as_str()]), EXAMPLE, "list.txt");
    let a = first_archive(EXAMPLE);
    assert_stdout(
        &env.oxiborg(["list".to_string(), format!("{url}::{a}")]),
        EXAMPLE,
        &format!("{a}.list.txt"),
    );
}

#[test]
fn location_relative_path() {
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, EXAMPLE);
    let mut cmd = env.oxiborg_cmd(["list", EXAMPLE]);
    cmd.current_dir(repo.parent().unwrap());
    assert_stdout(&run_command(cmd), EXAMPLE, "list.txt");
}

#[test]
fn passphrase_from_passcommand() {
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, EXAMPLE);
    let pw = env.path().join("pw");
    fs::write(&pw, format!("{PASSPHRASE}\n\n")).unwrap(); // trailing newlines are stripped
    env.unset("BORG_PASSPHRASE");
    env.set("BORG_PASSCOMMAND", format!("cat {}", pw.display()));
    assert_stdout(
        &env.oxiborg([Path::new("list"), &repo]),
        EXAMPLE,
        "list.txt",
    );
}

#[test]
fn passphrase_from_fd() {
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, EXAMPLE);
    let pw = env.path().join("pw");
    fs::write(&pw, format!("{PASSPHRASE}\n")).unwrap();
    env.unset("BORG_PASSPHRASE");
    env.set("BORG_PASSPHRASE_FD", "3");
    // open fd 3 on the passphrase file, then exec oxiborg
    let mut cmd = env.command("sh");
    cmd.arg("-c")
        .arg("exec 3<\"$0\"; exec \"$@\"")
        .arg(&pw)
        .arg(oxiborg_bin())
        .arg("list")
        .arg(&repo);
    assert_stdout(&run_command(cmd), EXAMPLE, "list.txt");
}

#[test]
fn key_file_from_borg_key_file() {
    let name = "keyfile-zstd";
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, name);
    let empty = env.path().join("no-keys-here");
    fs::create_dir_all(&empty).unwrap();
    env.set("BORG_KEYS_DIR", &empty);
    env.set(
        "BORG_KEY_FILE",
        testdata().join("keys").join(format!("{name}.key")),
    );
    assert_stdout(&env.oxiborg([Path::new("list"), &repo]), name, "list.txt");
}

#[test]
fn key_file_from_default_keys_dir() {
    let name = "keyfile-blake2-obfuscate";
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, name);
    env.unset("BORG_KEYS_DIR");
    // default: $BORG_BASE_DIR/.config/borg/keys, any file name
    let keys = env.base.join(".config/borg/keys");
    fs::create_dir_all(&keys).unwrap();
    fs::copy(
        testdata().join("keys").join(format!("{name}.key")),
        keys.join("some_other_name"),
    )
    .unwrap();
    // a key file of another repository in the same directory must not confuse the search
    fs::copy(
        testdata().join("keys/keyfile-zstd.key"),
        keys.join("aaa_first"),
    )
    .unwrap();
    assert_stdout(&env.oxiborg([Path::new("list"), &repo]), name, "list.txt");
    let a = first_archive(name);
    let out = env.oxiborg([
        "list".into(),
        "--json-lines".into(),
        repo_archive(&repo, &a),
    ]);
    out.assert_ok();
    let mut d = Vec::new();
    jsonl_diff(
        &String::from_utf8_lossy(&expected(name, &format!("{a}.jsonl"))),
        &out.stdout_str(),
        &mut d,
    );
    assert_no_diffs(&out.cmdline, &d);
}

#[test]
fn unencrypted_repo_needs_no_passphrase() {
    let name = "none-zlib";
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, name);
    env.unset("BORG_PASSPHRASE");
    assert_stdout(&env.oxiborg([Path::new("list"), &repo]), name, "list.txt");
}

fn has_lock_files(repo: &Path) -> Vec<String> {
    fs::read_dir(repo)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("lock."))
        .collect()
}

#[test]
fn bypass_lock_creates_no_lock_files_and_normal_read_cleans_up() {
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, EXAMPLE);
    let a = first_archive(EXAMPLE);
    let out = env.oxiborg([
        "--bypass-lock".into(),
        "list".into(),
        repo_archive(&repo, &a),
    ]);
    assert_stdout(&out, EXAMPLE, &format!("{a}.list.txt"));
    assert_eq!(
        has_lock_files(&repo),
        Vec::<String>::new(),
        "--bypass-lock left lock files"
    );
    let out = env.oxiborg([Path::new("list"), &repo]);
    assert_stdout(&out, EXAMPLE, "list.txt");
    assert_eq!(
        has_lock_files(&repo),
        Vec::<String>::new(),
        "a read left lock files behind"
    );
}

#[test]
fn bypass_lock_ignores_a_foreign_exclusive_lock() {
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, EXAMPLE);
    // another host holds the exclusive lock (never stale from our point of view)
    let lockdir = repo.join("lock.exclusive");
    fs::create_dir(&lockdir).unwrap();
    fs::write(lockdir.join("otherhost.example@123456789.4242-0"), b"").unwrap();
    let roster = r#"{"exclusive": [["otherhost.example@123456789", 4242, 0]]}"#;
    fs::write(repo.join("lock.roster"), roster).unwrap();
    let out = env.oxiborg([
        OsStr::new("--bypass-lock"),
        OsStr::new("list"),
        repo.as_os_str(),
    ]);
    assert_stdout(&out, EXAMPLE, "list.txt");
    assert!(
        lockdir.join("otherhost.example@123456789.4242-0").exists(),
        "foreign lock removed"
    );
    assert_eq!(
        fs::read_to_string(repo.join("lock.roster")).unwrap(),
        roster,
        "roster changed"
    );
}

#[test]
fn bypass_lock_after_the_command() {
    // borg accepts common options after the sub-command, too
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, EXAMPLE);
    let out = env.oxiborg([Path::new("list"), Path::new("--bypass-lock"), &repo]);
    assert_stdout(&out, EXAMPLE, "list.txt");
}

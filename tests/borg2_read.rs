//! borg 2.0.0b25 repositories read by oxiborg, compared with borg 2 itself.
//!
//! * The committed fixtures (testdata/borg2, no borg needed): every recorded case of
//!   `expected/<repo>/cases.tsv` run as `oxiborg ARGS…` (borg 2's command line: `-r REPO
//!   repo-list`, `list ARCHIVE`, …) and compared with borg's output; the repository is left
//!   as it was.
//! * The repositories of tests/borg2/make_repos.sh (every suite, compressions, same-name and
//!   deleted archives, two keys, a transferred borg 1.x archive, repo-compress, an invalid
//!   chunk index, a many-item archive): `repo-list --json` and every archive's
//!   `list --json-lines` as borg 2 gives them, with every passphrase that opens the repository;
//!   and every archive restored as `borg extract` restores it (content and metadata).

mod common;
mod extract_support;

use common::*;
use extract_support::{Args, Runner};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Every file under `dir` with its content (a read-only client must change nothing).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Drops what depends on the machine the output was recorded on.
fn strip_machine_fields(v: &mut Value) {
    if let Some(o) = v.as_object_mut() {
        o.remove("cache");
        o.remove("security_dir");
        if let Some(r) = o.get_mut("repository").and_then(Value::as_object_mut) {
            r.remove("location");
        }
        if let Some(e) = o.get_mut("encryption").and_then(Value::as_object_mut) {
            e.remove("keyfile");
        }
        if let Some(a) = o.get_mut("archives").and_then(Value::as_array_mut) {
            for x in a {
                if let Some(x) = x.as_object_mut() {
                    // borg 2 measures these while it reads; oxiborg reports 0
                    if let Some(s) = x.get_mut("stats").and_then(Value::as_object_mut) {
                        s.remove("chunking_time");
                        s.remove("hashing_time");
                    }
                }
            }
        }
    }
}

fn check_fixture(name: &str) {
    let mut env = TestEnv::new();
    let repo = borg2_fixture_repo(&mut env, name);
    let before = snapshot(&repo);
    let dir = borg2_expected_dir(name);
    let mut failures = Vec::new();
    for case in cases_in(&dir) {
        let out = env.oxiborg(case.args_for(&repo));
        let label = format!("{} [oxiborg {}]", case.file, case.args.join(" "));
        if out.stderr.contains("panicked") || out.code != 0 {
            failures.push(format!(
                "{label}: exit code {}: {}",
                out.code,
                out.stderr.trim()
            ));
            continue;
        }
        let exp = fs::read(dir.join(&case.file)).unwrap();
        let mut d = Vec::new();
        recorded_diff(&case.file, &exp, &out.stdout, &strip_machine_fields, &mut d);
        failures.extend(d.into_iter().map(|m| format!("{label}: {m}")));
    }
    let after = snapshot(&repo);
    if before != after {
        failures.push("the repository changed".into());
    }
    assert_no_diffs(&format!("borg 2 fixture {name}"), &failures);
}

#[test]
fn fixture_chacha20_poly1305_blake3_repokey() {
    check_fixture("chacha20-poly1305-blake3-repokey");
}

#[test]
fn fixture_aes256_ocb_sha256_keyfile() {
    check_fixture("aes256-ocb-sha256-keyfile");
}

#[test]
fn fixture_authenticated_blake3_repokey() {
    check_fixture("authenticated-blake3-repokey");
}

/// The generated repositories oxiborg must read (the borg 1.x source of `transferred` is
/// read by the 1.x tests).
fn generated() -> Option<(PathBuf, Vec<Borg2Repo>)> {
    let dir = borg2_repos()?;
    let repos = borg2_manifest(&dir)
        .into_iter()
        .filter(|r| r.encryption != "borg1-repokey")
        .collect();
    Some((dir, repos))
}

/// `oxiborg -r REPO ARGS` and `borg -r REPO ARGS`, both successful; their stdouts.
fn both(env: &TestEnv, b2: &Borg, repo: &Path, args: &[&str]) -> (String, String) {
    let mut full = vec![std::ffi::OsString::from("-r"), repo.as_os_str().into()];
    full.extend(args.iter().map(std::ffi::OsString::from));
    let b = env.borg_ok(b2, &full);
    let o = env.oxiborg(&full);
    assert!(
        o.code == 0 && !o.stderr.contains("panicked"),
        "oxiborg {args:?} on {}: {}",
        repo.display(),
        o.describe()
    );
    (b.stdout_str(), o.stdout_str())
}

#[test]
fn lists_like_borg2() {
    let Some(b2) = borg2() else { return };
    let Some((dir, repos)) = generated() else {
        return;
    };
    let mut diffs = Vec::new();
    for r in &repos {
        let mut env = borg2_env(&dir);
        // borg rebuilds an invalid chunk index (and drops the marker): oxiborg reads first
        let repo = copy_borg2_repo(&env, &dir, &r.name);
        for pass in &r.passphrases {
            env.set("BORG_PASSPHRASE", pass);
            let label = format!("{} (passphrase {pass})", r.name);
            let (b, o) = both(&env, &b2, &repo, &["repo-list", "--json"]);
            let (mut bv, mut ov): (Value, Value) = (
                serde_json::from_str(&b).unwrap(),
                serde_json::from_str(&o).unwrap_or(Value::Null),
            );
            strip_machine_fields(&mut bv);
            strip_machine_fields(&mut ov);
            let mut d = Vec::new();
            json_diff("", &bv, &ov, &mut d);
            diffs.extend(
                d.into_iter()
                    .map(|m| format!("{label}: repo-list --json: {m}")),
            );
            let ids: Vec<String> = bv["archives"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_str().unwrap().to_string())
                .collect();
            let names: Vec<&str> = bv["archives"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["name"].as_str().unwrap())
                .collect();
            assert_eq!(names, r.archives, "{label}: the script's archive list");
            for id in &ids {
                let aid = format!("aid:{}", &id[..16]);
                let (b, o) = both(&env, &b2, &repo, &["list", "--json-lines", &aid]);
                let mut d = Vec::new();
                jsonl_diff(&b, &o, &mut d);
                diffs.extend(d.into_iter().map(|m| format!("{label}: list {aid}: {m}")));
                let (b, o) = both(&env, &b2, &repo, &["list", &aid]);
                let mut d = Vec::new();
                text_diff(b.as_bytes(), o.as_bytes(), &mut d);
                diffs.extend(
                    d.into_iter()
                        .map(|m| format!("{label}: list {aid} (text): {m}")),
                );
            }
        }
    }
    assert_no_diffs("borg 2 listings", &diffs);
}

#[test]
fn extracts_like_borg2() {
    let Some(b2) = borg2() else { return };
    let Some((dir, repos)) = generated() else {
        return;
    };
    let mut env = borg2_env(&dir);
    env.set("BORG_PASSPHRASE", PASSPHRASE);
    let mut runners = Vec::new();
    for r in &repos {
        let repo = copy_borg2_repo(&env, &dir, &r.name);
        let out = env.borg_ok(
            &b2,
            [
                std::ffi::OsStr::new("-r"),
                repo.as_os_str(),
                "repo-list".as_ref(),
                "--short".as_ref(),
            ],
        );
        let mut runner = Runner::new(&env, &b2, &repo);
        for id in out.stdout_str().lines() {
            let aid = format!("aid:{}", &id[..16]);
            runner.case(
                &format!("{} {aid}", r.name),
                &aid,
                &Args::new(&[], &[]),
                false,
                false,
            );
        }
        runners.push(runner);
    }
    let diffs: Vec<String> = runners.into_iter().flat_map(|r| r.diffs).collect();
    assert_no_diffs("borg 2 extracts", &diffs);
}

/// What oxiborg refuses, in one line each: other borg 2 betas, another repository version,
/// a changed key type (borg 2's security directory), a wrong passphrase, a missing key file.
#[test]
fn refusals() {
    let mut env = TestEnv::new();
    let one_line = |out: &Output, needle: &str| {
        assert_eq!(out.code, 2, "{}", out.describe());
        let text = out.stderr.trim();
        assert!(
            text.contains(needle) && text.lines().count() == 1 && !text.contains("panicked"),
            "wanted one line with {needle:?}: {}",
            out.describe()
        );
    };
    // an earlier borg 2 beta: config/version, objects in data/ (≤ b21) or packs/ (b22–b24)
    let beta = env.path().join("b21");
    fs::create_dir_all(beta.join("config")).unwrap();
    fs::create_dir_all(beta.join("data")).unwrap();
    fs::write(beta.join("config/version"), "3\n").unwrap();
    one_line(
        &env.oxiborg(["-r".as_ref(), beta.as_os_str(), "repo-list".as_ref()]),
        "2.0.0b21 or older",
    );
    fs::create_dir_all(beta.join("packs")).unwrap();
    one_line(
        &env.oxiborg(["-r".as_ref(), beta.as_os_str(), "repo-list".as_ref()]),
        "b22 to b24",
    );
    // another repository version
    let repo = borg2_fixture_repo(&mut env, "chacha20-poly1305-blake3-repokey");
    let cfg = repo.join("config/config");
    let text = fs::read_to_string(&cfg).unwrap();
    fs::write(&cfg, text.replace("version = 5", "version = 6")).unwrap();
    one_line(
        &env.oxiborg(["list".as_ref(), repo.as_os_str()]),
        "version 6",
    );
    fs::write(&cfg, &text).unwrap();
    // the security directory remembers the key type; a changed one is refused
    let list = |env: &TestEnv| env.oxiborg(["list".as_ref(), repo.as_os_str()]);
    let out = list(&env);
    assert_eq!(out.code, 0, "{}", out.describe());
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("id = "))
        .unwrap()
        .trim()
        .to_string();
    let key_type = env
        .base
        .join(".local/share/borg/security")
        .join(&id)
        .join("key-type");
    assert_eq!(
        fs::read_to_string(&key_type).unwrap().trim(),
        "64",
        "chacha20-poly1305/blake3"
    );
    fs::write(&key_type, "16").unwrap();
    let out = list(&env);
    assert_eq!(out.code, 2, "{}", out.describe());
    assert!(
        out.stderr.contains("encryption method changed"),
        "{}",
        out.describe()
    );
    fs::write(&key_type, "64").unwrap();
    // a wrong passphrase
    env.set("BORG_PASSPHRASE", "wrong");
    let out = list(&env);
    assert!(
        out.code != 0 && out.stderr.contains("incorrect"),
        "{}",
        out.describe()
    );
    env.set("BORG_PASSPHRASE", PASSPHRASE);
    // a keyfile repository without its key file
    let kf = borg2_fixture_repo(&mut env, "aes256-ocb-sha256-keyfile");
    env.set("BORG_KEYS_DIR", env.path().join("no-keys"));
    let out = env.oxiborg(["list".as_ref(), kf.as_os_str()]);
    assert!(
        out.code != 0
            && out.stderr.to_lowercase().contains("key")
            && !out.stderr.contains("panicked"),
        "{}",
        out.describe()
    );
}

/// borg 2's `-r REPO` with oxiborg's `--latest`: the positional is then a PATH (for `list`,
/// `extract` and `export-tar`), and `::ARCHIVE` or a bare archive name otherwise.
#[test]
fn repo_option_forms() {
    let mut env = TestEnv::new();
    let repo = borg2_fixture_repo(&mut env, "chacha20-poly1305-blake3-repokey");
    let r = |args: &[&str], cwd: &Path| {
        let mut full = vec![std::ffi::OsString::from("-r"), repo.as_os_str().into()];
        full.extend(args.iter().map(std::ffi::OsString::from));
        let mut cmd = env.oxiborg_cmd(&full);
        cmd.current_dir(cwd);
        let out = run_command(cmd);
        assert_eq!(out.code, 0, "{args:?}: {}", out.describe());
        out
    };
    let here = env.path().to_path_buf();
    let listed = r(&["list", "--latest", "--short", "tree/dir"], &here).stdout_str();
    assert!(listed.contains("tree/dir/added-later.txt"), "{listed}"); // only in `second`
    assert!(!listed.contains("hello.txt"), "{listed}");
    assert_eq!(
        r(&["list", "--short", "::first", "tree/dir"], &here).stdout_str(),
        r(&["list", "--short", "first", "tree/dir"], &here).stdout_str()
    );
    let dest = here.join("dest");
    fs::create_dir_all(&dest).unwrap();
    r(&["extract", "--latest", "tree/hello.txt"], &dest);
    let got: Vec<_> = snapshot(&dest).into_keys().collect();
    assert_eq!(got, vec![PathBuf::from("tree/hello.txt")]);
    r(&["export-tar", "--latest", "o.tar", "tree/dir"], &here);
    let tar = fs::read(here.join("o.tar")).unwrap();
    assert!(tar.windows(23).any(|w| w == b"tree/dir/added-later.tx"));
    assert!(!tar.windows(9).any(|w| w == b"hello.txt"));
}

//! borg 2.0.0b25 repositories over `ssh://`, end to end: a real sshd on 127.0.0.1 whose
//! `borg` is borg 2.0.0b25. oxiborg asks borg 1.x's `borg serve` first; the b25 server refuses
//! that at once and oxiborg reads the repository over `borg serve --rest` with borg 2's path
//! rules. Over the built-in SSH client and over `BORG_RSH`: `repo-list --json`,
//! `list --json-lines`, `info --json`, `check --verify-data` and `extract` give what the same
//! repository read locally gives (which `tests/borg2_read.rs` compares with borg 2 itself);
//! a missing repository is named; borg 2's relative paths work.

mod common;
mod extract_support;
mod remote_support;

use common::*;
use extract_support::{compare, now_ns, CompareOpts, Snapshot};
use remote_support::*;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

/// The server's borg is b25; `BORG_REMOTE_PATH` names it for the plain key.
fn remote() -> Option<Remote> {
    let b2 = borg2()?;
    let r = Remote::new(b2)?;
    Some(r)
}

/// `-r LOC ARGS…` over transport `t` with the plain key, b25 as the remote borg.
fn ox(r: &Remote, t: Transport, loc: &str, args: &[&str], cwd: Option<&Path>) -> Run {
    let mut full: Vec<OsString> = vec!["-r".into(), loc.into()];
    full.extend(args.iter().map(OsString::from));
    let mut cmd = r.oxiborg_cmd(t, Key::Plain, &full);
    cmd.env("BORG_REMOTE_PATH", &r.borg.path);
    cmd.env("BORG_KEYS_DIR", borg2_testdata().join("keys"));
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    run_limited(cmd, RUN_LIMIT)
}

/// The same command on the local repository.
fn local(r: &Remote, repo: &Path, args: &[&str], cwd: Option<&Path>) -> Output {
    let mut full: Vec<OsString> = vec!["-r".into(), repo.into()];
    full.extend(args.iter().map(OsString::from));
    let mut cmd = r.env.oxiborg_cmd(&full);
    cmd.env("BORG_KEYS_DIR", borg2_testdata().join("keys"));
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    run_command(cmd)
}

/// Everything but where the repository is.
fn without_location(v: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(v).unwrap_or(serde_json::Value::Null);
    if let Some(r) = v.get_mut("repository").and_then(|r| r.as_object_mut()) {
        r.remove("location");
    }
    v
}

fn fixture(r: &Remote, name: &str) -> PathBuf {
    let dst = r.pool.join(name);
    copy_dir(&borg2_testdata().join("repos").join(name), &dst);
    dst
}

#[test]
fn reads_like_local() {
    let Some(r) = remote() else { return };
    let mut diffs = Vec::new();
    for name in BORG2_FIXTURE_REPOS {
        let repo = fixture(&r, name);
        // borg 2's rule: `//` makes the path absolute
        let url = format!(
            "ssh://{}@127.0.0.1:{}/{}",
            login_user(),
            r.port(),
            repo.display()
        );
        for t in [Transport::Native, Transport::Command] {
            let label = format!("{name} over {t:?}");
            for args in [
                &["repo-list", "--json"][..],
                &["repo-list"],
                &["list", "--json-lines", "first"],
                &["list", "second"],
                &["info", "--json", "second"],
            ] {
                let o = ox(&r, t, &url, args, None);
                let l = local(&r, &repo, args, None);
                if o.out.code != 0 || l.code != 0 {
                    diffs.push(format!(
                        "{label} {args:?}: exit codes {} (ssh), {} (local): {}",
                        o.out.code,
                        l.code,
                        o.out.stderr.trim()
                    ));
                    continue;
                }
                let same = if args.contains(&"--json") {
                    without_location(&o.out.stdout_str()) == without_location(&l.stdout_str())
                } else {
                    o.out.stdout == l.stdout
                };
                if !same {
                    diffs.push(format!(
                        "{label} {args:?}: differs\n  ssh:   {}\n  local: {}",
                        o.out.stdout_str(),
                        l.stdout_str()
                    ));
                }
            }
            let o = ox(&r, t, &url, &["check", "--verify-data", "-v"], None);
            if o.out.code != 0 || !o.out.stderr.contains("verified") {
                diffs.push(format!("{label}: check --verify-data: {}", o.describe()));
            }
            // extract: the same tree as a local extract
            let base = r.env.path().join(format!("x-{name}-{t:?}"));
            let (a, b) = (base.join("local"), base.join("ssh"));
            fs::create_dir_all(&a).unwrap();
            fs::create_dir_all(&b).unwrap();
            let from = now_ns() - 1_000_000_000;
            let l = local(&r, &repo, &["extract", "second"], Some(&a));
            let o = ox(&r, t, &url, &["extract", "second"], Some(&b));
            if l.code != 0 || o.out.code != 0 {
                diffs.push(format!("{label}: extract: {}", o.describe()));
                continue;
            }
            let opts = CompareOpts {
                root_meta: false,
                fresh_from_ns: from,
            };
            let (sa, sb) = (Snapshot::take(&a), Snapshot::take(&b));
            assert!(!sa.is_empty_tree(), "{label}: the local extract is empty");
            compare(&format!("{label}: extract"), &sa, &sb, &opts, &mut diffs);
        }
    }
    assert_no_diffs("borg 2 over ssh://", &diffs);
}

#[test]
fn relative_paths_and_missing_repositories() {
    let Some(r) = remote() else { return };
    let repo = fixture(&r, "chacha20-poly1305-blake3-repokey");
    // borg 2's rule: a single slash is relative to the login directory (the test user's
    // home); `~` is expanded by the server
    let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()));
    let rel = format!("oxiborg-b2-{}", std::process::id());
    let link = home.join(&rel);
    let _ = fs::remove_file(&link);
    std::os::unix::fs::symlink(&repo, &link).unwrap();
    let url = format!("ssh://{}@127.0.0.1:{}/{rel}", login_user(), r.port());
    let o = ox(&r, Transport::Native, &url, &["repo-list", "--short"], None);
    let tilde = format!("ssh://{}@127.0.0.1:{}/~/{rel}", login_user(), r.port());
    let t = ox(
        &r,
        Transport::Native,
        &tilde,
        &["repo-list", "--short"],
        None,
    );
    let _ = fs::remove_file(&link);
    assert_eq!(o.out.code, 0, "{}", o.describe());
    assert_eq!(o.out.stdout_str().lines().count(), 2, "{}", o.describe());
    assert_eq!(t.out.code, 0, "{}", t.describe());
    assert_eq!(t.out.stdout, o.out.stdout);

    let missing = format!(
        "ssh://{}@127.0.0.1:{}/{}",
        login_user(),
        r.port(),
        r.pool.join("nothing-here").display()
    );
    let m = ox(&r, Transport::Native, &missing, &["repo-list"], None);
    assert_eq!(m.out.code, 2, "{}", m.describe());
    assert!(
        m.out.stderr.contains("does not exist") && !m.out.stderr.contains("panicked"),
        "{}",
        m.describe()
    );
}

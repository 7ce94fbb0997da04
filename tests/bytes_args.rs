//! Arguments are bytes on Unix, as borg takes them: PATHs, patterns (`-e`, `--pattern`, pattern
//! files), `-C` and archive names that are not UTF-8 select and restore exactly what borg
//! 1.4.5 selects and restores.

mod common;
mod remote_support;

use common::*;
use remote_support::tree_diff_fresh;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

fn b(bytes: &[u8]) -> OsString {
    OsString::from_vec(bytes.to_vec())
}

const BAD: &[u8] = b"bad\xff\xfeutf8";

/// A tree with a non-UTF-8 directory next to ordinary ones, archived by borg as `a`.
fn repo(env: &TestEnv, borg: &Borg) -> PathBuf {
    let src = env.path().join("src");
    let bad = src.join("t").join(OsStr::from_bytes(BAD));
    fs::create_dir_all(&bad).unwrap();
    fs::write(bad.join("file"), b"bad content").unwrap();
    fs::write(bad.join(OsStr::from_bytes(b"x\xe9.txt")), b"latin-1 name").unwrap();
    fs::create_dir_all(src.join("t/ok")).unwrap();
    fs::write(src.join("t/ok/file"), b"ok content").unwrap();
    let repo = env.path().join("repo");
    env.borg_init(borg, &repo, "repokey", &[]);
    env.borg_create(borg, &repo, "a", &src, &["t"], &[]);
    repo
}

/// Runs `borg extract` and `oxiborg extract` with the same arguments into fresh directories
/// (each `-C`-less run in its own cwd) and compares the trees.
fn same_extract(env: &TestEnv, borg: &Borg, repo: &Path, name: &str, extra: &[OsString]) {
    same_extract_as(env, borg, repo, name, extra, extra);
}

/// [`same_extract`] with other arguments for oxiborg than for borg.
fn same_extract_as(
    env: &TestEnv,
    borg: &Borg,
    repo: &Path,
    name: &str,
    extra: &[OsString],
    oxiborg_extra: &[OsString],
) {
    let mut args: Vec<OsString> = vec!["extract".into(), repo_archive(repo, "a")];
    let mut ox_args = args.clone();
    args.extend(extra.iter().cloned());
    ox_args.extend(oxiborg_extra.iter().cloned());
    let exp = env.path().join(format!("borg-{name}"));
    let act = env.path().join(format!("oxiborg-{name}"));
    fs::create_dir_all(&exp).unwrap();
    fs::create_dir_all(&act).unwrap();
    let mut cmd = env.borg_cmd(borg, &args);
    cmd.current_dir(&exp);
    let out = run_command(cmd);
    assert_eq!(out.code, 0, "borg {name}\n{}", out.describe());
    let mut cmd = env.oxiborg_cmd(&ox_args);
    cmd.current_dir(&act);
    let out = run_command(cmd);
    assert_eq!(out.code, 0, "oxiborg {name}\n{}", out.describe());
    // (parents of a selected file are made with the current time)
    let bad_dir = String::from_utf8_lossy(&[b"t/".as_slice(), BAD].concat()).into_owned();
    let fresh = if name == "file" {
        vec!["t", bad_dir.as_str()]
    } else {
        vec!["t"]
    };
    let diffs = tree_diff_fresh(&exp, &act, &fresh);
    assert!(diffs.is_empty(), "{name}: {diffs:#?}");
    assert!(
        fs::read_dir(&exp).unwrap().next().is_some(),
        "{name}: borg restored nothing (a useless case)"
    );
}

#[test]
fn non_utf8_paths_and_patterns_select_what_borg_selects() {
    let Some(borg) = borg("1.4") else { return };
    let env = TestEnv::new();
    let repo = repo(&env, &borg);
    let bad_path = [b"t/".as_slice(), BAD].concat();
    same_extract(&env, &borg, &repo, "path", &[b(&bad_path)]);
    same_extract(
        &env,
        &borg,
        &repo,
        "file",
        &[b(&[bad_path.as_slice(), b"/x\xe9.txt"].concat())],
    );
    same_extract(&env, &borg, &repo, "exclude", &["-e".into(), b(&bad_path)]);
    same_extract(
        &env,
        &borg,
        &repo,
        "fnmatch",
        &["-e".into(), b(b"fm:*/bad\xff*")],
    );
    same_extract(
        &env,
        &borg,
        &repo,
        "pattern",
        &["--pattern".into(), b(b"- t/*\xfe*/x*")],
    );
    // a pattern file that is not UTF-8 (borg 1.4.5 cannot read one: it stops with a
    // UnicodeDecodeError) selects what the same lines select as --pattern arguments
    let pf = env.path().join("patterns");
    fs::write(&pf, b"- re:\xe9\\.txt$\n+ t\n").unwrap();
    same_extract_as(
        &env,
        &borg,
        &repo,
        "patterns-from",
        &[
            "--pattern".into(),
            b(b"- re:\xe9\\.txt$"),
            "--pattern".into(),
            "+ t".into(),
        ],
        &["--patterns-from".into(), pf.into()],
    );

    // -C into a directory whose name is not UTF-8
    let dest = env.path().join(OsStr::from_bytes(b"dest\xff"));
    let out = env.oxiborg([
        OsString::from("extract"),
        "-C".into(),
        dest.clone().into(),
        repo_archive(&repo, "a"),
        b(&bad_path),
    ]);
    out.assert_ok();
    assert_eq!(
        fs::read(dest.join(OsStr::from_bytes(&bad_path)).join("file")).unwrap(),
        b"bad content"
    );

    // list with a non-UTF-8 PATH: borg's lines
    let args = [
        OsString::from("list"),
        "--short".into(),
        repo_archive(&repo, "a"),
        b(&bad_path),
    ];
    let exp = env.borg(&borg, &args);
    let act = env.oxiborg(&args);
    assert_eq!(exp.code, 0, "{}", exp.describe());
    act.assert_ok();
    assert_eq!(act.stdout, exp.stdout, "{}", act.describe());
}

//! Argument consistency: the same spellings work for every command, whichever way the
//! repository is given.
//!
//! * With the repository from a borgmatic configuration or `BORG_REPO`, a first positional
//!   that is not a location is a PATH (`oxiborg --borgmatic-config F extract --latest
//!   home/me/.bashrc`), for extract, list --latest and export-tar.
//! * `info ::latest` and `info --latest` show the newest archive, as `list` and `extract`
//!   accept them.
//! * borgmatic's `extract --archive A --path P` under `--borgmatic-config`; without it, the
//!   error gives the oxiborg command.
//! * An archive name that is not UTF-8 reaches the archive lookup (no "invalid UTF-8" refusal).

mod common;

use common::*;
use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

const OLD: &str = "host-2025-01-14";
const NEW: &str = "host-2025-01-15";

/// A repository with two archives of `home/me/{.bashrc,notes.txt}` (the file changes).
fn setup(env: &TestEnv, borg: &Borg) -> PathBuf {
    let src = env.path().join("data");
    fs::create_dir_all(src.join("home/me")).unwrap();
    fs::write(src.join("home/me/.bashrc"), b"old bashrc\n").unwrap();
    fs::write(src.join("home/me/notes.txt"), b"notes\n").unwrap();
    let repo = env.path().join("repo");
    env.borg_init(borg, &repo, "repokey-blake2", &[]);
    env.borg_create(borg, &repo, OLD, &src, &["home"], &[]);
    fs::write(src.join("home/me/.bashrc"), b"new bashrc\n").unwrap();
    env.borg_create(borg, &repo, NEW, &src, &["home"], &[]);
    repo
}

/// A borgmatic 1.8 configuration for `repo`, the passphrase from a passcommand.
fn config(env: &TestEnv, repo: &Path) -> PathBuf {
    let pass = env.path().join("pass");
    fs::write(&pass, format!("{PASSPHRASE}\n")).unwrap();
    let cfg = env.path().join("voile.yaml");
    fs::write(
        &cfg,
        format!(
            "source_directories: [/home]\nrepositories:\n    - path: {}\n      label: voile\nencryption_passcommand: cat {}\n",
            repo.display(),
            pass.display()
        ),
    )
    .unwrap();
    cfg
}

fn os(v: &[&str]) -> Vec<OsString> {
    v.iter().map(OsString::from).collect()
}

/// Runs oxiborg in a fresh directory `name` (its cwd) and returns (output, that directory).
fn run_in(env: &TestEnv, name: &str, args: &[OsString]) -> (Output, PathBuf) {
    let dir = env.path().join(name);
    fs::create_dir_all(&dir).unwrap();
    let mut cmd = env.oxiborg_cmd(args);
    cmd.current_dir(&dir);
    (run_command(cmd), dir)
}

#[test]
fn a_path_where_the_location_would_be() {
    let Some(borg) = any_borg() else { return };
    let mut env = TestEnv::new();
    let repo = setup(&env, &borg);
    let cfg = config(&env, &repo);
    env.unset("BORG_PASSPHRASE");
    let bc = |rest: &[&str]| {
        let mut v = os(&["--borgmatic-config"]);
        v.push(cfg.clone().into());
        v.extend(os(rest));
        v
    };

    // the runbook's step, borgmatic-style: the newest archive, one file, no `::`
    let (out, dir) = run_in(&env, "x1", &bc(&["extract", "--latest", "home/me/.bashrc"]));
    out.assert_ok();
    assert_eq!(
        fs::read(dir.join("home/me/.bashrc")).unwrap(),
        b"new bashrc\n"
    );
    assert!(!dir.join("home/me/notes.txt").exists(), "only the PATH");

    // borgmatic's own spelling
    let (out, dir) = run_in(
        &env,
        "x2",
        &bc(&[
            "extract",
            "--archive",
            "latest",
            "--path",
            "home/me/.bashrc",
        ]),
    );
    out.assert_ok();
    assert_eq!(
        fs::read(dir.join("home/me/.bashrc")).unwrap(),
        b"new bashrc\n"
    );
    let (out, dir) = run_in(
        &env,
        "x3",
        &bc(&["extract", "--archive", OLD, "--path", "home/me"]),
    );
    out.assert_ok();
    assert_eq!(
        fs::read(dir.join("home/me/.bashrc")).unwrap(),
        b"old bashrc\n"
    );
    assert!(dir.join("home/me/notes.txt").exists());
    let (out, _) = run_in(
        &env,
        "x4",
        &bc(&[
            "list",
            "--archive",
            OLD,
            "--path",
            "home/me/.bashrc",
            "--short",
        ]),
    );
    out.assert_ok();
    assert_eq!(out.stdout_str(), "home/me/.bashrc\n");
    let (out, _) = run_in(&env, "x5", &bc(&["list", "--latest", "home/me/.bashrc"]));
    out.assert_ok();
    assert!(
        out.stdout_str().contains("home/me/.bashrc"),
        "{}",
        out.describe()
    );

    // BORG_REPO: the same rule
    env.set("BORG_REPO", &repo);
    env.set("BORG_PASSPHRASE", PASSPHRASE);
    let (out, dir) = run_in(&env, "x6", &os(&["extract", "--latest", "home/me/.bashrc"]));
    out.assert_ok();
    assert_eq!(
        fs::read(dir.join("home/me/.bashrc")).unwrap(),
        b"new bashrc\n"
    );
    let (out, dir) = run_in(
        &env,
        "x7",
        &os(&["export-tar", "--latest", "out.tar", "home/me/notes.txt"]),
    );
    out.assert_ok();
    let listing = run_command({
        let mut c = std::process::Command::new("tar");
        c.arg("-tf").arg(dir.join("out.tar"));
        c
    });
    assert_eq!(listing.stdout_str(), "home/me/notes.txt\n");
    // a repository directory stays a location
    let (out, _) = run_in(&env, "x8", &[OsString::from("list"), repo.clone().into()]);
    out.assert_ok();
    assert!(out.stdout_str().contains(NEW));

    // without borgmatic, --archive/--path name the oxiborg command
    let (out, _) = run_in(
        &env,
        "x9",
        &os(&["extract", "--archive", OLD, "--path", "home/me"]),
    );
    out.assert_error(&["borgmatic", &format!("oxiborg extract REPO::{OLD} home/me")]);
}

#[test]
fn info_takes_latest_like_the_other_commands() {
    let Some(borg) = any_borg() else { return };
    let env = TestEnv::new();
    let repo = setup(&env, &borg);
    let newest = env.oxiborg([OsString::from("info"), repo_archive(&repo, NEW)]);
    newest.assert_ok();
    assert!(newest.stdout_str().contains(NEW), "{}", newest.describe());
    let magic = env.oxiborg([OsString::from("info"), repo_archive(&repo, "latest")]);
    magic.assert_ok();
    assert_eq!(magic.stdout_str(), newest.stdout_str());
    let flag = env.oxiborg([
        OsString::from("info"),
        "--latest".into(),
        repo.clone().into(),
    ]);
    flag.assert_ok();
    assert_eq!(flag.stdout_str(), newest.stdout_str());
    let prefixed = env.oxiborg([
        OsString::from("info"),
        "--latest".into(),
        "-a".into(),
        "*-14".into(),
        repo.clone().into(),
    ]);
    prefixed.assert_ok();
    assert!(
        prefixed.stdout_str().contains(OLD),
        "{}",
        prefixed.describe()
    );
    // the oracle for the archive shown: borg's own info of the newest archive names it too
    let b = env.borg(&borg, [OsString::from("info"), repo_archive(&repo, NEW)]);
    assert_eq!(b.code, 0, "{}", b.describe());
    let archive_line = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("Archive name:"))
            .map(str::to_string)
    };
    assert_eq!(
        archive_line(&flag.stdout_str()),
        archive_line(&b.stdout_str())
    );
}

#[test]
fn an_archive_name_that_is_not_utf8() {
    let Some(borg) = any_borg() else { return };
    let env = TestEnv::new();
    let repo = setup(&env, &borg);
    let mut loc = repo.clone().into_os_string().into_vec();
    loc.extend_from_slice(b"::host-\xff");
    let out = env.oxiborg([OsString::from("list"), OsString::from_vec(loc)]);
    out.assert_error(&["Archive host-? does not exist"]);
    assert!(!out.stderr.contains("UTF-8"), "{}", out.describe());
}

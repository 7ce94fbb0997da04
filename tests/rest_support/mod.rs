//! Support for `tests/rest.rs` and `tests/rest_hostile.rs`: borg 2.0.0b25 (`OXIBORG_BORG2`),
//! b25 repositories made by it, locations and options for the test sshd's plain key, and the
//! walks over a repository's files and a pack's objects.
#![allow(dead_code)]

use crate::common::*;
use crate::remote_support::*;
use oxiborg::fuzzing::FilesProbe;
use oxiborg::RemoteOptions;
use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::time::Duration;

/// `BORG -r REPO ARGS…` with `env`'s environment, in `cwd`; must exit 0.
pub fn borg2_ok(env: &TestEnv, borg: &Borg, repo: &Path, args: &[&str], cwd: &Path) {
    let mut cmd = env.borg_cmd(borg, [OsStr::new("-r"), repo.as_os_str()]);
    cmd.args(args).current_dir(cwd);
    run_ok(cmd, Duration::from_secs(300));
}

/// `ssh://USER@127.0.0.1:PORT//ABS/PATH` (borg 2: the double slash makes the path absolute).
pub fn url(r: &Remote, repo: &Path) -> String {
    format!(
        "ssh://{}@{HOST}:{}/{}",
        login_user(),
        r.port(),
        repo.display()
    )
}

/// Options for the plain key (no forced command), the server's borg being b25.
pub fn options(r: &Remote, t: Transport) -> RemoteOptions {
    let mut o = RemoteOptions {
        remote_path: Some(r.borg.path.display().to_string()),
        known_hosts: Some(r.known_hosts.clone()),
        ssh_config: Some("/dev/null".into()),
        timeout: Duration::from_secs(60),
        ..RemoteOptions::default()
    };
    match t {
        Transport::Command => o.rsh = Some(r.rsh(Key::Plain)),
        _ => o.identity = Some(r.key(Key::Plain).private.clone()),
    }
    o
}

/// Every directory under `dir` (itself included) and every file, by name.
pub fn walk(f: &FilesProbe, dir: &str, dirs: &mut Vec<String>, files: &mut Vec<(String, u64)>) {
    dirs.push(dir.to_string());
    for (name, size, is_dir) in f.list(dir).unwrap().unwrap() {
        let full = if dir.is_empty() {
            name
        } else {
            format!("{dir}/{name}")
        };
        if is_dir {
            walk(f, &full, dirs, files);
        } else {
            files.push((full, size));
        }
    }
}

/// The objects of a pack (offset, length), by its headers.
pub fn objects(pack: &[u8]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 49 <= pack.len() {
        assert_eq!(&pack[at..at + 8], b"BORG_OBJ", "a pack object at {at}");
        let le = |i: usize| u32::from_le_bytes(pack[i..i + 4].try_into().unwrap()) as usize;
        let len = 49 + le(at + 41) + le(at + 45);
        out.push((at as u64, len as u64));
        at += len;
    }
    assert_eq!(at, pack.len(), "objects fill the pack");
    out
}

/// A b25 repository with one archive of one small file.
pub fn make_small_repo(r: &Remote, repo: &Path) {
    let src = r.env.path().join("small-src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("file"), b"small\n").unwrap();
    borg2_ok(
        &r.env,
        &r.borg,
        repo,
        &["repo-create", "-e", "chacha20-poly1305", "-i", "blake3"],
        &src,
    );
    borg2_ok(&r.env, &r.borg, repo, &["create", "a1", "file"], &src);
}

//! borg 2.0.0b25 repositories over `ssh://`: HTTP/1.1 on the pipe to `borg serve --rest`.
//!
//! * Through a real sshd on 127.0.0.1 (see `remote_support`) with real borg 2.0.0b25 as the
//!   server (`OXIBORG_BORG2`, default `/opt/borg2/bin/borg`, named as the remote path), over the
//!   built-in SSH client and over `BORG_RSH=ssh …`: every listing, file, kind, byte range and
//!   gather of a b25 repository equals what the same files read locally give (`LocalFiles`),
//!   several sessions included; a missing repository does not exist; the 1.x RPC against the
//!   b25 `borg serve` fails at once and is recognised; a borg 1.x server has no `--rest`.
//! * Hostile servers are in `tests/rest_hostile.rs`.
//!
//! The transport is reached through `oxiborg::fuzzing::FilesProbe` (the crate-internal `Files`
//! seam, with plain types).

mod common;
mod remote_support;
mod rest_support;

use common::*;
use oxiborg::error::{ErrorKind, RemoteErrorKind};
use oxiborg::fuzzing::{is_borg2_server, FilesProbe};
use oxiborg::Location;
use remote_support::*;
use rest_support::*;
use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

/// The size of the big file of the test repository (one pack of its own).
const BIG: usize = 40 << 20;

/// A b25 repository at `repo`: a 40 MiB file of random bytes, small files, two archives.
fn make_repo(env: &TestEnv, borg: &Borg, repo: &Path) {
    let src = env.path().join("src");
    fs::create_dir_all(src.join("small")).unwrap();
    fs::write(src.join("big"), pseudo_random(7, BIG)).unwrap();
    for i in 0..20 {
        fs::write(
            src.join("small").join(format!("f{i}")),
            mixed_content(i, 1000 + 3000 * i as usize),
        )
        .unwrap();
    }
    borg2_ok(
        env,
        borg,
        repo,
        &["repo-create", "-e", "chacha20-poly1305", "-i", "blake3"],
        &src,
    );
    borg2_ok(env, borg, repo, &["create", "a1", "big", "small"], &src);
    fs::write(src.join("small/new"), b"one more file\n").unwrap();
    borg2_ok(env, borg, repo, &["create", "a2", "small"], &src);
}

/// Every answer of `remote` equals `local`'s (the same repository), the ranges included.
fn compare(what: &str, local: &FilesProbe, remote: &FilesProbe) {
    let (mut dirs, mut files) = (Vec::new(), Vec::new());
    walk(local, "", &mut dirs, &mut files);
    assert!(files.iter().any(|(n, _)| n == "config/config"), "{files:?}");
    for d in dirs.iter().map(String::as_str).chain(["nope", "packs/zz"]) {
        assert_eq!(
            remote.list(d).unwrap(),
            local.list(d).unwrap(),
            "{what}: list {d:?}"
        );
        assert_eq!(
            remote.kind(d).unwrap(),
            local.kind(d).unwrap(),
            "{what}: {d}"
        );
    }
    let mut ranges: Vec<(String, u64, u64)> = Vec::new();
    for (name, size) in &files {
        let want = local.load(name).unwrap().unwrap();
        assert_eq!(want.len() as u64, *size);
        assert!(
            remote.load(name).unwrap().unwrap() == want,
            "{what}: load {name}"
        );
        assert_eq!(remote.kind(name).unwrap(), Some(false), "{what}: {name}");
        if name.starts_with("packs/") {
            for (off, len) in objects(&want) {
                ranges.push((name.clone(), off, len));
            }
            for (off, len) in [
                (0, 49.min(*size)),
                (size / 2, 100.min(size / 2)),
                (size - 1, 1),
            ] {
                assert_eq!(
                    remote.load_range(name, off, len).unwrap(),
                    local.load_range(name, off, len).unwrap(),
                    "{what}: {name} {off}+{len}"
                );
            }
            // past the end: both refuse, as damage
            let past = remote.load_range(name, size - 1, 2).unwrap_err();
            assert_eq!(past.kind(), ErrorKind::Integrity, "{what}: {past}");
            assert_eq!(
                local.load_range(name, size - 1, 2).unwrap_err().kind(),
                ErrorKind::Integrity
            );
        }
    }
    for n in ["nope", "config/nope", "packs/zz/zz"] {
        assert_eq!(remote.load(n).unwrap(), None, "{what}: {n}");
        assert_eq!(remote.kind(n).unwrap(), None, "{what}: {n}");
    }
    // Every object of every pack in one load_ranges (the big file's 40 MiB among them, so
    // more than one gather), plus a range in a pack that does not exist.
    ranges.sort();
    let missing = ("packs/zz/zz00".to_string(), 0, 10);
    ranges.insert(ranges.len() / 2, missing.clone());
    let total: u64 = ranges.iter().map(|r| r.2).sum();
    assert!(total > BIG as u64, "{what}: {total} bytes in the packs");
    let start = Instant::now();
    let got = remote.load_ranges(&ranges).unwrap();
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "{what}: load_ranges of {} ranges, {total} bytes: {:.2} s",
        ranges.len(),
        secs
    );
    for (r, g) in ranges.iter().zip(&got) {
        if *r == missing {
            let e = g.as_ref().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Integrity, "{what}: {e}");
            assert!(e.to_string().contains("packs/zz/zz00: no such file"), "{e}");
            continue;
        }
        assert!(
            g.as_ref().unwrap() == &local.load_range(&r.0, r.1, r.2).unwrap(),
            "{what}: range {r:?}"
        );
    }
}

#[test]
fn rest_answers_equal_the_local_files() {
    let Some(b2) = borg2() else { return };
    let Some(r) = Remote::new(b2) else { return };
    let repo = r.pool.join("b25-repo");
    make_repo(&r.env, &r.borg, &repo);
    let local = FilesProbe::local(&repo);
    let loc = Location::parse(&url(&r, &repo)).unwrap();
    for (t, connections) in [(Transport::Native, 1), (Transport::Command, 2)] {
        let what = format!("{t:?}, {connections} session(s)");
        let mut opts = options(&r, t);
        opts.connections = connections;
        let remote = FilesProbe::rest(&loc, &opts)
            .unwrap_or_else(|e| panic!("{what}: cannot connect: {e}\n{}", r.server.log_text()));
        assert_eq!(remote.location(), loc.canonical());
        compare(&what, &local, &remote);
    }
    // Nothing is left running on the server once the sessions are closed.
    let left = r.server.wait_sessions_gone(Duration::from_secs(20));
    assert!(left.is_empty(), "server processes left: {left:?}");
}

#[test]
fn a_missing_repository_does_not_exist() {
    let Some(b2) = borg2() else { return };
    let Some(r) = Remote::new(b2) else { return };
    let loc = Location::parse(&url(&r, &r.pool.join("nothing-here"))).unwrap();
    for t in [Transport::Native, Transport::Command] {
        let e = FilesProbe::rest(&loc, &options(&r, t))
            .err()
            .expect("connected");
        assert_eq!(
            e.to_string(),
            format!("Repository {} does not exist.", loc.canonical()),
            "{t:?}"
        );
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }
}

#[test]
fn the_1x_rpc_against_a_borg_2_serve_fails_at_once_and_is_recognised() {
    let Some(b2) = borg2() else { return };
    let Some(r) = Remote::new(b2) else { return };
    let repo = r.pool.join("b25-repo");
    make_small_repo(&r, &repo);
    // The 1.x RPC alone: the error is recognised at once (no reconnection).
    let loc = Location::parse(&url(&r, &repo)).unwrap();
    let started = Instant::now();
    let e = oxiborg::fuzzing::connect_borg_serve(&loc, &options(&r, Transport::Native))
        .expect_err("a borg 2 borg serve spoke borg 1's RPC");
    assert!(is_borg2_server(&e), "not recognised: {e}");
    assert_eq!(e.kind(), ErrorKind::Remote(RemoteErrorKind::Protocol));
    assert!(
        e.to_string()
            .contains("Got unexpected RPC data format from client"),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(30), "retried: {e}");
    // Repository::open and the command line then read it over borg serve --rest.
    let opts = oxiborg::OpenOptions {
        passphrase: Some(oxiborg::Passphrase::new(PASSPHRASE)),
        remote: options(&r, Transport::Native),
        ..Default::default()
    };
    let opened = oxiborg::Repository::open(&loc, &opts).expect("read over REST");
    assert!(opened.is_borg2());
    let mut cmd = r
        .env
        .oxiborg_cmd([OsStr::new("list"), OsStr::new(&url(&r, &repo))]);
    cmd.env("BORG_REMOTE_PATH", &r.borg.path)
        .env("OXIBORG_SSH_IDENTITY", &r.key(Key::Plain).private)
        .env_remove("BORG_RSH");
    let run = run_limited(cmd, RUN_LIMIT);
    assert_eq!(run.out.code, 0, "{}", run.describe());
    assert!(run.out.stdout_str().contains("a1"), "{}", run.describe());
    assert!(
        !run.out.stderr.contains("reconnecting"),
        "{}",
        run.describe()
    );
}

#[test]
fn a_borg_1x_server_has_no_rest() {
    let Some(b2) = borg2() else { return };
    let Some(b14) = borg("1.4") else { return };
    let Some(r) = Remote::new(b2) else { return };
    let repo = r.pool.join("b25-repo");
    make_small_repo(&r, &repo);
    let loc = Location::parse(&url(&r, &repo)).unwrap();
    for t in [Transport::Native, Transport::Command] {
        let mut opts = options(&r, t);
        opts.remote_path = Some(b14.path.display().to_string());
        let e = FilesProbe::rest(&loc, &opts).err().expect("connected");
        assert_eq!(
            e.kind(),
            ErrorKind::Remote(RemoteErrorKind::Protocol),
            "{t:?}: {e}"
        );
        let m = e.to_string();
        assert!(m.contains("has no `borg serve --rest`"), "{t:?}: {m}");
        assert!(m.contains("ambiguous option: --rest"), "{t:?}: {m}");
    }
}

// ---------------------------------------------------------------------------------------
// measurement (not a test: `cargo test --release --test rest -- --ignored --nocapture`)
// ---------------------------------------------------------------------------------------

/// Prints how fast one 50 MB pack comes through the test sshd: `ssh … cat` (the pipe alone),
/// a whole-file `GET`, `load_range` object by object, and `load_ranges` (pipelined gathers) with
/// one and two sessions, over OpenSSH (`BORG_RSH`) and libssh2. Asserts only that the bytes are
/// right; the numbers are for the README.
#[test]
#[ignore = "a measurement: prints MB/s"]
fn measure_a_50_mb_pack() {
    let Some(b2) = borg2() else { return };
    let Some(r) = Remote::new(b2) else { return };
    let repo = r.pool.join("b25-big");
    let src = r.env.path().join("big-src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("big"), pseudo_random(11, 50_000_000)).unwrap();
    borg2_ok(
        &r.env,
        &r.borg,
        &repo,
        &["repo-create", "-e", "chacha20-poly1305", "-i", "blake3"],
        &src,
    );
    borg2_ok(&r.env, &r.borg, &repo, &["create", "a1", "big"], &src);
    let local = FilesProbe::local(&repo);
    let (mut dirs, mut files) = (Vec::new(), Vec::new());
    walk(&local, "packs", &mut dirs, &mut files);
    let (pack, size) = files.into_iter().max_by_key(|f| f.1).unwrap();
    let want = local.load(&pack).unwrap().unwrap();
    let objs = objects(&want);
    let ranges: Vec<(String, u64, u64)> = objs.iter().map(|&(o, l)| (pack.clone(), o, l)).collect();
    eprintln!("pack {pack}: {size} bytes, {} objects", objs.len());
    let mbs = |secs: f64| size as f64 / secs / 1e6;
    let best = |f: &mut dyn FnMut()| {
        (0..3)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .fold(f64::MAX, f64::min)
    };
    // the pipe alone
    let t = best(&mut || {
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c").arg(format!(
            "{} -p {} {}@{HOST} cat {} > /dev/null",
            r.rsh(Key::Plain),
            r.port(),
            login_user(),
            repo.join(&pack).display()
        ));
        assert!(cmd.status().unwrap().success());
    });
    eprintln!("ssh cat (OpenSSH): {:.3} s, {:.0} MB/s", t, mbs(t));
    let loc = Location::parse(&url(&r, &repo)).unwrap();
    for t in [Transport::Command, Transport::Native] {
        for connections in [1, 2] {
            let mut opts = options(&r, t);
            opts.connections = connections;
            let f = FilesProbe::rest(&loc, &opts).unwrap();
            let name = format!("{t:?}, {connections} session(s)");
            if connections == 1 {
                let s = best(&mut || assert!(f.load(&pack).unwrap().unwrap() == want));
                eprintln!("{name}: whole-file GET: {s:.3} s, {:.0} MB/s", mbs(s));
                let s = best(&mut || {
                    for (n, o, l) in &ranges {
                        assert_eq!(f.load_range(n, *o, *l).unwrap().len() as u64, *l);
                    }
                });
                eprintln!(
                    "{name}: load_range per object: {s:.3} s, {:.0} MB/s",
                    mbs(s)
                );
            }
            let s = best(&mut || {
                let got = f.load_ranges(&ranges).unwrap();
                assert_eq!(got.len(), ranges.len());
                assert!(got.iter().all(|g| g.is_ok()));
            });
            eprintln!("{name}: load_ranges (gather): {s:.3} s, {:.0} MB/s", mbs(s));
        }
    }
}

//! borg 2.0.0b25 repositories over `ssh://`: HTTP/1.1 on the pipe to `borg serve --rest`.
//!
//! * Through a real sshd on 127.0.0.1 (see `remote_support`) with real borg 2.0.0b25 as the
//!   server (`OXIBORG_BORG2`, default `/opt/borg2/bin/borg`, named as the remote path), over the
//!   built-in SSH client and over `BORG_RSH=ssh …`: every listing, file, kind, byte range and
//!   gather of a b25 repository equals what the same files read locally give (`LocalFiles`),
//!   several sessions included; a missing repository does not exist; the 1.x RPC against the
//!   b25 `borg serve` fails at once and is recognised; a borg 1.x server has no `--rest`.
//! * Hostile servers: `tests/rest_hostile_server.py` as `BORG_RSH` runs the real
//!   `borg serve --rest` and tampers with one response (wrong status, short body, a 4 GiB
//!   length, garbage, endless headers, a short gather, silence, refused reads): each ends in a
//!   clear error of the right kind, in bounded time, or — dropped once — in a reconnection that
//!   reads the right bytes.
//!
//! The transport is reached through `oxiborg::fuzzing::FilesProbe` (the crate-internal `Files`
//! seam, with plain types).

mod common;
mod remote_support;

use common::*;
use oxiborg::error::{ErrorKind, RemoteErrorKind};
use oxiborg::fuzzing::{is_borg2_server, FilesProbe};
use oxiborg::{Location, RemoteOptions};
use remote_support::*;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The size of the big file of the test repository (one pack of its own).
const BIG: usize = 40 << 20;

/// borg 2.0.0b25 (`None` after a note, or a panic with `OXIBORG_REQUIRE_BORG=1`).
fn borg2() -> Option<Borg> {
    borg("2")
}

/// `BORG -r REPO ARGS…` with `env`'s environment, in `cwd`; must exit 0.
fn borg2_ok(env: &TestEnv, borg: &Borg, repo: &Path, args: &[&str], cwd: &Path) {
    let mut cmd = env.borg_cmd(borg, [OsStr::new("-r"), repo.as_os_str()]);
    cmd.args(args).current_dir(cwd);
    run_ok(cmd, Duration::from_secs(300));
}

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

/// `ssh://USER@127.0.0.1:PORT//ABS/PATH` (borg 2: the double slash makes the path absolute).
fn url(r: &Remote, repo: &Path) -> String {
    format!(
        "ssh://{}@{HOST}:{}/{}",
        login_user(),
        r.port(),
        repo.display()
    )
}

/// Options for the plain key (no forced command), the server's borg being b25.
fn options(r: &Remote, t: Transport) -> RemoteOptions {
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
fn walk(f: &FilesProbe, dir: &str, dirs: &mut Vec<String>, files: &mut Vec<(String, u64)>) {
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
fn objects(pack: &[u8]) -> Vec<(u64, u64)> {
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
    // The library: the error is recognised (the caller then goes on over REST).
    let loc = Location::parse(&url(&r, &repo)).unwrap();
    let opts = oxiborg::OpenOptions {
        passphrase: Some(oxiborg::Passphrase::new(PASSPHRASE)),
        remote: options(&r, Transport::Native),
        ..Default::default()
    };
    let e = oxiborg::Repository::open(&loc, &opts).expect_err("opened");
    assert!(is_borg2_server(&e), "not recognised: {e}");
    assert_eq!(e.kind(), ErrorKind::Remote(RemoteErrorKind::Protocol));
    // The command line: one attempt, no reconnection, the server's words.
    let mut cmd = r
        .env
        .oxiborg_cmd([OsStr::new("list"), OsStr::new(&url(&r, &repo))]);
    cmd.env("BORG_REMOTE_PATH", &r.borg.path)
        .env("OXIBORG_SSH_IDENTITY", &r.key(Key::Plain).private)
        .env_remove("BORG_RSH");
    let run = run_limited(cmd, RUN_LIMIT);
    let err = &run.out.stderr;
    assert_ne!(run.out.code, 0, "{}", run.describe());
    assert!(err.contains("The server runs borg 2"), "{}", run.describe());
    assert!(
        err.contains("Got unexpected RPC data format from client"),
        "{}",
        run.describe()
    );
    assert!(!err.contains("reconnecting"), "{}", run.describe());
    assert!(!err.contains("panicked"), "{}", run.describe());
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

/// A b25 repository with one archive of one small file.
fn make_small_repo(r: &Remote, repo: &Path) {
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

// ---------------------------------------------------------------------------------------
// hostile servers
// ---------------------------------------------------------------------------------------

/// A b25 repository (no sshd: the proxy runs the server itself) and the proxy's state.
struct Hostile {
    /// (kept for its directory)
    _env: TestEnv,
    borg: Borg,
    repo: PathBuf,
    pack: (String, Vec<u8>),
    state: PathBuf,
}

fn hostile() -> Option<Hostile> {
    let borg = borg2()?;
    let env = TestEnv::new();
    let repo = env.path().join("repo");
    let src = env.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("data"), pseudo_random(3, 300_000)).unwrap();
    borg2_ok(
        &env,
        &borg,
        &repo,
        &["repo-create", "-e", "chacha20-poly1305", "-i", "blake3"],
        &src,
    );
    borg2_ok(&env, &borg, &repo, &["create", "a1", "data"], &src);
    let local = FilesProbe::local(&repo);
    let (mut dirs, mut files) = (Vec::new(), Vec::new());
    walk(&local, "packs", &mut dirs, &mut files);
    let (name, _) = files.into_iter().max_by_key(|f| f.1).expect("a pack");
    let bytes = local.load(&name).unwrap().unwrap();
    let state = env.path().join("proxy-state");
    fs::create_dir_all(&state).unwrap();
    Some(Hostile {
        _env: env,
        borg,
        repo,
        pack: (name, bytes),
        state,
    })
}

impl Hostile {
    /// Options with the proxy in `mode` as `BORG_RSH`, a silence limit of 2 s and `retries`.
    fn options(&self, mode: &str, retries: u32) -> RemoteOptions {
        // a fresh session count for every mode
        let _ = fs::remove_file(self.state.join("sessions"));
        RemoteOptions {
            rsh: Some(format!(
                "python3 {} {mode} {}",
                manifest_dir()
                    .join("tests/rest_hostile_server.py")
                    .display(),
                self.state.display()
            )),
            remote_path: Some(self.borg.path.display().to_string()),
            timeout: Duration::from_secs(2),
            retries,
            connections: 1,
            ..RemoteOptions::default()
        }
    }

    fn loc(&self) -> Location {
        Location::parse(&format!("ssh://hostile/{}", self.repo.display())).unwrap()
    }

    /// Connects through the proxy in `mode` and reads `len` bytes of the pack at `off`.
    fn range(
        &self,
        mode: &str,
        retries: u32,
        off: u64,
        len: u64,
    ) -> (oxiborg::Result<Vec<u8>>, Duration) {
        let start = Instant::now();
        let f = FilesProbe::rest(&self.loc(), &self.options(mode, retries))
            .unwrap_or_else(|e| panic!("{mode}: cannot connect: {e}"));
        let r = f.load_range(&self.pack.0, off, len);
        (r, start.elapsed())
    }

    /// Every object of the pack through one `load_ranges`.
    fn gather(&self, mode: &str, retries: u32) -> oxiborg::Result<Vec<oxiborg::Result<Vec<u8>>>> {
        let f = FilesProbe::rest(&self.loc(), &self.options(mode, retries))
            .unwrap_or_else(|e| panic!("{mode}: cannot connect: {e}"));
        let ranges: Vec<(String, u64, u64)> = objects(&self.pack.1)
            .into_iter()
            .map(|(o, l)| (self.pack.0.clone(), o, l))
            .collect();
        f.load_ranges(&ranges)
    }

    fn sessions(&self) -> u32 {
        fs::read_to_string(self.state.join("sessions"))
            .map(|s| s.trim().parse().unwrap())
            .unwrap_or(0)
    }
}

#[test]
fn the_hostile_proxy_passes_a_clean_session_through() {
    let Some(h) = hostile() else { return };
    let (r, _) = h.range("pass", 0, 100, 1000);
    assert_eq!(r.unwrap(), h.pack.1[100..1100]);
    let got = h.gather("pass", 0).unwrap();
    let joined: Vec<u8> = got.into_iter().flat_map(|r| r.unwrap()).collect();
    assert!(joined == h.pack.1);
}

#[test]
fn lying_servers_end_in_clear_errors() {
    let Some(h) = hostile() else { return };
    for (mode, kind, needle) in [
        (
            "status-200",
            RemoteErrorKind::Protocol,
            "whole file (200, not 206)",
        ),
        (
            "huge-length",
            RemoteErrorKind::Protocol,
            "more than the 1000 this request can get",
        ),
        (
            "garbage",
            RemoteErrorKind::Protocol,
            "not an HTTP status line",
        ),
        (
            "many-headers",
            RemoteErrorKind::Protocol,
            "more than 64 header lines",
        ),
        (
            "short-body",
            RemoteErrorKind::Dropped,
            "in the middle of a response",
        ),
        (
            "stall",
            RemoteErrorKind::Dropped,
            "nothing received for 2 s",
        ),
        ("write-only", RemoteErrorKind::Server, "Permission denied"),
    ] {
        let (r, took) = h.range(mode, 1, 100, 1000);
        let e = r.expect_err(mode);
        assert_eq!(e.kind(), ErrorKind::Remote(kind), "{mode}: {e}");
        assert!(e.to_string().contains(needle), "{mode}: {e}");
        // (bounded: at most a silence limit per session, two sessions)
        assert!(took < Duration::from_secs(30), "{mode}: {took:?}");
        let sessions = h.sessions();
        // a dropped session is reconnected once (retries 1); a liar gets no second chance
        let want = if kind == RemoteErrorKind::Dropped {
            2
        } else {
            1
        };
        assert_eq!(sessions, want, "{mode}: sessions");
    }
    let e = h.gather("short-gather@gather", 1).unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::Remote(RemoteErrorKind::Protocol),
        "{e}"
    );
    assert!(e.to_string().contains("answered a gather of"), "{e}");
    // A listing announced at 4 GiB: refused before it is read.
    let f = FilesProbe::rest(&h.loc(), &h.options("huge-length@list", 1)).unwrap();
    let e = f.list("packs").unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::Remote(RemoteErrorKind::Protocol),
        "{e}"
    );
    assert!(e.to_string().contains("more than the 67108864"), "{e}");
}

#[test]
fn a_session_that_drops_once_is_reopened_and_the_request_sent_again() {
    let Some(h) = hostile() else { return };
    for mode in ["short-body-once", "stall-once"] {
        let (r, _) = h.range(mode, 2, 100, 1000);
        assert_eq!(
            r.unwrap_or_else(|e| panic!("{mode}: {e}")),
            h.pack.1[100..1100],
            "{mode}"
        );
        assert_eq!(h.sessions(), 2, "{mode}: sessions");
    }
    for mode in ["short-body-once@gather", "stall-once@gather"] {
        let got = h.gather(mode, 2).unwrap_or_else(|e| panic!("{mode}: {e}"));
        let joined: Vec<u8> = got.into_iter().flat_map(|r| r.unwrap()).collect();
        assert!(joined == h.pack.1, "{mode}");
        assert_eq!(h.sessions(), 2, "{mode}: sessions");
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

//! Hostile `borg serve --rest` servers: `tests/rest_hostile_server.py` as `BORG_RSH` runs the
//! real borg 2.0.0b25 `borg serve --rest` and tampers with one response (wrong status, short
//! body, a 4 GiB length, garbage, endless headers, a short gather, silence, refused reads):
//! each ends in a clear error of the right kind, in bounded time, or — dropped once — in a
//! reconnection that reads the right bytes. No sshd: the proxy runs the server itself.

mod common;
mod remote_support;
mod rest_support;

use common::*;
use oxiborg::error::{ErrorKind, RemoteErrorKind};
use oxiborg::fuzzing::FilesProbe;
use oxiborg::{Location, RemoteOptions};
use rest_support::*;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

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

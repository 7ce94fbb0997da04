//! Hostile servers: `tests/hostile_server.py`, a program of ours that speaks borg's RPC, sits
//! where `borg serve` would (as `BORG_RSH`) and passes a real `borg serve` through — except
//! that it returns wrong objects, replays an old manifest, drops the manifest's TAM, announces
//! a 4 GiB response, or stalls. oxiborg must refuse each cleanly: exit 2, a message that says
//! what is wrong, within a bounded time, and no restored file that differs from the archive.
//! Where it makes sense, real borg as the client through the same proxy is the oracle (it must
//! refuse too). Needs a borg with its Python (the proxy uses msgpack and borg's compressors).

mod common;
mod extract_support;
mod remote_support;

use common::*;
use remote_support::{run_limited, tree_diff};
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

struct Hostile {
    env: TestEnv,
    borg: Borg,
    python: PathBuf,
    state: PathBuf,
}

fn setup() -> Option<Hostile> {
    let (borg, python) = extract_support::borg_with_python()?;
    let mut env = TestEnv::new();
    env.set("BORG_PASSPHRASE", PASSPHRASE);
    let state = env.path().join("proxy-state");
    fs::create_dir_all(&state).unwrap();
    Some(Hostile {
        env,
        borg,
        python,
        state,
    })
}

impl Hostile {
    fn rsh(&self, mode: &str) -> String {
        format!(
            "{} {} {mode} {} {}",
            self.python.display(),
            manifest_dir().join("tests/hostile_server.py").display(),
            self.state.display(),
            self.borg.path.display()
        )
    }

    /// `ssh://hostile/ABSOLUTE/PATH`: the proxy ignores the host and serves the path.
    fn url(repo: &Path) -> String {
        format!("ssh://hostile{}", repo.display())
    }

    fn oxiborg(&self, mode: &str, args: &[OsString]) -> remote_support::Run {
        let mut cmd = self.env.oxiborg_cmd(args);
        cmd.env("BORG_RSH", self.rsh(mode));
        run_limited(cmd, LIMIT)
    }

    fn borg_client(&self, mode: &str, args: &[OsString]) -> remote_support::Run {
        let mut cmd: Command = self.env.borg_cmd(&self.borg, args);
        cmd.env("BORG_RSH", self.rsh(mode));
        run_limited(cmd, LIMIT)
    }
}

fn os(s: impl Into<OsString>) -> OsString {
    s.into()
}

fn archive_loc(repo: &Path, archive: &str) -> OsString {
    os(format!("{}::{archive}", Hostile::url(repo)))
}

/// A clean refusal: exit 2, no panic, and a message containing one of `needles`.
fn assert_refused(what: &str, run: &remote_support::Run, needles: &[&str]) {
    let err = &run.out.stderr;
    assert!(
        !err.contains("panicked"),
        "{what}: oxiborg panicked\n{}",
        run.describe()
    );
    assert_eq!(run.out.code, 2, "{what}: exit code\n{}", run.describe());
    assert!(
        needles.iter().any(|n| err.contains(n)),
        "{what}: stderr names none of {needles:?}\n{}",
        run.describe()
    );
}

#[test]
fn the_proxy_passes_a_clean_session_through() {
    let Some(mut h) = setup() else { return };
    let repo = fixture_repo(&mut h.env, "repokey-blake2-lz4");
    let (archive, _) = expected_archives("repokey-blake2-lz4")[0].clone();
    let via = h.env.path().join("via-proxy");
    let run = h.oxiborg(
        "pass",
        &[
            os("extract"),
            os("-C"),
            os(&via),
            archive_loc(&repo, &archive),
        ],
    );
    assert_eq!(run.out.code, 0, "{}", run.describe());
    let local = h.env.path().join("local");
    let out = h.env.oxiborg([
        os("extract"),
        os("-C"),
        os(&local),
        repo_archive(&repo, &archive),
    ]);
    assert_eq!(out.code, 0, "{}", out.describe());
    let diffs = tree_diff(&local, &via);
    assert!(diffs.is_empty(), "restores differ: {diffs:?}");
}

#[test]
fn wrong_objects_are_refused_and_never_restored() {
    let Some(mut h) = setup() else { return };
    let repo = fixture_repo(&mut h.env, "repokey-blake2-lz4");
    let (archive, _) = expected_archives("repokey-blake2-lz4")[0].clone();
    let reference = h.env.path().join("reference");
    let out = h.env.oxiborg([
        os("extract"),
        os("-C"),
        os(&reference),
        repo_archive(&repo, &archive),
    ]);
    assert_eq!(out.code, 0, "{}", out.describe());
    let dest = h.env.path().join("dest");
    let run = h.oxiborg(
        "wrong-object",
        &[
            os("extract"),
            os("-C"),
            os(&dest),
            archive_loc(&repo, &archive),
        ],
    );
    // Every other content chunk is another object of the same repository: the MAC is
    // right, only the id check can tell.
    assert_refused(
        "extract from a server that swaps objects",
        &run,
        &["id verification failed"],
    );
    assert!(
        run.out.stderr.contains(&archive),
        "the archive is named\n{}",
        run.describe()
    );
    // Whatever was restored must be exactly what the archive holds.
    let mut checked = 0;
    for (rel, _) in remote_support::snapshot(&dest) {
        let (a, b) = (dest.join(&rel), reference.join(&rel));
        if a.is_file() && !a.is_symlink() {
            assert!(
                !is_temp(&rel),
                "a temporary file was left behind: {}",
                rel.display()
            );
            assert_eq!(
                fs::read(&a).unwrap(),
                fs::read(&b).unwrap(),
                "{} restored with wrong content",
                rel.display()
            );
            checked += 1;
        }
    }
    eprintln!("{checked} files restored intact despite the server");
    assert!(checked > 0, "nothing was restored\n{}", run.describe());
    let refused = run.out.stderr.matches("not restored").count();
    assert!(
        refused > 0,
        "no file reported as not restored\n{}",
        run.describe()
    );
}

fn is_temp(rel: &Path) -> bool {
    rel.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with(".oxiborg-"))
}

#[test]
fn a_replayed_older_manifest_is_refused() {
    let Some(mut h) = setup() else { return };
    let repo = fixture_repo(&mut h.env, "repokey-blake2-lz4");
    let list = |mode: &str| h.oxiborg(mode, &[os("list"), os(Hostile::url(&repo))]);
    // 1. A first access records the manifest the server sends (and, on the client, its time).
    let run = list("record-manifest");
    assert_eq!(run.out.code, 0, "{}", run.describe());
    assert!(
        h.state.join("manifest.bin").is_file(),
        "the proxy recorded no manifest"
    );
    // 2. The repository moves on: a new archive (borg records the new manifest time).
    let src = h.env.path().join("newdata");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), b"new").unwrap();
    let out = h.env.borg(
        &h.borg,
        [
            os("create"),
            os(format!("{}::later", repo.display())),
            os(&src),
        ],
    );
    assert_eq!(out.code, 0, "borg create: {}", out.describe());
    let run = list("pass");
    assert_eq!(run.out.code, 0, "{}", run.describe());
    assert!(
        String::from_utf8_lossy(&run.out.stdout).contains("later"),
        "the new archive is listed\n{}",
        run.describe()
    );
    // 3. The server now replays the old manifest: the new archive would silently vanish.
    let run = list("replay-manifest");
    assert_refused(
        "list with a replayed manifest",
        &run,
        &["this is either an attack or unsafe"],
    );
    let mut cmd = h.env.oxiborg_cmd([os("list"), os(Hostile::url(&repo))]);
    cmd.env("BORG_RSH", h.rsh("replay-manifest"))
        .env("BORG_EXIT_CODES", "modern");
    let modern = run_limited(cmd, LIMIT);
    assert_eq!(
        modern.out.code,
        64,
        "modern exit code\n{}",
        modern.describe()
    );
    // borg, as the client of the same server, refuses too.
    let b = h.borg_client("replay-manifest", &[os("list"), os(Hostile::url(&repo))]);
    assert_ne!(b.out.code, 0, "borg accepted the replay?\n{}", b.describe());
    assert!(
        b.out.stderr.contains("attack"),
        "borg's reason\n{}",
        b.describe()
    );
    // borg's check does not consult the security directory: through the replay it sees an
    // older, consistent manifest whose newer archive's objects are orphans — and so does
    // oxiborg's, word for word, rather than calling the manifest corrupted.
    let url = || os(Hostile::url(&repo));
    let o = h.oxiborg(
        "replay-manifest",
        &[os("check"), os("--archives-only"), url()],
    );
    let b = h.borg_client(
        "replay-manifest",
        &[os("check"), os("--archives-only"), url()],
    );
    assert_eq!(o.out.code, b.out.code, "{}\n{}", o.describe(), b.describe());
    assert_eq!(
        o.out.stderr,
        b.out.stderr,
        "{}\n{}",
        o.describe(),
        b.describe()
    );
    assert!(!o.out.stderr.contains("corrupted"), "{}", o.describe());
}

#[test]
fn a_manifest_without_its_tam_is_refused() {
    let Some(mut h) = setup() else { return };
    // unencrypted but authenticated: the server can read and rewrite the manifest, not forge a
    // TAM
    let repo = fixture_repo(&mut h.env, "authenticated-lzma");
    let run = h.oxiborg("drop-tam", &[os("list"), os(Hostile::url(&repo))]);
    assert_refused(
        "list with the manifest TAM removed",
        &run,
        &["unauthenticated", "TAM"],
    );
    let b = h.borg_client("drop-tam", &[os("list"), os(Hostile::url(&repo))]);
    assert_ne!(b.out.code, 0, "borg accepted it?\n{}", b.describe());
    // and the same repository through an honest proxy works
    let run = h.oxiborg("pass", &[os("list"), os(Hostile::url(&repo))]);
    assert_eq!(run.out.code, 0, "{}", run.describe());
}

#[test]
fn a_4_gib_response_is_refused_at_once() {
    let Some(mut h) = setup() else { return };
    let repo = fixture_repo(&mut h.env, "repokey-blake2-lz4");
    let (archive, _) = expected_archives("repokey-blake2-lz4")[0].clone();
    let dest = h.env.path().join("dest");
    let run = h.oxiborg(
        "huge-get",
        &[
            os("extract"),
            os("-C"),
            os(&dest),
            archive_loc(&repo, &archive),
        ],
    );
    assert_refused(
        "extract from a server announcing 4 GiB",
        &run,
        &[
            "unexpected RPC data format",
            "exceeds",
            "too large",
            "limit",
        ],
    );
    assert!(
        run.elapsed < Duration::from_secs(20),
        "refused only after {:.1} s\n{}",
        run.elapsed.as_secs_f64(),
        run.describe()
    );
}

#[test]
fn a_server_that_stops_answering_times_out() {
    let Some(mut h) = setup() else { return };
    let repo = fixture_repo(&mut h.env, "repokey-blake2-lz4");
    let (archive, _) = expected_archives("repokey-blake2-lz4")[0].clone();
    let dest = h.env.path().join("dest");
    let mut cmd = h.env.oxiborg_cmd([
        os("extract"),
        os("-C"),
        os(&dest),
        archive_loc(&repo, &archive),
    ]);
    cmd.env("BORG_RSH", h.rsh("stall-get"))
        .env("OXIBORG_REMOTE_TIMEOUT", "3")
        .env("OXIBORG_REMOTE_RETRIES", "1");
    let run = run_limited(cmd, LIMIT);
    assert_refused("extract from a stalled server", &run, &["did not answer"]);
    assert!(
        run.elapsed < Duration::from_secs(30),
        "gave up only after {:.1} s\n{}",
        run.elapsed.as_secs_f64(),
        run.describe()
    );
    let files: Vec<_> = remote_support::snapshot(&dest)
        .into_keys()
        .filter(|p| dest.join(p).is_file())
        .collect();
    assert!(
        files.iter().all(|p| !is_temp(p)),
        "temporary files left behind: {files:?}"
    );
}

#[test]
fn check_over_the_rpc_reads_and_verifies_every_object() {
    let Some(mut h) = setup() else { return };
    let repo = fixture_repo(&mut h.env, "repokey-blake2-lz4");
    let url = os(Hostile::url(&repo));
    let run = h.oxiborg(
        "pass",
        &[os("check"), os("-v"), os("--verify-data"), url.clone()],
    );
    assert_eq!(run.out.code, 0, "{}", run.describe());
    for line in [
        "Finished full repository check, no problems found.",
        "verified 87 chunks with 0 integrity errors",
        "Archive consistency check complete, no problems found.",
    ] {
        assert!(
            run.out.stderr.contains(line),
            "missing {line:?}\n{}",
            run.describe()
        );
    }
    // Objects swapped by the server: the repository part (the server's own reads) passes,
    // the verification catches every swapped object.
    let run = h.oxiborg("wrong-object", &[os("check"), os("--verify-data"), url]);
    assert_eq!(run.out.code, 1, "{}", run.describe());
    let bad = run.out.stderr.matches("id verification failed").count();
    assert!(
        bad > 10,
        "only {bad} swapped objects reported\n{}",
        run.describe()
    );
    assert!(!run.out.stderr.contains("panicked"), "{}", run.describe());
}

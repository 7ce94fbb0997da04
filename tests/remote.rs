//! oxiborg against real `borg serve` behind a real OpenSSH server on 127.0.0.1.
//!
//! For each available borg (1.2: `OXIBORG_BORG12`, 1.4: `OXIBORG_BORG14`) as the SERVER, an
//! `sshd` is started (see `remote_support`) with BorgWarehouse-style `authorized_keys`
//! (`command="cd POOL;BORG serve --restrict-to-repository POOL/REPO ...",restrict KEY`), and
//! oxiborg reaches the repositories at `ssh://root@127.0.0.1:PORT/./REPO` through
//! * the native transport (libssh2; `OXIBORG_SSH_IDENTITY`, and `ALIAS:REPO` with
//!   HostName/Port/User/IdentityFile from `$HOME/.ssh/config`), host key from
//!   `$HOME/.ssh/known_hosts`;
//! * the command transport (`BORG_RSH="ssh -i KEY -o UserKnownHostsFile=… -o
//!   StrictHostKeyChecking=yes -o BatchMode=yes"`).
//!
//! `list` (text), `list --json-lines` (parsed, field for field) and `extract` (content, mode,
//! mtime, symlink targets) must equal what the same borg produces locally on the same
//! repository (repokey with an ed25519 key, keyfile with an RSA key). Negative cases: unknown
//! and changed host keys, an unauthorized client key, a path outside
//! `--restrict-to-repository`, a missing remote borg, the server dying (borg serve killed, or
//! the sshd session process killed) or stalling in the middle of an extract.
//!
//! A missing borg, sshd, ssh or ssh-keygen skips with a note, or fails when
//! `OXIBORG_REQUIRE_BORG=1`. Every server is killed when its test ends; every run is bounded.

mod common;
mod remote_support;

use common::*;
use remote_support::*;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn tname(t: Transport) -> &'static str {
    match t {
        Transport::Native => "native",
        Transport::NativeConfig => "native+ssh_config",
        Transport::Command => "BORG_RSH=ssh",
    }
}

/// Records a failed run (anything but exit 0) and returns false.
fn check_ok(what: &str, run: &Run, diffs: &mut Vec<String>) -> bool {
    if run.out.code != 0 || run.out.stderr.contains("panicked") {
        diffs.push(format!("{what}: expected exit code 0\n{}", run.describe()));
        return false;
    }
    true
}

fn prefixed(what: &str, d: Vec<String>, diffs: &mut Vec<String>) {
    diffs.extend(d.into_iter().map(|s| format!("{what}: {s}")));
}

fn fresh_dir(p: &Path) -> PathBuf {
    let _ = fs::remove_dir_all(p);
    fs::create_dir_all(p).unwrap();
    p.to_path_buf()
}

fn os(s: impl Into<OsString>) -> OsString {
    s.into()
}

/// The source tree: common's tree plus a 3 MiB pseudo-random file (many chunks, so that the
/// pipelined `get`s over ssh are exercised).
fn build_tree(parent: &Path) {
    let tree = parent.join("tree");
    make_source_tree(&tree);
    fs::write(
        tree.join("big.bin"),
        pseudo_random(7, 3 * 1024 * 1024 + 123),
    )
    .unwrap();
    set_mtime(&tree.join("big.bin"), M_2023);
    set_mtime(&tree, M_2001);
}

// ---------------------------------------------------------------------------------------
// positive: list / list --json-lines / extract equal local borg
// ---------------------------------------------------------------------------------------

fn positive(label: &str) {
    let Some(borg) = borg(label) else { return };
    let Some(r) = Remote::new(borg) else { return };
    eprintln!(
        "server: {} ({}), sshd on {HOST}:{}",
        r.borg.version,
        r.borg.path.display(),
        r.port()
    );
    let src = r.env.path().join("src");
    build_tree(&src);
    let chunker = ["--chunker-params", "10,18,14,4095"];
    let rk = r.init_repo(REPO_RK, "repokey");
    r.create(&rk, "first", &src, &["tree"], &chunker);
    set_unique_file(&src.join("tree"), 1);
    r.create(&rk, "second", &src, &["tree"], &chunker);
    let kf = r.init_repo(REPO_KF, "keyfile");
    r.create(&kf, "kf-1", &src, &["tree"], &["--compression", "zstd,3"]);

    // what borg says locally
    let exp_list_rk = r.borg_ok(&[os("list"), os(&rk)], None).stdout;
    let exp_list_kf = r.borg_ok(&[os("list"), os(&kf)], None).stdout;
    let exp_jsonl = r
        .borg_ok(
            &[os("list"), os("--json-lines"), repo_archive(&rk, "second")],
            None,
        )
        .stdout_str();
    let exp_tree = fresh_dir(&r.env.path().join("expected-second"));
    r.borg_ok(
        &[os("extract"), repo_archive(&rk, "second")],
        Some(&exp_tree),
    );
    let exp_sub = fresh_dir(&r.env.path().join("expected-second-sub"));
    r.borg_ok(
        &[os("extract"), repo_archive(&rk, "second"), os("tree/dir")],
        Some(&exp_sub),
    );
    let exp_kf = fresh_dir(&r.env.path().join("expected-kf"));
    r.borg_ok(&[os("extract"), repo_archive(&kf, "kf-1")], Some(&exp_kf));

    let mut diffs = Vec::new();
    for t in ALL_TRANSPORTS {
        let tn = tname(t);
        // repokey repository, ed25519 forced-command key
        let loc = r.loc(t, Key::Forced, REPO_RK);
        let what = format!("[{tn}] oxiborg list {loc}");
        let run = r.oxiborg(t, Key::Forced, &[os("list"), os(&loc)]);
        if check_ok(&what, &run, &mut diffs) {
            let mut d = Vec::new();
            text_diff(&exp_list_rk, &run.out.stdout, &mut d);
            prefixed(&what, d, &mut diffs);
        }
        eprintln!("{what}: {:.2} s", run.elapsed.as_secs_f64());

        let what = format!("[{tn}] oxiborg list --json-lines {loc}::second");
        let run = r.oxiborg(
            t,
            Key::Forced,
            &[os("list"), os("--json-lines"), os(format!("{loc}::second"))],
        );
        if check_ok(&what, &run, &mut diffs) {
            let mut d = Vec::new();
            jsonl_diff(&exp_jsonl, &run.out.stdout_str(), &mut d);
            prefixed(&what, d, &mut diffs);
        }

        let dest = fresh_dir(&r.env.path().join(format!("ox-second-{t:?}")));
        let what = format!("[{tn}] oxiborg extract -C DEST {loc}::second");
        let run = r.oxiborg(
            t,
            Key::Forced,
            &[
                os("extract"),
                os("-C"),
                os(&dest),
                os(format!("{loc}::second")),
            ],
        );
        eprintln!("{what}: {:.2} s", run.elapsed.as_secs_f64());
        if check_ok(&what, &run, &mut diffs) {
            prefixed(&what, tree_diff(&exp_tree, &dest), &mut diffs);
        }

        // keyfile repository (key in the client's BORG_KEYS_DIR), RSA forced-command key
        let loc = r.loc(t, Key::ForcedRsa, REPO_KF);
        let what = format!("[{tn}] (keyfile, rsa key) oxiborg list {loc}");
        let run = r.oxiborg(t, Key::ForcedRsa, &[os("list"), os(&loc)]);
        if check_ok(&what, &run, &mut diffs) {
            let mut d = Vec::new();
            text_diff(&exp_list_kf, &run.out.stdout, &mut d);
            prefixed(&what, d, &mut diffs);
        }
        let dest = fresh_dir(&r.env.path().join(format!("ox-kf-{t:?}")));
        let what = format!("[{tn}] (keyfile, rsa key) oxiborg extract -C DEST {loc}::kf-1");
        let run = r.oxiborg(
            t,
            Key::ForcedRsa,
            &[
                os("extract"),
                os("-C"),
                os(&dest),
                os(format!("{loc}::kf-1")),
            ],
        );
        if check_ok(&what, &run, &mut diffs) {
            prefixed(&what, tree_diff(&exp_kf, &dest), &mut diffs);
        }
    }

    // a PATH selection through ssh
    let loc = r.url(REPO_RK);
    let dest = fresh_dir(&r.env.path().join("ox-second-sub"));
    let what = format!("[native] oxiborg extract -C DEST {loc}::second tree/dir");
    let run = r.oxiborg(
        Transport::Native,
        Key::Forced,
        &[
            os("extract"),
            os("-C"),
            os(&dest),
            os(format!("{loc}::second")),
            os("tree/dir"),
        ],
    );
    if check_ok(&what, &run, &mut diffs) {
        // `tree` is made implicitly (with the current time) by both
        prefixed(
            &what,
            tree_diff_fresh(&exp_sub, &dest, &["tree"]),
            &mut diffs,
        );
    }

    // info through ssh: same archive name / id / fingerprint lines as borg's local info
    let what = format!("[native] oxiborg info {loc}::second");
    let run = r.oxiborg(
        Transport::Native,
        Key::Forced,
        &[os("info"), os(format!("{loc}::second"))],
    );
    if check_ok(&what, &run, &mut diffs) {
        let exp = r
            .borg_ok(&[os("info"), repo_archive(&rk, "second")], None)
            .stdout_str();
        let got = run.out.stdout_str();
        for prefix in ["Archive name:", "Archive fingerprint:", "Number of files:"] {
            let e = exp.lines().find(|l| l.starts_with(prefix));
            let g = got.lines().find(|l| l.starts_with(prefix));
            if e != g {
                diffs.push(format!(
                    "{what}: line {prefix:?}: borg (local) {e:?}, oxiborg {g:?}\n--- oxiborg stdout ---\n{got}--- borg stdout ---\n{exp}"
                ));
            }
        }
    }

    // the plain key: an absolute path, the server command chosen by --remote-path /
    // BORG_REMOTE_PATH
    let abs = r.url_abs(&rk);
    let borg_path = r.borg.path.display().to_string();
    for t in [Transport::Native, Transport::Command] {
        let what = format!("[{}] oxiborg --remote-path BORG list {abs}", tname(t));
        let run = r.oxiborg(
            t,
            Key::Plain,
            &[os("--remote-path"), os(&borg_path), os("list"), os(&abs)],
        );
        if check_ok(&what, &run, &mut diffs) {
            let mut d = Vec::new();
            text_diff(&exp_list_rk, &run.out.stdout, &mut d);
            prefixed(&what, d, &mut diffs);
        }
        let what = format!("[{}] BORG_REMOTE_PATH=BORG oxiborg list {abs}", tname(t));
        let mut cmd = r.oxiborg_cmd(t, Key::Plain, &[os("list"), os(&abs)]);
        cmd.env("BORG_REMOTE_PATH", &borg_path);
        let run = run_limited(cmd, RUN_LIMIT);
        if check_ok(&what, &run, &mut diffs) {
            let mut d = Vec::new();
            text_diff(&exp_list_rk, &run.out.stdout, &mut d);
            prefixed(&what, d, &mut diffs);
        }
    }

    // every session ended with its client (borg serve saw EOF and exited)
    let left = r.server.wait_sessions_gone(Duration::from_secs(10));
    if !left.is_empty() {
        diffs.push(format!(
            "server processes still running 10 s after the last oxiborg exited: {left:?}"
        ));
    }
    if !diffs.is_empty() {
        eprintln!("--- sshd log ---\n{}", r.server.log_text());
    }
    assert_no_diffs(
        &format!("oxiborg over ssh vs local {}", r.borg.version),
        &diffs,
    );
}

#[test]
fn borg12_server_list_jsonlines_extract_match_local_borg() {
    positive("1.2");
}

#[test]
fn borg14_server_list_jsonlines_extract_match_local_borg() {
    positive("1.4");
}

// ---------------------------------------------------------------------------------------
// negative cases
// ---------------------------------------------------------------------------------------

/// A server with the repokey repository initialised (no archives needed for the negatives).
fn negative_setup(borg: Borg) -> Option<Remote> {
    let r = Remote::new(borg)?;
    r.init_repo(REPO_RK, "repokey");
    r.init_repo(REPO_KF, "keyfile");
    Some(r)
}

fn expect_error(run: &Run, needles: &[&str], max: Duration, what: &str, errs: &mut Vec<String>) {
    let o = &run.out;
    let low = o.stderr.to_lowercase();
    let mut bad = Vec::new();
    if o.code != 2 {
        bad.push(format!("exit code {} (expected 2)", o.code));
    }
    if o.stderr.contains("panicked") {
        bad.push("panicked".into());
    }
    for n in needles {
        if !low.contains(&n.to_lowercase()) {
            bad.push(format!("stderr lacks {n:?}"));
        }
    }
    if run.elapsed > max {
        bad.push(format!(
            "took {:.1} s (expected at most {} s)",
            run.elapsed.as_secs_f64(),
            max.as_secs()
        ));
    }
    if !bad.is_empty() {
        errs.push(format!("{what}: {}\n{}", bad.join("; "), run.describe()));
    } else {
        eprintln!(
            "{what}: ok ({:.2} s): {}",
            run.elapsed.as_secs_f64(),
            o.stderr.trim().replace('\n', " | ")
        );
    }
}

fn finish(r: &Remote, what: &str, errs: &[String]) {
    if !errs.is_empty() {
        eprintln!("--- sshd log ---\n{}", r.server.log_text());
    }
    assert_no_diffs(what, errs);
}

#[test]
fn unknown_host_key_is_refused() {
    let Some(borg) = any_borg() else { return };
    let Some(r) = negative_setup(borg) else {
        return;
    };
    fs::write(&r.known_hosts, "").unwrap();
    let loc = r.url(REPO_RK);
    let mut errs = Vec::new();
    let fp = r.server.host_key.fingerprint.clone();
    let run = r.oxiborg(Transport::Native, Key::Forced, &[os("list"), os(&loc)]);
    expect_error(
        &run,
        &["not a known host", &fp],
        Duration::from_secs(10),
        "[native] empty known_hosts",
        &mut errs,
    );
    // no known_hosts file at all
    fs::remove_file(&r.known_hosts).unwrap();
    let run = r.oxiborg(Transport::Native, Key::Forced, &[os("list"), os(&loc)]);
    expect_error(
        &run,
        &["not a known host", &fp],
        Duration::from_secs(10),
        "[native] no known_hosts file",
        &mut errs,
    );
    if r.known_hosts.exists() {
        errs.push(format!(
            "oxiborg created {} (it must not accept keys on its own)",
            r.known_hosts.display()
        ));
    }
    fs::write(&r.known_hosts, "").unwrap();
    let run = r.oxiborg(Transport::Command, Key::Forced, &[os("list"), os(&loc)]);
    expect_error(
        &run,
        &["Host key verification failed"],
        Duration::from_secs(10),
        "[BORG_RSH=ssh] empty known_hosts",
        &mut errs,
    );
    // OXIBORG_SSH_KNOWN_HOSTS=FILE overrides $HOME/.ssh/known_hosts
    let kh = r.env.path().join("other_known_hosts");
    fs::write(&kh, r.server.known_hosts_line()).unwrap();
    let mut cmd = r.oxiborg_cmd(Transport::Native, Key::Forced, &[os("list"), os(&loc)]);
    cmd.env("OXIBORG_SSH_KNOWN_HOSTS", &kh);
    let run = run_limited(cmd, RUN_LIMIT);
    if run.out.code != 0 {
        errs.push(format!(
            "[native] OXIBORG_SSH_KNOWN_HOSTS with the right key: expected exit 0\n{}",
            run.describe()
        ));
    }
    finish(&r, "unknown host key", &errs);
}

#[test]
fn changed_host_key_is_refused() {
    let Some(borg) = any_borg() else { return };
    let Some(r) = negative_setup(borg) else {
        return;
    };
    let other = keygen(&r.tools, r.env.path(), "impostor_host_key", "ed25519");
    fs::write(
        &r.known_hosts,
        format!("[{HOST}]:{} {}\n", r.port(), other.public),
    )
    .unwrap();
    let loc = r.url(REPO_RK);
    let mut errs = Vec::new();
    let run = r.oxiborg(Transport::Native, Key::Forced, &[os("list"), os(&loc)]);
    expect_error(
        &run,
        &["HAS CHANGED", &r.server.host_key.fingerprint],
        Duration::from_secs(10),
        "[native] known_hosts holds another key for [127.0.0.1]:PORT",
        &mut errs,
    );
    let run = r.oxiborg(
        Transport::NativeConfig,
        Key::Forced,
        &[
            os("list"),
            os(r.loc(Transport::NativeConfig, Key::Forced, REPO_RK)),
        ],
    );
    expect_error(
        &run,
        &["HAS CHANGED"],
        Duration::from_secs(10),
        "[native+ssh_config] known_hosts holds another key",
        &mut errs,
    );
    let run = r.oxiborg(Transport::Command, Key::Forced, &[os("list"), os(&loc)]);
    expect_error(
        &run,
        &["Host key verification failed"],
        Duration::from_secs(10),
        "[BORG_RSH=ssh] known_hosts holds another key",
        &mut errs,
    );
    finish(&r, "changed host key", &errs);
}

#[test]
fn unauthorized_client_key_fails_authentication() {
    let Some(borg) = any_borg() else { return };
    let Some(r) = negative_setup(borg) else {
        return;
    };
    let loc = r.url(REPO_RK);
    let mut errs = Vec::new();
    let run = r.oxiborg(Transport::Native, Key::Unknown, &[os("list"), os(&loc)]);
    expect_error(
        &run,
        &["SSH authentication to", "failed"],
        Duration::from_secs(10),
        "[native] key not in authorized_keys",
        &mut errs,
    );
    let aloc = r.loc(Transport::NativeConfig, Key::Unknown, REPO_RK);
    let run = r.oxiborg(
        Transport::NativeConfig,
        Key::Unknown,
        &[os("list"), os(&aloc)],
    );
    expect_error(
        &run,
        &["SSH authentication to", "failed"],
        Duration::from_secs(10),
        "[native+ssh_config] key not in authorized_keys",
        &mut errs,
    );
    let run = r.oxiborg(Transport::Command, Key::Unknown, &[os("list"), os(&loc)]);
    expect_error(
        &run,
        &["Permission denied"],
        Duration::from_secs(10),
        "[BORG_RSH=ssh] key not in authorized_keys",
        &mut errs,
    );
    finish(&r, "unauthorized client key", &errs);
}

fn path_not_allowed(label: &str) {
    let Some(borg) = borg(label) else { return };
    let Some(r) = negative_setup(borg) else {
        return;
    };
    let mut errs = Vec::new();
    // the ed25519 key is restricted to POOL/repo-rk; POOL/repo-kf exists but is not allowed
    for t in ALL_TRANSPORTS {
        let loc = r.loc(t, Key::Forced, REPO_KF);
        let run = r.oxiborg(t, Key::Forced, &[os("list"), os(&loc)]);
        expect_error(
            &run,
            &["Repository path not allowed"],
            Duration::from_secs(20),
            &format!(
                "[{}] {} list {loc} (restricted to {REPO_RK})",
                tname(t),
                r.borg.version
            ),
            &mut errs,
        );
    }
    let loc = r.url_abs(Path::new("/etc"));
    let run = r.oxiborg(Transport::Native, Key::Forced, &[os("list"), os(&loc)]);
    expect_error(
        &run,
        &["Repository path not allowed"],
        Duration::from_secs(20),
        &format!("[native] {} list {loc}", r.borg.version),
        &mut errs,
    );
    // a repository that does not exist (inside the allowed pool, with the plain key)
    let loc = r.url_abs(&r.pool.join("no-such-repo"));
    let run = r.oxiborg(
        Transport::Native,
        Key::Plain,
        &[os("--remote-path"), os(&r.borg.path), os("list"), os(&loc)],
    );
    expect_error(
        &run,
        &["does not exist"],
        Duration::from_secs(20),
        &format!("[native] {} list {loc}", r.borg.version),
        &mut errs,
    );
    finish(&r, "restricted path", &errs);
}

#[test]
fn borg12_server_path_outside_restriction_is_not_allowed() {
    path_not_allowed("1.2");
}

#[test]
fn borg14_server_path_outside_restriction_is_not_allowed() {
    path_not_allowed("1.4");
}

#[test]
fn missing_remote_borg() {
    let Some(borg) = any_borg() else { return };
    let Some(r) = negative_setup(borg) else {
        return;
    };
    let loc = r.url_abs(&r.pool.join(REPO_RK));
    let mut errs = Vec::new();
    for t in [Transport::Native, Transport::Command] {
        let run = r.oxiborg(
            t,
            Key::Plain,
            &[
                os("--remote-path"),
                os("/nonexistent/borg"),
                os("list"),
                os(&loc),
            ],
        );
        let what = format!("[{}] --remote-path /nonexistent/borg list {loc}", tname(t));
        expect_error(&run, &[], Duration::from_secs(15), &what, &mut errs);
        let s = &run.out.stderr;
        if !(s.contains("Remote:") || s.contains("Connection closed by remote host")) {
            errs.push(format!(
                "{what}: stderr has neither a `Remote:` line nor \"Connection closed by remote host\"\n{}",
                run.describe()
            ));
        }
    }
    let mut cmd = r.oxiborg_cmd(Transport::Native, Key::Plain, &[os("list"), os(&loc)]);
    cmd.env("BORG_REMOTE_PATH", "/nonexistent/borg");
    let run = run_limited(cmd, RUN_LIMIT);
    expect_error(
        &run,
        &[],
        Duration::from_secs(15),
        "[native] BORG_REMOTE_PATH=/nonexistent/borg",
        &mut errs,
    );
    finish(&r, "missing remote borg", &errs);
}

// ---------------------------------------------------------------------------------------
// the server dies / stalls in the middle of an extract
// ---------------------------------------------------------------------------------------

const BIG_FILES: usize = 8;
const BIG_FILE_SIZE: usize = 1536 * 1024;

/// A repository with BIG_FILES pseudo-random files (~12 MiB, 16-256 KiB chunks).
fn big_setup() -> Option<(Remote, PathBuf, PathBuf)> {
    let borg = any_borg()?;
    let r = Remote::new(borg)?;
    let src = r.env.path().join("bigsrc");
    fs::create_dir_all(src.join("data")).unwrap();
    for i in 0..BIG_FILES {
        let p = src.join("data").join(format!("f{i}.bin"));
        fs::write(&p, pseudo_random(100 + i as u64, BIG_FILE_SIZE)).unwrap();
    }
    let repo = r.init_repo("repo-big", "repokey");
    r.create(
        &repo,
        "big",
        &src,
        &["data"],
        &["--chunker-params", "14,18,16,4095", "--compression", "none"],
    );
    Some((r, repo, src))
}

/// No file of `dest` may have its final name with content other than the source's.
fn check_no_partial_files(dest: &Path, src: &Path, what: &str, errs: &mut Vec<String>) {
    let mut complete = 0;
    let mut temps = Vec::new();
    for (rel, n) in snapshot(dest) {
        if n.kind != 'f' {
            continue;
        }
        let name = rel.file_name().unwrap();
        if is_temp_name(name) {
            temps.push(rel.display().to_string());
            continue;
        }
        let want = fs::read(src.join(&rel)).ok();
        let got = fs::read(dest.join(&rel)).unwrap();
        match want {
            Some(w) if w == got => complete += 1,
            Some(w) => errs.push(format!(
                "{what}: {} has its final name but {} of {} bytes / wrong content",
                rel.display(),
                got.len(),
                w.len()
            )),
            None => errs.push(format!("{what}: unexpected file {}", rel.display())),
        }
    }
    eprintln!(
        "{what}: {complete} complete file(s) of {BIG_FILES}; temporary files left: {temps:?}"
    );
}

fn interrupted(mode: &str, envs: &[(&str, &str)], needles: &[&str], max: Duration) {
    let Some((r, _repo, src)) = big_setup() else {
        return;
    };
    let (wrapper, flag) = r.write_wrapper(mode, 4 << 20);
    let loc = r.url_abs(&r.pool.join("repo-big"));
    let mut errs = Vec::new();
    for t in [Transport::Native, Transport::Command] {
        let _ = fs::remove_file(&flag);
        let dest = fresh_dir(&r.env.path().join(format!("dest-{mode}-{t:?}")));
        let mut cmd = r.oxiborg_cmd(
            t,
            Key::Plain,
            &[
                os("--remote-path"),
                os(&wrapper),
                os("extract"),
                os("-C"),
                os(&dest),
                os(format!("{loc}::big")),
            ],
        );
        cmd.envs(envs.iter().copied());
        let run = run_limited(cmd, RUN_LIMIT);
        let what = format!("[{}] extract, server {mode} after 4 MiB", tname(t));
        if !flag.exists() {
            errs.push(format!(
                "{what}: the wrapper never reached 4 MiB of responses (test set-up problem)\n{}",
                run.describe()
            ));
            continue;
        }
        expect_error(&run, needles, max, &what, &mut errs);
        check_no_partial_files(&dest, &src.join(""), &what, &mut errs);
    }
    finish(&r, &format!("server {mode} mid-extract"), &errs);
}

#[test]
fn server_borg_killed_mid_extract() {
    // One reconnection is tried (it is killed again), then the extract gives up.
    interrupted(
        "kill-serve",
        &[("OXIBORG_REMOTE_RETRIES", "1")],
        &[
            "Connection closed by remote host",
            "gave up after 1 reconnection attempt",
        ],
        Duration::from_secs(20),
    );
}

#[test]
fn sshd_session_killed_mid_extract() {
    interrupted(
        "kill-sshd",
        &[("OXIBORG_REMOTE_RETRIES", "1")],
        &[
            "Connection closed by remote host",
            "gave up after 1 reconnection attempt",
        ],
        Duration::from_secs(20),
    );
}

/// The server (or the sshd session) dies once mid-extract: oxiborg reconnects, fetches what is
/// still missing and the restore completes, equal to the source.
fn resumed(mode: &str) {
    let Some((r, _repo, src)) = big_setup() else {
        return;
    };
    let (wrapper, flag) = r.write_wrapper(mode, 4 << 20);
    let loc = r.url_abs(&r.pool.join("repo-big"));
    let mut errs = Vec::new();
    for t in [Transport::Native, Transport::Command] {
        let _ = fs::remove_file(&flag);
        let dest = fresh_dir(&r.env.path().join(format!("dest-{mode}-{t:?}")));
        let cmd = r.oxiborg_cmd(
            t,
            Key::Plain,
            &[
                os("--remote-path"),
                os(&wrapper),
                os("extract"),
                os("-C"),
                os(&dest),
                os(format!("{loc}::big")),
            ],
        );
        let run = run_limited(cmd, RUN_LIMIT);
        let what = format!("[{}] extract, server {mode} after 4 MiB", tname(t));
        if !flag.exists() {
            errs.push(format!(
                "{what}: the wrapper never misbehaved (test set-up problem)"
            ));
            continue;
        }
        if !check_ok(&what, &run, &mut errs) {
            continue;
        }
        if !run.out.stderr.contains("reconnecting (attempt 1 of 3)") {
            errs.push(format!(
                "{what}: no reconnection reported:\n{}",
                run.describe()
            ));
        }
        for i in 0..BIG_FILES {
            let rel = format!("data/f{i}.bin");
            if fs::read(dest.join(&rel)).ok() != fs::read(src.join(&rel)).ok() {
                errs.push(format!("{what}: {rel} differs from the source"));
            }
        }
        check_no_partial_files(&dest, &src.join(""), &what, &mut errs);
    }
    finish(&r, &format!("server {mode} mid-extract"), &errs);
}

#[test]
fn server_borg_killed_once_is_reconnected() {
    resumed("kill-serve-once");
}

#[test]
fn sshd_session_killed_once_is_reconnected() {
    resumed("kill-sshd-once");
}

/// The SSH connection drops mid-extract and oxiborg gives up (no reconnection allowed); then
/// `extract --continue` over a working connection keeps what was complete and restores the rest.
#[test]
fn continue_after_dropped_ssh() {
    let Some((r, _repo, src)) = big_setup() else {
        return;
    };
    let (wrapper, flag) = r.write_wrapper("kill-sshd", 4 << 20);
    let loc = r.url_abs(&r.pool.join("repo-big"));
    let dest = fresh_dir(&r.env.path().join("dest-continue"));
    let extract = |extra: &[&str], remote_path: &Path, envs: &[(&str, &str)]| {
        let mut args = vec![os("--remote-path"), os(remote_path), os("extract")];
        args.extend(extra.iter().map(os));
        args.extend([os("-C"), os(&dest), os(format!("{loc}::big"))]);
        let mut cmd = r.oxiborg_cmd(Transport::Native, Key::Plain, &args);
        cmd.envs(envs.iter().copied());
        run_limited(cmd, RUN_LIMIT)
    };
    let mut errs = Vec::new();
    let first = extract(
        &[],
        &wrapper,
        &[
            ("OXIBORG_REMOTE_RETRIES", "0"),
            ("OXIBORG_BATCH_FILES", "1"),
        ],
    );
    if !flag.exists() || first.out.code != 2 {
        errs.push(format!(
            "the first extract should have lost its connection\n{}",
            first.describe()
        ));
    }
    check_no_partial_files(&dest, &src.join(""), "after the drop", &mut errs);
    let second = extract(&["--continue", "--stats"], &r.borg.path, &[]);
    if check_ok("extract --continue", &second, &mut errs) {
        let kept: u64 = second
            .out
            .stderr
            .split("Kept: ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if kept == 0 || kept >= BIG_FILES as u64 {
            errs.push(format!(
                "expected some files kept from the first run, got {kept}\n{}",
                second.describe()
            ));
        }
        for i in 0..BIG_FILES {
            let rel = format!("data/f{i}.bin");
            if fs::read(dest.join(&rel)).ok() != fs::read(src.join(&rel)).ok() {
                errs.push(format!("{rel} differs from the source after --continue"));
            }
        }
        check_no_partial_files(&dest, &src.join(""), "after --continue", &mut errs);
    }
    finish(&r, "extract --continue after a dropped connection", &errs);
}

#[test]
fn stalled_server_times_out() {
    // OXIBORG_REMOTE_TIMEOUT=3: the wait for the next response gives up after 3 s; closing
    // the session may take a little longer (the server never answers the EOF).
    interrupted(
        "stall",
        &[
            ("OXIBORG_REMOTE_TIMEOUT", "3"),
            ("OXIBORG_REMOTE_RETRIES", "0"),
        ],
        &["did not answer"],
        Duration::from_secs(20),
    );
}

// ---------------------------------------------------------------------------------------
// no server at all / a "server" that speaks garbage
// ---------------------------------------------------------------------------------------

/// A client environment without agent, identity, known-hosts or BORG_RSH settings from
/// outside (HOME is the TestEnv's temporary base directory).
fn bare_client_env() -> TestEnv {
    let mut env = TestEnv::new();
    for k in [
        "SSH_AUTH_SOCK",
        "SSH_AGENT_PID",
        "OXIBORG_SSH_IDENTITY",
        "OXIBORG_SSH_KNOWN_HOSTS",
        "OXIBORG_SSH_KEY_PASSPHRASE",
        "BORG_RSH",
        "BORG_REMOTE_PATH",
    ] {
        env.unset(k);
    }
    env
}

/// A 127.0.0.1 port with nothing listening (bound and released; checked to refuse).
fn refused_port() -> u16 {
    for _ in 0..20 {
        let port = std::net::TcpListener::bind((HOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let refused = std::net::TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(2),
        )
        .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused);
        if refused {
            return port;
        }
    }
    panic!("found no free 127.0.0.1 port that refuses connections");
}

fn ssh_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join("ssh"))
        .find(|p| p.is_file())
}

#[test]
fn connection_refused_is_a_quick_clear_error() {
    let mut env = bare_client_env();
    env.set("OXIBORG_REMOTE_TIMEOUT", "60");
    let port = refused_port();
    let loc = format!("ssh://root@{HOST}:{port}/./repo");
    let mut errs = Vec::new();
    let run = run_limited(env.oxiborg_cmd(["list", &loc]), RUN_LIMIT);
    expect_error(
        &run,
        &["cannot connect", &port.to_string()],
        Duration::from_secs(10),
        &format!("[native] list {loc} (nothing listening)"),
        &mut errs,
    );
    match ssh_on_path() {
        Some(_) => {
            let mut cmd = env.oxiborg_cmd(["list", &loc]);
            cmd.env(
                "BORG_RSH",
                "ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
            );
            let run = run_limited(cmd, RUN_LIMIT);
            expect_error(
                &run,
                &["Connection refused"],
                Duration::from_secs(10),
                &format!("[BORG_RSH=ssh] list {loc} (nothing listening)"),
                &mut errs,
            );
        }
        None if require_borg() => {
            panic!("OXIBORG_REQUIRE_BORG=1 but ssh not found on PATH (install openssh-client)")
        }
        None => eprintln!("note: ssh not found on PATH: only the native transport was tried"),
    }
    assert_no_diffs("connection refused", &errs);
}

/// (mode, what the fake server writes) for [`garbage_server_is_refused`]; a mode ending in
/// `-exit` exits after writing, the others sleep 30 s with the pipes open.
const GARBAGE_MODES: &[(&str, &str)] = &[
    ("motd", "a login banner (text, i.e. msgpack fixints)"),
    ("bad-marker", "0xc1 (a never-used msgpack marker)"),
    ("str32-huge", "a str32 header claiming 4 GiB, then 4 bytes"),
    ("bin32-huge", "a bin32 header claiming 4 GiB, then 4 bytes"),
    (
        "array32-huge",
        "an array32 header claiming 2^32-1 elements, then one",
    ),
    (
        "map32-huge",
        "a map32 header claiming 2^32-1 entries, then one",
    ),
    (
        "str32-huge-exit",
        "a str32 header claiming 4 GiB, 4 bytes, then EOF",
    ),
];

fn write_garbage_server(dir: &Path) -> PathBuf {
    let script = dir.join("garbage-server.sh");
    let text = format!(
        r#"#!/bin/sh
# A fake `ssh HOST borg serve`: ignores every argument but the first (the mode), writes
# garbage to stdout, then sleeps (or exits for *-exit). Records its pid for the test.
mode=$1
echo $$ > "{dir}/$mode.pid"
case $mode in
  motd) printf 'Welcome to the backup server!\r\nLast login: Mon Jan  1 00:00:00 2024\r\n' ;;
  bad-marker) printf '\301\301\301\301' ;;
  str32-huge|str32-huge-exit) printf '\333\377\377\377\377xxxx' ;;
  bin32-huge) printf '\306\377\377\377\377xxxx' ;;
  array32-huge) printf '\335\377\377\377\377\001' ;;
  map32-huge) printf '\337\377\377\377\377\241i\001' ;;
  *) echo "unknown mode $mode" >&2; exit 3 ;;
esac
case $mode in *-exit) exit 0 ;; esac
exec sleep 30
"#,
        dir = dir.display()
    );
    fs::write(&script, text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// Kills the fake server of `mode` if it still runs (only that pid, which this test started).
fn reap_garbage_server(dir: &Path, mode: &str) -> bool {
    let Ok(text) = fs::read_to_string(dir.join(format!("{mode}.pid"))) else {
        return false;
    };
    let Ok(pid) = text.trim().parse::<i32>() else {
        return false;
    };
    let comm = fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if comm.contains("sleep") || comm.contains("garbage-server") {
        unsafe { libc::kill(pid, libc::SIGKILL) };
        return true;
    }
    false
}

#[test]
fn garbage_server_is_refused() {
    let mut env = bare_client_env();
    env.set("OXIBORG_REMOTE_TIMEOUT", "5");
    let dir = env.path().join("garbage");
    fs::create_dir_all(&dir).unwrap();
    let script = write_garbage_server(&dir);
    let loc = format!("ssh://root@{HOST}:22/./repo");
    let mut errs = Vec::new();
    for (mode, what) in GARBAGE_MODES {
        let mut cmd = env.oxiborg_cmd([
            os("--remote-path"),
            os("/nonexistent/borg"),
            os("list"),
            os(&loc),
        ]);
        cmd.env("BORG_RSH", format!("{} {mode}", script.display()));
        let run = run_limited(cmd, Duration::from_secs(60));
        let label = format!("[BORG_RSH=fake server: {what}] list {loc}");
        let o = &run.out;
        let mut bad = Vec::new();
        if o.code != 2 {
            bad.push(format!("exit code {} (expected 2)", o.code));
        }
        if o.stderr.contains("panicked") {
            bad.push("panicked".into());
        }
        let low = o.stderr.to_lowercase();
        if !(low.contains("unexpected rpc data format") || low.contains("connection closed")) {
            bad.push(
                "stderr mentions neither \"unexpected RPC data format\" nor \"Connection closed\""
                    .into(),
            );
        }
        // OXIBORG_REMOTE_TIMEOUT=5, plus a little for starting and closing
        if run.elapsed > Duration::from_secs(8) {
            bad.push(format!(
                "took {:.1} s (expected at most 8 s with OXIBORG_REMOTE_TIMEOUT=5)",
                run.elapsed.as_secs_f64()
            ));
        }
        if reap_garbage_server(&dir, mode) && !mode.ends_with("-exit") {
            // still running after oxiborg exited: oxiborg left its server behind
            bad.push("the fake server was still running after oxiborg exited".into());
        }
        if bad.is_empty() {
            eprintln!(
                "{label}: ok ({:.2} s): {}",
                run.elapsed.as_secs_f64(),
                o.stderr.trim().replace('\n', " | ")
            );
        } else {
            errs.push(format!("{label}: {}\n{}", bad.join("; "), run.describe()));
        }
    }
    assert_no_diffs("garbage from the server", &errs);
}

// ---------------------------------------------------------------------------------------
// slow links and flaky connections: the timeout is silence, retries count failures in a row
// ---------------------------------------------------------------------------------------

/// One 1 MiB object (a single fixed-size chunk, stored uncompressed) fetched through a link that
/// trickles 200 KB/s — five seconds for the object, bytes arriving every 40 ms — with
/// `OXIBORG_REMOTE_TIMEOUT=2` and no reconnection: the response takes longer than the timeout,
/// but the server is never silent, so the extract completes.
#[test]
fn slow_link_is_not_a_timeout() {
    let Some(borg) = any_borg() else { return };
    let Some(r) = Remote::new(borg) else { return };
    let src = r.env.path().join("slowsrc");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("one.bin"), pseudo_random(77, 1 << 20)).unwrap();
    let repo = r.init_repo("repo-slow", "repokey");
    r.create(
        &repo,
        "one",
        &src,
        &["one.bin"],
        &["--chunker-params", "fixed,4194304", "--compression", "none"],
    );
    let link = SlowLink::start(r.port(), 8 * 1024, Duration::from_millis(40));
    // the link is another host:port to the client
    fs::write(
        &r.known_hosts,
        format!(
            "{}[{HOST}]:{} {}\n",
            r.server.known_hosts_line(),
            link.port,
            r.server.host_key.public
        ),
    )
    .unwrap();
    let loc = format!(
        "ssh://{}@{HOST}:{}{}",
        login_user(),
        link.port,
        repo.display()
    );
    let mut errs = Vec::new();
    for t in [Transport::Native, Transport::Command] {
        let dest = fresh_dir(&r.env.path().join(format!("slow-{t:?}")));
        let mut cmd = r.oxiborg_cmd(
            t,
            Key::Plain,
            &[
                os("--remote-path"),
                os(&r.borg.path),
                os("--connections"),
                os("1"),
                os("extract"),
                os("-C"),
                os(&dest),
                os(format!("{loc}::one")),
            ],
        );
        cmd.env("OXIBORG_REMOTE_TIMEOUT", "2")
            .env("OXIBORG_REMOTE_RETRIES", "0");
        let run = run_limited(cmd, RUN_LIMIT);
        let what = format!(
            "[{}] extract of a 1 MiB object over 200 KB/s, timeout 2 s",
            tname(t)
        );
        eprintln!("{what}: {:.2} s", run.elapsed.as_secs_f64());
        if check_ok(&what, &run, &mut errs)
            && fs::read(dest.join("one.bin")).ok() != fs::read(src.join("one.bin")).ok()
        {
            errs.push(format!("{what}: one.bin differs from the source"));
        }
    }
    drop(link);
    finish(&r, "slow link", &errs);
}

/// The connection drops five times, each time after 2 MiB of answers: every drop follows
/// progress, so each is a first failure again, and the default three retries are not used up.
#[test]
fn drops_after_progress_do_not_use_up_the_retries() {
    let Some((r, _repo, src)) = big_setup() else {
        return;
    };
    let (wrapper, flag) = r.write_wrapper("kill-serve-times-5", 2 << 20);
    let loc = r.url_abs(&r.pool.join("repo-big"));
    let dest = fresh_dir(&r.env.path().join("dest-drops"));
    let cmd = r.oxiborg_cmd(
        Transport::Native,
        Key::Plain,
        &[
            os("--remote-path"),
            os(&wrapper),
            os("--connections"),
            os("1"),
            os("extract"),
            os("-C"),
            os(&dest),
            os(format!("{loc}::big")),
        ],
    );
    let run = run_limited(cmd, RUN_LIMIT);
    let mut errs = Vec::new();
    let what = "[native] extract, connection dropped 5 times after 2 MiB each (default retries)";
    let drops = fs::read_to_string(&flag).unwrap_or_default();
    if drops.trim() != "5" {
        errs.push(format!(
            "{what}: the wrapper dropped {drops:?} times, not 5 (test set-up problem)\n{}",
            run.describe()
        ));
    }
    if check_ok(what, &run, &mut errs) {
        let n = run
            .out
            .stderr
            .matches("reconnecting (attempt 1 of 3)")
            .count();
        if n != 5 {
            errs.push(format!(
                "{what}: expected 5 reconnections, each a first attempt; got {n}\n{}",
                run.describe()
            ));
        }
        for i in 0..BIG_FILES {
            let rel = format!("data/f{i}.bin");
            if fs::read(dest.join(&rel)).ok() != fs::read(src.join(&rel)).ok() {
                errs.push(format!("{what}: {rel} differs from the source"));
            }
        }
    }
    finish(&r, "drops after progress", &errs);
}

// ---------------------------------------------------------------------------------------
// host keys: the algorithm known_hosts records, first contact
// ---------------------------------------------------------------------------------------

/// The server offers ed25519 and RSA host keys; known_hosts records only its RSA key (plain or
/// hashed, as `ssh-keyscan -t rsa` / `ssh-keygen -H` write it). OpenSSH asks for the RSA key
/// and connects; so must the built-in client. A different RSA key is a changed key, reported
/// with how to remove the old one.
#[test]
fn host_key_algorithm_known_for_the_host_is_used() {
    let Some(borg) = any_borg() else { return };
    let Some(r) = negative_setup(borg) else {
        return;
    };
    let mut errs = Vec::new();
    fs::write(&r.known_hosts, r.server.known_hosts_line_rsa()).unwrap();
    for t in ALL_TRANSPORTS {
        let loc = r.loc(t, Key::Forced, REPO_RK);
        let run = r.oxiborg(t, Key::Forced, &[os("list"), os(&loc)]);
        check_ok(
            &format!("[{}] list with only the RSA host key known", tname(t)),
            &run,
            &mut errs,
        );
    }
    // hashed names
    let mut c = std::process::Command::new(&r.tools.ssh_keygen);
    c.arg("-H").arg("-f").arg(&r.known_hosts);
    run_ok(c, Duration::from_secs(30));
    let hashed = fs::read_to_string(&r.known_hosts).unwrap();
    assert!(hashed.starts_with("|1|"), "ssh-keygen -H: {hashed}");
    let loc = r.url(REPO_RK);
    for t in [Transport::Native, Transport::Command] {
        let run = r.oxiborg(t, Key::Forced, &[os("list"), os(&loc)]);
        check_ok(
            &format!(
                "[{}] list with only the RSA host key known, hashed",
                tname(t)
            ),
            &run,
            &mut errs,
        );
    }
    // another RSA key: changed
    let other = keygen(&r.tools, r.env.path(), "impostor_rsa_host_key", "rsa");
    fs::write(
        &r.known_hosts,
        format!("[{HOST}]:{} {}\n", r.port(), other.public),
    )
    .unwrap();
    let run = r.oxiborg(Transport::Native, Key::Forced, &[os("list"), os(&loc)]);
    expect_error(
        &run,
        &[
            "HAS CHANGED",
            &r.server.host_key_rsa.fingerprint,
            "ssh-keygen",
            &format!("-R '[{HOST}]:{}'", r.port()),
        ],
        Duration::from_secs(10),
        "[native] known_hosts holds another RSA key",
        &mut errs,
    );
    let run = r.oxiborg(Transport::Command, Key::Forced, &[os("list"), os(&loc)]);
    expect_error(
        &run,
        &["Host key verification failed"],
        Duration::from_secs(10),
        "[BORG_RSH=ssh] known_hosts holds another RSA key",
        &mut errs,
    );
    finish(&r, "host key algorithm", &errs);
}

/// `sh -c 'printf ANSWER | script -qefc CMD /dev/null'`: CMD on a pseudo-terminal (stdin, stdout,
/// stderr), with ANSWER typed in; what the terminal showed is stdout.
fn on_pty_answering(r: &Remote, t: Transport, key: Key, args: &[OsString], answer: &str) -> Run {
    let mut inner = vec![quote(std::ffi::OsStr::new(oxiborg_bin()))];
    inner.extend(args.iter().map(|a| quote(a)));
    let proto = r.oxiborg_cmd(t, key, args);
    let mut cmd = r.env.command("sh");
    for (k, v) in proto.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.arg("-c")
        .arg("printf \"$1\" | script -qefc \"$2\" /dev/null")
        .arg("sh")
        .arg(answer)
        .arg(inner.join(" "));
    run_limited(cmd, RUN_LIMIT)
}

fn have_script() -> bool {
    std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_ok()
}

/// An unknown host on a terminal: asked as OpenSSH asks (fingerprint, yes/no); "yes" records the
/// key in known_hosts (in OpenSSH's format, usable by OpenSSH), "no" refuses.
#[test]
fn first_contact_on_a_terminal_asks() {
    if !have_script() {
        eprintln!("note: util-linux `script` is missing; test skipped");
        return;
    }
    let Some(borg) = any_borg() else { return };
    let Some(r) = negative_setup(borg) else {
        return;
    };
    let mut errs = Vec::new();
    let loc = r.url(REPO_RK);
    let args = [os("list"), os(&loc)];
    // "no": refused, nothing recorded
    fs::remove_file(&r.known_hosts).unwrap();
    let run = on_pty_answering(&r, Transport::Native, Key::Forced, &args, "no\n");
    let shown = run.out.stdout_str();
    for needle in [
        "The authenticity of host",
        r.server.host_key.fingerprint.as_str(),
        "(yes/no/[fingerprint])",
        "Host key verification failed",
    ] {
        if !shown.contains(needle) {
            errs.push(format!(
                "[native, answer no] the terminal lacks {needle:?}:\n{shown}"
            ));
        }
    }
    if run.out.code == 0 || r.known_hosts.exists() {
        errs.push(format!(
            "[native, answer no] expected a refusal and no known_hosts file\n{}",
            run.describe()
        ));
    }
    // "yes": connects and records the key
    let run = on_pty_answering(&r, Transport::Native, Key::Forced, &args, "yes\n");
    let shown = run.out.stdout_str();
    if run.out.code != 0 || !shown.contains("Permanently added") {
        errs.push(format!(
            "[native, answer yes] expected success\n{}",
            run.describe()
        ));
    }
    let recorded = fs::read_to_string(&r.known_hosts).unwrap_or_default();
    if !recorded.contains(&r.server.known_hosts_line()) {
        errs.push(format!(
            "[native, answer yes] known_hosts should hold {:?}, holds {recorded:?}",
            r.server.known_hosts_line()
        ));
    }
    // no question any more, and OpenSSH (strict checking) accepts the recorded line
    for t in [Transport::Native, Transport::Command] {
        let run = r.oxiborg(t, Key::Forced, &args);
        check_ok(
            &format!("[{}] list after the key was recorded", tname(t)),
            &run,
            &mut errs,
        );
    }
    finish(&r, "first contact on a terminal", &errs);
}

/// `StrictHostKeyChecking accept-new` in ~/.ssh/config: an unknown host's key is recorded
/// without asking (as OpenSSH does with it); a changed key is still refused.
#[test]
fn accept_new_in_ssh_config_is_honoured() {
    let Some(borg) = any_borg() else { return };
    let Some(r) = negative_setup(borg) else {
        return;
    };
    let mut errs = Vec::new();
    let config = r.env.base.join(".ssh/config");
    let mut text = fs::read_to_string(&config).unwrap();
    text.push_str("Host *\n    StrictHostKeyChecking accept-new\n");
    fs::write(&config, text).unwrap();
    fs::remove_file(&r.known_hosts).unwrap();
    let loc = r.url(REPO_RK);
    let run = r.oxiborg(Transport::Native, Key::Forced, &[os("list"), os(&loc)]);
    if check_ok("[native] accept-new, unknown host", &run, &mut errs)
        && !run.out.stderr.contains("Permanently added")
    {
        errs.push(format!(
            "[native] accept-new: the addition is not reported\n{}",
            run.describe()
        ));
    }
    let recorded = fs::read_to_string(&r.known_hosts).unwrap_or_default();
    if !recorded.contains(&r.server.known_hosts_line()) {
        errs.push(format!(
            "[native] accept-new: known_hosts should hold {:?}, holds {recorded:?}",
            r.server.known_hosts_line()
        ));
    }
    // the oracle: OpenSSH with accept-new does the same
    let kh = r.env.path().join("openssh_known_hosts");
    let mut cmd = r.oxiborg_cmd(Transport::Command, Key::Forced, &[os("list"), os(&loc)]);
    cmd.env(
        "BORG_RSH",
        format!(
            "ssh -F /dev/null -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} -o StrictHostKeyChecking=accept-new -o BatchMode=yes",
            r.forced.private.display(),
            kh.display()
        ),
    );
    let run = run_limited(cmd, RUN_LIMIT);
    check_ok("[BORG_RSH=ssh] accept-new, unknown host", &run, &mut errs);
    // a changed key is refused all the same
    let other = keygen(&r.tools, r.env.path(), "impostor_host_key", "ed25519");
    fs::write(
        &r.known_hosts,
        format!("[{HOST}]:{} {}\n", r.port(), other.public),
    )
    .unwrap();
    let run = r.oxiborg(Transport::Native, Key::Forced, &[os("list"), os(&loc)]);
    expect_error(
        &run,
        &["HAS CHANGED"],
        Duration::from_secs(10),
        "[native] accept-new, changed key",
        &mut errs,
    );
    finish(&r, "StrictHostKeyChecking accept-new", &errs);
}

/// `~/.ssh/config` reaches the host only through an `Include`d directory (relative to `~/.ssh`)
/// whose files name it in a `Host` block and a `Match originalhost … host …` block (the host
/// being the `HostName` obtained so far) with the port, the user and an `IdentityFile` built
/// from `%h_%p_%r`; a later `Host *` with another port and user loses (first value wins). The
/// built-in client connects with it, and OpenSSH (`ssh -F` the same file) does the same.
#[test]
fn ssh_config_include_and_match_are_followed() {
    use std::os::unix::fs::PermissionsExt;
    let Some(borg) = any_borg() else { return };
    let Some(r) = negative_setup(borg) else {
        return;
    };
    let mut errs = Vec::new();
    let ssh = r.env.base.join(".ssh");
    let private = |p: &Path, text: &str| {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
        fs::set_permissions(p, fs::Permissions::from_mode(0o600)).unwrap();
    };
    let key = ssh
        .join("keys")
        .join(format!("{HOST}_{}_{}", r.port(), login_user()));
    private(&key, &fs::read_to_string(&r.forced.private).unwrap());
    private(
        &ssh.join("conf.d/10-alias.conf"),
        &format!("Host oxitest-incl\n    HostName {HOST}\n"),
    );
    // an absolute directory before the tokens: OpenSSH takes `~` and `%d` from the passwd
    // entry, not from $HOME
    private(
        &ssh.join("conf.d/20-match.conf"),
        &format!(
            "Match originalhost oxitest-incl host {HOST}\n    Port {}\n    User {}\n    IdentityFile {}/keys/%h_%p_%r\n",
            r.port(),
            login_user(),
            ssh.display()
        ),
    );
    let config = ssh.join("config");
    let text = fs::read_to_string(&config).unwrap();
    private(
        &config,
        &format!("Include conf.d/*.conf\n\n{text}Host *\n    Port 1\n    User nobody-oxitest\n"),
    );
    let loc = format!("oxitest-incl:{REPO_RK}");
    let run = r.oxiborg(
        Transport::NativeConfig,
        Key::Forced,
        &[os("list"), os(&loc)],
    );
    check_ok("[native+ssh_config] Include + Match", &run, &mut errs);
    let native = run.out.stdout.clone();
    // the oracle: OpenSSH reading the same file
    let mut cmd = r.oxiborg_cmd(Transport::Command, Key::Forced, &[os("list"), os(&loc)]);
    cmd.env(
        "BORG_RSH",
        format!(
            "ssh -F {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null \
             -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=10 -o LogLevel=ERROR",
            config.display(),
            r.known_hosts.display()
        ),
    );
    let run = run_limited(cmd, RUN_LIMIT);
    if check_ok("[BORG_RSH=ssh -F] Include + Match", &run, &mut errs) && run.out.stdout != native {
        errs.push(format!(
            "the built-in client listed {native:?}, OpenSSH {:?}",
            run.out.stdout
        ));
    }
    finish(&r, "ssh_config Include + Match", &errs);
}

/// A machine with no `~/.ssh` and the key somewhere else (`/etc/borgmatic/key`): the unknown-host
/// error gives a command that works as it stands (it makes `~/.ssh`); the authentication error
/// says how to name the key, and `--ssh-identity` does; with `BORG_RSH="ssh -i KEY …"` but no
/// `ssh` installed, the built-in client takes the key (and known_hosts) from it.
#[test]
fn fresh_machine_with_the_built_in_client() {
    let Some(borg) = any_borg() else { return };
    let Some(r) = negative_setup(borg) else {
        return;
    };
    let mut errs = Vec::new();
    fs::remove_dir_all(r.env.base.join(".ssh")).unwrap();
    let loc = r.url(REPO_RK);
    let key = r.forced.private.clone();
    let bare = |args: &[OsString]| {
        let mut cmd = r.oxiborg_cmd(Transport::Native, Key::Forced, args);
        cmd.env_remove("OXIBORG_SSH_IDENTITY");
        cmd
    };
    // unknown host: the hint, run as given, makes ~/.ssh and records the key
    let run = run_limited(bare(&[os("list"), os(&loc)]), RUN_LIMIT);
    expect_error(
        &run,
        &["not a known host", "mkdir -p", "ssh-keyscan"],
        Duration::from_secs(10),
        "[native] no ~/.ssh at all",
        &mut errs,
    );
    let hint = run
        .out
        .stderr
        .split('`')
        .find(|s| s.starts_with("mkdir -p"))
        .map(str::to_string);
    match hint {
        Some(h) => {
            let mut c = r.env.command("sh");
            c.arg("-c").arg(&h);
            run_ok(c, Duration::from_secs(30));
        }
        None => errs.push(format!("no `mkdir -p …` command in\n{}", run.describe())),
    }
    // no key found: the error says how to name one
    let run = run_limited(bare(&[os("list"), os(&loc)]), RUN_LIMIT);
    expect_error(
        &run,
        &[
            "SSH authentication",
            "OXIBORG_SSH_IDENTITY",
            "--ssh-identity",
        ],
        Duration::from_secs(10),
        "[native] no identity",
        &mut errs,
    );
    let run = run_limited(
        bare(&[os("--ssh-identity"), os(&key), os("list"), os(&loc)]),
        RUN_LIMIT,
    );
    check_ok("[native] --ssh-identity KEY", &run, &mut errs);
    // BORG_RSH names the key, but there is no ssh: the built-in client uses its -i and -o
    let no_ssh = r.env.path().join("empty-path");
    fs::create_dir_all(&no_ssh).unwrap();
    let _ = fs::remove_file(&r.known_hosts);
    let kh = r.env.path().join("rsh_known_hosts");
    fs::write(&kh, r.server.known_hosts_line()).unwrap();
    let mut cmd = bare(&[os("list"), os(&loc)]);
    cmd.env(
        "BORG_RSH",
        format!(
            "ssh -i {} -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -o BatchMode=yes",
            key.display(),
            kh.display()
        ),
    )
    .env("PATH", &no_ssh);
    let run = run_limited(cmd, RUN_LIMIT);
    check_ok(
        "[BORG_RSH=ssh -i KEY, no ssh installed] built-in client",
        &run,
        &mut errs,
    );
    finish(&r, "a fresh machine", &errs);
}

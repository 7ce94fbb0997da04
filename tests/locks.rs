//! borg's repository lock as a reader meets it, with real borg holding (and abandoning) it.
//!
//! * A live writer (`borg with-lock REPO sleep`) holds `lock.exclusive`: a local read waits
//!   `--lock-wait` and refuses, naming the holder; `--bypass-lock` reads.
//! * The writer is killed with SIGKILL: its lock stays behind, stale by borg's rule (this
//!   host, process gone). borg 1.4.5 removes it and reads; oxiborg reads and leaves it for
//!   borg (it never writes into a repository).
//! * `BORG_HOST_ID` names the host, as in borg: a dead writer's lock under another host id
//!   is not stale (borg and oxiborg both refuse).
//! * Over `borg serve`, oxiborg takes no lock: it reads while a writer holds the lock
//!   (where borg, which takes a shared lock, times out), and leaves no lock files.

mod common;
mod remote_support;

use common::*;
use remote_support::*;
use std::ffi::OsString;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// `borg with-lock REPO sleep 300` in its own process group, once its lock is in place.
struct Writer {
    child: Child,
}

impl Writer {
    fn start(env: &TestEnv, borg: &Borg, repo: &Path, host_id: Option<&str>) -> Writer {
        let mut cmd = env.borg_cmd(
            borg,
            [
                OsString::from("with-lock"),
                repo.into(),
                "sleep".into(),
                "300".into(),
            ],
        );
        if let Some(id) = host_id {
            cmd.env("BORG_HOST_ID", id);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd.process_group(0);
        let child = cmd.spawn().expect("borg with-lock");
        let lock = repo.join("lock.exclusive");
        let start = Instant::now();
        while !fs::read_dir(&lock).is_ok_and(|mut d| d.next().is_some()) {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "borg with-lock did not take the lock"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Writer { child }
    }

    /// SIGKILL for borg and its `sleep`: the lock stays behind.
    fn kill(&mut self) {
        let pgid = self.child.id() as i32;
        // SAFETY: kill(2) on our own child's process group.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn lock_holders(repo: &Path) -> Vec<String> {
    fs::read_dir(repo.join("lock.exclusive"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn repo_with_archive(env: &TestEnv, borg: &Borg) -> std::path::PathBuf {
    let src = env.path().join("src");
    fs::create_dir_all(src.join("data")).unwrap();
    fs::write(src.join("data/file"), b"content").unwrap();
    let repo = env.path().join("repo");
    env.borg_init(borg, &repo, "repokey", &[]);
    env.borg_create(borg, &repo, "a1", &src, &["data"], &[]);
    repo
}

fn list(env: &TestEnv, repo: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<OsString> = extra.iter().map(OsString::from).collect();
    args.push("list".into());
    args.push("--short".into());
    args.push(repo.into());
    env.oxiborg(args)
}

#[test]
fn a_dead_writers_lock_is_stale_as_borg_says() {
    let Some(borg) = borg("1.4") else { return };
    let env = TestEnv::new();
    let repo = repo_with_archive(&env, &borg);

    let mut writer = Writer::start(&env, &borg, &repo, None);
    let held = list(&env, &repo, &["--lock-wait", "0.3"]);
    held.assert_error(&["lock.exclusive", "held by", "--bypass-lock"]);
    let holder = lock_holders(&repo);
    assert_eq!(holder.len(), 1, "one holder: {holder:?}");
    assert!(
        held.stderr.contains(&holder[0]),
        "the error names the holder {}:\n{}",
        holder[0],
        held.describe()
    );
    let bypass = list(&env, &repo, &["--bypass-lock"]);
    bypass.assert_ok();
    assert_eq!(bypass.stdout_str(), "a1\n");

    // SIGKILL: borg leaves its lock behind
    writer.kill();
    assert_eq!(lock_holders(&repo), holder, "the dead writer's lock stays");
    let out = list(&env, &repo, &["--lock-wait", "0.3"]);
    out.assert_ok();
    assert_eq!(out.stdout_str(), "a1\n");
    assert_eq!(
        lock_holders(&repo),
        holder,
        "oxiborg does not remove the lock (it never writes into a repository)"
    );
    let info = list(&env, &repo, &["--info"]);
    assert!(
        info.stderr.contains("stale lock") && info.stderr.contains(&holder[0]),
        "--info says the lock was stale:\n{}",
        info.describe()
    );
    // the oracle: borg calls it stale, removes it and lists
    let b = env.borg(
        &borg,
        [
            OsString::from("list"),
            "--short".into(),
            repo.clone().into(),
        ],
    );
    assert_eq!(b.code, 0, "{}", b.describe());
    assert_eq!(b.stdout_str(), "a1\n");
    assert!(
        lock_holders(&repo).is_empty(),
        "borg removed the stale lock"
    );
}

#[test]
fn borg_host_id_names_the_host() {
    let Some(borg) = borg("1.4") else { return };
    let mut env = TestEnv::new();
    let repo = repo_with_archive(&env, &borg);
    let mut writer = Writer::start(&env, &borg, &repo, Some("oxiborg-test-host@42"));
    writer.kill();
    assert_eq!(lock_holders(&repo).len(), 1);

    // another host's lock: its process cannot be judged from here (borg and oxiborg refuse)
    env.set("BORG_HOST_ID", "some-other-host@43");
    let other = list(&env, &repo, &["--lock-wait", "0.3"]);
    other.assert_error(&["lock.exclusive", "held by"]);
    let copy = env.path().join("repo-copy");
    copy_dir(&repo, &copy);
    let b = env.borg(
        &borg,
        [
            OsString::from("--lock-wait"),
            "0.3".into(),
            "list".into(),
            copy.clone().into(),
        ],
    );
    assert_ne!(
        b.code,
        0,
        "borg reads despite a foreign lock:\n{}",
        b.describe()
    );
    assert!(b.stderr.contains("lock"), "{}", b.describe());

    // the same host id: the writer is gone, the lock is stale
    env.set("BORG_HOST_ID", "oxiborg-test-host@42");
    let mine = list(&env, &repo, &["--lock-wait", "0.3"]);
    mine.assert_ok();
    assert_eq!(mine.stdout_str(), "a1\n");
    // borg 1.1's switch, which borg 1.2 dropped: never judge a lock stale
    env.set("BORG_HOSTNAME_IS_UNIQUE", "no");
    list(&env, &repo, &["--lock-wait", "0.3"]).assert_error(&["held by"]);
    env.unset("BORG_HOSTNAME_IS_UNIQUE");
    let b = env.borg(
        &borg,
        [OsString::from("list"), "--short".into(), copy.into()],
    );
    assert_eq!(b.code, 0, "{}", b.describe());
}

#[test]
fn remote_reads_take_no_lock() {
    let Some(borg) = borg("1.4") else { return };
    let Some(r) = Remote::new(borg) else { return };
    let src = r.env.path().join("src");
    fs::create_dir_all(src.join("data")).unwrap();
    fs::write(src.join("data/file"), b"content").unwrap();
    let repo = r.init_repo(REPO_RK, "repokey");
    r.create(&repo, "a1", &src, &["data"], &[]);

    let writer = Writer::start(&r.env, &r.borg, &repo, None);
    for t in [Transport::Native, Transport::Command] {
        let run = r.oxiborg(
            t,
            Key::Forced,
            &["--lock-wait", "0.5", "list", "--short", &r.url(REPO_RK)],
        );
        assert_eq!(
            run.out.code,
            0,
            "a read through borg serve waited for the writer's lock:\n{}",
            run.describe()
        );
        assert_eq!(run.out.stdout_str(), "a1\n");
    }
    // borg itself takes a shared lock, so it times out here (the contrast)
    let mut cmd = r.env.borg_cmd(
        &r.borg,
        [
            "--lock-wait",
            "0.5",
            "list",
            "--short",
            r.url(REPO_RK).as_str(),
        ],
    );
    cmd.env("BORG_RSH", r.rsh(Key::Forced));
    let b = run_limited(cmd, Duration::from_secs(60));
    assert_ne!(b.out.code, 0, "{}", b.describe());
    drop(writer);

    // (the killed writer's lock files stay; the reads add nothing)
    let before = dir_names(&repo);
    for t in [Transport::Native, Transport::Command] {
        let run = r.oxiborg(t, Key::Forced, &["list", "--short", &r.url(REPO_RK)]);
        assert_eq!(run.out.code, 0, "{}", run.describe());
    }
    assert_eq!(
        before,
        dir_names(&repo),
        "the reads changed the repository's files"
    );
}

fn dir_names(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(p)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

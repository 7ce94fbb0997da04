//! The example programs in `examples/` are the library's acceptance test: each is run against
//! the committed fixture repositories (every key mode) and through the test sshd, and its
//! output is compared with what real borg says of the same repository.
//!
//! * `list_archives REPO` — the names and ids of `borg list --json`, newest last.
//! * `cat_file REPO ARCHIVE PATH` — byte for byte the file `borg extract` restores at PATH
//!   (a hard-link member too: its master's content), with `latest` for the newest archive.
//! * `walk REPO ARCHIVE` — type, size and path of every item, as `borg list` gives them.
//! * `read_at REPO ARCHIVE PATH OFFSET LEN` — slices of the restored file.
//! * `restore REPO ARCHIVE DEST [PATH…]` — the tree `borg extract` restores; Ctrl-C (SIGINT)
//!   stops it cleanly.

mod common;
mod remote_support;

use common::*;
use remote_support::tree_diff;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const REPOS: &[&str] = &[
    "repokey-blake2-lz4",
    "repokey-auto-zstd",
    "keyfile-zstd",
    "keyfile-blake2-obfuscate",
    "authenticated-lzma",
    "none-zlib",
];

/// An example program, built by `cargo test` next to the test binaries.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let p = dir.join(name);
    assert!(p.is_file(), "{} not built", p.display());
    p
}

fn run_example(env: &TestEnv, name: &str, args: &[OsString]) -> Output {
    let mut cmd = env.command(example(name));
    cmd.args(args);
    run_command(cmd)
}

/// `borg list --json` archives: (name, id), in borg's order.
fn borg_archives(env: &TestEnv, borg: &Borg, repo: &Path) -> Vec<(String, String)> {
    let out = env.borg_ok(borg, [OsString::from("list"), "--json".into(), repo.into()]);
    archives_of(&serde_json::from_slice(&out.stdout).unwrap())
}

/// `borg extract` of `archive` into a fresh directory.
fn borg_extract(env: &TestEnv, borg: &Borg, repo: &Path, archive: &str, dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    let mut cmd = env.borg_cmd(
        borg,
        [OsString::from("extract"), repo_archive(repo, archive)],
    );
    cmd.current_dir(dir);
    let out = run_command(cmd);
    assert_eq!(out.code, 0, "{}", out.describe());
}

fn os(s: impl Into<OsString>) -> OsString {
    s.into()
}

#[test]
fn examples_agree_with_borg_on_every_fixture() {
    let Some(borg) = borg("1.4") else { return };
    for name in REPOS {
        let mut env = TestEnv::new();
        let repo = fixture_repo(&mut env, name);
        let archives = borg_archives(&env, &borg, &repo);
        let newest = archives.last().unwrap().0.clone();

        // list_archives: names and ids, newest last
        let out = run_example(&env, "list_archives", &[os(&repo)]);
        out.assert_ok();
        let listed: Vec<(String, String)> = out
            .stdout_str()
            .lines()
            .map(|l| {
                // NAME (padded) DATE TIME ID
                let (rest, id) = l.rsplit_once(' ').unwrap();
                let (rest, _time) = rest.rsplit_once(' ').unwrap();
                let (name, _date) = rest.rsplit_once(' ').unwrap();
                (name.trim_end().to_string(), id.to_string())
            })
            .collect();
        assert_eq!(listed, archives, "{name}: list_archives");

        // the tree borg restores, and borg's listing
        let tree = env.path().join("borg-tree");
        borg_extract(&env, &borg, &repo, &newest, &tree);
        let listing = env.borg_ok(
            &borg,
            [
                os("list"),
                os("--format"),
                os("{type} {size} {path}{NL}"),
                repo_archive(&repo, &newest),
            ],
        );

        // walk: type, size, path of every item (types as words)
        let out = run_example(&env, "walk", &[os(&repo), os("latest")]);
        out.assert_ok();
        let walked: Vec<String> = out
            .stdout_str()
            .lines()
            .map(|l| {
                let mut w = l.split_whitespace();
                let kind = match w.next().unwrap() {
                    "file" => "-",
                    "dir" => "d",
                    "symlink" => "l",
                    "fifo" => "p",
                    "chardev" => "c",
                    "blockdev" => "b",
                    other => other,
                };
                let size = w.next().unwrap();
                let path = l.splitn(3, char::is_whitespace).last().unwrap_or("");
                let path = path.trim_start().splitn(2, ' ').last().unwrap();
                format!("{kind} {size} {path}")
            })
            .collect();
        let borg_lines: Vec<String> = listing.stdout_str().lines().map(str::to_string).collect();
        assert_eq!(walked, borg_lines, "{name}: walk");

        // cat_file: every regular file (hard-link members too) equals the restored file
        let mut files = 0;
        for line in &borg_lines {
            let Some(path) = line.strip_prefix("- ").and_then(|l| l.split_once(' ')) else {
                continue;
            };
            let path = path.1;
            if path.contains('?') {
                continue; // (a name that is not UTF-8: borg's listing shows it with '?')
            }
            let expected = fs::read(tree.join(path)).unwrap();
            let out = run_example(&env, "cat_file", &[os(&repo), os("latest"), os(path)]);
            out.assert_ok();
            assert!(
                out.stdout == expected,
                "{name}: cat_file {path}: {} bytes, borg restores {}",
                out.stdout.len(),
                expected.len()
            );
            files += 1;
        }
        assert!(files > 5, "{name}: too few files compared");
        if *name == "repokey-blake2-lz4" {
            // the hard-link member whose master is elsewhere (the library's 0-byte read)
            let out = run_example(
                &env,
                "cat_file",
                &[os(&repo), os(&newest), os("tree/hardlink-a")],
            );
            out.assert_ok();
            assert!(!out.stdout.is_empty());
            assert_eq!(out.stdout, fs::read(tree.join("tree/hardlink-a")).unwrap());
        }

        // read_at: slices of the biggest file
        let big = "tree/random.bin";
        if let Ok(expected) = fs::read(tree.join(big)) {
            for (off, len) in [
                (0u64, 10usize),
                (1000, 70_000),
                (expected.len() as u64 - 5, 100),
            ] {
                let out = run_example(
                    &env,
                    "read_at",
                    &[
                        os(&repo),
                        os("latest"),
                        os(big),
                        os(off.to_string()),
                        os(len.to_string()),
                    ],
                );
                out.assert_ok();
                let from = off as usize;
                let to = (from + len).min(expected.len());
                assert!(
                    out.stdout == expected[from..to],
                    "{name}: read_at {off} {len}"
                );
            }
        }
    }
}

#[test]
fn examples_through_the_test_sshd() {
    let Some(borg) = borg("1.4") else { return };
    let Some(r) = remote_support::Remote::new(borg) else {
        return;
    };
    let src = r.env.path().join("src");
    make_source_tree(&src.join("tree"));
    let repo = r.init_repo(remote_support::REPO_RK, "repokey");
    r.create(&repo, "first", &src, &["tree"], &[]);
    let url = r.url(remote_support::REPO_RK);
    let tree = r.env.path().join("borg-tree");
    fs::create_dir_all(&tree).unwrap();
    r.borg_ok(&[os("extract"), repo_archive(&repo, "first")], Some(&tree));
    // borg's variables, as a user of the built-in client would set them
    let run = |name: &str, args: &[OsString]| {
        let mut cmd: Command = r.env.command(example(name));
        cmd.env(
            "OXIBORG_SSH_IDENTITY",
            &r.key(remote_support::Key::Forced).private,
        );
        cmd.env_remove("BORG_RSH");
        cmd.args(args);
        run_command(cmd)
    };
    let out = run("list_archives", &[os(&url)]);
    out.assert_ok();
    assert!(out.stdout_str().starts_with("first "), "{}", out.describe());
    let out = run("cat_file", &[os(&url), os("latest"), os("tree/hello.txt")]);
    out.assert_ok();
    assert_eq!(out.stdout, fs::read(tree.join("tree/hello.txt")).unwrap());
    let out = run("walk", &[os(&url), os("first")]);
    out.assert_ok();
    assert!(out.stdout_str().contains("tree/dir/sub/deeper/file.txt"));
    let dest = r.env.path().join("restored");
    let out = run("restore", &[os(&url), os("first"), os(&dest)]);
    out.assert_ok();
    let diffs = tree_diff(&tree, &dest);
    assert!(diffs.is_empty(), "{diffs:#?}");
}

fn temps_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_name().to_string_lossy().starts_with(".oxiborg-") {
                out.push(p.clone());
            }
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

#[test]
fn restore_equals_borg_and_stops_cleanly_on_ctrl_c() {
    let Some(borg) = borg("1.4") else { return };
    let env = TestEnv::new();
    // a whole fixture: the tree borg restores
    let mut fenv = TestEnv::new();
    let repo = fixture_repo(&mut fenv, "repokey-blake2-lz4");
    let exp = env.path().join("borg");
    borg_extract(&fenv, &borg, &repo, "docs-2024-02-15", &exp);
    let act = env.path().join("restored");
    let out = run_example(
        &fenv,
        "restore",
        &[os(&repo), os("docs-2024-02-15"), os(&act)],
    );
    out.assert_ok();
    let diffs = tree_diff(&exp, &act);
    assert!(diffs.is_empty(), "restore: {diffs:#?}");
    // with PATHs
    let act = env.path().join("restored-part");
    run_example(
        &fenv,
        "restore",
        &[os(&repo), os("latest"), os(&act), os("tree/dir")],
    )
    .assert_ok();
    assert!(act.join("tree/dir/in-dir.txt").is_file());
    assert!(!act.join("tree/hello.txt").exists());

    // Ctrl-C in the middle of a big restore
    let src = env.path().join("src");
    fs::create_dir_all(src.join("big")).unwrap();
    for i in 0..40 {
        fs::write(src.join(format!("big/f{i:02}")), pseudo_random(i, 4 << 20)).unwrap();
    }
    let big = env.path().join("big-repo");
    env.borg_init(&borg, &big, "repokey", &[]);
    env.borg_create(&borg, &big, "a", &src, &["big"], &["-C", "none"]);
    let dest = env.path().join("interrupted");
    let mut cmd = env.command(example("restore"));
    cmd.args([os(&big), os("a"), os(&dest)]);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let start = std::time::Instant::now();
    while temps_below(&dest).is_empty() && child.try_wait().unwrap().is_none() {
        assert!(start.elapsed().as_secs() < 60, "no restore started");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.code().is_some(),
        "killed by the signal instead of stopping: {stderr}"
    );
    assert!(stderr.contains("Interrupted"), "{stderr}");
    assert!(temps_below(&dest).is_empty(), "temporaries left");
    let mut complete = 0;
    for e in fs::read_dir(dest.join("big"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let want = fs::read(src.join("big").join(e.file_name())).unwrap();
        assert!(
            fs::read(e.path()).unwrap() == want,
            "{:?} is not complete",
            e.path()
        );
        complete += 1;
    }
    assert!(complete < 40, "the restore ran to its end (test timing?)");
}

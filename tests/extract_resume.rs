//! `oxiborg extract --continue` after an interrupted restore.
//!
//! A borg-made archive (the full item-kind tree of `extract_support::build_source_tree` plus
//! 400 small files and hard-link groups spread over the archive) is restored once cleanly. Then
//! restores into fresh directories are killed (SIGKILL) after 3, 60 and 300 items, with batches
//! of 8 files so that some files are already in place at the kill; `--continue` must then end
//! with a tree equal to the clean one (content, metadata, hard-link groups), remove the
//! temporaries the killed run left, and keep the files that were complete instead of restoring
//! them again. A file at its final name with another size or mtime is restored again.
//!
//! Signals: a restore that gets SIGINT or SIGTERM in the middle of a big file stops cleanly —
//! exit code 130 / 143, one line saying what was restored and to resume with `--continue`, no
//! temporary file left, every file with its real name complete — and `--continue` then ends
//! with the clean tree. A plain re-run (without `--continue`) after a SIGKILL removes the
//! temporaries the killed run left, and says so.

mod common;
mod extract_support;

use common::*;
use extract_support::*;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

const MANY: usize = 400;

fn setup(env: &TestEnv, borg: &Borg) -> (PathBuf, Features) {
    let src = env.path().join("src");
    let features = build_source_tree(&src);
    let many = src.join("many");
    std::fs::create_dir_all(&many).unwrap();
    for i in 0..MANY {
        let p = many.join(format!("f{i:03}"));
        std::fs::write(&p, pseudo_random(1000 + i as u64, 2000 + (i * 37) % 9000)).unwrap();
        set_mtime(&p, 1_600_000_000 + i as i64);
        if i % 50 == 7 {
            // a hard link far from its group's first member
            std::fs::hard_link(&p, many.join(format!("z-link-{i:03}"))).unwrap();
        }
    }
    let repo = env.path().join("repo");
    env.borg_init(borg, &repo, "repokey-blake2", &[]);
    env.borg_create(borg, &repo, "a", &src, &["."], &["--compression", "lz4"]);
    (repo, features)
}

/// Temporary files below `root` (found without reading any file, so atimes stay as they are).
fn temps_in(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let name = e.file_name();
            let b = name.as_bytes();
            if b.starts_with(b".oxiborg-") && b.ends_with(b".tmp") {
                found.push(e.path().display().to_string());
            }
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    found
}

/// Starts `extract --list` of archive `a` into `dest` in batches of 8 files; returns the
/// process and its stderr, where the listed paths come.
fn listing_extract(
    env: &TestEnv,
    repo: &Path,
    dest: &Path,
) -> (std::process::Child, std::process::ChildStderr) {
    let mut cmd = env.oxiborg_cmd([
        "extract".into(),
        "--list".into(),
        "-C".into(),
        dest.as_os_str().to_owned(),
        repo_archive(repo, "a"),
    ]);
    cmd.env("OXIBORG_BATCH_FILES", "8")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn oxiborg");
    let stderr = child.stderr.take().unwrap();
    (child, stderr)
}

/// Starts an extract with `--list` and kills it after `after` listed items; returns whether
/// it was killed (false: it finished first).
fn killed_extract(env: &TestEnv, repo: &Path, dest: &Path, after: usize) -> bool {
    let (mut child, stderr) = listing_extract(env, repo, dest);
    let mut lines = 0;
    let mut killed = false;
    for line in BufReader::new(stderr).lines() {
        if line.is_err() {
            break;
        }
        lines += 1;
        if lines == after {
            let _ = child.kill();
            killed = true;
            break;
        }
    }
    let _ = child.wait();
    killed
}

fn kept_files(stats: &str) -> Option<u64> {
    let rest = stats.split("Kept: ").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

#[test]
fn continue_after_kill_equals_clean_restore() {
    let Some(borg) = any_borg() else {
        return;
    };
    let env = TestEnv::new();
    let (repo, _features) = setup(&env, &borg);
    let fresh_from = now_ns();
    let clean = env.path().join("clean");
    env.oxiborg([
        "extract".into(),
        "-C".into(),
        clean.clone().into_os_string(),
        repo_archive(&repo, "a"),
    ])
    .assert_ok();
    let clean_snap = Snapshot::take(&clean);
    let files_total = clean_snap
        .nodes
        .values()
        .filter(|n| n.kind == Kind::File)
        .count();
    // The root's own times are those of the run that made it (borg's "." quirk): not compared.
    let opts = CompareOpts {
        root_meta: false,
        fresh_from_ns: fresh_from,
    };
    let mut diffs = Vec::new();
    for after in [3usize, 60, 300] {
        let dest = env.path().join(format!("dest-{after}"));
        let label = format!("killed after {after} items");
        if !killed_extract(&env, &repo, &dest, after) {
            diffs.push(format!(
                "{label}: the extract finished before it was killed"
            ));
            continue;
        }
        // Whatever has its final name is complete (read without touching atimes: the files
        // are kept by --continue and compared afterwards).
        for (rel, c) in &clean_snap.nodes {
            if c.kind != Kind::File {
                continue;
            }
            let p = dest.join(std::ffi::OsStr::from_bytes(rel));
            let Ok(mut f) = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOATIME | libc::O_NOFOLLOW)
                .open(&p)
            else {
                continue;
            };
            let mut got = Vec::new();
            let _ = f.read_to_end(&mut got);
            if c.content.as_deref() != Some(got.as_slice()) {
                diffs.push(format!(
                    "{label}: {} has its final name but not its content",
                    show(rel)
                ));
            }
        }
        let out = env.oxiborg([
            "extract".into(),
            "--continue".into(),
            "--stats".into(),
            "-C".into(),
            dest.clone().into_os_string(),
            repo_archive(&repo, "a"),
        ]);
        if out.code != 0 || out.stderr.contains("panicked") {
            diffs.push(format!("{label}: --continue failed\n{}", out.describe()));
            continue;
        }
        let kept = kept_files(&out.stderr);
        if after == 300 && !kept.is_some_and(|k| k > 0 && (k as usize) < files_total) {
            diffs.push(format!(
                "{label}: expected some (not all) files kept as complete, stats say {kept:?}\n{}",
                out.stderr
            ));
        }
        // (The snapshot first: listing directories moves their atimes.)
        let snap = Snapshot::take(&dest);
        let t = temps_in(&dest);
        if !t.is_empty() {
            diffs.push(format!("{label}: temporary files left: {t:?}"));
        }
        compare(&label, &clean_snap, &snap, &opts, &mut diffs);
        if snap.link_groups() != clean_snap.link_groups() {
            diffs.push(format!("{label}: hard-link groups differ"));
        }
    }
    assert_no_diffs("extract --continue", &diffs);
}

#[test]
fn continue_restores_files_that_differ() {
    let Some(borg) = any_borg() else {
        return;
    };
    let env = TestEnv::new();
    let (repo, _features) = setup(&env, &borg);
    let dest = env.path().join("dest");
    let extract = |extra: &[&str]| {
        let mut a: Vec<std::ffi::OsString> = vec!["extract".into()];
        a.extend(extra.iter().map(Into::into));
        a.extend([
            "-C".into(),
            dest.clone().into_os_string(),
            repo_archive(&repo, "a"),
        ]);
        env.oxiborg(a)
    };
    extract(&[]).assert_ok();
    // The reference is a second clean restore (a snapshot reads the files and so moves atimes).
    let ref_dir = env.path().join("reference");
    env.oxiborg([
        "extract".into(),
        "-C".into(),
        ref_dir.clone().into_os_string(),
        repo_archive(&repo, "a"),
    ])
    .assert_ok();
    let reference = Snapshot::take(&ref_dir);
    // Same size, other mtime; other size, same mtime; missing; a stale temporary file.
    let f1 = dest.join("many/f001");
    let len = std::fs::metadata(&f1).unwrap().len() as usize;
    std::fs::write(&f1, vec![b'x'; len]).unwrap();
    let f2 = dest.join("many/f002");
    std::fs::write(&f2, b"short").unwrap();
    set_mtime(&f2, 1_600_000_002);
    std::fs::remove_file(dest.join("many/f003")).unwrap();
    std::fs::write(dest.join("many/.oxiborg-4242-7.tmp"), b"left over").unwrap();
    let out = extract(&["--continue", "--stats"]);
    out.assert_ok();
    let kept = kept_files(&out.stderr);
    let files = reference
        .nodes
        .values()
        .filter(|n| n.kind == Kind::File)
        .count() as u64;
    let mut diffs = Vec::new();
    // Hard-link members count once per name in the snapshot but are kept once per group.
    if !kept.is_some_and(|k| k + 3 <= files && k + 3 + 20 >= files) {
        diffs.push(format!(
            "expected all but the 3 changed files kept ({files} files), stats:\n{}",
            out.stderr
        ));
    }
    if !out.stderr.contains("1 temporary files removed") {
        diffs.push(format!("stale temporary not reported:\n{}", out.stderr));
    }
    let snap = Snapshot::take(&dest);
    compare(
        "continue over changed files",
        &reference,
        &snap,
        &CompareOpts {
            root_meta: false,
            fresh_from_ns: now_ns() - 600 * 1_000_000_000,
        },
        &mut diffs,
    );
    assert_no_diffs("extract --continue over changed files", &diffs);
}

/// An archive with a big file first (its restore takes a while: random data) and many small
/// files after it; returns the repository and the archive's paths in order. Restored in
/// batches of 8 files, the first batch (the big file and 7 small ones) is written right after
/// the 7th small file is listed: a signal sent then lands while its temporaries exist.
fn setup_big(env: &TestEnv, borg: &Borg) -> (PathBuf, Vec<String>) {
    let src = env.path().join("src-big");
    // (borg archives a directory's entries in inode order, which other tests creating files at
    // the same time can upset: the two top-level paths are named in the order wanted)
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a-big.bin"), pseudo_random(77, 160 << 20)).unwrap();
    std::fs::create_dir_all(src.join("many")).unwrap();
    for i in 0..600 {
        std::fs::write(
            src.join("many").join(format!("f{i:03}")),
            pseudo_random(2000 + i as u64, 3000),
        )
        .unwrap();
    }
    let repo = env.path().join("repo-big");
    env.borg_init(borg, &repo, "repokey-blake2", &[]);
    env.borg_create(
        borg,
        &repo,
        "a",
        &src,
        &["a-big.bin", "many"],
        &["--compression", "lz4"],
    );
    let listed = env.borg_ok(
        borg,
        ["list".into(), "--short".into(), repo_archive(&repo, "a")],
    );
    let order: Vec<String> = listed.stdout_str().lines().map(String::from).collect();
    assert!(
        order.len() == 602 && order[0] == "a-big.bin" && order[1] == "many",
        "unexpected archive order (test setup): {:?}",
        &order[..order.len().min(12)]
    );
    (repo, order)
}

/// Runs `extract --list` and sends `signal` 40 ms after `trigger` is listed (in the middle of
/// the big file's restore, which takes far longer); returns the exit code (`None` if killed by
/// a signal), the signal that ended it, and all of stderr.
fn signalled_extract(
    env: &TestEnv,
    repo: &Path,
    dest: &Path,
    signal: i32,
    trigger: &str,
) -> (Option<i32>, Option<i32>, String) {
    let (mut child, stderr) = listing_extract(env, repo, dest);
    let mut all = String::new();
    let mut sent = false;
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        all.push_str(&line);
        all.push('\n');
        if !sent && line == trigger {
            std::thread::sleep(std::time::Duration::from_millis(40));
            unsafe { libc::kill(child.id() as i32, signal) };
            sent = true;
        }
    }
    let status = child.wait().unwrap();
    assert!(sent, "{trigger} was never listed:\n{all}");
    (status.code(), status.signal(), all)
}

/// Files that have their real name are complete (compared with the clean restore).
fn real_names_complete(label: &str, clean: &Snapshot, dest: &Path, diffs: &mut Vec<String>) {
    for (rel, c) in &clean.nodes {
        if c.kind != Kind::File {
            continue;
        }
        let p = dest.join(std::ffi::OsStr::from_bytes(rel));
        let Ok(got) = std::fs::read(&p) else { continue };
        if c.content.as_deref() != Some(got.as_slice()) {
            diffs.push(format!(
                "{label}: {} has its real name but not its content",
                show(rel)
            ));
        }
    }
}

#[test]
fn sigint_and_sigterm_stop_cleanly_and_continue_completes() {
    let Some(borg) = any_borg() else {
        return;
    };
    let env = TestEnv::new();
    let (repo, order) = setup_big(&env, &borg);
    let clean = env.path().join("clean");
    env.oxiborg([
        "extract".into(),
        "-C".into(),
        clean.clone().into_os_string(),
        repo_archive(&repo, "a"),
    ])
    .assert_ok();
    let clean_snap = Snapshot::take(&clean);
    let opts = CompareOpts {
        root_meta: false,
        fresh_from_ns: now_ns() - 600 * 1_000_000_000,
    };
    let mut diffs = Vec::new();
    for (signal, name, code) in [
        (libc::SIGINT, "SIGINT", 130),
        (libc::SIGTERM, "SIGTERM", 143),
    ] {
        let dest = env.path().join(format!("dest-{name}"));
        let (got, by, stderr) = signalled_extract(&env, &repo, &dest, signal, &order[8]);
        let label = format!("{name} during the big file");
        if got != Some(code) {
            diffs.push(format!(
                "{label}: exit code {got:?} (signal {by:?}), expected {code}\n{stderr}"
            ));
        }
        let last = stderr.lines().last().unwrap_or_default();
        if !(last.starts_with(&format!("Interrupted by {name}: "))
            && last.ends_with(" restored; run the same command with --continue to resume"))
        {
            diffs.push(format!("{label}: the closing line is {last:?}"));
        }
        if stderr.matches("Interrupted").count() != 1 || stderr.contains("panicked") {
            diffs.push(format!("{label}: expected one line about it\n{stderr}"));
        }
        let t = temps_in(&dest);
        if !t.is_empty() {
            diffs.push(format!("{label}: temporary files left: {t:?}"));
        }
        if dest.join(&order[601]).exists() {
            diffs.push(format!(
                "{label}: the restore ran to its end (test timing?)"
            ));
        }
        real_names_complete(&label, &clean_snap, &dest, &mut diffs);
        let out = env.oxiborg([
            "extract".into(),
            "--continue".into(),
            "-C".into(),
            dest.clone().into_os_string(),
            repo_archive(&repo, "a"),
        ]);
        if out.code != 0 {
            diffs.push(format!("{label}: --continue failed\n{}", out.describe()));
            continue;
        }
        let snap = Snapshot::take(&dest);
        compare(&label, &clean_snap, &snap, &opts, &mut diffs);
    }
    assert_no_diffs("interrupted by a signal", &diffs);
}

#[test]
fn plain_rerun_removes_the_temporaries_of_a_killed_run() {
    let Some(borg) = any_borg() else {
        return;
    };
    let env = TestEnv::new();
    let (repo, order) = setup_big(&env, &borg);
    let dest = env.path().join("dest");
    let (_, by, _) = signalled_extract(&env, &repo, &dest, libc::SIGKILL, &order[8]);
    assert_eq!(by, Some(libc::SIGKILL));
    assert!(
        !temps_in(&dest).is_empty(),
        "the killed run left no temporary files (test timing?)"
    );
    // Besides what the killed run left: temporaries of runs that are gone (pid 0 never runs
    // anything), at the top and in a directory below.
    std::fs::create_dir_all(dest.join("many")).unwrap();
    for p in ["many/.oxiborg-0-3.tmp", ".oxiborg-0-9.tmp"] {
        std::fs::write(dest.join(p), b"left over").unwrap();
    }
    let left = temps_in(&dest).len();
    let out = env.oxiborg([
        "extract".into(),
        "-C".into(),
        dest.clone().into_os_string(),
        repo_archive(&repo, "a"),
    ]);
    let mut diffs = Vec::new();
    if out.code != 0 {
        diffs.push(format!("the re-run failed\n{}", out.describe()));
    }
    let said = format!(
        "Removed {left} temporary files that an interrupted oxiborg run left in {}",
        dest.display()
    );
    if !out.stderr.contains(&said) {
        diffs.push(format!("expected {said:?}\n{}", out.stderr));
    }
    let t = temps_in(&dest);
    if !t.is_empty() {
        diffs.push(format!("temporary files left: {t:?}"));
    }
    assert_no_diffs("a plain re-run after a kill", &diffs);
}

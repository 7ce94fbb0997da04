//! The progress display under a pseudo-terminal (util-linux `script` gives the child one), and
//! its absence when stderr is not a terminal. Uses the committed fixture repositories only.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

const REPO: &str = "repokey-blake2-lz4";
const ARCHIVE: &str = "docs-2024-02-15";

fn have_script() -> bool {
    Command::new("script").arg("--version").output().is_ok()
}

/// Runs `sh -c CMD` on a pseudo-terminal (stdin, stdout and stderr); returns what the terminal
/// showed and the exit code.
fn on_pty(env: &TestEnv, cmd: &str) -> (String, i32) {
    let mut c = env.command("script");
    c.args(["-qefc", cmd, "/dev/null"]);
    let out = run_command(c);
    (String::from_utf8_lossy(&out.stdout).into_owned(), out.code)
}

fn q(p: &Path) -> String {
    quote(p.as_os_str())
}

/// The lines a terminal ends up showing: each `\r` or "erase line" restarts the line.
fn final_lines(raw: &str) -> Vec<String> {
    let cleaned = raw.replace("\x1b[2K", "\r");
    cleaned
        .split('\n')
        .map(|l| {
            let l = l.strip_suffix('\r').unwrap_or(l);
            l.rsplit('\r').next().unwrap_or("").to_string()
        })
        .collect()
}

#[test]
fn extract_on_a_terminal_shows_progress_and_keeps_messages_whole() {
    if !have_script() {
        eprintln!("util-linux `script` is missing; test skipped");
        return;
    }
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, REPO);
    let dest = env.path().join("dest");
    let cmd = format!(
        "{} extract --list -C {} {}::{ARCHIVE}",
        quote(oxiborg_bin().as_ref()),
        q(&dest),
        q(&repo)
    );
    let (shown, code) = on_pty(&env, &cmd);
    assert_eq!(code, 0, "extract on a pty failed:\n{shown}");
    for needle in ["Extracting", "ETA", "files"] {
        assert!(
            shown.contains(needle),
            "no progress ({needle:?}) on the terminal:\n{shown:?}"
        );
    }
    // Every --list line is shown whole, on a line of its own.
    let listed = env.oxiborg([
        "list".into(),
        "--short".into(),
        repo_archive(&repo, ARCHIVE),
    ]);
    listed.assert_ok();
    let lines = final_lines(&shown);
    for path in listed.stdout_str().lines() {
        assert!(
            lines.iter().any(|l| l.trim_end() == path),
            "--list line {path:?} is not shown whole:\n{lines:#?}"
        );
    }
    // The bar is gone at the end: the last visible line is not a progress line.
    let last = lines.iter().rev().find(|l| !l.trim().is_empty());
    assert!(
        !last.is_some_and(|l| l.contains("ETA")),
        "the bar was left on the terminal: {last:?}"
    );
    // And the restore itself is complete.
    let plain = env.path().join("plain");
    env.oxiborg([
        "extract".into(),
        "-C".into(),
        plain.clone().into_os_string(),
        repo_archive(&repo, ARCHIVE),
    ])
    .assert_ok();
    for path in listed.stdout_str().lines() {
        let (a, b) = (dest.join(path), plain.join(path));
        if b.is_file() {
            assert_eq!(std::fs::read(&a).ok(), std::fs::read(&b).ok(), "{path}");
        }
    }
}

#[test]
fn stdout_data_and_json_are_never_garbled() {
    if !have_script() {
        eprintln!("util-linux `script` is missing; test skipped");
        return;
    }
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, REPO);
    let bin = quote(oxiborg_bin().as_ref());
    // --stdout: data to a file, progress (if any) on the terminal.
    let data = env.path().join("data.out");
    let cmd = format!(
        "{bin} extract --progress --stdout {}::{ARCHIVE} > {}",
        q(&repo),
        q(&data)
    );
    let (shown, code) = on_pty(&env, &cmd);
    assert_eq!(code, 0, "{shown}");
    let want = env.oxiborg([
        "extract".into(),
        "--stdout".into(),
        repo_archive(&repo, ARCHIVE),
    ]);
    want.assert_ok();
    assert!(!want.stdout.is_empty());
    assert_eq!(
        std::fs::read(&data).unwrap(),
        want.stdout,
        "--stdout data differs when progress is shown"
    );
    // list --json on a terminal is exactly JSON.
    let (shown, code) = on_pty(&env, &format!("{bin} list --json {}", q(&repo)));
    assert_eq!(code, 0, "{shown}");
    let v: serde_json::Value = serde_json::from_str(&shown.replace("\r\n", "\n"))
        .unwrap_or_else(|e| panic!("list --json on a terminal is not JSON ({e}):\n{shown:?}"));
    assert!(v["archives"].as_array().is_some_and(|a| a.len() == 2));
}

#[test]
fn no_progress_when_stderr_is_not_a_terminal() {
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, REPO);
    let dest = env.path().join("dest");
    let out = env.oxiborg([
        "extract".into(),
        "--progress".into(),
        "-C".into(),
        dest.into_os_string(),
        repo_archive(&repo, ARCHIVE),
    ]);
    out.assert_ok();
    assert!(
        out.stderr.is_empty(),
        "progress drawn into a pipe: {:?}",
        out.stderr
    );
}

/// The fixture repository opened through the library.
fn open_fixture(env: &mut TestEnv) -> oxiborg::Repository {
    use oxiborg::Passphrase;
    use oxiborg::{Location, OpenOptions, Repository};
    let repo_dir = fixture_repo(env, REPO);
    let mut o = OpenOptions::from_env();
    o.passphrase = Some(Passphrase::new(PASSPHRASE));
    Repository::open(&Location::parse(repo_dir.to_str().unwrap()).unwrap(), &o)
        .expect("open fixture")
}

/// The totals a progress display starts from equal what the restore then does, for a whole
/// archive and for a selection (hard-link members whose master is not selected included); the
/// live counters end at the same numbers.
#[test]
fn totals_equal_what_the_restore_does() {
    use oxiborg::extract::{ExtractOptions, Extractor};
    use oxiborg::patterns::Matcher;
    use oxiborg::Progress;
    use std::sync::Arc;
    let mut env = TestEnv::new();
    let repo = open_fixture(&mut env);
    let repo_dir = fixture_repo(&mut env, REPO);
    let names: Vec<String> = repo
        .archives()
        .iter()
        .map(|a| String::from_utf8_lossy(&a.name).into_owned())
        .collect();
    let listed = env.oxiborg([
        "list".into(),
        "--short".into(),
        repo_archive(&repo_dir, ARCHIVE),
    ]);
    let first_dir = listed
        .stdout_str()
        .lines()
        .find(|l| l.contains('/'))
        .and_then(|l| l.split('/').next())
        .unwrap_or("tree")
        .to_string();
    for name in &names {
        for selection in [None, Some(first_dir.clone())] {
            let mut matcher = Matcher::new();
            if let Some(s) = &selection {
                matcher.add_paths(std::slice::from_ref(s)).unwrap();
            }
            let counters = Arc::new(Progress::new());
            let dest = env.path().join(format!("t-{name}-{}", selection.is_some()));
            let opts = ExtractOptions {
                destination: dest,
                progress: Some(counters.clone()),
                ..ExtractOptions::default()
            };
            let ex = Extractor::new(&repo, opts);
            let totals = ex.totals(name, &matcher).unwrap();
            let what = format!("{name} {selection:?}");
            assert_eq!(counters.total_items(), Some(totals.files), "{what}");
            assert_eq!(counters.total_bytes(), Some(totals.bytes), "{what}");
            let summary = ex.run(name, matcher, &mut |_| {}).unwrap();
            assert!(totals.files > 0, "{what}: nothing selected");
            assert_eq!(totals.files, summary.files, "{what}: files");
            assert_eq!(totals.bytes, summary.bytes, "{what}: bytes");
            assert_eq!(counters.items(), summary.files, "{what}");
            assert_eq!(counters.bytes(), summary.bytes, "{what}");
        }
    }
}

/// The same counters in export-tar (members and content bytes written) and in the data
/// verification of check (objects verified, their total known).
#[test]
fn export_tar_and_check_count_into_the_same_progress() {
    use oxiborg::export_tar::{export_tar, TarOptions};
    use oxiborg::patterns::Matcher;
    use oxiborg::Progress;
    use std::sync::Arc;
    let mut env = TestEnv::new();
    let repo = open_fixture(&mut env);
    let counters = Arc::new(Progress::new());
    let opts = TarOptions {
        progress: Some(counters.clone()),
        ..TarOptions::default()
    };
    let mut tar = Vec::new();
    let summary = export_tar(&repo, ARCHIVE, Matcher::new(), &opts, &mut tar, &mut |_| {})
        .expect("export-tar");
    assert!(summary.members > 0 && summary.bytes > 0, "{summary:?}");
    assert_eq!(counters.items(), summary.members);
    assert_eq!(counters.bytes(), summary.bytes);
    assert_eq!(counters.total_items(), None, "export-tar knows no totals");

    let counters = Progress::new();
    let objects = repo.store().list_ids().expect("list").len() as u64;
    let problems =
        oxiborg::check::verify_data(&repo, Some(&counters), None, &mut |_, _| {}).expect("verify");
    assert_eq!(problems, 0);
    assert!(objects > 0);
    assert_eq!(counters.total_items(), Some(objects));
    assert_eq!(counters.items(), objects);
    assert!(counters.bytes() > 0);
}

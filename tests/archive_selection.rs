//! Archive selection against real borg: `-P/--prefix`, `-a/--glob-archives` (with borg's
//! placeholders such as `{hostname}`, what borgmatic passes), `--sort-by`, `--first`,
//! `--last`, on a repository with several archives made by borg; and placeholders in the
//! archive part of a location (`::{hostname}-...`). `list` output must be identical.

mod common;

use common::*;
use std::ffi::OsString;
use std::fs;

fn case(env: &TestEnv, borg: &Borg, args: &[&str], diffs: &mut Vec<String>) {
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    let b = env.borg(borg, &args);
    let o = env.oxiborg(&args);
    if b.code != o.code || b.stdout != o.stdout {
        diffs.push(format!(
            "{args:?}: borg exit {} / oxiborg exit {}\n borg:\n{}\n oxiborg:\n{}\n oxiborg stderr: {}",
            b.code,
            o.code,
            String::from_utf8_lossy(&b.stdout),
            String::from_utf8_lossy(&o.stdout),
            o.stderr
        ));
    }
}

fn selection(label: &str) {
    let Some(borg) = borg(label) else { return };
    let env = TestEnv::new();
    // {hostname} as borg expands it (borg 1.2 does not read BORG_HOSTNAME)
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host = host.trim().split('.').next().unwrap().to_string();
    let src = env.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), b"x").unwrap();
    let repo = env.path().join("repo");
    env.borg_init(&borg, &repo, "repokey-blake2", &[]);
    // names in an order that differs from creation order, with glob-special characters
    let names = [
        format!("{host}-2025-01-15T03:00:01"),
        "mokou-2025-01-14T03:00:01".to_string(),
        format!("{host}-2025-01-14T03:00:01"),
        "work[1]-laptop".to_string(),
        "work1-desktop".to_string(),
        format!("{host}-2025-01-16T03:00:01"),
        "mokou-2025-01-16T03:00:01".to_string(),
    ];
    for (i, n) in names.iter().enumerate() {
        env.borg_create(
            &borg,
            &repo,
            n,
            &src,
            &["."],
            &["--timestamp", &format!("2025-01-1{}T12:00:00", i)],
        );
    }
    let r = repo.to_str().unwrap().to_string();
    let mut diffs = Vec::new();
    for args in [
        vec!["list", "--short", &r],
        vec!["list", "--short", "-P", "mokou-", &r],
        vec!["list", "--short", "--prefix", "work[1]", &r],
        vec!["list", "--short", "-a", "mokou-*", &r],
        vec!["list", "--short", "-a", "*-2025-01-1[45]T*", &r],
        vec!["list", "--short", "-a", "{hostname}-*", &r],
        vec!["list", "--short", "-a", "{hostname}-*", "--last", "2", &r],
        vec!["list", "--short", "--sort-by", "name", "--first", "3", &r],
        vec!["list", "--short", "--sort-by", "name,timestamp", &r],
        vec!["list", "--short", "-a", "nothing-matches-*", &r],
        vec!["list", "--last", "1", &r],
    ] {
        case(&env, &borg, &args, &mut diffs);
    }
    // the archive part of a location goes through the placeholders too
    let loc = format!("{r}::{{hostname}}-2025-01-15T03:00:01");
    case(&env, &borg, &["list", "--short", &loc], &mut diffs);
    assert_no_diffs(&format!("archive selection vs {}", borg.version), &diffs);
}

#[test]
fn selection_matches_borg12() {
    selection("1.2");
}

#[test]
fn selection_matches_borg14() {
    selection("1.4");
}

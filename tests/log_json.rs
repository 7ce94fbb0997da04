//! `--log-json` against real borg: the same JSON lines (key order, separators, level, logger
//! name, message, msgid) for `extract --list` and for errors with `--show-rc`; only the `time`
//! values differ.

mod common;

use common::*;

/// stderr lines with the time value blanked.
fn normalized(stderr: &str) -> Vec<String> {
    let time = regex::Regex::new(r#""time": [0-9.e+-]+"#).unwrap();
    stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| time.replace(l, r#""time": T"#).into_owned())
        .collect()
}

#[test]
fn log_json_lines_equal_borgs() {
    let mut diffs = Vec::new();
    for label in ["1.2", "1.4"] {
        let Some(borg) = borg(label) else { continue };
        let env = TestEnv::new();
        let src = env.path().join("src");
        make_source_tree(&src);
        let repo = env.path().join("repo");
        env.borg_init(&borg, &repo, "repokey", &[]);
        env.borg_create(&borg, &repo, "a", &src, &["."], &[]);
        let cases: Vec<(&str, Vec<std::ffi::OsString>)> = vec![
            (
                "missing archive",
                vec![
                    "--log-json".into(),
                    "--show-rc".into(),
                    "extract".into(),
                    repo_archive(&repo, "nope"),
                ],
            ),
            (
                "extract --list",
                vec![
                    "--log-json".into(),
                    "extract".into(),
                    "--list".into(),
                    repo_archive(&repo, "a"),
                ],
            ),
            (
                "missing repository",
                vec![
                    "--log-json".into(),
                    "list".into(),
                    env.path().join("no-such-repo").into_os_string(),
                ],
            ),
        ];
        for (what, args) in cases {
            let (db, dox) = (env.path().join("b"), env.path().join("o"));
            for d in [&db, &dox] {
                let _ = std::fs::remove_dir_all(d);
                std::fs::create_dir_all(d).unwrap();
            }
            let mut cmd = env.borg_cmd(&borg, &args);
            cmd.current_dir(&db);
            let b = run_command(cmd);
            let mut cmd = env.oxiborg_cmd(&args);
            cmd.current_dir(&dox);
            let o = run_command(cmd);
            o.assert_no_panic();
            if b.code != o.code {
                diffs.push(format!(
                    "[borg {label}] {what}: exit code borg {} vs oxiborg {}",
                    b.code, o.code
                ));
            }
            let (bl, ol) = (normalized(&b.stderr), normalized(&o.stderr));
            if bl != ol {
                diffs.push(format!(
                    "[borg {label}] {what}:\n  borg:    {bl:#?}\n  oxiborg: {ol:#?}"
                ));
            }
        }
    }
    assert_no_diffs("--log-json", &diffs);
}

//! borgmatic: configuration files driving oxiborg, and borgmatic itself driving oxiborg.
//!
//! * `oxiborg --borgmatic-config FILE` with a 1.7-layout file (`location:`/`storage:`
//!   sections, `encryption_passcommand`, `borg_keys_directory`) and a 1.8-layout one (flat,
//!   labelled repositories chosen with `--repository`), `--borgmatic` finding
//!   `~/.config/borgmatic/config.yaml`: `list` and `extract` give what borg gives for the same
//!   repository.
//! * `BORG_PASSPHRASE_FD`, the hand-off newer borgmatic versions use.
//! * borgmatic 1.7 (Debian's, `OXIBORG_BORGMATIC` or /usr/bin/borgmatic) with
//!   `local_path: oxiborg`: `borgmatic list`, `list --archive`, `extract --archive latest
//!   --path`, `check` — the same output and tree as with `local_path: borg`. Skipped with a note
//!   without borgmatic, a failure with `OXIBORG_REQUIRE_BORG=1`.

mod common;

use common::*;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn os(s: impl Into<OsString>) -> OsString {
    s.into()
}

/// A repository made by borg with two archives, and the directory they were made from.
fn setup(env: &mut TestEnv, borg: &Borg) -> (PathBuf, PathBuf) {
    let src = env.path().join("data");
    fs::create_dir_all(src.join("home/me/.config/sops/age")).unwrap();
    fs::write(
        src.join("home/me/.config/sops/age/keys.txt"),
        b"AGE-SECRET-KEY-1\n",
    )
    .unwrap();
    fs::write(src.join("home/me/notes.txt"), b"notes\n").unwrap();
    let repo = env.path().join("repo");
    env.borg_init(borg, &repo, "repokey-blake2", &[]);
    env.borg_create(borg, &repo, "host-2025-01-14", &src, &["home"], &[]);
    fs::write(src.join("home/me/notes.txt"), b"newer notes\n").unwrap();
    env.borg_create(borg, &repo, "host-2025-01-15", &src, &["home"], &[]);
    (repo, src)
}

fn same_output(what: &str, borg: &Output, ox: &Output) {
    assert_eq!(
        ox.code,
        borg.code,
        "{what}: exit codes\n{}\n{}",
        borg.describe(),
        ox.describe()
    );
    assert_eq!(
        ox.stdout_str(),
        borg.stdout_str(),
        "{what}: output differs\n{}",
        ox.describe()
    );
}

#[test]
fn borgmatic_configs_drive_list_and_extract() {
    let Some(borg) = any_borg() else { return };
    let mut env = TestEnv::new();
    let (repo, _) = setup(&mut env, &borg);
    // The credentials come from the configuration only.
    env.unset("BORG_PASSPHRASE");
    let pass = env.path().join("pass");
    fs::write(&pass, format!("{PASSPHRASE}\n")).unwrap();
    let old = env.path().join("voile.yaml");
    fs::write(
        &old,
        format!(
            "location:\n    source_directories: [/home]\n    repositories:\n        - {}\nstorage:\n    encryption_passcommand: cat {}\n    borg_keys_directory: {}\n",
            repo.display(),
            pass.display(),
            env.path().join("keys").display()
        ),
    )
    .unwrap();
    let mut borg_env = TestEnv::new();
    borg_env.set("BORG_BASE_DIR", env.path().join("base"));
    let b = borg_env.borg(&borg, [os("list"), os(&repo)]);
    let o = env.oxiborg([os("--borgmatic-config"), os(&old), os("list")]);
    same_output("list with a 1.7 configuration", &b, &o);
    let b = borg_env.borg(&borg, [os("list"), repo_archive(&repo, "host-2025-01-15")]);
    let o = env.oxiborg([
        os("--borgmatic-config"),
        os(&old),
        os("list"),
        os("::host-2025-01-15"),
    ]);
    same_output("list ::ARCHIVE with a 1.7 configuration", &b, &o);
    // extract the runbook's key file into a fresh directory
    let dest = env.path().join("restore");
    let o = env.oxiborg([
        os("--borgmatic-config"),
        os(&old),
        os("extract"),
        os("-C"),
        os(&dest),
        os("::host-2025-01-15"),
        os("home/me/.config/sops/age/keys.txt"),
    ]);
    o.assert_ok();
    assert_eq!(
        fs::read(dest.join("home/me/.config/sops/age/keys.txt")).unwrap(),
        b"AGE-SECRET-KEY-1\n"
    );
    assert!(
        !dest.join("home/me/notes.txt").exists(),
        "only the named file"
    );
    // 1.8+ layout, labels
    let new = env.path().join("new.yaml");
    fs::write(
        &new,
        format!(
            "repositories:\n    - path: /nonexistent/other\n      label: other\n    - path: {}\n      label: local\nencryption_passphrase: \"{PASSPHRASE}\"\n",
            repo.display()
        ),
    )
    .unwrap();
    let o = env.oxiborg([
        os("--borgmatic-config"),
        os(&new),
        os("--repository"),
        os("local"),
        os("list"),
        os("--short"),
    ]);
    o.assert_ok();
    assert_eq!(o.stdout_str(), "host-2025-01-14\nhost-2025-01-15\n");
    let o = env.oxiborg([os("--borgmatic-config"), os(&new), os("list")]);
    assert_eq!(
        o.code,
        2,
        "two repositories and no choice\n{}",
        o.describe()
    );
    assert!(
        o.stderr.contains("--repository") && o.stderr.contains("local"),
        "{}",
        o.describe()
    );
    // discovery in ~/.config/borgmatic
    let home_cfg = env.path().join("base/.config/borgmatic");
    fs::create_dir_all(&home_cfg).unwrap();
    fs::copy(&old, home_cfg.join("config.yaml")).unwrap();
    let o = env.oxiborg([
        os("--borgmatic"),
        os("list"),
        os("--last"),
        os("1"),
        os("--short"),
    ]);
    o.assert_ok();
    assert_eq!(o.stdout_str(), "host-2025-01-15\n");
}

#[test]
fn passphrase_from_an_inherited_descriptor() {
    let Some(borg) = any_borg() else { return };
    let mut env = TestEnv::new();
    let (repo, _) = setup(&mut env, &borg);
    env.unset("BORG_PASSPHRASE");
    let script = format!(
        "exec 3< <(printf %s {PASSPHRASE}); BORG_PASSPHRASE_FD=3 {} list --short {}",
        oxiborg_bin(),
        repo.display()
    );
    let mut cmd = env.command("bash");
    cmd.args(["-c", &script]);
    let o = run_command(cmd);
    o.assert_ok();
    assert_eq!(o.stdout_str(), "host-2025-01-14\nhost-2025-01-15\n");
    // a descriptor that is not open is a clear error
    let mut cmd = env.oxiborg_cmd([os("list"), os(&repo)]);
    cmd.env("BORG_PASSPHRASE_FD", "9");
    let o = run_command(cmd);
    assert_eq!(o.code, 2, "{}", o.describe());
    assert!(o.stderr.contains("BORG_PASSPHRASE_FD"), "{}", o.describe());
}

fn borgmatic_bin() -> Option<PathBuf> {
    let p = std::env::var_os("OXIBORG_BORGMATIC")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/borgmatic"));
    if Command::new(&p)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Some(p);
    }
    if require_borg() {
        panic!(
            "OXIBORG_REQUIRE_BORG=1 but borgmatic not found at {} (apt install borgmatic)",
            p.display()
        );
    }
    eprintln!("note: skipping: no borgmatic at {}", p.display());
    None
}

/// A borgmatic 1.7 configuration for `repo` calling `local_path`.
fn config(dir: &Path, name: &str, repo: &Path, local_path: &Path, base: &Path) -> PathBuf {
    let f = dir.join(format!("{name}.yaml"));
    fs::write(
        &f,
        format!(
            "location:\n    source_directories: [/nonexistent]\n    repositories:\n        - {}\n    local_path: {}\nstorage:\n    encryption_passphrase: \"{PASSPHRASE}\"\n    borg_base_directory: {}\n",
            repo.display(),
            local_path.display(),
            base.display()
        ),
    )
    .unwrap();
    f
}

#[test]
fn borgmatic_runs_oxiborg_as_its_local_path() {
    let Some(bm) = borgmatic_bin() else { return };
    let Some(borg) = borg("1.4").or_else(|| borg("1.2")) else {
        return;
    };
    let mut env = TestEnv::new();
    let (repo, _) = setup(&mut env, &borg);
    env.unset("BORG_PASSPHRASE");
    let cfgs = env.path().join("cfg");
    fs::create_dir_all(&cfgs).unwrap();
    let with_borg = config(
        &cfgs,
        "borg",
        &repo,
        &borg.path,
        &env.path().join("base-borg"),
    );
    let with_ox = config(
        &cfgs,
        "ox",
        &repo,
        Path::new(oxiborg_bin()),
        &env.path().join("base-ox"),
    );
    let run = |cfg: &Path, args: &[&str], cwd: &Path| -> Output {
        let mut cmd = env.command(&bm);
        cmd.args(["--syslog-verbosity", "-1", "--no-color", "-c"])
            .arg(cfg)
            .args(args);
        cmd.current_dir(cwd);
        run_command(cmd)
    };
    let here = env.path().to_path_buf();
    for args in [
        vec!["list"],
        vec!["list", "--archive", "host-2025-01-14"],
        vec!["list", "--archive", "latest"],
        vec!["info", "--archive", "latest"],
    ] {
        let b = run(&with_borg, &args, &here);
        let o = run(&with_ox, &args, &here);
        let strip = |s: String| {
            s.replace(&with_borg.display().to_string(), "CFG")
                .replace(&with_ox.display().to_string(), "CFG")
        };
        assert_eq!(
            o.code,
            b.code,
            "borgmatic {args:?}\n{}\n{}",
            b.describe(),
            o.describe()
        );
        if args[0] == "info" {
            // info: oxiborg computes the statistics without a cache; compare the archive part
            for key in ["Archive name:", "Number of files:", "Hostname:"] {
                let line = |t: &str| t.lines().find(|l| l.starts_with(key)).map(str::to_string);
                assert_eq!(
                    line(&o.stdout_str()),
                    line(&b.stdout_str()),
                    "borgmatic info: {key}\n{}",
                    o.describe()
                );
            }
        } else {
            assert_eq!(
                strip(o.stdout_str()),
                strip(b.stdout_str()),
                "borgmatic {args:?}\n{}",
                o.describe()
            );
        }
    }
    // extract, as the runbook does it: from the newest archive, one path, into the cwd
    let (db, dox) = (env.path().join("ext-borg"), env.path().join("ext-ox"));
    fs::create_dir_all(&db).unwrap();
    fs::create_dir_all(&dox).unwrap();
    let args = ["extract", "--archive", "latest", "--path", "home/me"];
    let b = run(&with_borg, &args, &db);
    let o = run(&with_ox, &args, &dox);
    assert_eq!(
        (o.code, b.code),
        (0, 0),
        "{}\n{}",
        b.describe(),
        o.describe()
    );
    for f in ["home/me/notes.txt", "home/me/.config/sops/age/keys.txt"] {
        assert_eq!(
            fs::read(dox.join(f)).unwrap(),
            fs::read(db.join(f)).unwrap(),
            "{f}"
        );
    }
    assert_eq!(
        fs::read(dox.join("home/me/notes.txt")).unwrap(),
        b"newer notes\n"
    );
    let o = run(&with_ox, &["check"], &here);
    assert_eq!(o.code, 0, "borgmatic check with oxiborg\n{}", o.describe());
}

/// A wrong passphrase from a configuration: the message names the setting and the file it came
/// from (not BORG_PASSPHRASE / BORG_PASSCOMMAND, which it did not come from and which would not
/// override it), with borg's exit code for a wrong passphrase.
#[test]
fn wrong_passphrase_from_a_configuration_names_it() {
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, "repokey-blake2-lz4");
    // the right passphrase in the environment does not count: the configuration wins
    env.set("BORG_PASSPHRASE", PASSPHRASE);
    env.set("BORG_EXIT_CODES", "modern");
    let pass = env.path().join("pass");
    fs::write(&pass, "not-the-passphrase\n").unwrap();
    for (key, value) in [
        ("encryption_passcommand", format!("cat {}", pass.display())),
        (
            "encryption_passphrase",
            "\"not-the-passphrase\"".to_string(),
        ),
    ] {
        let cfg = env.path().join(format!("{key}.yaml"));
        fs::write(
            &cfg,
            format!("repositories:\n    - {}\n{key}: {value}\n", repo.display()),
        )
        .unwrap();
        let o = env.oxiborg([os("--borgmatic-config"), os(&cfg), os("list")]);
        assert_eq!(o.code, 52, "{key}: PassphraseWrong\n{}", o.describe());
        let file = cfg.display().to_string();
        for needle in [key, file.as_str(), "incorrect"] {
            assert!(
                o.stderr.contains(needle),
                "{key}: {needle}\n{}",
                o.describe()
            );
        }
        assert!(
            !o.stderr.contains("supplied in BORG_PASSPHRASE"),
            "{key}: blames the environment\n{}",
            o.describe()
        );
    }
}

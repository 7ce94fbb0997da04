//! The restore runbook with oxiborg in place of borg, and its troubleshooting cases.
//!
//! On a repository made by borg (archives named `<host>-<timestamp>`): list the archives with
//! `BORG_REPO` set and the passphrase from `BORG_PASSCOMMAND="cat …/pass"`, pull the sops age
//! key out of the newest archive (`--latest`, and `::latest`) from a scratch directory, then
//! restore `home` into a fresh root. Then the runbook's troubleshooting: the SSH key readable
//! only by root (run as nobody), a missing passphrase file, and "no archives found" on a new
//! repository — each a clear error that says what to do, exit code 2.

mod common;

use common::*;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn os(s: impl Into<OsString>) -> OsString {
    s.into()
}

const KEYS: &str = "home/tsunami/.config/sops/age/keys.txt";

#[test]
fn the_runbook_with_oxiborg() {
    let Some(borg) = any_borg() else { return };
    let mut env = TestEnv::new();
    let src = env.path().join("src");
    fs::create_dir_all(src.join("home/tsunami/.config/sops/age")).unwrap();
    fs::write(src.join(KEYS), b"# old key\n").unwrap();
    fs::write(src.join("home/tsunami/todo"), b"- restore\n").unwrap();
    let repo = env.path().join("repo");
    env.borg_init(&borg, &repo, "repokey-blake2", &[]);
    env.borg_create(
        &borg,
        &repo,
        "mokou-2025-01-14T03:00:01",
        &src,
        &["home"],
        &[],
    );
    fs::write(src.join(KEYS), b"AGE-SECRET-KEY-NEW\n").unwrap();
    env.borg_create(
        &borg,
        &repo,
        "mokou-2025-01-15T03:00:01",
        &src,
        &["home"],
        &[],
    );
    // /etc/borgmatic/pass
    let pass = env.path().join("pass");
    fs::write(&pass, format!("{PASSPHRASE}\n")).unwrap();
    env.unset("BORG_PASSPHRASE");
    env.set("BORG_PASSCOMMAND", format!("cat {}", pass.display()));
    env.set("BORG_REPO", &repo);
    // borg list
    let o = env.oxiborg(["list", "--short"]);
    o.assert_ok();
    assert_eq!(
        o.stdout_str(),
        "mokou-2025-01-14T03:00:01\nmokou-2025-01-15T03:00:01\n"
    );
    // the key file from the newest archive, from a scratch directory (`cd /tmp`)
    // ("::" is BORG_REPO without an archive)
    for how in [
        vec![os("extract"), os("--latest"), os("::")],
        vec![os("extract"), os("::latest")],
    ] {
        let tmp = env.path().join(format!("tmp-{}", how.len() + how[1].len()));
        fs::create_dir_all(&tmp).unwrap();
        let mut cmd = env.oxiborg_cmd(how.iter().chain([&os(KEYS)]));
        cmd.current_dir(&tmp);
        run_command(cmd).assert_ok();
        assert_eq!(
            fs::read(tmp.join(KEYS)).unwrap(),
            b"AGE-SECRET-KEY-NEW\n",
            "{how:?}"
        );
        assert!(!tmp.join("home/tsunami/todo").exists(), "only the key file");
    }
    // the full home restore (`cd / && borg extract ::NAME home`)
    let root = env.path().join("newroot");
    let o = env.oxiborg([
        os("extract"),
        os("-C"),
        os(&root),
        os("::mokou-2025-01-15T03:00:01"),
        os("home"),
    ]);
    o.assert_ok();
    assert_eq!(
        fs::read(root.join("home/tsunami/todo")).unwrap(),
        b"- restore\n"
    );
    // --dry-run first, as the runbook advises: nothing written
    let dry = env.path().join("dry");
    let o = env.oxiborg([
        os("extract"),
        os("--dry-run"),
        os("-C"),
        os(&dry),
        os("::mokou-2025-01-15T03:00:01"),
        os("home"),
    ]);
    o.assert_ok();
    assert!(!dry.join("home").exists());
}

#[test]
fn missing_passphrase_file_says_what_to_check() {
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, "repokey-blake2-lz4");
    env.unset("BORG_PASSPHRASE");
    env.set("BORG_PASSCOMMAND", "cat /nonexistent/borgmatic/pass");
    let o = env.oxiborg([os("list"), os(&repo)]);
    assert_eq!(o.code, 2, "{}", o.describe());
    assert!(
        o.stderr.contains("/nonexistent/borgmatic/pass") && o.stderr.contains("readable"),
        "{}",
        o.describe()
    );
    // nothing at all: the hint names the ways to give one
    env.unset("BORG_PASSCOMMAND");
    let mut cmd = env.oxiborg_cmd([os("list"), os(&repo)]);
    cmd.stdin(std::process::Stdio::null());
    let o = run_command(cmd);
    assert_eq!(o.code, 2, "{}", o.describe());
    for needle in ["BORG_PASSPHRASE", "BORG_PASSCOMMAND", "--borgmatic-config"] {
        assert!(o.stderr.contains(needle), "{needle}\n{}", o.describe());
    }
}

#[test]
fn no_archives_found_says_why() {
    let Some(borg) = any_borg() else { return };
    let env = TestEnv::new();
    let repo = env.path().join("new-repo");
    env.borg_init(&borg, &repo, "repokey-blake2", &[]);
    let o = env.oxiborg([os("list"), os(&repo)]);
    o.assert_ok();
    assert!(
        o.stdout.is_empty(),
        "a new repository lists nothing, as with borg"
    );
    let o = env.oxiborg([os("extract"), os("--latest"), os(&repo)]);
    assert_eq!(o.code, 2, "{}", o.describe());
    assert!(
        o.stderr.contains("No archives found") && o.stderr.contains("not have backed up yet"),
        "{}",
        o.describe()
    );
}

#[test]
fn an_ssh_key_only_root_can_read_is_explained() {
    if !rustix_is_root() {
        eprintln!("note: skipping: needs root to run oxiborg as nobody");
        return;
    }
    let mut env = TestEnv::new();
    // /etc/borgmatic/key: 0400 root:root
    let key = env.path().join("key");
    fs::write(&key, b"-----BEGIN OPENSSH PRIVATE KEY-----\n").unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o400)).unwrap();
    fs::set_permissions(env.path(), fs::Permissions::from_mode(0o755)).unwrap();
    env.set("BORG_RSH", format!("ssh -i {}", key.display()));
    let base = env.path().join("nobody-base");
    fs::create_dir_all(&base).unwrap();
    std::process::Command::new("chown")
        .arg("65534:65534")
        .arg(&base)
        .status()
        .unwrap();
    let mut cmd = env.command("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(oxiborg_bin())
        .args(["list", "ssh://borgwarehouse@voile.example:22222/./0a1b2c"])
        .env("HOME", &base)
        .env("BORG_BASE_DIR", &base)
        .current_dir(Path::new("/"));
    let o = run_command(cmd);
    assert_eq!(o.code, 2, "{}", o.describe());
    for needle in [
        "cannot be read",
        "permission denied",
        "sudo cp",
        "/tmp/borg-key",
        "BORG_RSH",
    ] {
        assert!(o.stderr.contains(needle), "{needle}\n{}", o.describe());
    }
    assert!(!o.stderr.contains("panicked"), "{}", o.describe());
}

fn rustix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The same key, named by a borgmatic configuration's `ssh_command`: the message names that
/// setting and file, and a fix that works with it (`--rsh`, which overrides `ssh_command`), not
/// `export BORG_RSH=…` (which the configuration would override).
#[test]
fn an_ssh_key_only_root_can_read_is_explained_under_borgmatic() {
    if !rustix_is_root() {
        eprintln!("note: skipping: needs root to run oxiborg as nobody");
        return;
    }
    let mut env = TestEnv::new();
    let key = env.path().join("key");
    fs::write(&key, b"-----BEGIN OPENSSH PRIVATE KEY-----\n").unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o400)).unwrap();
    fs::set_permissions(env.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let config = env.path().join("config.yaml");
    fs::write(
        &config,
        format!(
            "repositories:\n    - path: ssh://borgwarehouse@voile.example:22222/./0a1b2c\nssh_command: ssh -i {}\nencryption_passcommand: cat /etc/borgmatic/pass\n",
            key.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
    env.unset("BORG_RSH");
    let base = env.path().join("nobody-base");
    fs::create_dir_all(&base).unwrap();
    std::process::Command::new("chown")
        .arg("65534:65534")
        .arg(&base)
        .status()
        .unwrap();
    let mut cmd = env.command("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(oxiborg_bin())
        .arg("--borgmatic-config")
        .arg(&config)
        .arg("list")
        .env("HOME", &base)
        .env("BORG_BASE_DIR", &base)
        .current_dir(Path::new("/"));
    let o = run_command(cmd);
    assert_eq!(o.code, 2, "{}", o.describe());
    let config_text = config.display().to_string();
    for needle in [
        "cannot be read",
        "ssh_command",
        config_text.as_str(),
        "sudo cp",
        "--rsh \"ssh -i /tmp/borg-key\"",
    ] {
        assert!(o.stderr.contains(needle), "{needle}\n{}", o.describe());
    }
    for wrong in ["export BORG_RSH", "of BORG_RSH"] {
        assert!(!o.stderr.contains(wrong), "{wrong}\n{}", o.describe());
    }
}

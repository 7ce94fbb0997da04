//! `borg extract` and `oxiborg extract` run as an unprivileged user (nobody, uid/gid 65534,
//! through `setpriv --reuid --regid --clear-groups`) on an archive made by root, into
//! destinations owned by that user: the results must be the same.
//!
//! The archive (made with `borg create` as root) holds extract_support's full source tree
//! (foreign owners, setuid/setgid files, device nodes, fifos, a mode-0000 file, a 0555
//! directory with a file, user xattrs, POSIX access and default ACLs, hard links, symlinks,
//! odd names) plus `extra/`: `trusted.*` and `user.*` xattrs side by side, a `user.*` xattr on
//! a mode-0000 file and on a 0555 directory (the owner may not write either once the mode is
//! set), a root-owned setuid file with an ACL, a device node with an xattr.
//!
//! borg degrades gracefully as non-root: chown is ignored, mknod fails with a warning,
//! `trusted.*` xattrs can't be set (warning), so it exits 1. Compared per borg version
//! (1.4 and 1.2, each when available): the exit codes, the trees
//! ([`extract_support::compare`]: type, mode, owner, times, xattrs, content, hard links, ACLs)
//! and the kinds of warnings on stderr (for xattr warnings: name and errno class; for the
//! others: the path they name).
//!
//! The repository is handed to nobody (`chown -R`: borg takes a lock in it, oxiborg only
//! reads), as is a `BORG_BASE_DIR` of its own. Needs root to switch users; without root the
//! test runs both programs as the current (already unprivileged) user.

mod common;
mod extract_support;

use common::*;
use extract_support::*;
use std::collections::BTreeMap;
use std::ffi::{CString, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const NOBODY: u32 = 65534;

fn lchown_r(p: &Path, uid: u32, gid: u32) {
    lchown(p, uid, gid);
    if fs::symlink_metadata(p).map(|m| m.is_dir()).unwrap_or(false) {
        for e in fs::read_dir(p).unwrap().flatten() {
            lchown_r(&e.path(), uid, gid);
        }
    }
}

fn setfacl(args: &[&str], path: &Path) -> bool {
    Command::new("setfacl")
        .args(args)
        .arg(path)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

const T: i128 = 1_700_000_000_000_000_000;

/// `extra/` (as root): trusted + user xattrs, user xattrs on a 0000 file and a 0555 dir, a
/// root-owned setuid file with an ACL, a char device with a user xattr.
fn build_extra(root: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    let j = |p: &str| root.join(p);
    fs::create_dir_all(j("ro-dir")).unwrap();
    fs::write(j("both-xattrs.txt"), b"trusted and user\n").unwrap();
    if !(setxattr(
        &j("both-xattrs.txt"),
        "trusted.secret",
        b"only root may set this",
    ) && setxattr(&j("both-xattrs.txt"), "user.plain", b"anyone may set this"))
    {
        missing.push("trusted.*/user.* xattrs".to_string());
    }
    fs::write(j("mode0000-xattr.txt"), b"no permissions, with xattr\n").unwrap();
    if !setxattr(&j("mode0000-xattr.txt"), "user.note", b"set after chmod?") {
        missing.push("user.* xattr on the 0000 file".into());
    }
    chmod(&j("mode0000-xattr.txt"), 0o000);
    fs::write(j("ro-dir/inside.txt"), b"inside a 0555 dir\n").unwrap();
    if !setxattr(&j("ro-dir"), "user.dir-note", b"on a 0555 dir") {
        missing.push("user.* xattr on the 0555 dir".into());
    }
    fs::write(j("suid-root-acl"), b"#!/bin/sh\n").unwrap();
    chmod(&j("suid-root-acl"), 0o4750);
    if !setfacl(
        &["-m", "u:nobody:r-x,u:12345:r--,g:daemon:r--"],
        &j("suid-root-acl"),
    ) {
        missing.push("ACL on the setuid file".into());
    }
    // setfacl may recompute the group bits; keep setuid
    chmod(&j("suid-root-acl"), 0o4750);
    let dev = CString::new(j("tty-copy").as_os_str().as_bytes()).unwrap();
    if unsafe { libc::mknod(dev.as_ptr(), libc::S_IFCHR | 0o620, libc::makedev(5, 0)) } == 0 {
        // Linux refuses user.* xattrs on devices: the node simply has none
        let _ = setxattr(&j("tty-copy"), "user.on-dev", b"x");
        lchown(&j("tty-copy"), 0, 5);
    } else {
        missing.push("the char device".into());
    }
    for p in [
        "both-xattrs.txt",
        "mode0000-xattr.txt",
        "ro-dir/inside.txt",
        "suid-root-acl",
        "tty-copy",
    ] {
        if fs::symlink_metadata(j(p)).is_ok() {
            set_mtime_ns(&j(p), T + 17);
        }
    }
    chmod(&j("ro-dir"), 0o555);
    set_mtime_ns(&j("ro-dir"), T + 5);
    set_mtime_ns(root, T + 9);
    missing
}

/// `Command` that runs `program` as nobody (when we are root).
fn as_nobody(env: &TestEnv, nobody_base: &Path, program: &Path, args: &[OsString]) -> Command {
    let mut cmd = if is_root() {
        let mut c = env.command("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
        c.arg(program);
        c
    } else {
        env.command(program)
    };
    cmd.args(args);
    cmd.env("BORG_BASE_DIR", nobody_base);
    cmd.env("HOME", nobody_base);
    cmd
}

/// Warning kinds: xattr warnings as "xattr NAME: CLASS", others as "PATH: (other)" (the text
/// before the first ": "), sorted.
fn warning_kinds(stderr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        // oxiborg's closing line ("4 of 79 files not restored: …") sums the others up; borg
        // has none.
        if line.contains(" files not restored: ") {
            continue;
        }
        let low = line.to_lowercase();
        let class = if low.contains("not supported") {
            "ENOTSUP"
        } else if low.contains("not permitted") {
            "EPERM"
        } else if low.contains("permission denied") {
            "EACCES"
        } else if low.contains("too big") {
            "E2BIG"
        } else {
            "other"
        };
        const NEEDLE: &str = "when setting extended attribute ";
        if let Some(i) = line.find(NEEDLE) {
            let rest = &line[i + NEEDLE.len()..];
            let name = rest.split(": ").next().unwrap_or(rest);
            out.push(format!("xattr {name}: {class}"));
        } else {
            let path = line.split(": ").next().unwrap_or(line);
            out.push(format!("{path}: {class}"));
        }
    }
    out.sort();
    out
}

struct Setup {
    env: TestEnv,
    repo: PathBuf,
    nobody_base: PathBuf,
    features: Features,
}

fn setup(borg: &Borg) -> Setup {
    let env = TestEnv::new();
    // nobody must reach everything below the temp dir
    chmod(env.path(), 0o755);
    let src = env.path().join("src-parent");
    fs::create_dir_all(&src).unwrap();
    let features = build_source_tree(&src.join("src"));
    let missing = build_extra(&src.join("extra"));
    if !missing.is_empty() {
        eprintln!("note: extra/ lacks: {missing:?}");
    }
    if is_root() {
        assert!(
            missing.is_empty(),
            "test setup (as root): extra/ lacks {missing:?}"
        );
    }
    let repo = env.path().join("repo");
    env.borg_init(borg, &repo, "repokey-blake2", &[]);
    env.borg_create(borg, &repo, "a", &src, &["src", "extra"], &[]);
    let nobody_base = env.path().join("nobody-base");
    fs::create_dir_all(&nobody_base).unwrap();
    if is_root() {
        lchown_r(&repo, NOBODY, NOBODY);
        lchown_r(&nobody_base, NOBODY, NOBODY);
    }
    Setup {
        env,
        repo,
        nobody_base,
        features,
    }
}

fn fresh_dest(p: &Path) {
    remove_tree(p);
    fs::create_dir_all(p).unwrap();
    chmod(p, 0o755);
    if is_root() {
        lchown(p, NOBODY, NOBODY);
    }
}

fn run_case(s: &Setup, borg: &Borg, name: &str, opts: &[&str], n: usize, diffs: &mut Vec<String>) {
    let label = format!("[{} as nobody] {name}", borg.version);
    let base = s.env.path().join("out").join(format!("{n:02}"));
    let (a, b) = (base.join("borg"), base.join("oxi"));
    fs::create_dir_all(&base).unwrap();
    chmod(&base, 0o755);
    fresh_dest(&a);
    fresh_dest(&b);
    let mut args: Vec<OsString> = vec!["extract".into()];
    args.extend(opts.iter().map(OsString::from));
    args.push(repo_archive(&s.repo, "a"));
    let from = now_ns() - 1_000_000_000;
    let mut cmd = as_nobody(&s.env, &s.nobody_base, &borg.path, &args);
    cmd.current_dir(&a);
    let bo = run_command(cmd);
    let mut cmd = as_nobody(&s.env, &s.nobody_base, Path::new(oxiborg_bin()), &args);
    cmd.current_dir(&b);
    let oo = run_command(cmd);
    log_exits(&label, &bo, &oo);
    if bo.code != 0 && bo.code != 1 {
        diffs.push(format!(
            "{label}: borg itself failed (test setup?)\n{}",
            bo.describe()
        ));
        remove_tree(&base);
        return;
    }
    if oo.stderr.contains("panicked") || oo.code < 0 {
        diffs.push(format!("{label}: oxiborg panicked\n{}", oo.describe()));
    }
    if bo.code != oo.code {
        diffs.push(format!(
            "{label}: exit code: borg {}, oxiborg {} (command: {})",
            bo.code, oo.code, oo.cmdline
        ));
    }
    let (bk, ok) = (warning_kinds(&bo.stderr), warning_kinds(&oo.stderr));
    if bk != ok {
        let only_b: Vec<&String> = bk.iter().filter(|k| !ok.contains(k)).collect();
        let only_o: Vec<&String> = ok.iter().filter(|k| !bk.contains(k)).collect();
        diffs.push(format!(
            "{label}: warnings differ ({} from borg, {} from oxiborg); only borg: {only_b:?}; \
             only oxiborg: {only_o:?}",
            bk.len(),
            ok.len()
        ));
    }
    let sa = Snapshot::take(&a);
    let sb = Snapshot::take(&b);
    compare(
        &label,
        &sa,
        &sb,
        &CompareOpts {
            root_meta: false,
            fresh_from_ns: from,
        },
        diffs,
    );
    if n == 1 {
        check_setup(&sa, &s.features, &label, diffs);
    }
    remove_tree(&base);
}

/// borg's (unprivileged) tree must show what the test is about.
fn check_setup(sa: &Snapshot, f: &Features, label: &str, diffs: &mut Vec<String>) {
    let node = |p: &str| sa.nodes.get(p.as_bytes());
    let mut need = |cond: bool, what: &str| {
        if !cond {
            diffs.push(format!("test setup: {label}: borg's tree lacks {what}"));
        }
    };
    if is_root() {
        need(
            node("src/owners/numeric").is_some_and(|n| n.uid == NOBODY),
            "src/owners/numeric owned by nobody (chown ignored)",
        );
    }
    need(
        node("src/files/suid").is_some_and(|n| n.mode & 0o7777 == 0o4755),
        "the setuid bit on src/files/suid",
    );
    need(
        node("src/files/mode000").is_some_and(|n| n.mode & 0o7777 == 0),
        "mode 0000 on src/files/mode000",
    );
    need(
        node("src/dirs/ro0555").is_some_and(|n| n.mode & 0o7777 == 0o555),
        "mode 0555 on src/dirs/ro0555",
    );
    need(
        node("src/special/fifo").is_some_and(|n| n.kind == Kind::Fifo),
        "the fifo",
    );
    need(
        node("extra/both-xattrs.txt").is_some_and(|n| {
            n.xattrs
                .as_ref()
                .is_ok_and(|x| x.contains_key(&b"user.plain"[..]))
        }),
        "user.plain on extra/both-xattrs.txt",
    );
    if f.acls {
        need(
            sa.acls
                .as_ref()
                .and_then(|a| a.get(&b"./src/acls/file-acl"[..]))
                .is_some_and(|t| t.windows(5).any(|w| w == b"user:")),
            "the ACL of src/acls/file-acl",
        );
    }
}

fn nonroot(label: &str) {
    let t0 = Instant::now();
    let Some(borg) = borg(label) else { return };
    if !is_root() {
        eprintln!("note: not root: both programs run as the current user (no user switch)");
    }
    let s = setup(&borg);
    let mut diffs = Vec::new();
    let cases: &[(&str, &[&str])] = &[
        ("extract", &[]),
        ("extract --numeric-ids", &["--numeric-ids"]),
        ("extract --noacls --noxattrs", &["--noacls", "--noxattrs"]),
    ];
    for (i, (name, opts)) in cases.iter().enumerate() {
        run_case(&s, &borg, name, opts, i + 1, &mut diffs);
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for d in &diffs {
        *counts
            .entry(if d.contains("test setup") {
                "setup"
            } else {
                "diff"
            })
            .or_default() += 1;
    }
    eprintln!(
        "{}: {counts:?} in {:.1} s",
        borg.version,
        t0.elapsed().as_secs_f64()
    );
    assert_no_diffs(
        &format!("{} and oxiborg extracting as nobody", borg.version),
        &diffs,
    );
}

#[test]
fn borg14_nonroot_extract_matches() {
    nonroot("1.4");
}

#[test]
fn borg12_nonroot_extract_matches() {
    nonroot("1.2");
}

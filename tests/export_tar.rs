//! `oxiborg export-tar` against `borg export-tar` (1.2 and 1.4), member by member.
//!
//! The source tree of the extract tests (every item kind: hard-link groups, symlinks, fifos,
//! devices, foreign owners, modes incl. setuid/sticky, long and non-UTF-8 names, times before
//! 1970 and after 2038) is archived by borg; both tools export it — whole, partially (with a
//! hard-link master left out), with `--strip-components`, with exclude patterns, through a
//! gzip filter chosen by the file suffix, and to stdout — and Python's `tarfile` (an
//! independent reader) lists every member of both: name, type, mode, uid, gid, user and group
//! name, mtime (to the second: borg's GNU tarball has no fractions, oxiborg's PAX one does, and
//! is checked to be at least as precise), size, link target, device numbers and a SHA-256 of
//! the content. borg writes GNU format, oxiborg POSIX PAX; the members must be the same.

mod common;
mod extract_support;

use common::*;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const LISTER: &str = r#"
import hashlib, json, sys, tarfile
out = []
with tarfile.open(sys.argv[1], errors="surrogateescape") as t:
    for m in t:
        h = hashlib.sha256(t.extractfile(m).read()).hexdigest() if m.isfile() else None
        out.append({
            "name": m.name.encode("utf-8", "surrogateescape").hex(),
            "shown": m.name.encode("utf-8", "replace").decode(),
            "type": m.type.decode(), "mode": m.mode, "uid": m.uid, "gid": m.gid,
            "uname": m.uname, "gname": m.gname, "mtime": m.mtime, "size": m.size,
            "link": m.linkname.encode("utf-8", "surrogateescape").hex(),
            "dev": [m.devmajor, m.devminor] if m.ischr() or m.isblk() else None,
            "sha256": h,
        })
print(json.dumps(out))
"#;

/// Every member of a tar file as Python's tarfile reads it.
fn members(python: &Path, tar: &Path) -> Vec<serde_json::Value> {
    let out = Command::new(python)
        .args(["-c", LISTER])
        .arg(tar)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tarfile cannot read {}: {}",
        tar.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Compares borg's and oxiborg's members: identical but for mtime, where oxiborg's must agree
/// to the second (borg's is truncated) and keep its fraction.
fn compare(
    what: &str,
    borg: &[serde_json::Value],
    ox: &[serde_json::Value],
    diffs: &mut Vec<String>,
) {
    if borg.len() != ox.len() {
        diffs.push(format!(
            "{what}: borg wrote {} members, oxiborg {}",
            borg.len(),
            ox.len()
        ));
    }
    for (b, o) in borg.iter().zip(ox) {
        let mut b2 = b.clone();
        let mut o2 = o.clone();
        let (bt, ot) = (b["mtime"].as_f64().unwrap(), o["mtime"].as_f64().unwrap());
        if bt != ot.floor() {
            diffs.push(format!(
                "{what}: {}: mtime borg {bt}, oxiborg {ot}",
                b["shown"]
            ));
        }
        b2["mtime"] = serde_json::Value::Null;
        o2["mtime"] = serde_json::Value::Null;
        if b2 != o2 {
            diffs.push(format!("{what}:\n  borg    {b2}\n  oxiborg {o2}"));
        }
    }
}

/// Splits case arguments into options (with their values) and paths.
fn split_opts<'a>(args: &[&'a str]) -> (Vec<&'a str>, Vec<&'a str>) {
    let (mut opts, mut paths) = (Vec::new(), Vec::new());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a.starts_with('-') {
            opts.push(*a);
            opts.extend(it.next());
        } else {
            paths.push(*a);
        }
    }
    (opts, paths)
}

struct Case {
    name: &'static str,
    file: &'static str,
    args: Vec<&'static str>,
}

fn export_tar(label: &str) {
    let Some((borg, python)) = extract_support::borg_with_python() else {
        return;
    };
    let Some(borg) = common::borg(label)
        .or(Some(borg))
        .filter(|b| b.label == label)
    else {
        return;
    };
    let env = TestEnv::new();
    let parent = env.path().join("srcparent");
    fs::create_dir_all(&parent).unwrap();
    extract_support::build_source_tree(&parent.join("src"));
    let repo = env.path().join("repo");
    env.borg_init(&borg, &repo, "repokey-blake2", &[]);
    env.borg_create(
        &borg,
        &repo,
        "a",
        &parent,
        &["src"],
        &["--compression", "lz4"],
    );
    let loc = repo_archive(&repo, "a");
    let out = env.path().join("out");
    fs::create_dir_all(&out).unwrap();
    let cases = vec![
        Case {
            name: "everything",
            file: "all.tar",
            args: vec![],
        },
        // a hard-link group whose first member (the master) is not selected
        Case {
            name: "partial",
            file: "part.tar",
            args: vec!["src/hl/sub", "src/files"],
        },
        Case {
            name: "strip",
            file: "strip.tar",
            args: vec!["--strip-components", "2", "src/dirs", "src/hl"],
        },
        Case {
            name: "exclude",
            file: "excl.tar",
            args: vec!["-e", "src/names", "--exclude", "*.bin"],
        },
        Case {
            name: "gzip by suffix",
            file: "all.tar.gz",
            args: vec![],
        },
    ];
    let mut diffs = Vec::new();
    for c in &cases {
        let (bt, ot) = (
            out.join(format!("borg-{}", c.file)),
            out.join(format!("ox-{}", c.file)),
        );
        // options first, then ARCHIVE FILE PATH... (borg's argparse wants that order)
        let mk = |tar: &Path| -> Vec<OsString> {
            let (opts, paths): (Vec<&str>, Vec<&str>) = split_opts(&c.args);
            let mut a: Vec<OsString> = vec!["export-tar".into()];
            a.extend(opts.iter().map(OsString::from));
            a.extend([loc.clone(), tar.into()]);
            a.extend(paths.iter().map(OsString::from));
            a
        };
        let b = env.borg(&borg, mk(&bt));
        let o = env.oxiborg(mk(&ot));
        assert!(!o.stderr.contains("panicked"), "{}", o.describe());
        if b.code != o.code {
            diffs.push(format!(
                "{}: borg exit {}, oxiborg exit {}\n{}",
                c.name,
                b.code,
                o.code,
                o.describe()
            ));
            continue;
        }
        let (bm, om) = (members(&python, &bt), members(&python, &ot));
        assert!(!bm.is_empty(), "{}: borg exported nothing", c.name);
        compare(c.name, &bm, &om, &mut diffs);
        if c.file.ends_with(".gz") {
            let magic = fs::read(&ot).unwrap();
            assert_eq!(&magic[..2], b"\x1f\x8b", "{}: not gzip", c.name);
        }
        // the fractional mtimes survive in oxiborg's tarball
        if c.name == "everything" {
            let frac = om
                .iter()
                .filter(|m| m["mtime"].as_f64().unwrap().fract() != 0.0)
                .count();
            assert!(frac > 0, "no member kept its nanoseconds");
        }
    }
    // to stdout
    let stdout_tar: PathBuf = out.join("stdout.tar");
    let o = env.oxiborg([
        OsString::from("export-tar"),
        loc.clone(),
        "-".into(),
        "src/files".into(),
    ]);
    assert_eq!(o.code, 0, "{}", o.describe());
    fs::write(&stdout_tar, &o.stdout).unwrap();
    let b = env.borg(
        &borg,
        [
            OsString::from("export-tar"),
            loc.clone(),
            out.join("borg-stdout.tar").into(),
            "src/files".into(),
        ],
    );
    assert_eq!(b.code, 0, "{}", b.describe());
    compare(
        "stdout",
        &members(&python, &out.join("borg-stdout.tar")),
        &members(&python, &stdout_tar),
        &mut diffs,
    );
    assert_no_diffs(&format!("export-tar vs {}", borg.version), &diffs);
}

#[test]
fn export_tar_matches_borg12() {
    export_tar("1.2");
}

#[test]
fn export_tar_matches_borg14() {
    export_tar("1.4");
}

#[test]
fn a_damaged_chunk_ends_the_stream_without_its_end_blocks() {
    let mut env = TestEnv::new();
    env.set("BORG_PASSPHRASE", PASSPHRASE);
    let repo = fixture_repo(&mut env, "repokey-blake2-lz4");
    let (archive, _) = expected_archives("repokey-blake2-lz4")[0].clone();
    let big = largest_segment(&repo);
    let mut bytes = fs::read(&big).unwrap();
    let entries = parse_segment(&bytes);
    let e = entries
        .iter()
        .filter(|e| e.tag == TAG_PUT)
        .max_by_key(|e| e.size)
        .unwrap()
        .clone();
    bytes[e.offset + 41 + (e.size - 41) / 2] ^= 1;
    fix_entry_crc(&mut bytes, &e);
    fs::write(&big, &bytes).unwrap();
    let tar = env.path().join("x.tar");
    let o = env.oxiborg([
        OsString::from("export-tar"),
        repo_archive(&repo, &archive),
        tar.clone().into(),
    ]);
    assert_eq!(o.code, 2, "{}", o.describe());
    assert!(
        o.stderr.contains("MAC") && o.stderr.contains(&archive),
        "{}",
        o.describe()
    );
    assert!(!o.stderr.contains("panicked"), "{}", o.describe());
    let data = fs::read(&tar).unwrap();
    assert!(
        data.len() < 1024 || data[data.len() - 1024..].iter().any(|b| *b != 0),
        "the stream must not end like a complete tar"
    );
}

/// A hard-link group whose master has too few components for `--strip-components`: borg counts
/// a stripped-away item as not matched, so the first remaining member gets the content — in
/// export-tar (a regular member, not a link to nothing) and in extract.
#[test]
fn a_master_stripped_away_gives_its_content_to_its_member() {
    let Some((borg, python)) = extract_support::borg_with_python() else {
        return;
    };
    let env = TestEnv::new();
    let src = env.path().join("src");
    // `t/a` first (the smaller inode: borg visits it first, so it is the master), then `t/d/b`
    fs::create_dir_all(src.join("t")).unwrap();
    fs::write(src.join("t/a"), b"content\n").unwrap();
    fs::create_dir_all(src.join("t/d")).unwrap();
    fs::hard_link(src.join("t/a"), src.join("t/d/b")).unwrap();
    let repo = env.path().join("repo");
    env.borg_init(&borg, &repo, "none", &[]);
    env.borg_create(&borg, &repo, "a", &src, &["t"], &[]);
    let loc = repo_archive(&repo, "a");
    let strip = || [OsString::from("--strip-components"), "2".into()];
    let (bt, ot) = (env.path().join("borg.tar"), env.path().join("ox.tar"));
    let tar_args = |t: &Path| {
        let mut a: Vec<OsString> = vec!["export-tar".into()];
        a.extend(strip());
        a.extend([loc.clone(), t.into()]);
        a
    };
    let b = env.borg(&borg, tar_args(&bt));
    assert_eq!(b.code, 0, "{}", b.describe());
    let o = env.oxiborg(tar_args(&ot));
    assert_eq!(o.code, 0, "{}", o.describe());
    let mut diffs = Vec::new();
    compare(
        "master stripped away",
        &members(&python, &bt),
        &members(&python, &ot),
        &mut diffs,
    );
    assert_no_diffs("export-tar, master stripped away", &diffs);
    let (bd, od) = (env.path().join("borg-x"), env.path().join("ox-x"));
    for (dir, tool_is_borg) in [(&bd, true), (&od, false)] {
        fs::create_dir_all(dir).unwrap();
        let mut a: Vec<OsString> = vec!["extract".into()];
        a.extend(strip());
        a.push(loc.clone());
        let mut cmd = if tool_is_borg {
            env.borg_cmd(&borg, a)
        } else {
            env.oxiborg_cmd(a)
        };
        cmd.current_dir(dir);
        let out = run_command(cmd);
        assert_eq!(out.code, 0, "{}", out.describe());
    }
    assert_eq!(fs::read(bd.join("b")).unwrap(), b"content\n");
    assert_eq!(
        fs::read(od.join("b")).unwrap(),
        b"content\n",
        "oxiborg extract"
    );
}

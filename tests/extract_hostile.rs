//! `oxiborg extract` on hostile archives: items that try to write outside the destination.
//!
//! The archives are crafted with borg's own Python API (`tests/extract_support/make_archive.py`,
//! run with the Python of the borg 1.4 venv next to `OXIBORG_BORG14`, else with
//! `/usr/bin/python3` if it can `import borg`, with borg 1.2): a normal repository is made with `borg init`, then a
//! new archive whose items we write ourselves is added to it. Items: `../escape.txt`,
//! `a/../../escape2.txt`, `../../escape3.txt`, an absolute path into a sentinel directory,
//! a symlink to the sentinel directory followed by a file / dir / symlink / fifo below it,
//! `up -> ..` followed by `up/x`, hard-link members whose source is `../…`, absolute, or below
//! the symlink, a symlink replaced by a regular file of the same name, a symlink replaced by a
//! directory with a file in it, an item with a NUL in its name, and items with empty and `.`
//! paths — with good files before, between and after them.
//!
//! Asserted: no panic; exit code 1 or 2; nothing outside the destination is created, removed
//! or modified (the sentinel directory next to the destination and the test directory are
//! snapshotted before and after); every good file is restored with the right content (the
//! good hard link is a hard link); stderr names each refused item; the destination holds no
//! temporary files. The same archive is also extracted with a `p/` prefix and
//! `--strip-components 1` (via `-C`), and with `--dry-run`.
//!
//! Skipped with a note (failed under `OXIBORG_REQUIRE_BORG=1`) when borg or a Python that can
//! `import borg` is missing.

mod common;
mod extract_support;

use common::*;
use extract_support::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Clone)]
enum Kind {
    File(&'static [u8]),
    Dir,
    Symlink(Vec<u8>),
    Hardlink(Vec<u8>),
    Fifo,
}

#[derive(Clone)]
struct Spec {
    path: Vec<u8>,
    kind: Kind,
    master: bool,
    /// must be refused (and named on stderr)
    hostile: bool,
}

fn item(path: impl AsRef<[u8]>, kind: Kind) -> Spec {
    Spec {
        path: path.as_ref().to_vec(),
        kind,
        master: false,
        hostile: false,
    }
}

fn bad(path: impl AsRef<[u8]>, kind: Kind) -> Spec {
    Spec {
        hostile: true,
        ..item(path, kind)
    }
}

const GOOD: &[(&str, &[u8])] = &[
    ("good1.txt", b"good one\n"),
    ("gooddir/good2.txt", b"good two\n"),
    ("good3.txt", b"good three\n"),
    ("gooddir/good4.txt", b"good four\n"),
];

/// The hostile archive's items; `sentinel` is the absolute path of the sentinel directory
/// (a sibling of the destination).
fn hostile_items(sentinel: &Path) -> Vec<Spec> {
    let s = sentinel.as_os_str().as_bytes().to_vec();
    let sj = |name: &str| {
        let mut v = s.clone();
        v.push(b'/');
        v.extend_from_slice(name.as_bytes());
        v
    };
    let sentinel_name = sentinel.file_name().unwrap().as_bytes().to_vec();
    let mut rel_secret = b"../".to_vec();
    rel_secret.extend_from_slice(&sentinel_name);
    rel_secret.extend_from_slice(b"/secret.txt");
    vec![
        Spec {
            master: true,
            ..item("good1.txt", Kind::File(b"good one\n"))
        },
        item("gooddir", Kind::Dir),
        item("gooddir/good2.txt", Kind::File(b"good two\n")),
        bad("../escape.txt", Kind::File(b"escaped 1\n")),
        bad("a/../../escape2.txt", Kind::File(b"escaped 2\n")),
        bad("../../escape3.txt", Kind::File(b"escaped 3\n")),
        bad("gooddir/../../escape4.txt", Kind::File(b"escaped 4\n")),
        // absolute: refused, or restored *inside* the destination (leading / stripped)
        item(sj("abs.txt"), Kind::File(b"absolute\n")),
        item("link", Kind::Symlink(s.clone())),
        bad("link/pwned.txt", Kind::File(b"pwned\n")),
        bad("link/pwndir", Kind::Dir),
        bad("link/pwnlink", Kind::Symlink(b"/etc/passwd".to_vec())),
        bad("link/pwnfifo", Kind::Fifo),
        bad(
            "link/secret.txt",
            Kind::File(b"overwritten through a symlink\n"),
        ),
        item("up", Kind::Symlink(b"..".to_vec())),
        bad("up/x.txt", Kind::File(b"up\n")),
        bad("hl-rel", Kind::Hardlink(rel_secret)),
        bad("hl-abs", Kind::Hardlink(sj("secret.txt"))),
        bad("hl-via-link", Kind::Hardlink(b"link/secret.txt".to_vec())),
        bad("hl-dotdot", Kind::Hardlink(b"gooddir/../../x".to_vec())),
        // a symlink replaced by a regular file: the file must replace the link, not write
        // through it
        item("victim", Kind::Symlink(sj("victim.txt"))),
        item("victim", Kind::File(b"victim replaced inside\n")),
        // a symlink replaced by a directory, then a file in it
        item("sdir", Kind::Symlink(s.clone())),
        item("sdir", Kind::Dir),
        item("sdir/f.txt", Kind::File(b"in sdir\n")),
        item("hl-good", Kind::Hardlink(b"good1.txt".to_vec())),
        item(b"nul\x00name.txt", Kind::File(b"nul\n")),
        item("", Kind::File(b"empty path\n")),
        item(".", Kind::File(b"dot path\n")),
        item("good3.txt", Kind::File(b"good three\n")),
        item("gooddir/good4.txt", Kind::File(b"good four\n")),
    ]
}

fn spec_json(items: &[Spec]) -> String {
    let v: Vec<serde_json::Value> = items
        .iter()
        .map(|s| {
            let mut o = json!({"path": hex(&s.path), "master": s.master});
            match &s.kind {
                Kind::File(d) => {
                    o["kind"] = json!("file");
                    o["data"] = json!(hex(d));
                }
                Kind::Dir => o["kind"] = json!("dir"),
                Kind::Symlink(t) => {
                    o["kind"] = json!("symlink");
                    o["source"] = json!(hex(t));
                }
                Kind::Hardlink(t) => {
                    o["kind"] = json!("hardlink");
                    o["source"] = json!(hex(t));
                }
                Kind::Fifo => o["kind"] = json!("fifo"),
            }
            o
        })
        .collect();
    serde_json::to_string_pretty(&v).unwrap()
}

/// Everything observable under `root` (not following symlinks), except the subtrees in
/// `skip` (absolute paths).
fn outside_state(root: &Path, skip: &[PathBuf]) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if skip.iter().any(|s| s == &p) {
                continue;
            }
            let m = fs::symlink_metadata(&p).unwrap();
            let mut desc = format!(
                "mode {:o} uid {} nlink {} ino {} size {} mtime {}.{:09}",
                m.mode(),
                m.uid(),
                m.nlink(),
                m.ino(),
                m.size(),
                m.mtime(),
                m.mtime_nsec()
            );
            if m.file_type().is_symlink() {
                desc += &format!(" -> {}", fs::read_link(&p).unwrap().display());
            } else if m.is_file() && m.size() < (1 << 20) {
                desc += &format!(" content {}", show(&fs::read(&p).unwrap()));
            } else if m.is_dir() {
                stack.push(p.clone());
            }
            out.insert(p, desc);
        }
    }
    out
}

fn state_diff(
    before: &BTreeMap<PathBuf, String>,
    after: &BTreeMap<PathBuf, String>,
    what: &str,
    diffs: &mut Vec<String>,
) {
    for (p, b) in before {
        match after.get(p) {
            None => diffs.push(format!("{what}: {} was removed (was {b})", p.display())),
            Some(a) if a != b => diffs.push(format!(
                "{what}: {} was modified: before [{b}], after [{a}]",
                p.display()
            )),
            _ => {}
        }
    }
    for (p, a) in after {
        if !before.contains_key(p) {
            diffs.push(format!(
                "{what}: {} was created outside the destination [{a}]",
                p.display()
            ));
        }
    }
}

fn temp_files(root: &Path) -> Vec<String> {
    let s = Snapshot::take(root);
    s.nodes
        .keys()
        .filter(|k| {
            let name = k.rsplit(|b| *b == b'/').next().unwrap_or_default();
            name.starts_with(b".oxiborg") || name.ends_with(b".tmp")
        })
        .map(|k| show(k))
        .collect()
}

/// The sentinel's files, explicitly (in addition to the before/after snapshots).
fn sentinel_intact(h: &Hostile, diffs: &mut Vec<String>) {
    for (name, content) in [
        ("secret.txt", &b"secret\n"[..]),
        ("victim.txt", b"victim\n"),
    ] {
        let p = h.sentinel.join(name);
        match (fs::read(&p), fs::symlink_metadata(&p)) {
            (Ok(c), Ok(m)) if c == content && m.nlink() == 1 && m.is_file() => {}
            (c, m) => diffs.push(format!(
                "sentinel {name} changed: content {:?}, nlink {:?}",
                c.map(|c| show(&c)),
                m.map(|m| m.nlink())
            )),
        }
    }
    let names: Vec<_> = fs::read_dir(&h.sentinel)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    if names.len() != 3 {
        diffs.push(format!("sentinel directory now holds {names:?}"));
    }
}

struct Hostile {
    env: TestEnv,
    repo: PathBuf,
    work: PathBuf,
    sentinel: PathBuf,
}

fn setup() -> Option<Hostile> {
    // borg 1.4 (its venv's Python) preferred; borg 1.2 with a Python that imports it works too
    let (borg, py) = borg_with_python()?;
    let env = TestEnv::new();
    let work = env.path().join("work");
    let sentinel = work.join("sentinel");
    fs::create_dir_all(&sentinel).unwrap();
    fs::write(sentinel.join("secret.txt"), b"secret\n").unwrap();
    fs::write(sentinel.join("victim.txt"), b"victim\n").unwrap();
    fs::create_dir(sentinel.join("sub")).unwrap();
    let repo = repo_with_normal_archive(&env, &borg);
    let items = hostile_items(&sentinel);
    let prefixed: Vec<Spec> = items
        .iter()
        .map(|s| {
            let mut s = s.clone();
            if !s.path.starts_with(b"/") {
                let mut p = b"p/".to_vec();
                p.extend_from_slice(&s.path);
                s.path = p;
            }
            if let Kind::Hardlink(src) = &s.kind {
                if !src.starts_with(b"/") {
                    let mut p = b"p/".to_vec();
                    p.extend_from_slice(src);
                    s.kind = Kind::Hardlink(p);
                }
            }
            s
        })
        .collect();
    for (name, spec) in [("hostile", &items), ("hostile-p", &prefixed)] {
        make_archive(&env, &py, &repo, name, &spec_json(spec), None);
    }
    Some(Hostile {
        env,
        repo,
        work,
        sentinel,
    })
}

/// Checks one oxiborg run on a hostile archive; `dest` is where it extracted to, `prefix`
/// the path prefix the good files have there.
#[allow(clippy::too_many_arguments)]
fn check_run(
    h: &Hostile,
    what: &str,
    out: &Output,
    dest: &Path,
    expect_goods: bool,
    strip: usize,
    items: &[Spec],
    before: &BTreeMap<PathBuf, String>,
    diffs: &mut Vec<String>,
) {
    if out.stderr.contains("panicked") || out.code < 0 {
        diffs.push(format!(
            "{what}: oxiborg panicked or was killed\n{}",
            out.describe()
        ));
    }
    let skip = [dest.to_path_buf(), h.env.base.clone(), h.repo.clone()];
    let after = outside_state(h.env.path(), &skip);
    state_diff(before, &after, what, diffs);
    let tmp = temp_files(dest);
    if !tmp.is_empty() {
        diffs.push(format!(
            "{what}: temporary files left in the destination: {tmp:?}"
        ));
    }
    if !expect_goods {
        return;
    }
    if out.code != 1 && out.code != 2 {
        diffs.push(format!(
            "{what}: exit code {} (expected 1 or 2 for refused items)\n{}",
            out.code,
            out.describe()
        ));
    }
    for (p, content) in GOOD {
        match fs::read(dest.join(p)) {
            Ok(c) if c == *content => {}
            Ok(c) => diffs.push(format!(
                "{what}: good file {p}: content {:?}, expected {:?}",
                show(&c),
                show(content)
            )),
            Err(e) => diffs.push(format!("{what}: good file {p} not restored: {e}")),
        }
    }
    match (
        fs::symlink_metadata(dest.join("good1.txt")),
        fs::symlink_metadata(dest.join("hl-good")),
    ) {
        (Ok(a), Ok(b)) if a.ino() == b.ino() => {}
        (Ok(_), Ok(_)) => diffs.push(format!("{what}: hl-good is not a hard link of good1.txt")),
        (_, Err(e)) => diffs.push(format!(
            "{what}: the good hard link hl-good is missing: {e}"
        )),
        _ => {}
    }
    // a later regular file replaces an earlier symlink of the same name (borg removes it)
    match fs::symlink_metadata(dest.join("victim")) {
        Ok(m) if m.is_file() => {
            let c = fs::read(dest.join("victim")).unwrap();
            if c != b"victim replaced inside\n" {
                diffs.push(format!("{what}: victim has content {:?}", show(&c)));
            }
        }
        Ok(m) => diffs.push(format!(
            "{what}: victim is not the regular file of the archive's second `victim` item (mode {:o})",
            m.mode()
        )),
        Err(e) => diffs.push(format!("{what}: victim missing: {e}")),
    }
    // the absolute path: refused (named on stderr) or restored inside with the / stripped
    let abs = items
        .iter()
        .find(|s| s.path.starts_with(b"/"))
        .expect("an absolute item");
    let stripped: Vec<&[u8]> = abs.path[1..].split(|b| *b == b'/').skip(strip).collect();
    let inside = dest.join(OsStr::from_bytes(&stripped.join(&b'/')));
    let abs_shown = String::from_utf8_lossy(&abs.path).into_owned();
    match fs::read(&inside) {
        Ok(c) if c == b"absolute\n" => {
            eprintln!("{what}: the absolute item was restored inside the destination")
        }
        Ok(c) => diffs.push(format!("{what}: {} has content {:?}", inside.display(), show(&c))),
        Err(_) if out.stderr.contains(abs_shown.as_str())
            || out.stderr.contains(abs_shown.trim_start_matches('/')) =>
        {
            eprintln!("{what}: the absolute item was refused")
        }
        Err(_) => diffs.push(format!(
            "{what}: absolute item {abs_shown}: neither restored inside the destination nor named on stderr"
        )),
    }
    for s in items.iter().filter(|s| s.hostile) {
        let shown = String::from_utf8_lossy(&s.path).into_owned();
        if !out.stderr.contains(shown.as_str()) {
            diffs.push(format!(
                "{what}: stderr does not name the refused item {shown:?}"
            ));
        }
    }
}

#[test]
fn hostile_archive_is_confined() {
    let Some(h) = setup() else { return };
    let items = hostile_items(&h.sentinel);
    let mut diffs = Vec::new();

    // 1. plain extract, cwd = the destination (borg's way)
    let dest = h.work.join("dest");
    fs::create_dir_all(&dest).unwrap();
    let skip = [dest.clone(), h.env.base.clone(), h.repo.clone()];
    let before = outside_state(h.env.path(), &skip);
    let mut cmd = h
        .env
        .oxiborg_cmd([OsString::from("extract"), repo_archive(&h.repo, "hostile")]);
    cmd.current_dir(&dest);
    let out = run_command(cmd);
    eprintln!(
        "--- oxiborg extract hostile: exit {}\n{}",
        out.code, out.stderr
    );
    check_run(
        &h, "extract", &out, &dest, true, 0, &items, &before, &mut diffs,
    );

    // 2. the same items below p/, --strip-components 1, -C DIR
    let dest2 = h.work.join("dest2");
    fs::create_dir_all(&dest2).unwrap();
    let skip = [dest2.clone(), h.env.base.clone(), h.repo.clone()];
    let before = outside_state(h.env.path(), &skip);
    let out = h.env.oxiborg([
        OsString::from("extract"),
        "--strip-components".into(),
        "1".into(),
        "-C".into(),
        dest2.clone().into_os_string(),
        repo_archive(&h.repo, "hostile-p"),
    ]);
    eprintln!(
        "--- oxiborg extract --strip-components 1 hostile-p: exit {}\n{}",
        out.code, out.stderr
    );
    // refused items are named by their archived path (p/...)
    let prefixed: Vec<Spec> = items
        .iter()
        .map(|s| {
            let mut s = s.clone();
            if !s.path.starts_with(b"/") {
                let mut p = b"p/".to_vec();
                p.extend_from_slice(&s.path);
                s.path = p;
            }
            s
        })
        .collect();
    check_run(
        &h,
        "extract --strip-components 1",
        &out,
        &dest2,
        true,
        1,
        &prefixed,
        &before,
        &mut diffs,
    );

    // 3. --dry-run writes nothing anywhere
    let dest3 = h.work.join("dest3");
    fs::create_dir_all(&dest3).unwrap();
    let skip = [dest3.clone(), h.env.base.clone(), h.repo.clone()];
    let before = outside_state(h.env.path(), &skip);
    let mut cmd = h.env.oxiborg_cmd([
        OsString::from("extract"),
        "--dry-run".into(),
        repo_archive(&h.repo, "hostile"),
    ]);
    cmd.current_dir(&dest3);
    let out = run_command(cmd);
    check_run(
        &h,
        "extract --dry-run",
        &out,
        &dest3,
        false,
        0,
        &items,
        &before,
        &mut diffs,
    );
    if !Snapshot::take(&dest3).is_empty_tree() {
        diffs.push("extract --dry-run: wrote into the destination".into());
    }

    // 4. --stdout: only file contents on stdout, nothing written anywhere
    let skip = [dest3.clone(), h.env.base.clone(), h.repo.clone()];
    let before = outside_state(h.env.path(), &skip);
    let mut cmd = h.env.oxiborg_cmd([
        OsString::from("extract"),
        "--stdout".into(),
        repo_archive(&h.repo, "hostile"),
    ]);
    cmd.current_dir(&dest3);
    let out = run_command(cmd);
    check_run(
        &h,
        "extract --stdout",
        &out,
        &dest3,
        false,
        0,
        &items,
        &before,
        &mut diffs,
    );
    if !Snapshot::take(&dest3).is_empty_tree() {
        diffs.push("extract --stdout: wrote into the destination".into());
    }

    sentinel_intact(&h, &mut diffs);
    assert_no_diffs("hostile archive", &diffs);
}

/// A partial extract whose selected hard-link member points (by `source`) outside: the
/// "unextracted master" lookup must not turn into a link to anything outside.
#[test]
fn hostile_hardlink_partial_extract() {
    let Some(h) = setup() else { return };
    let mut diffs = Vec::new();
    let dest = h.work.join("dest-partial");
    fs::create_dir_all(&dest).unwrap();
    let skip = [dest.clone(), h.env.base.clone(), h.repo.clone()];
    let before = outside_state(h.env.path(), &skip);
    let mut cmd = h.env.oxiborg_cmd([
        OsString::from("extract"),
        repo_archive(&h.repo, "hostile"),
        "hl-rel".into(),
        "hl-abs".into(),
        "hl-via-link".into(),
        "hl-dotdot".into(),
        "hl-good".into(),
    ]);
    cmd.current_dir(&dest);
    let out = run_command(cmd);
    eprintln!("--- partial: exit {}\n{}", out.code, out.stderr);
    check_run(
        &h,
        "partial extract of hard links",
        &out,
        &dest,
        false,
        0,
        &[],
        &before,
        &mut diffs,
    );
    if out.code != 1 && out.code != 2 {
        diffs.push(format!("partial: exit code {} (expected 1 or 2)", out.code));
    }
    // hl-good's master (good1.txt) is not selected: its content goes into hl-good
    match fs::read(dest.join("hl-good")) {
        Ok(c) if c == b"good one\n" => {}
        Ok(c) => diffs.push(format!("partial: hl-good has content {:?}", show(&c))),
        Err(e) => diffs.push(format!("partial: hl-good not restored: {e}")),
    }
    for name in ["hl-rel", "hl-abs", "hl-via-link", "hl-dotdot"] {
        if let Ok(m) = fs::symlink_metadata(dest.join(name)) {
            diffs.push(format!(
                "partial: {name} exists (mode {:o}, nlink {}, size {})",
                m.mode(),
                m.nlink(),
                m.size()
            ));
        }
        if !out.stderr.contains(name) {
            diffs.push(format!("partial: stderr does not name {name}"));
        }
    }
    sentinel_intact(&h, &mut diffs);
    assert_no_diffs("hostile hard links, partial extract", &diffs);
}

//! Extracting, on Linux, an archive "made on macOS": items as borg on macOS stores them
//! (paths under `Users/me/`, uid 501 / gid 20 with user `me` / group `staff`, `bsdflags` on
//! every item (UF_NODUMP, UF_HIDDEN, UF_IMMUTABLE, UF_APPEND, UF_COMPRESSED on some),
//! `birthtime`, `ctime`, macOS `acl_extended` texts, `com.apple.*` xattrs next to a `user.*`
//! one, NFD-normalised and `Icon\r` names, a hard-link pair, symlinks, directories).
//!
//! The archive is crafted with borg's Python API (`tests/extract_macos_archive.py`, run by the
//! Python of borg 1.4's venv or any Python that can `import borg`). Then, for borg 1.4 and
//! 1.2 (each when available), `borg extract` and `oxiborg extract` run with the same
//! arguments in fresh directories, and the test compares
//! * the exit codes (borg exits 1: the `com.apple.*` xattrs can't be set on Linux);
//! * the trees ([`extract_support::compare`]: type, mode, owner, times, xattrs, content,
//!   links, ACLs as getfacl shows them);
//! * the Linux inode flags (`FS_IOC_GETFLAGS`, what `lsattr` shows; the destinations carry
//!   ext4's inheritable `A` flag, see [`fresh_dir`]): nodump / immutable /
//!   append must be the same as with both borg versions; all flags (ext4's `e` included)
//!   must be the same as with borg 1.4 (borg 1.2 overwrote the whole flag word, 1.4 does not);
//! * the kinds of warnings on stderr: one "when setting extended attribute NAME" warning per
//!   xattr borg could not set, classified by errno (not supported / not permitted / ...),
//!   and no other warning where borg has none.
//!
//! Needs root for the immutable / append flags to be settable (otherwise the flags part is
//! weaker but still runs). Every immutable / append flag is cleared before the temporary
//! directory is removed, also when the test fails.

mod common;
mod extract_support;

use common::*;
use extract_support::*;
use std::ffi::{CString, OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use std::time::Instant;

// ---------------------------------------------------------------------------------------
// inode flags
// ---------------------------------------------------------------------------------------

const FS_COMPR_FL: u32 = 0x4;
const FS_IMMUTABLE_FL: u32 = 0x10;
const FS_APPEND_FL: u32 = 0x20;
const FS_NODUMP_FL: u32 = 0x40;
const FS_NOATIME_FL: u32 = 0x80;
/// The flags borg maps from BSD flags on Linux (both versions).
const MANAGED: u32 = FS_IMMUTABLE_FL | FS_APPEND_FL | FS_NODUMP_FL;

/// FS_IOC_GETFLAGS of a regular file or directory (never follows symlinks); None where the
/// filesystem or the file type has none.
fn get_flags(p: &Path) -> Option<u32> {
    let c = CString::new(p.as_os_str().as_bytes()).ok()?;
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return None;
    }
    let mut flags: libc::c_long = 0;
    let r = unsafe { libc::ioctl(fd, libc::FS_IOC_GETFLAGS, &mut flags) };
    unsafe { libc::close(fd) };
    (r == 0).then_some(flags as u32)
}

/// `lsattr`-style letters for the flags that matter here, plus the raw value.
fn show_flags(f: Option<u32>) -> String {
    let Some(f) = f else { return "none".into() };
    let mut s = String::new();
    for (bit, ch) in [
        (FS_APPEND_FL, 'a'),
        (FS_COMPR_FL, 'c'),
        (FS_NODUMP_FL, 'd'),
        (FS_IMMUTABLE_FL, 'i'),
        (FS_NOATIME_FL, 'A'),
        (0x1000, 'I'),
        (0x80000, 'e'),
        (0x800000, 'C'),
    ] {
        if f & bit != 0 {
            s.push(ch);
        }
    }
    format!("{f:#x} [{s}]")
}

/// Clears the immutable and append flags of everything under `root` (so it can be removed).
fn clear_flags(root: &Path) {
    fn walk(p: &Path) {
        let Ok(m) = fs::symlink_metadata(p) else {
            return;
        };
        if !(m.is_file() || m.is_dir()) {
            return;
        }
        if let Ok(c) = CString::new(p.as_os_str().as_bytes()) {
            let fd = unsafe {
                libc::open(
                    c.as_ptr(),
                    libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                )
            };
            if fd >= 0 {
                let mut f: libc::c_long = 0;
                if unsafe { libc::ioctl(fd, libc::FS_IOC_GETFLAGS, &mut f) } == 0
                    && f as u32 & (FS_IMMUTABLE_FL | FS_APPEND_FL) != 0
                {
                    f &= !((FS_IMMUTABLE_FL | FS_APPEND_FL) as libc::c_long);
                    unsafe { libc::ioctl(fd, libc::FS_IOC_SETFLAGS, &f) };
                }
                unsafe { libc::close(fd) };
            }
        }
        if m.is_dir() {
            if let Ok(rd) = fs::read_dir(p) {
                for e in rd.flatten() {
                    walk(&e.path());
                }
            }
        }
    }
    walk(root);
}

/// Clears immutable/append flags under its directory when dropped (declared after the
/// `TestEnv`, so it runs before the temporary directory is removed, on failure too).
struct Unflag(PathBuf);

impl Drop for Unflag {
    fn drop(&mut self) {
        clear_flags(&self.0);
    }
}

// ---------------------------------------------------------------------------------------
// the archive
// ---------------------------------------------------------------------------------------

const S: i64 = 1_000_000_000;
const UF_NODUMP: u32 = 0x1;
const UF_IMMUTABLE: u32 = 0x2;
const UF_APPEND: u32 = 0x4;
const UF_COMPRESSED: u32 = 0x20;
const UF_HIDDEN: u32 = 0x8000;

/// macOS' `com.apple.FinderInfo` (32 bytes): type/creator "TEXTttxt", flags 0x4000
/// (kHasCustomIcon / invisible-ish bits), rest zero.
fn finder_info() -> Vec<u8> {
    let mut v = b"TEXTttxt".to_vec();
    v.extend_from_slice(&[0x40, 0x00]);
    v.resize(32, 0);
    v
}

/// A small binary plist like `com.apple.metadata:kMDItemWhereFroms`.
fn where_froms() -> Vec<u8> {
    let mut v =
        b"bplist00\xa2\x01\x02_\x10\x1ahttps://example.org/a.dmg_\x10\x14https://example.org/"
            .to_vec();
    v.extend_from_slice(&[0x08, 0x0b, 0x28, 0, 0, 0, 0, 0, 0, 1, 1]);
    v.extend_from_slice(&[0u8; 6]);
    v.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 3]);
    v.extend_from_slice(&[0u8; 8]);
    v.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0x3f]);
    v
}

const QUARANTINE: &[u8] = b"0083;65a1b2c3;Safari;8A1B2C3D-4E5F-6071-8293-A4B5C6D7E8F9";
const ACL_READ: &str = "!#acl 1\nuser:FFFFEEEE-DDDD-CCCC-BBBB-AAAA000001F5:me:501:allow:read\n";
const ACL_EVERYONE_DENY_DELETE: &str =
    "!#acl 1\ngroup:ABCDEFAB-CDEF-ABCD-EFAB-CDEF0000000C:everyone:12:deny:delete\n";

/// One item of the spec for extract_macos_archive.py.
fn it(kind: &str, path: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut m = serde_json::json!({
        "kind": kind,
        "path": path,
        "uid": 501,
        "gid": 20,
        "user": "me",
        "group": "staff",
        "mtime": 1_700_000_000 * S + 123_456_789,
        "ctime": 1_700_000_100 * S + 5,
        "birthtime": 1_600_000_000 * S + 987_654_321,
        "bsdflags": 0,
    });
    for (k, v) in extra.as_object().unwrap() {
        m[k] = v.clone();
    }
    m
}

fn xattrs(pairs: &[(&str, &[u8])]) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (k, v) in pairs {
        m.insert((*k).into(), serde_json::Value::String(hex(v)));
    }
    serde_json::Value::Object(m)
}

/// The items, in the order borg on macOS would store them (`borg create ::a /Users/me`).
fn macos_items() -> Vec<serde_json::Value> {
    use serde_json::json;
    let ri = pseudo_random(501, 5000);
    vec![
        it(
            "dir",
            "Users/me",
            json!({"perm": 0o750, "mtime": 1_700_000_500 * S}),
        ),
        it(
            "file",
            "Users/me/.DS_Store",
            json!({"data": hex(&pseudo_random(1, 6148)), "bsdflags": 0}),
        ),
        it(
            "dir",
            "Users/me/Documents",
            json!({"perm": 0o700, "mtime": 1_690_000_000 * S + 1,
                   "acl_extended": ACL_EVERYONE_DENY_DELETE,
                   "xattrs": xattrs(&[("com.apple.FinderInfo", &finder_info())])}),
        ),
        it(
            "file",
            "Users/me/Documents/report.txt",
            json!({"data": hex(b"quarterly report\n"), "bsdflags": UF_NODUMP,
            "acl_extended": ACL_READ,
            "xattrs": xattrs(&[
                ("com.apple.quarantine", QUARANTINE),
                ("com.apple.FinderInfo", &finder_info()),
                ("com.apple.metadata:kMDItemWhereFroms", &where_froms()),
                ("user.x", b"plain user xattr"),
            ])}),
        ),
        it(
            "file",
            // "Résumé.pdf" as HFS+ / APFS-from-Finder writes it: NFD (e + U+0301)
            "Users/me/Documents/Re\u{301}sume\u{301}.pdf",
            json!({"data": hex(&pseudo_random(2, 3000)), "perm": 0o600,
                   "xattrs": xattrs(&[("com.apple.lastuseddate#PS", &[1u8; 16])])}),
        ),
        it(
            "file",
            "Users/me/Documents/locked.txt",
            json!({"data": hex(b"uchg\n"), "bsdflags": UF_IMMUTABLE,
                   "mtime": 1_650_000_000 * S + 42}),
        ),
        it(
            "file",
            "Users/me/Documents/append-only.log",
            json!({"data": hex(b"line 1\n"), "bsdflags": UF_APPEND}),
        ),
        it(
            "file",
            "Users/me/Documents/compressed.txt",
            json!({"data": hex(&b"decmpfs ".repeat(100)), "bsdflags": UF_COMPRESSED,
                   "xattrs": xattrs(&[("user.y", b"")])}),
        ),
        it(
            "file",
            "Users/me/Documents/hidden-nodump.txt",
            json!({"data": hex(b"hidden\n"), "bsdflags": UF_HIDDEN | UF_NODUMP,
                   "atime": 1_700_000_200 * S + 7}),
        ),
        it(
            "file",
            "Users/me/Documents/hl-master.txt",
            json!({"data": hex(b"two names\n"), "master": true,
                   "xattrs": xattrs(&[("user.x", b"on a hard link")])}),
        ),
        it(
            "hardlink",
            "Users/me/Documents/hl-second.txt",
            json!({"source": "Users/me/Documents/hl-master.txt",
                   "xattrs": xattrs(&[("user.x", b"on a hard link")])}),
        ),
        it(
            "dir",
            "Users/me/Library",
            json!({"perm": 0o700, "bsdflags": UF_HIDDEN, "mtime": 1_680_000_000 * S}),
        ),
        it(
            "file",
            "Users/me/Library/prefs.plist",
            json!({"data": hex(b"<plist/>\n"), "perm": 0o600}),
        ),
        it(
            "dir",
            "Users/me/Pictures",
            json!({"perm": 0o755,
                   "xattrs": xattrs(&[("com.apple.FinderInfo", &finder_info())])}),
        ),
        it(
            "file",
            // a folder's custom icon: "Icon\r", hidden, the icon in the resource fork
            "Users/me/Pictures/Icon\r",
            json!({"data": "", "bsdflags": UF_HIDDEN,
            "xattrs": xattrs(&[
                ("com.apple.FinderInfo", &finder_info()),
                ("com.apple.ResourceFork", &ri),
            ])}),
        ),
        it(
            "symlink",
            "Users/me/Pictures/tagged-link",
            json!({"source": "/Applications/Preview.app", "perm": 0o755,
                   "xattrs": xattrs(&[("com.apple.metadata:_kMDItemUserTags", b"bplist00\xa0\x08")])}),
        ),
        it(
            "symlink",
            "Users/me/Desktop-report",
            json!({"source": "Documents/report.txt", "perm": 0o755}),
        ),
        it(
            "dir",
            "Users/me/Desktop",
            json!({"perm": 0o700, "acl_extended": ACL_EVERYONE_DENY_DELETE}),
        ),
    ]
}

// ---------------------------------------------------------------------------------------
// stderr warning kinds
// ---------------------------------------------------------------------------------------

/// (xattr name, errno class) of each "when setting extended attribute" warning, and the
/// other non-empty stderr lines.
fn warning_kinds(stderr: &str) -> (Vec<(String, String)>, Vec<String>) {
    let mut xa = Vec::new();
    let mut other = Vec::new();
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        const NEEDLE: &str = "when setting extended attribute ";
        if let Some(i) = line.find(NEEDLE) {
            let rest = &line[i + NEEDLE.len()..];
            // names may contain ':' (com.apple.metadata:kMDItemWhereFroms): the name ends
            // at the last ": " before the error text
            let name = rest
                .rsplit_once(": ")
                .map(|(n, _)| n)
                .unwrap_or(rest)
                .split(": [Errno")
                .next()
                .unwrap()
                .to_string();
            let low = line.to_lowercase();
            let class = if low.contains("not supported") {
                "ENOTSUP"
            } else if low.contains("not permitted") {
                "EPERM"
            } else if low.contains("permission denied") {
                "EACCES"
            } else if low.contains("too big") || low.contains("argument list too long") {
                "E2BIG"
            } else if low.contains("no space") || low.contains("fs full") {
                "ENOSPC"
            } else {
                "other"
            };
            xa.push((name, class.to_string()));
        } else {
            other.push(line.to_string());
        }
    }
    xa.sort();
    (xa, other)
}

// ---------------------------------------------------------------------------------------
// the test
// ---------------------------------------------------------------------------------------

/// A fresh destination directory with ext4's inheritable `A` (noatime) flag set where the
/// filesystem allows it: everything extracted into it inherits `A`, so an extractor that
/// overwrites the whole flag word instead of changing only the bits it restores is visible
/// deterministically (borg 1.4 keeps `A`).
fn fresh_dir(p: &Path) {
    let _ = fs::remove_dir_all(p);
    fs::create_dir_all(p).unwrap();
    chmod(p, 0o755);
    if let Ok(c) = CString::new(p.as_os_str().as_bytes()) {
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd >= 0 {
            let mut f: libc::c_long = 0;
            if unsafe { libc::ioctl(fd, libc::FS_IOC_GETFLAGS, &mut f) } == 0 {
                f |= FS_NOATIME_FL as libc::c_long;
                unsafe { libc::ioctl(fd, libc::FS_IOC_SETFLAGS, &f) };
            }
            unsafe { libc::close(fd) };
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run_case(
    env: &TestEnv,
    borg: &Borg,
    repo: &Path,
    name: &str,
    opts: &[&str],
    paths: &[&str],
    n: usize,
    diffs: &mut Vec<String>,
) -> Option<Snapshot> {
    let label = format!("[{}] {name}", borg.version);
    let base = env
        .path()
        .join("out")
        .join(format!("{n:02}-{}", borg.label));
    let (a, b) = (base.join("borg"), base.join("oxi"));
    fresh_dir(&a);
    fresh_dir(&b);
    let mut args: Vec<OsString> = vec!["extract".into()];
    args.extend(opts.iter().map(OsString::from));
    args.push(repo_archive(repo, "mac"));
    args.extend(paths.iter().map(OsString::from));
    let from = now_ns() - 1_000_000_000;
    let mut cmd = env.borg_cmd(borg, &args);
    cmd.current_dir(&a);
    let bo = run_command(cmd);
    let mut cmd = env.oxiborg_cmd(&args);
    cmd.current_dir(&b);
    let oo = run_command(cmd);
    log_exits(&label, &bo, &oo);
    if bo.code != 0 && bo.code != 1 {
        diffs.push(format!(
            "{label}: borg itself failed (test setup?)\n{}",
            bo.describe()
        ));
        clear_flags(&base);
        remove_tree(&base);
        return None;
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
    // warnings of the same kind
    let (bx, bother) = warning_kinds(&bo.stderr);
    let (ox, oother) = warning_kinds(&oo.stderr);
    if bx != ox {
        let only_b: Vec<_> = bx.iter().filter(|k| !ox.contains(k)).collect();
        let only_o: Vec<_> = ox.iter().filter(|k| !bx.contains(k)).collect();
        diffs.push(format!(
            "{label}: xattr warnings (name, errno class) differ: borg {} warnings, oxiborg {}; \
             only borg: {only_b:?}; only oxiborg: {only_o:?}",
            bx.len(),
            ox.len()
        ));
    }
    if bother.is_empty() && !oother.is_empty() {
        diffs.push(format!(
            "{label}: oxiborg printed other warnings, borg none: {oother:?}"
        ));
    } else if !bother.is_empty() && oother.is_empty() && bo.code != 0 {
        // borg's non-xattr warnings (none expected with this archive) have no counterpart
        diffs.push(format!(
            "{label}: borg printed other warnings, oxiborg none: {bother:?}"
        ));
    }
    // trees
    let sa = Snapshot::take(&a);
    let sb = Snapshot::take(&b);
    let opts = CompareOpts {
        root_meta: false,
        fresh_from_ns: from,
    };
    compare(&label, &sa, &sb, &opts, diffs);
    // inode flags
    let full = borg.label == "1.4";
    let mut other_flags = Vec::new();
    for (rel, node) in &sa.nodes {
        if rel.is_empty() || !(node.kind == Kind::File || node.kind == Kind::Dir) {
            continue;
        }
        let fa = get_flags(&a.join(OsStr::from_bytes(rel)));
        let fb = get_flags(&b.join(OsStr::from_bytes(rel)));
        let managed_differs = fa.map(|f| f & MANAGED) != fb.map(|f| f & MANAGED);
        if managed_differs || (full && fa != fb) {
            diffs.push(format!(
                "{label}: {}: inode flags (FS_IOC_GETFLAGS): borg {}, oxiborg {}",
                show(rel),
                show_flags(fa),
                show_flags(fb)
            ));
        } else if fa != fb {
            other_flags.push(format!(
                "{}: borg {}, oxiborg {}",
                show(rel),
                show_flags(fa),
                show_flags(fb)
            ));
        }
    }
    if !other_flags.is_empty() {
        eprintln!(
            "note: {label}: {} path(s) with inode flags outside nodump/immutable/append that \
             differ (borg 1.2 overwrites the whole flag word, sets `c` for UF_COMPRESSED); \
             first: {}",
            other_flags.len(),
            other_flags[0]
        );
    }
    clear_flags(&base);
    remove_tree(&base);
    Some(sa)
}

#[test]
fn macos_archive_extracts_like_borg() {
    let t0 = Instant::now();
    // the archive is crafted with a Python that imports borg (1.4's venv preferred)
    let Some((maker_borg, py)) = borg_with_python() else {
        return;
    };
    let env = TestEnv::new();
    let _unflag = Unflag(env.path().to_path_buf());
    let repo = env.path().join("repo");
    env.borg_init(&maker_borg, &repo, "repokey-blake2", &[]);
    let spec = env.path().join("mac.json");
    fs::write(
        &spec,
        serde_json::to_string_pretty(&serde_json::Value::Array(macos_items())).unwrap(),
    )
    .unwrap();
    let script = manifest_dir().join("tests/extract_macos_archive.py");
    let mut cmd = env.command(&py);
    cmd.arg(&script).arg(&repo).arg("mac").arg(&spec);
    let out = run_command(cmd);
    assert_eq!(
        out.code,
        0,
        "extract_macos_archive.py failed\n{}",
        out.describe()
    );
    // what the archive holds, as borg lists it (a check of the test itself)
    let listed = env.borg_ok(
        &maker_borg,
        [
            OsString::from("list"),
            OsString::from("--format"),
            OsString::from("{mode} {user}:{group} {flags} {path}{NL}"),
            repo_archive(&repo, "mac"),
        ],
    );
    let listed = listed.stdout_str();
    eprintln!("archive (borg list):\n{listed}");
    assert!(
        listed.contains("-rw-r--r-- me:staff 2 Users/me/Documents/locked.txt"),
        "test setup: the crafted archive lacks the immutable file\n{listed}"
    );

    let mut diffs = Vec::new();
    let mut n = 0;
    let mut ran = 0;
    for label in ["1.4", "1.2"] {
        let Some(b) = borg(label) else { continue };
        ran += 1;
        let cases: &[(&str, &[&str], &[&str])] = &[
            ("full extract", &[], &[]),
            ("--numeric-ids", &["--numeric-ids"], &[]),
            (
                "--noflags --noxattrs --noacls",
                &["--noflags", "--noxattrs", "--noacls"],
                &[],
            ),
            ("only Users/me/Pictures", &[], &["Users/me/Pictures"]),
        ];
        for (name, opts, paths) in cases {
            n += 1;
            let snap = run_case(&env, &b, &repo, name, opts, paths, n, &mut diffs);
            if *name == "full extract" {
                if let Some(s) = snap {
                    check_setup(&s, &b, &mut diffs);
                }
            }
        }
    }
    eprintln!(
        "ran against {ran} borg version(s) in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    assert_no_diffs("macOS archive: borg extract vs oxiborg extract", &diffs);
}

/// borg's tree must really have what the comparison is meant to cover.
fn check_setup(s: &Snapshot, borg: &Borg, diffs: &mut Vec<String>) {
    let mut need = |cond: bool, what: &str| {
        if !cond {
            diffs.push(format!(
                "test setup: {}'s extracted tree lacks {what}",
                borg.version
            ));
        }
    };
    let node = |p: &str| s.nodes.get(p.as_bytes());
    let staff = group_id("staff");
    need(
        node("Users/me/Documents/report.txt")
            .is_some_and(|n| n.uid == 501 && Some(n.gid) == staff.or(Some(20))),
        "owner 501:staff on report.txt",
    );
    need(
        node("Users/me/Documents/report.txt").is_some_and(|n| {
            n.xattrs
                .as_ref()
                .is_ok_and(|x| x.get(&b"user.x"[..]).map(|v| &v[..]) == Some(b"plain user xattr"))
        }),
        "user.x on report.txt",
    );
    need(
        node("Users/me/Documents/hl-master.txt").is_some_and(|n| n.nlink == 2),
        "the hard-link pair",
    );
    need(
        node("Users/me/Pictures/Icon\r").is_some(),
        "the Icon\\r file",
    );
    need(
        node("Users/me/Documents/report.txt")
            .is_some_and(|n| n.mtime_ns == (1_700_000_000 * S + 123_456_789) as i128),
        "the mtime of report.txt",
    );
}

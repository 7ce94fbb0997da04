//! Helpers for the extract tests (`tests/extract_oracle.rs`, `tests/extract_hostile.rs`):
//!
//! * [`build_source_tree`]: a small tree with every item kind borg 1.x archives (regular,
//!   sparse and multi-chunk files, odd modes, devices, fifos, symlinks, hard-link groups,
//!   foreign owners, extreme and nanosecond mtimes, xattrs, POSIX ACLs, odd names);
//! * [`Snapshot`]: everything observable about an extracted tree, taken with `lstat` (never
//!   following symlinks), `llistxattr`/`lgetxattr`, `SEEK_DATA`/`SEEK_HOLE` and `getfacl`;
//! * [`compare`]: per-path comparison of two snapshots (borg's result vs oxiborg's), one
//!   message per difference naming path, field, borg's value and oxiborg's value;
//! * [`Runner`]: runs `borg extract` (cwd = a fresh dir) and `oxiborg extract` (cwd = another
//!   fresh dir, optionally also `-C DIR`) with the same arguments and compares the results.
#![allow(dead_code)]

use crate::common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CString, OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

// ---------------------------------------------------------------------------------------
// small utilities
// ---------------------------------------------------------------------------------------

pub fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

pub fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i128
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("path with NUL")
}

/// A path (relative, raw bytes) for messages: printable ASCII as is, everything else escaped.
pub fn show(p: &[u8]) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let mut s = String::new();
    for &b in p {
        match b {
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s
}

/// Sets atime and mtime (ns since the epoch, may be negative) without following symlinks.
pub fn set_times(path: &Path, atime_ns: i128, mtime_ns: i128) {
    fn ts(ns: i128) -> libc::timespec {
        libc::timespec {
            tv_sec: ns.div_euclid(1_000_000_000) as libc::time_t,
            tv_nsec: ns.rem_euclid(1_000_000_000) as _,
        }
    }
    let times = [ts(atime_ns), ts(mtime_ns)];
    let c = cstr(path);
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(
        r,
        0,
        "utimensat {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

pub fn set_mtime_ns(path: &Path, mtime_ns: i128) {
    // a distinct atime, so that "atime := mtime on extract" is visible
    set_times(path, 1_500_000_000_000_000_000, mtime_ns);
}

pub fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

pub fn lchown(path: &Path, uid: u32, gid: u32) -> bool {
    let c = cstr(path);
    unsafe { libc::lchown(c.as_ptr(), uid, gid) == 0 }
}

/// The uid of a user name, from `getent passwd` (the tests run on many threads).
pub fn user_id(name: &str) -> Option<u32> {
    getent("passwd", name)
}

/// The gid of a group name, from `getent group`.
pub fn group_id(name: &str) -> Option<u32> {
    getent("group", name)
}

/// The third field (the id) of `getent DATABASE NAME`; None when there is no such entry.
fn getent(database: &str, name: &str) -> Option<u32> {
    let out = std::process::Command::new("getent")
        .args([database, name])
        .output()
        .expect("getent runs");
    let line = String::from_utf8_lossy(&out.stdout);
    line.lines().next()?.split(':').nth(2)?.parse().ok()
}

fn write(path: &Path, content: &[u8], mode: u32, mtime_ns: i128) {
    fs::write(path, content).unwrap();
    chmod(path, mode);
    set_mtime_ns(path, mtime_ns);
}

fn try_cmd(program: &str, args: &[&OsStr]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Sets an xattr without following symlinks; false when the file system refuses.
pub fn setxattr(path: &Path, name: &str, value: &[u8]) -> bool {
    let c = cstr(path);
    let n = CString::new(name).unwrap();
    unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr() as *const libc::c_void,
            value.len(),
            0,
        ) == 0
    }
}

const S: i128 = 1_000_000_000;
pub const T_NS: i128 = 1_234_567_890 * S + 123_456_789; // nanoseconds matter
pub const T_2001: i128 = 981_173_106 * S;
pub const T_2010: i128 = 1_286_705_410 * S + 500_000_000;
pub const T_2023: i128 = 1_700_000_000 * S + 1;
pub const T_1960: i128 = -315_619_200 * S;
pub const T_2100: i128 = 4_102_444_800 * S;

/// Which optional parts of the source tree could be made on this machine.
#[derive(Debug, Clone, Default)]
pub struct Features {
    pub devices: bool,
    pub owners: bool,
    pub xattrs: bool,
    pub acls: bool,
}

/// Builds the source tree at `root` (must not exist). Everything gets a fixed mtime (none is
/// "recent", see [`CompareOpts::fresh_from_ns`]). Optional parts (devices, foreign owners,
/// xattrs, ACLs) are skipped with a note where the machine can't make them.
pub fn build_source_tree(root: &Path) -> Features {
    let mut f = Features::default();
    let j = |p: &str| root.join(p);
    for d in [
        "files",
        "dirs/nested/a/b/c",
        "dirs/empty",
        "dirs/ro0555",
        "dirs/sticky1777",
        "dirs/mode0700",
        "dirs/setgid2775",
        "hl/sub",
        "links",
        "special",
        "owners/numeric-dir",
        "xattrs/dir",
        "acls/dir-acl",
        "names/dir with space",
    ] {
        fs::create_dir_all(j(d)).unwrap();
    }
    // regular files
    write(&j("files/empty"), b"", 0o644, T_2010);
    write(&j("files/small.txt"), b"hello\n", 0o644, T_NS);
    write(
        &j("files/multi.bin"),
        &pseudo_random(7, 300 * 1024 + 13),
        0o644,
        T_2023,
    );
    write(&j("files/zeros3m.bin"), &vec![0u8; 3 << 20], 0o644, T_2010);
    {
        // 1 MiB data, 2 MiB hole, 1 MiB data (made sparse in the source too)
        use std::os::unix::fs::FileExt;
        let p = j("files/holey.bin");
        let file = fs::File::create(&p).unwrap();
        file.write_all_at(&pseudo_random(8, 1 << 20), 0).unwrap();
        file.write_all_at(&pseudo_random(9, 1 << 20), 3 << 20)
            .unwrap();
        file.set_len(4 << 20).unwrap();
        drop(file);
        chmod(&p, 0o640);
        set_mtime_ns(&p, T_2010);
    }
    write(&j("files/mode000"), b"no permissions\n", 0o000, T_2001);
    write(&j("files/suid"), b"setuid\n", 0o4755, T_2023);
    write(&j("files/sgid"), b"setgid\n", 0o2755, T_2023);
    write(&j("files/suid-sgid"), b"both\n", 0o6711, T_2023);
    write(&j("files/exec.sh"), b"#!/bin/sh\necho hi\n", 0o755, T_2023);
    write(&j("files/old-1960.txt"), b"old\n", 0o644, T_1960);
    write(&j("files/future-2100.txt"), b"future\n", 0o644, T_2100);
    write(&j("files/x-master"), b"linked across dirs\n", 0o644, T_2001);
    fs::hard_link(j("files/x-master"), j("dirs/nested/a/x-link")).unwrap();
    // dirs
    write(&j("dirs/nested/a/b/c/deep.txt"), b"deep\n", 0o600, T_2023);
    write(&j("dirs/ro0555/inside.txt"), b"inside ro\n", 0o644, T_2023);
    write(&j("dirs/sticky1777/tmpfile"), b"sticky\n", 0o666, T_2023);
    // hard-link group of 3 (one in a subdirectory)
    write(&j("hl/one"), b"three names\n", 0o640, T_2001);
    fs::hard_link(j("hl/one"), j("hl/two")).unwrap();
    fs::hard_link(j("hl/one"), j("hl/sub/three")).unwrap();
    write(&j("hl/zz-single"), b"single\n", 0o644, T_2001);
    // symlinks
    for (name, target) in [
        ("links/rel", "../files/small.txt"),
        ("links/abs", "/usr/bin"),
        ("links/dangling", "does/not/exist"),
        ("links/abs-dangling", "/nonexistent/oxiborg/dangling"),
        ("links/dir-link", "../dirs"),
        ("links/self", "self"),
    ] {
        std::os::unix::fs::symlink(target, j(name)).unwrap();
        set_mtime_ns(&j(name), T_2010 + 7);
    }
    // fifos (one hard-linked pair)
    sh(
        "mkfifo",
        &[
            OsStr::new("-m"),
            OsStr::new("644"),
            j("special/fifo").as_os_str(),
        ],
    );
    set_mtime_ns(&j("special/fifo"), T_2023);
    sh(
        "mkfifo",
        &[
            OsStr::new("-m"),
            OsStr::new("600"),
            j("special/fifo-hl1").as_os_str(),
        ],
    );
    fs::hard_link(j("special/fifo-hl1"), j("special/fifo-hl2")).unwrap();
    set_mtime_ns(&j("special/fifo-hl1"), T_2001);
    // devices
    if is_root() {
        let mk = |name: &str, kind: u32, perm: u32, major: u32, minor: u32| {
            let c = cstr(&j(name));
            let r = unsafe { libc::mknod(c.as_ptr(), kind | perm, libc::makedev(major, minor)) };
            r == 0
        };
        f.devices = mk("special/null", libc::S_IFCHR, 0o666, 1, 3)
            && mk("special/loop200", libc::S_IFBLK, 0o660, 7, 200)
            && mk("special/bigdev", libc::S_IFCHR, 0o600, 300, 70000);
        if f.devices {
            for d in ["special/null", "special/loop200", "special/bigdev"] {
                chmod(&j(d), fs::symlink_metadata(j(d)).unwrap().mode() & 0o7777);
                set_mtime_ns(&j(d), T_2023);
            }
        } else {
            eprintln!("note: mknod failed: no device nodes in the tree");
            for d in ["special/null", "special/loop200", "special/bigdev"] {
                let _ = fs::remove_file(j(d));
            }
        }
    } else {
        eprintln!("note: not root: no device nodes and no foreign owners in the tree");
    }
    // owners
    write(&j("owners/numeric"), b"numeric\n", 0o644, T_2023);
    write(&j("owners/nobody"), b"nobody\n", 0o644, T_2023);
    write(&j("owners/daemon"), b"daemon\n", 0o4750, T_2023);
    std::os::unix::fs::symlink("numeric", j("owners/link-owned")).unwrap();
    if is_root() {
        let nobody = user_id("nobody").unwrap_or(65534);
        let nogroup = group_id("nogroup")
            .or_else(|| group_id("nobody"))
            .unwrap_or(65534);
        let daemon_u = user_id("daemon").unwrap_or(1);
        let daemon_g = group_id("daemon").unwrap_or(1);
        f.owners = lchown(&j("owners/numeric"), 12345, 54321)
            && lchown(&j("owners/nobody"), nobody, nogroup)
            && lchown(&j("owners/daemon"), daemon_u, daemon_g)
            && lchown(&j("owners/link-owned"), 12345, 54321)
            && lchown(&j("owners/numeric-dir"), 12345, 54321)
            // the root too: the `.` item of a `.`-rooted archive carries it to the destination
            && lchown(root, 12345, 54321);
        // chown cleared the setuid bit
        chmod(&j("owners/daemon"), 0o4750);
        if !f.owners {
            eprintln!("note: chown failed: foreign owners incomplete");
        }
    }
    set_mtime_ns(&j("owners/link-owned"), T_2001);
    for p in ["owners/numeric", "owners/nobody", "owners/daemon"] {
        set_mtime_ns(&j(p), T_2023);
    }
    // xattrs
    write(&j("xattrs/bin.txt"), b"xattrs\n", 0o644, T_2023);
    f.xattrs = setxattr(
        &j("xattrs/bin.txt"),
        "user.binary",
        b"\x00\xff\x01\x80bin\x00",
    ) && setxattr(&j("xattrs/bin.txt"), "user.text", b"hello xattr")
        && setxattr(&j("xattrs/dir"), "user.on-dir", b"dir value");
    if !f.xattrs {
        eprintln!("note: setting user xattrs failed: no xattrs in the tree");
    }
    // ACLs
    write(&j("acls/file-acl"), b"acl\n", 0o640, T_2023);
    f.acls = try_cmd(
        "setfacl",
        &[
            OsStr::new("-m"),
            OsStr::new("u:nobody:rw-,g:daemon:r--,u:12345:r--"),
            j("acls/file-acl").as_os_str(),
        ],
    ) && try_cmd(
        "setfacl",
        &[
            OsStr::new("-m"),
            OsStr::new("u:nobody:rwx,g:daemon:r-x"),
            j("acls/dir-acl").as_os_str(),
        ],
    ) && try_cmd(
        "setfacl",
        &[
            OsStr::new("-d"),
            OsStr::new("-m"),
            OsStr::new("u:nobody:r-x,g:daemon:rwx,g:54321:r--"),
            j("acls/dir-acl").as_os_str(),
        ],
    );
    if f.acls {
        // inherits the default ACL; mode 0670 makes the mask rwx, so that no entry has
        // "effective" rights that differ (that case is in build_acl_xattr_edge_tree)
        write(
            &j("acls/dir-acl/inherited.txt"),
            b"inherited\n",
            0o670,
            T_2023,
        );
    } else {
        eprintln!("note: setfacl failed (no ACL support?): no ACLs in the tree");
    }
    // names
    let names_dir = j("names");
    for (name, content) in [
        (&b"caf\xe9-latin1.txt"[..], &b"latin1\n"[..]),
        ("ünïcödé ☃.txt".as_bytes(), b"unicode\n"),
        (b"with space.txt", b"space\n"),
        (b"new\nline.txt", b"newline\n"),
        (b"tab\there", b"tab\n"),
        (b"dir with space/inner.txt", b"inner\n"),
    ] {
        write(
            &names_dir.join(OsStr::from_bytes(name)),
            content,
            0o644,
            T_2010,
        );
    }
    let bad_dir = names_dir.join(OsStr::from_bytes(b"\xff\xfe-dir"));
    fs::create_dir(&bad_dir).unwrap();
    write(
        &bad_dir.join(OsStr::from_bytes(b"x\x80y")),
        b"bytes\n",
        0o644,
        T_2010,
    );
    // directory modes and times last (deepest first)
    for (d, mode, t) in [
        ("dirs/nested/a/b/c", 0o755, T_2023),
        ("dirs/nested/a/b", 0o750, T_2010),
        ("dirs/nested/a", 0o755, T_NS),
        ("dirs/nested", 0o755, T_2001),
        ("dirs/empty", 0o755, T_1960),
        ("dirs/ro0555", 0o555, T_2010),
        ("dirs/sticky1777", 0o1777, T_2023),
        ("dirs/mode0700", 0o700, T_2100),
        ("dirs/setgid2775", 0o2775, T_2001),
        ("dirs", 0o755, T_2010),
        ("hl/sub", 0o755, T_2023),
        ("hl", 0o755, T_2023),
        ("links", 0o755, T_2023),
        ("special", 0o755, T_2023),
        ("owners/numeric-dir", 0o700, T_2023),
        ("owners", 0o755, T_2023),
        ("xattrs/dir", 0o755, T_2023),
        ("xattrs", 0o755, T_2023),
        ("acls/dir-acl", 0o770, T_2023),
        ("acls", 0o755, T_2023),
        ("names/dir with space", 0o755, T_2010),
        ("names", 0o755, T_2010),
        ("files", 0o755, T_2023),
        ("", 0o750, T_2001),
    ] {
        if !d.starts_with("acls") || f.acls {
            chmod(&j(d), mode);
        }
        set_mtime_ns(&j(d), t);
    }
    set_mtime_ns(&bad_dir, T_2010);
    set_mtime_ns(&names_dir, T_2010);
    f
}

/// A tiny tree with the xattr/ACL details that break naive readers (kept out of the big
/// tree so that one such problem does not hide all others): an xattr with an empty value
/// (borg stores it as nil) on a file and a directory, and a file that inherited a default
/// ACL whose mask hides rights (borg stores such entries as `user:nobody:r-x\t:65534`, with
/// a tab left from getfacl's "#effective:" comment).
pub fn build_acl_xattr_edge_tree(root: &Path) -> Features {
    let mut f = Features::default();
    fs::create_dir_all(root.join("xa/dir")).unwrap();
    fs::create_dir_all(root.join("acl/dflt")).unwrap();
    write(&root.join("xa/empty-value"), b"x\n", 0o644, T_2023);
    f.xattrs = setxattr(&root.join("xa/empty-value"), "user.empty", b"")
        && setxattr(&root.join("xa/empty-value"), "user.full", b"v")
        && setxattr(&root.join("xa/dir"), "user.empty-on-dir", b"");
    if !f.xattrs {
        eprintln!("note: setting user xattrs failed");
    }
    f.acls = try_cmd(
        "setfacl",
        &[
            OsStr::new("-d"),
            OsStr::new("-m"),
            OsStr::new("u:nobody:r-x,g:daemon:rwx,g:54321:r--"),
            root.join("acl/dflt").as_os_str(),
        ],
    );
    if f.acls {
        // created with 0640: the mask becomes r--, hiding x/w of the named entries
        let p = root.join("acl/dflt/masked.txt");
        fs::write(&p, b"masked\n").unwrap();
        set_mtime_ns(&p, T_2023);
        write(&root.join("acl/plain.txt"), b"plain\n", 0o640, T_2023);
        assert!(try_cmd(
            "setfacl",
            &[
                OsStr::new("-m"),
                OsStr::new("u:nobody:rwx,m::r--"),
                root.join("acl/plain.txt").as_os_str(),
            ],
        ));
    } else {
        eprintln!("note: setfacl failed (no ACL support?)");
    }
    for (d, t) in [
        ("xa/dir", T_2010),
        ("xa", T_2010),
        ("acl/dflt", T_2010),
        ("acl", T_2010),
        ("", T_2010),
    ] {
        set_mtime_ns(&root.join(d), t);
    }
    f
}

// ---------------------------------------------------------------------------------------
// snapshots
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Char,
    Block,
    Socket,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub kind: Kind,
    /// full st_mode
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u64,
    pub ino: u64,
    pub rdev: u64,
    pub size: u64,
    pub mtime_ns: i128,
    pub atime_ns: i128,
    pub target: Option<Vec<u8>>,
    /// name → value; Err(message) when they could not be read
    pub xattrs: Result<BTreeMap<Vec<u8>, Vec<u8>>, String>,
    pub content: Option<Vec<u8>>,
    /// (start, end) of every data segment (SEEK_DATA/SEEK_HOLE), regular files only
    pub data_map: Option<Vec<(u64, u64)>>,
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub root: PathBuf,
    /// relative path (b"" = the root) → node
    pub nodes: BTreeMap<Vec<u8>, Node>,
    /// `getfacl -R -P -p -n` blocks by path (as getfacl prints it), if getfacl ran
    pub acls: Option<BTreeMap<Vec<u8>, Vec<u8>>>,
}

fn join_rel(rel: &[u8], name: &[u8]) -> Vec<u8> {
    if rel.is_empty() {
        name.to_vec()
    } else {
        let mut v = rel.to_vec();
        v.push(b'/');
        v.extend_from_slice(name);
        v
    }
}

fn stat_node(p: &Path) -> Node {
    let m = fs::symlink_metadata(p).unwrap_or_else(|e| panic!("lstat {}: {e}", p.display()));
    let ft = m.mode() & libc::S_IFMT;
    let kind = match ft {
        libc::S_IFREG => Kind::File,
        libc::S_IFDIR => Kind::Dir,
        libc::S_IFLNK => Kind::Symlink,
        libc::S_IFIFO => Kind::Fifo,
        libc::S_IFCHR => Kind::Char,
        libc::S_IFBLK => Kind::Block,
        _ => Kind::Socket,
    };
    Node {
        kind,
        mode: m.mode(),
        uid: m.uid(),
        gid: m.gid(),
        nlink: m.nlink(),
        ino: m.ino(),
        rdev: m.rdev(),
        size: m.size(),
        mtime_ns: m.mtime() as i128 * S + m.mtime_nsec() as i128,
        atime_ns: m.atime() as i128 * S + m.atime_nsec() as i128,
        target: None,
        xattrs: Ok(BTreeMap::new()),
        content: None,
        data_map: None,
    }
}

fn read_xattrs(p: &Path) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, String> {
    let c = cstr(p);
    let mut out = BTreeMap::new();
    let n = unsafe { libc::llistxattr(c.as_ptr(), std::ptr::null_mut(), 0) };
    if n < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENOTSUP) {
            return Ok(out);
        }
        return Err(format!("llistxattr: {e}"));
    }
    let mut names = vec![0u8; n as usize + 256];
    let n = unsafe {
        libc::llistxattr(
            c.as_ptr(),
            names.as_mut_ptr() as *mut libc::c_char,
            names.len(),
        )
    };
    if n < 0 {
        return Err(format!("llistxattr: {}", std::io::Error::last_os_error()));
    }
    names.truncate(n as usize);
    for name in names.split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let cn = CString::new(name).unwrap();
        let len = unsafe { libc::lgetxattr(c.as_ptr(), cn.as_ptr(), std::ptr::null_mut(), 0) };
        if len < 0 {
            return Err(format!(
                "lgetxattr {}: {}",
                show(name),
                std::io::Error::last_os_error()
            ));
        }
        let mut v = vec![0u8; len as usize + 64];
        let len = unsafe {
            libc::lgetxattr(
                c.as_ptr(),
                cn.as_ptr(),
                v.as_mut_ptr() as *mut libc::c_void,
                v.len(),
            )
        };
        if len < 0 {
            return Err(format!(
                "lgetxattr {}: {}",
                show(name),
                std::io::Error::last_os_error()
            ));
        }
        v.truncate(len as usize);
        out.insert(name.to_vec(), v);
    }
    Ok(out)
}

fn data_map(p: &Path, size: u64) -> Option<Vec<(u64, u64)>> {
    use std::os::fd::AsRawFd;
    let f = fs::File::open(p).ok()?;
    let fd = f.as_raw_fd();
    let mut out = Vec::new();
    let mut pos: i64 = 0;
    while (pos as u64) < size {
        let d = unsafe { libc::lseek(fd, pos, libc::SEEK_DATA) };
        if d < 0 {
            break; // ENXIO: only a hole up to EOF
        }
        let h = unsafe { libc::lseek(fd, d, libc::SEEK_HOLE) };
        if h < 0 {
            return None;
        }
        out.push((d as u64, h as u64));
        pos = h;
    }
    Some(out)
}

impl Snapshot {
    /// Takes a snapshot of the tree at `root`. First every entry is `lstat`ed (a directory
    /// before it is read, so that reading does not disturb the atimes compared), then
    /// contents, xattrs, data maps and ACLs are read.
    pub fn take(root: &Path) -> Snapshot {
        let mut nodes = BTreeMap::new();
        nodes.insert(Vec::new(), stat_node(root));
        let mut stack: Vec<Vec<u8>> = vec![Vec::new()];
        while let Some(rel) = stack.pop() {
            let dir = root.join(OsStr::from_bytes(&rel));
            let mut names: Vec<OsString> = fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            for name in names {
                let child = join_rel(&rel, name.as_bytes());
                let node = stat_node(&dir.join(&name));
                if node.kind == Kind::Dir {
                    stack.push(child.clone());
                }
                nodes.insert(child, node);
            }
        }
        for (rel, node) in nodes.iter_mut() {
            let p = root.join(OsStr::from_bytes(rel));
            node.xattrs = read_xattrs(&p);
            match node.kind {
                Kind::Symlink => {
                    node.target = Some(fs::read_link(&p).unwrap().into_os_string().into_vec())
                }
                Kind::File => {
                    node.content =
                        Some(fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())));
                    node.data_map = data_map(&p, node.size);
                }
                _ => {}
            }
        }
        let acls = Command::new("getfacl")
            .args(["-R", "-P", "-p", "-n", "."])
            .current_dir(root)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| {
                let mut m = BTreeMap::new();
                for block in o
                    .stdout
                    .split(|b| *b == b'\n')
                    .collect::<Vec<_>>()
                    .split(|l| l.is_empty())
                {
                    if let Some((head, rest)) = block.split_first() {
                        if let Some(path) = head.strip_prefix(b"# file: ") {
                            m.insert(path.to_vec(), rest.join(&b'\n'));
                        }
                    }
                }
                m
            });
        Snapshot {
            root: root.to_path_buf(),
            nodes,
            acls,
        }
    }

    /// Hard-link groups: sorted path lists of non-directories sharing an inode (nlink > 1).
    pub fn link_groups(&self) -> BTreeSet<Vec<Vec<u8>>> {
        let mut by_ino: BTreeMap<u64, Vec<Vec<u8>>> = BTreeMap::new();
        for (rel, n) in &self.nodes {
            if n.kind != Kind::Dir && n.nlink > 1 {
                by_ino.entry(n.ino).or_default().push(rel.clone());
            }
        }
        by_ino
            .into_values()
            .map(|mut v| {
                v.sort();
                v
            })
            .collect()
    }

    pub fn is_empty_tree(&self) -> bool {
        self.nodes.len() == 1
    }
}

trait IntoVec {
    fn into_vec(self) -> Vec<u8>;
}
impl IntoVec for OsString {
    fn into_vec(self) -> Vec<u8> {
        std::os::unix::ffi::OsStringExt::into_vec(self)
    }
}

// ---------------------------------------------------------------------------------------
// comparison
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct CompareOpts {
    /// Compare the root directory's own metadata too (archives with a `.` item).
    pub root_meta: bool,
    /// Times at or after this (and within an hour of it) are "fresh": directories made
    /// implicitly as parents get the current time, so two fresh times count as equal.
    pub fresh_from_ns: i128,
}

fn fmt_mode(m: u32) -> String {
    format!("{m:o}")
}

fn fmt_ns(ns: i128) -> String {
    format!("{}.{:09}", ns.div_euclid(S), ns.rem_euclid(S))
}

fn fresh(t: i128, from: i128) -> bool {
    t >= from && t <= from + 3600 * S
}

fn first_diff(a: &[u8], b: &[u8]) -> String {
    let i = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    format!(
        "{} vs {} bytes, first difference at offset {i}",
        a.len(),
        b.len()
    )
}

fn show_xattrs(x: &Result<BTreeMap<Vec<u8>, Vec<u8>>, String>) -> String {
    match x {
        Err(e) => e.clone(),
        Ok(m) => {
            let v: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}={}", show(k), show(v)))
                .collect();
            format!("{{{}}}", v.join(", "))
        }
    }
}

/// Appends one message per difference between `a` (borg's tree) and `b` (oxiborg's) to
/// `diffs`, each prefixed with `label`.
pub fn compare(
    label: &str,
    a: &Snapshot,
    b: &Snapshot,
    opts: &CompareOpts,
    diffs: &mut Vec<String>,
) {
    let mut d = |m: String| diffs.push(format!("{label}: {m}"));
    for (rel, na) in &a.nodes {
        let p = show(rel);
        let Some(nb) = b.nodes.get(rel) else {
            d(format!(
                "{p}: missing in oxiborg's tree (borg: {:?} mode {})",
                na.kind,
                fmt_mode(na.mode)
            ));
            continue;
        };
        if na.kind != nb.kind {
            d(format!(
                "{p}: type: borg {:?}, oxiborg {:?}",
                na.kind, nb.kind
            ));
            continue;
        }
        let is_root = rel.is_empty();
        if !is_root || opts.root_meta {
            if na.mode != nb.mode && na.kind != Kind::Symlink {
                d(format!(
                    "{p}: mode: borg {}, oxiborg {}",
                    fmt_mode(na.mode),
                    fmt_mode(nb.mode)
                ));
            }
            if na.uid != nb.uid || na.gid != nb.gid {
                d(format!(
                    "{p}: owner: borg {}:{}, oxiborg {}:{}",
                    na.uid, na.gid, nb.uid, nb.gid
                ));
            }
            let from = opts.fresh_from_ns;
            for (what, ta, tb) in [
                ("mtime", na.mtime_ns, nb.mtime_ns),
                ("atime", na.atime_ns, nb.atime_ns),
            ] {
                let same = ta == tb || (fresh(ta, from) && fresh(tb, from));
                if !same {
                    d(format!(
                        "{p}: {what}: borg {}, oxiborg {}",
                        fmt_ns(ta),
                        fmt_ns(tb)
                    ));
                }
            }
            if na.xattrs != nb.xattrs {
                d(format!(
                    "{p}: xattrs: borg {}, oxiborg {}",
                    show_xattrs(&na.xattrs),
                    show_xattrs(&nb.xattrs)
                ));
            }
        }
        if !is_root && na.kind != Kind::Dir && na.nlink != nb.nlink {
            d(format!(
                "{p}: nlink: borg {}, oxiborg {}",
                na.nlink, nb.nlink
            ));
        }
        match na.kind {
            Kind::Symlink if na.target != nb.target => {
                d(format!(
                    "{p}: symlink target: borg {}, oxiborg {}",
                    show(na.target.as_deref().unwrap_or_default()),
                    show(nb.target.as_deref().unwrap_or_default())
                ));
            }
            Kind::File => {
                if na.content != nb.content {
                    d(format!(
                        "{p}: content differs: {}",
                        first_diff(
                            na.content.as_deref().unwrap(),
                            nb.content.as_deref().unwrap()
                        )
                    ));
                }
                if na.data_map != nb.data_map {
                    d(format!(
                        "{p}: data/hole map (SEEK_DATA/SEEK_HOLE): borg {:?}, oxiborg {:?}",
                        na.data_map, nb.data_map
                    ));
                }
            }
            Kind::Char | Kind::Block if na.rdev != nb.rdev => {
                d(format!(
                    "{p}: rdev: borg {:#x}, oxiborg {:#x}",
                    na.rdev, nb.rdev
                ));
            }
            _ => {}
        }
    }
    for (rel, nb) in &b.nodes {
        if !a.nodes.contains_key(rel) {
            d(format!(
                "{}: only in oxiborg's tree ({:?} mode {})",
                show(rel),
                nb.kind,
                fmt_mode(nb.mode)
            ));
        }
    }
    let (ga, gb) = (a.link_groups(), b.link_groups());
    if ga != gb {
        let fmt = |g: &Vec<Vec<u8>>| g.iter().map(|p| show(p)).collect::<Vec<_>>().join(" = ");
        for g in ga.difference(&gb) {
            d(format!("hard-link group only in borg's tree: {}", fmt(g)));
        }
        for g in gb.difference(&ga) {
            d(format!(
                "hard-link group only in oxiborg's tree: {}",
                fmt(g)
            ));
        }
    }
    match (&a.acls, &b.acls) {
        (Some(x), Some(y)) => {
            for (path, ta) in x {
                if path.as_slice() == b"." && !opts.root_meta {
                    continue;
                }
                match y.get(path) {
                    // base entries and "# flags" only mirror the mode, compared above
                    Some(tb) if acl_extended(ta) == acl_extended(tb) => {}
                    Some(tb) => d(format!(
                        "{}: getfacl: borg [{}], oxiborg [{}]",
                        show(path),
                        show(ta),
                        show(tb)
                    )),
                    None => {} // missing paths are reported above
                }
            }
        }
        (Some(_), None) => d("getfacl failed on oxiborg's tree".into()),
        _ => {}
    }
}

/// The named/mask/default entries of a `getfacl` block.
fn acl_extended(block: &[u8]) -> Vec<&[u8]> {
    block
        .split(|b| *b == b'\n')
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with(b"#")
                && !l.starts_with(b"user::")
                && !l.starts_with(b"group::")
                && !l.starts_with(b"other::")
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// running borg and oxiborg side by side
// ---------------------------------------------------------------------------------------

/// Runs extract cases for one repository with borg and oxiborg and collects differences.
pub struct Runner<'a> {
    pub env: &'a TestEnv,
    pub borg: &'a Borg,
    pub repo: PathBuf,
    /// where the extraction directories are made
    pub out: PathBuf,
    pub diffs: Vec<String>,
    n: usize,
}

/// Arguments of one case: `extract OPTS... REPO::ARCHIVE PATHS...`
#[derive(Debug, Clone, Default)]
pub struct Args {
    pub opts: Vec<OsString>,
    pub paths: Vec<OsString>,
}

impl Args {
    pub fn new(opts: &[&str], paths: &[&str]) -> Args {
        Args {
            opts: opts.iter().map(OsString::from).collect(),
            paths: paths.iter().map(OsString::from).collect(),
        }
    }
    /// The command line: `extract … REPO::ARCHIVE PATH…`, or with `borg2` borg 2's
    /// `-r REPO extract … ARCHIVE PATH…` (which oxiborg takes too).
    fn build(&self, repo: &Path, archive: &str, pre: &[OsString], borg2: bool) -> Vec<OsString> {
        let mut v: Vec<OsString> = Vec::new();
        if borg2 {
            v.extend(["-r".into(), repo.as_os_str().to_os_string()]);
        }
        v.push("extract".into());
        v.extend(pre.iter().cloned());
        v.extend(self.opts.iter().cloned());
        v.push(if borg2 {
            archive.into()
        } else {
            repo_archive(repo, archive)
        });
        v.extend(self.paths.iter().cloned());
        v
    }
}

fn dir_names(p: &Path) -> BTreeSet<OsString> {
    fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect()
}

fn fresh_dir(p: &Path) {
    let _ = fs::remove_dir_all(p);
    fs::create_dir_all(p).unwrap();
    chmod(p, 0o755);
}

/// Removes a tree made by an extraction (dirs may be read-only; we are usually root).
pub fn remove_tree(p: &Path) {
    fn loosen(p: &Path) {
        if let Ok(m) = fs::symlink_metadata(p) {
            if m.is_dir() {
                let _ = fs::set_permissions(p, fs::Permissions::from_mode(0o700));
                if let Ok(rd) = fs::read_dir(p) {
                    for e in rd.flatten() {
                        loosen(&e.path());
                    }
                }
            }
        }
    }
    loosen(p);
    let _ = fs::remove_dir_all(p);
}

impl<'a> Runner<'a> {
    pub fn new(env: &'a TestEnv, borg: &'a Borg, repo: &Path) -> Runner<'a> {
        let out = env.path().join("out");
        fs::create_dir_all(&out).unwrap();
        Runner {
            env,
            borg,
            repo: repo.to_path_buf(),
            out,
            diffs: Vec::new(),
            n: 0,
        }
    }

    fn next_dirs(&mut self, name: &str) -> (PathBuf, PathBuf, PathBuf) {
        self.n += 1;
        let base = format!("{:02}-{}", self.n, name.replace(['/', ' '], "_"));
        (
            self.out.join(format!("{base}-borg")),
            self.out.join(format!("{base}-oxi")),
            self.out.join(format!("{base}-oxiC")),
        )
    }

    fn push(&mut self, m: String) {
        self.diffs.push(m);
    }

    /// borg extract (cwd A) vs oxiborg extract (cwd B) and, if `dash_c`, oxiborg `-C B2`
    /// (a relative path, cwd = the test dir). Compares exit codes and trees.
    /// Returns the snapshot of borg's tree (None if borg failed).
    pub fn case(
        &mut self,
        name: &str,
        archive: &str,
        args: &Args,
        root_meta: bool,
        dash_c: bool,
    ) -> Option<Snapshot> {
        let (a, b, b2) = self.next_dirs(name);
        fresh_dir(&a);
        fresh_dir(&b);
        let from = now_ns() - S;
        let mut cmd = self.env.borg_cmd(
            self.borg,
            args.build(&self.repo, archive, &[], self.borg.label == "2"),
        );
        cmd.current_dir(&a);
        let bo = run_command(cmd);
        if bo.code != 0 && bo.code != 1 {
            self.push(format!(
                "{name}: borg itself failed (test setup?)\n{}",
                bo.describe()
            ));
            return None;
        }
        let mut cmd =
            self.env
                .oxiborg_cmd(args.build(&self.repo, archive, &[], self.borg.label == "2"));
        cmd.current_dir(&b);
        let oo = run_command(cmd);
        let opts = CompareOpts {
            root_meta,
            fresh_from_ns: from,
        };
        self.check_run(name, &bo, &oo);
        let sa = Snapshot::take(&a);
        let sb = Snapshot::take(&b);
        compare(name, &sa, &sb, &opts, &mut self.diffs);
        if dash_c {
            fresh_dir(&b2);
            let rel = b2.strip_prefix(self.env.path()).unwrap().to_path_buf();
            let pre = vec![OsString::from("-C"), rel.into_os_string()];
            let before = dir_names(self.env.path());
            let oc =
                self.env
                    .oxiborg(args.build(&self.repo, archive, &pre, self.borg.label == "2"));
            let after = dir_names(self.env.path());
            if before != after {
                self.push(format!(
                    "{name} (-C): the cwd of oxiborg changed: before {before:?}, after {after:?}"
                ));
            }
            let label = format!("{name} (-C)");
            self.check_run(&label, &bo, &oc);
            let sc = Snapshot::take(&b2);
            compare(&label, &sa, &sc, &opts, &mut self.diffs);
            // nothing may land in the cwd (the test dir) itself
            remove_tree(&b2);
        }
        remove_tree(&a);
        remove_tree(&b);
        Some(sa)
    }

    fn check_run(&mut self, name: &str, bo: &Output, oo: &Output) {
        if oo.stderr.contains("panicked") || oo.code < 0 {
            self.push(format!(
                "{name}: oxiborg panicked or was killed\n{}",
                oo.describe()
            ));
        }
        if bo.code != oo.code {
            self.push(format!(
                "{name}: exit code: borg {}, oxiborg {}\n  borg stderr: {}\n  oxiborg stderr: {}",
                bo.code,
                oo.code,
                bo.stderr.trim(),
                oo.stderr.trim()
            ));
        }
    }

    /// `--stdout`: oxiborg's stdout must be byte-identical to borg's. `expect_data`: borg is
    /// expected to write something (a check of the test itself).
    pub fn stdout_case(&mut self, name: &str, archive: &str, args: &Args, expect_data: bool) {
        let mut args = args.clone();
        args.opts.insert(0, "--stdout".into());
        let (a, b, _) = self.next_dirs(name);
        fresh_dir(&a);
        fresh_dir(&b);
        let mut cmd = self.env.borg_cmd(
            self.borg,
            args.build(&self.repo, archive, &[], self.borg.label == "2"),
        );
        cmd.current_dir(&a);
        let bo = run_command(cmd);
        let mut cmd =
            self.env
                .oxiborg_cmd(args.build(&self.repo, archive, &[], self.borg.label == "2"));
        cmd.current_dir(&b);
        let oo = run_command(cmd);
        self.check_run(name, &bo, &oo);
        if bo.stdout != oo.stdout {
            self.push(format!(
                "{name}: stdout differs: {}",
                first_diff(&bo.stdout, &oo.stdout)
            ));
        }
        if expect_data && bo.stdout.is_empty() {
            self.push(format!("{name}: borg wrote nothing (test setup?)"));
        }
        for (who, d) in [("borg", &a), ("oxiborg", &b)] {
            if !Snapshot::take(d).is_empty_tree() {
                self.push(format!(
                    "{name}: {who} created files in its cwd with --stdout"
                ));
            }
        }
        remove_tree(&a);
        remove_tree(&b);
    }

    /// `--dry-run` (and `-n`): exit 0 like borg, and the cwd stays empty.
    pub fn dry_run_case(&mut self, name: &str, archive: &str, args: &Args) {
        let (a, b, b2) = self.next_dirs(name);
        fresh_dir(&a);
        fresh_dir(&b);
        fresh_dir(&b2);
        let mut cmd = self.env.borg_cmd(
            self.borg,
            args.build(&self.repo, archive, &[], self.borg.label == "2"),
        );
        cmd.current_dir(&a);
        let bo = run_command(cmd);
        let mut cmd =
            self.env
                .oxiborg_cmd(args.build(&self.repo, archive, &[], self.borg.label == "2"));
        cmd.current_dir(&b);
        let oo = run_command(cmd);
        self.check_run(name, &bo, &oo);
        if oo.code != 0 {
            self.push(format!(
                "{name}: oxiborg exit code {} (expected 0)",
                oo.code
            ));
        }
        let pre = vec![OsString::from("-C"), b2.clone().into_os_string()];
        let oc = self
            .env
            .oxiborg(args.build(&self.repo, archive, &pre, self.borg.label == "2"));
        self.check_run(&format!("{name} (-C)"), &bo, &oc);
        for (who, d) in [("borg", &a), ("oxiborg", &b), ("oxiborg -C", &b2)] {
            let s = Snapshot::take(d);
            if !s.is_empty_tree() {
                let names: Vec<String> = s.nodes.keys().skip(1).take(5).map(|k| show(k)).collect();
                self.push(format!(
                    "{name}: {who} wrote into the destination: {names:?}"
                ));
            }
        }
        remove_tree(&a);
        remove_tree(&b);
        remove_tree(&b2);
    }

    /// `--list`: the lines on stderr (item paths) must equal borg's.
    pub fn list_case(&mut self, name: &str, archive: &str, args: &Args) {
        let (a, b, _) = self.next_dirs(name);
        fresh_dir(&a);
        fresh_dir(&b);
        let mut cmd = self.env.borg_cmd(
            self.borg,
            args.build(&self.repo, archive, &[], self.borg.label == "2"),
        );
        cmd.current_dir(&a);
        let bo = run_command(cmd);
        let mut cmd =
            self.env
                .oxiborg_cmd(args.build(&self.repo, archive, &[], self.borg.label == "2"));
        cmd.current_dir(&b);
        let oo = run_command(cmd);
        self.check_run(name, &bo, &oo);
        let mut d = Vec::new();
        text_diff(bo.stderr.as_bytes(), oo.stderr.as_bytes(), &mut d);
        for m in d {
            self.push(format!("{name}: --list output (stderr): {m}"));
        }
        remove_tree(&a);
        remove_tree(&b);
    }
}

/// `(path, source)` of every hard-link member (non-symlink item with a source) under
/// `paths`, via `borg list --format`.
pub fn hardlink_members(
    env: &TestEnv,
    borg: &Borg,
    repo: &Path,
    archive: &str,
    paths: &[&str],
) -> Vec<(String, String)> {
    let mut args: Vec<OsString> = vec![
        "list".into(),
        "--format".into(),
        "{type}\t{path}\t{source}{NL}".into(),
        repo_archive(repo, archive),
    ];
    args.extend(paths.iter().map(OsString::from));
    let out = env.borg_ok(borg, args);
    out.stdout_str()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() == 3 && f[0] != "l" && !f[2].is_empty())
                .then(|| (f[1].to_string(), f[2].to_string()))
        })
        .collect()
}

/// Checks that borg's extraction of the full source tree (root `src`) really has the
/// features the comparison is meant to cover, so that a tree degenerated by the machine (or
/// by borg not archiving something) is noticed instead of silently comparing less.
pub fn check_borg_tree(snap: &Snapshot, f: &Features, diffs: &mut Vec<String>) {
    let mut need = |cond: bool, what: &str| {
        if !cond {
            diffs.push(format!("test setup: borg's extracted tree lacks {what}"));
        }
    };
    let node = |p: &str| snap.nodes.get(p.as_bytes());
    let kind_is = |p: &str, k: Kind| node(p).is_some_and(|n| n.kind == k);
    need(kind_is("src/special/fifo", Kind::Fifo), "the fifo");
    need(
        kind_is("src/links/dangling", Kind::Symlink),
        "the dangling symlink",
    );
    need(
        node("src/files/suid").is_some_and(|n| n.mode & 0o7777 == 0o4755),
        "setuid mode 4755 on src/files/suid",
    );
    need(
        node("src/dirs/sticky1777").is_some_and(|n| n.mode & 0o7777 == 0o1777),
        "the sticky directory",
    );
    need(
        node("src/files/multi.bin").is_some_and(|n| n.size > 300 * 1024),
        "the multi-chunk file",
    );
    need(snap.link_groups().len() >= 3, "3 hard-link groups");
    if f.devices {
        need(
            node("src/special/null")
                .is_some_and(|n| n.kind == Kind::Char && n.rdev == libc::makedev(1, 3)),
            "the char device 1:3",
        );
        need(
            kind_is("src/special/loop200", Kind::Block),
            "the block device",
        );
    }
    if f.owners {
        need(
            node("src/owners/numeric").is_some_and(|n| n.uid == 12345 && n.gid == 54321),
            "owner 12345:54321",
        );
    }
    let has_xattr = |p: &str, name: &[u8]| {
        node(p).is_some_and(|n| n.xattrs.as_ref().is_ok_and(|x| x.contains_key(name)))
    };
    if f.xattrs {
        need(
            has_xattr("src/xattrs/bin.txt", b"user.binary"),
            "user.binary on src/xattrs/bin.txt",
        );
        need(
            has_xattr("src/xattrs/dir", b"user.on-dir"),
            "user.on-dir on src/xattrs/dir",
        );
    }
    if f.acls {
        need(
            has_xattr("src/acls/file-acl", b"system.posix_acl_access"),
            "the access ACL of src/acls/file-acl",
        );
        need(
            has_xattr("src/acls/dir-acl", b"system.posix_acl_default"),
            "the default ACL of src/acls/dir-acl",
        );
    }
}

/// A Python that can `import borg`: next to the borg binary first (the 1.4 venv), then the
/// system one.
#[allow(dead_code)]
pub fn borg_python(borg: &Borg) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(dir) = borg.path.parent() {
        candidates.push(dir.join("python3"));
        candidates.push(dir.join("python"));
    }
    candidates.push(PathBuf::from("/usr/bin/python3"));
    candidates.into_iter().find(|py| {
        Command::new(py)
            .args(["-c", "import borg.archive, borg.cache, borg.item"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    })
}

/// Lower-case hex.
#[allow(dead_code)]
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Prints both tools' exit codes and stderr for a case (shown when a test fails).
#[allow(dead_code)]
pub fn log_exits(label: &str, borg: &Output, oxiborg: &Output) {
    eprintln!(
        "{label}: borg exit {}, oxiborg exit {}\n  borg stderr:    {}\n  oxiborg stderr: {}",
        borg.code,
        oxiborg.code,
        borg.stderr.trim().replace('\n', "\n                  "),
        oxiborg.stderr.trim().replace('\n', "\n                  ")
    );
}

/// A borg (1.4 preferred) together with a Python that can `import borg`, for crafting archives.
/// `None` (after a note) when there is none; fails instead when `OXIBORG_REQUIRE_BORG=1`.
#[allow(dead_code)]
pub fn borg_with_python() -> Option<(Borg, PathBuf)> {
    for label in ["1.4", "1.2"] {
        if let Some(b) = borg(label) {
            if let Some(py) = borg_python(&b) {
                return Some((b, py));
            }
            let msg = format!(
                "no Python that can `import borg` next to {} or at /usr/bin/python3",
                b.path.display()
            );
            if require_borg() {
                panic!("OXIBORG_REQUIRE_BORG=1 but {msg}");
            }
            eprintln!("note: {msg}");
        }
    }
    eprintln!("note: skipping: no borg with a usable Python API");
    None
}

/// A `repokey-blake2` repository at `ENV/repo` holding one ordinary archive, `normal` (so the
/// repository and its cache are as borg leaves them before crafted archives are added).
#[allow(dead_code)]
pub fn repo_with_normal_archive(env: &TestEnv, borg: &Borg) -> PathBuf {
    let repo = env.path().join("repo");
    env.borg_init(borg, &repo, "repokey-blake2", &[]);
    let src = env.path().join("normal");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("normal.txt"), b"normal\n").unwrap();
    env.borg_create(borg, &repo, "normal", env.path(), &["normal"], &[]);
    repo
}

/// Adds archive `name` with the items of the JSON `spec` to `repo`, through borg's Python API
/// (`tests/extract_support/make_archive.py` run by `py`); `compression` as borg names it, or
/// `None` for the script's default.
#[allow(dead_code)]
pub fn make_archive(
    env: &TestEnv,
    py: &Path,
    repo: &Path,
    name: &str,
    spec: &str,
    compression: Option<&str>,
) {
    let spec_path = env.path().join(format!("{name}.json"));
    fs::write(&spec_path, spec).unwrap();
    let mut cmd = env.command(py);
    cmd.arg(manifest_dir().join("tests/extract_support/make_archive.py"))
        .arg(repo)
        .arg(name)
        .arg(&spec_path);
    if let Some(c) = compression {
        cmd.env("OXIBORG_COMPRESSION", c);
    }
    let out = run_command(cmd);
    assert_eq!(out.code, 0, "make_archive.py failed\n{}", out.describe());
}

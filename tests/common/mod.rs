//! Shared helpers for oxiborg's integration tests.
//!
//! * locating real borg binaries (`OXIBORG_BORG12`, default `/usr/bin/borg`;
//!   `OXIBORG_BORG14`, default `/opt/borg145/bin/borg`; `OXIBORG_BORG2`, default
//!   `/opt/borg2/bin/borg`, which must be borg 2.0.0b25). A version counts as available when
//!   `BORG --version` runs (for borg 2: and prints `borg 2.0.0b25`). When one is missing, tests
//!   that need it print a note and pass — unless `OXIBORG_REQUIRE_BORG=1`, then they fail.
//! * borg 2.0.0b25 repositories: [`borg2_repos`] runs `tests/borg2/make_repos.sh` once per
//!   test binary; [`borg2_fixture_repo`] copies a committed one from `testdata/borg2/`.
//! * [`TestEnv`]: a temporary directory with its own `BORG_BASE_DIR`/`HOME`, and the
//!   environment every borg / oxiborg child gets (passphrase, TZ=UTC, the two "access is ok"
//!   answers); no variable of the caller's environment starting with `BORG_` or `XDG_` leaks in.
//! * a small deterministic source tree ([`make_source_tree`]), fixture repositories
//!   ([`fixture_repo`]), JSON comparison ([`json_diff`]) and segment-file utilities.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// The passphrase of every fixture repository and of every repository the tests create.
pub const PASSPHRASE: &str = "oxiborg-test";

pub fn oxiborg_bin() -> &'static str {
    env!("CARGO_BIN_EXE_oxiborg")
}

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn testdata() -> PathBuf {
    manifest_dir().join("testdata")
}

// ---------------------------------------------------------------------------------------
// borg binaries
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct Borg {
    /// "1.2", "1.4" or "2" (borg 2.0.0b25)
    pub label: &'static str,
    pub path: PathBuf,
    /// output of `borg --version`, e.g. "borg 1.2.4"
    pub version: String,
}

pub fn require_borg() -> bool {
    std::env::var("OXIBORG_REQUIRE_BORG")
        .map(|v| v == "1")
        .unwrap_or(false)
}

fn probe_borg(label: &'static str, var: &str, default: &str) -> Result<Borg, String> {
    let path = std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    match Command::new(&path)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => Ok(Borg {
            label,
            path,
            version: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        }),
        Ok(out) => Err(format!(
            "borg {label} at {} ({var}) does not run: `--version` exited with {:?}: {}",
            path.display(),
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!(
            "borg {label} not found at {} (set {var}): {e}",
            path.display()
        )),
    }
}

/// The borg 2 version the borg 2 tests and fixtures are made for (`borg --version` output).
pub const BORG2_VERSION: &str = "borg 2.0.0b25";

/// Like [`probe_borg`] for `OXIBORG_BORG2`, and the binary must be [`BORG2_VERSION`] (borg 2
/// betas cannot read each other's repositories).
fn probe_borg2() -> Result<Borg, String> {
    let b = probe_borg("2", "OXIBORG_BORG2", "/opt/borg2/bin/borg")?;
    if b.version != BORG2_VERSION {
        return Err(format!(
            "borg 2 at {} (OXIBORG_BORG2) is {:?}, need {BORG2_VERSION:?}",
            b.path.display(),
            b.version
        ));
    }
    Ok(b)
}

/// Returns the borg binary for `label` ("1.2", "1.4" or "2"), or `None` after printing a note
/// (the caller then returns early, i.e. the test is skipped). Panics instead of skipping when
/// `OXIBORG_REQUIRE_BORG=1`.
pub fn borg(label: &str) -> Option<Borg> {
    let res = match label {
        "1.2" => probe_borg("1.2", "OXIBORG_BORG12", "/usr/bin/borg"),
        "1.4" => probe_borg("1.4", "OXIBORG_BORG14", "/opt/borg145/bin/borg"),
        "2" => probe_borg2(),
        other => panic!("unknown borg label {other}"),
    };
    match res {
        Ok(b) => Some(b),
        Err(msg) => {
            if require_borg() {
                panic!("OXIBORG_REQUIRE_BORG=1 but {msg}");
            }
            eprintln!("note: skipping: {msg}");
            None
        }
    }
}

/// borg 2.0.0b25 (`OXIBORG_BORG2`, default `/opt/borg2/bin/borg`): `borg("2")`, with the same
/// skip/fail rule as for borg 1.2 and 1.4.
pub fn borg2() -> Option<Borg> {
    borg("2")
}

/// Any available borg 1.x, 1.4 preferred (same skip/fail rule as [`borg`]: fails only when
/// `OXIBORG_REQUIRE_BORG=1` and a version is missing).
pub fn any_borg() -> Option<Borg> {
    let b14 = probe_borg("1.4", "OXIBORG_BORG14", "/opt/borg145/bin/borg");
    let b12 = probe_borg("1.2", "OXIBORG_BORG12", "/usr/bin/borg");
    if require_borg() {
        if let Err(m) = &b14 {
            panic!("OXIBORG_REQUIRE_BORG=1 but {m}");
        }
        if let Err(m) = &b12 {
            panic!("OXIBORG_REQUIRE_BORG=1 but {m}");
        }
    }
    match (b14, b12) {
        (Ok(b), _) | (_, Ok(b)) => Some(b),
        (Err(a), Err(b)) => {
            eprintln!("note: skipping: {a}; {b}");
            None
        }
    }
}

// ---------------------------------------------------------------------------------------
// running programs
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Output {
    pub cmdline: String,
    pub stdout: Vec<u8>,
    pub stderr: String,
    /// exit code; -1 if killed by a signal
    pub code: i32,
}

impl Output {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn describe(&self) -> String {
        let out = self.stdout_str();
        let out: String = out.chars().take(2000).collect();
        format!(
            "command: {}\nexit code: {}\n--- stderr ---\n{}\n--- stdout (first 2000 chars) ---\n{}",
            self.cmdline, self.code, self.stderr, out
        )
    }

    /// Exit code 0, and no panic message.
    pub fn assert_ok(&self) -> &Self {
        self.assert_no_panic();
        assert_eq!(self.code, 0, "expected exit code 0\n{}", self.describe());
        self
    }

    pub fn assert_no_panic(&self) -> &Self {
        assert!(
            !self.stderr.contains("panicked"),
            "the program panicked\n{}",
            self.describe()
        );
        assert!(self.code >= 0, "killed by a signal\n{}", self.describe());
        self
    }

    /// Exit code 2 (error), no panic, and every needle in stderr (case-insensitive).
    pub fn assert_error(&self, needles: &[&str]) -> &Self {
        self.assert_no_panic();
        assert_eq!(self.code, 2, "expected exit code 2\n{}", self.describe());
        let low = self.stderr.to_lowercase();
        for n in needles {
            assert!(
                low.contains(&n.to_lowercase()),
                "stderr does not contain {n:?}\n{}",
                self.describe()
            );
        }
        self
    }
}

/// Shell-quotes one word for a readable command line.
pub fn quote(a: &OsStr) -> String {
    let s = a.to_string_lossy();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

pub fn run_command(mut cmd: Command) -> Output {
    let mut cmdline: Vec<String> = vec![quote(cmd.get_program())];
    cmdline.extend(cmd.get_args().map(quote));
    let cmdline = cmdline.join(" ");
    cmd.stdin(Stdio::null());
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmdline}: {e}"));
    Output {
        cmdline,
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}

/// A scratch directory plus the environment for borg and oxiborg children.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    /// BORG_BASE_DIR (and HOME) of the children
    pub base: PathBuf,
    vars: BTreeMap<OsString, Option<OsString>>,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("oxiborg-test.")
            .tempdir()
            .expect("tempdir");
        let base = dir.path().join("base");
        fs::create_dir_all(&base).unwrap();
        let mut vars = BTreeMap::new();
        // keep the caller's BORG_*/XDG_* settings away from the children
        for (k, _) in std::env::vars_os() {
            let ks = k.to_string_lossy();
            if ks.starts_with("BORG_") || ks.starts_with("XDG_") {
                vars.insert(k.clone(), None);
            }
        }
        let mut env = TestEnv { dir, base, vars };
        let base = env.base.clone();
        env.set("BORG_PASSPHRASE", PASSPHRASE);
        env.set("BORG_BASE_DIR", &base);
        env.set("HOME", &base);
        env.set("BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK", "yes");
        env.set("BORG_RELOCATED_REPO_ACCESS_IS_OK", "yes");
        env.set("BORG_DISPLAY_PASSPHRASE", "no");
        env.set("TZ", "UTC");
        env.set("LANG", "C.UTF-8");
        env.set("LC_ALL", "C.UTF-8");
        env.set("RUST_BACKTRACE", "0");
        env
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn set(&mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> &mut Self {
        self.vars
            .insert(k.as_ref().to_owned(), Some(v.as_ref().to_owned()));
        self
    }

    pub fn unset(&mut self, k: impl AsRef<OsStr>) -> &mut Self {
        self.vars.insert(k.as_ref().to_owned(), None);
        self
    }

    /// A child command with this environment.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        for (k, v) in &self.vars {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.current_dir(self.path());
        cmd
    }

    pub fn oxiborg_cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(oxiborg_bin());
        cmd.args(args);
        cmd
    }

    /// Runs oxiborg with `args` (cwd = the temp dir) and captures its output.
    pub fn oxiborg<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_command(self.oxiborg_cmd(args))
    }

    pub fn borg_cmd<I, S>(&self, borg: &Borg, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(&borg.path);
        cmd.args(args);
        cmd
    }

    pub fn borg<I, S>(&self, borg: &Borg, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_command(self.borg_cmd(borg, args))
    }

    /// Runs borg and panics (with its stderr) unless it exits 0.
    pub fn borg_ok<I, S>(&self, borg: &Borg, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.borg(borg, args);
        assert_eq!(out.code, 0, "borg failed\n{}", out.describe());
        out
    }

    /// `borg init -e MODE [extra...] REPO`
    pub fn borg_init(&self, borg: &Borg, repo: &Path, mode: &str, extra: &[&str]) {
        let mut args: Vec<OsString> = vec!["init".into(), "-e".into(), mode.into()];
        args.extend(extra.iter().map(OsString::from));
        args.push(repo.into());
        self.borg_ok(borg, args);
    }

    /// `borg create [extra...] REPO::ARCHIVE PATHS...`, run in `cwd` (so that the paths are
    /// stored relative).
    pub fn borg_create(
        &self,
        borg: &Borg,
        repo: &Path,
        archive: &str,
        cwd: &Path,
        paths: &[&str],
        extra: &[&str],
    ) {
        let mut cmd = self.borg_cmd(borg, ["create"]);
        cmd.args(extra);
        cmd.arg(repo_archive(repo, archive));
        cmd.args(paths);
        cmd.current_dir(cwd);
        let out = run_command(cmd);
        assert_eq!(out.code, 0, "borg create failed\n{}", out.describe());
    }
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

/// `REPO::ARCHIVE` as one argument
pub fn repo_archive(repo: &Path, archive: &str) -> OsString {
    let mut s = repo.as_os_str().to_owned();
    s.push("::");
    s.push(archive);
    s
}

// ---------------------------------------------------------------------------------------
// source trees
// ---------------------------------------------------------------------------------------

/// Deterministic pseudo-random bytes (xorshift64*).
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Half random, half text: compressible, but not trivially.
pub fn mixed_content(seed: u64, len: usize) -> Vec<u8> {
    let rnd = pseudo_random(seed, len / 2);
    let mut out = Vec::with_capacity(len);
    let mut i = 0u64;
    while out.len() < len {
        let take = (len - out.len()).min(512);
        if (i % 2) == 0 {
            let off = ((i / 2) as usize * 512) % rnd.len().max(1);
            let end = (off + take).min(rnd.len());
            out.extend_from_slice(&rnd[off..end]);
            if end - off < take {
                out.resize(out.len() + take - (end - off), b'#');
            }
        } else {
            let mut line = Vec::new();
            while line.len() < take {
                writeln!(line, "line {} of seed {seed}", i * 1000 + line.len() as u64).unwrap();
            }
            line.truncate(take);
            out.extend_from_slice(&line);
        }
        i += 1;
    }
    out
}

/// Runs a program, panicking on failure (used for touch/mkfifo/ln).
pub fn sh(program: &str, args: &[&OsStr]) {
    let st = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(st.success(), "{program} {args:?} failed");
}

/// Sets the mtime (seconds since the epoch, may be negative) without following symlinks.
pub fn set_mtime(path: &Path, secs: i64) {
    let stamp = format!("@{secs}");
    sh(
        "touch",
        &[
            OsStr::new("-h"),
            OsStr::new("-d"),
            OsStr::new(&stamp),
            path.as_os_str(),
        ],
    );
}

fn write_file(path: &Path, content: &[u8], mode: u32, mtime: i64) {
    use std::os::unix::fs::PermissionsExt;
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap();
    }
    fs::write(path, content).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    set_mtime(path, mtime);
}

pub const M_2001: i64 = 981_173_106; // Sat, 2001-02-03 04:05:06 UTC
pub const M_2010: i64 = 1_286_705_410;
pub const M_2023: i64 = 1_700_000_000;
pub const M_1960: i64 = -315_619_200; // before 1970
pub const M_2100: i64 = 4_102_444_800; // after 2038

/// Builds a small tree at `root` (created; `root` should not exist yet): regular files
/// (one ~40 KiB pseudo-random so that small chunker params give several chunks), an empty
/// and a zero-filled file, nested and empty directories, a relative symlink, an absolute
/// dangling symlink, a hardlink pair, a fifo, a non-UTF-8 name (`caf\xe9`), spaces and
/// unicode, mtimes before 1970 and after 2038, an executable and a setuid file, a sticky
/// directory, an xattr `user.test` (if setfattr works) and a numeric-owner file (if root).
pub fn make_source_tree(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(root.join("dir/sub/deeper")).unwrap();
    fs::create_dir_all(root.join("dir/empty-dir")).unwrap();
    fs::create_dir_all(root.join("sticky")).unwrap();
    write_file(&root.join("hello.txt"), b"hello world\n", 0o644, M_2001);
    write_file(
        &root.join("random.bin"),
        &pseudo_random(42, 40 * 1024 + 7),
        0o644,
        M_2010,
    );
    write_file(&root.join("zeros.bin"), &vec![0u8; 20000], 0o644, M_2010);
    write_file(&root.join("empty.txt"), b"", 0o644, M_2010);
    write_file(
        &root.join("dir/sub/deeper/file.txt"),
        b"deep\n",
        0o600,
        M_2023,
    );
    write_file(&root.join("run.sh"), b"#!/bin/sh\necho hi\n", 0o755, M_2023);
    write_file(&root.join("setuid-bin"), b"suid\n", 0o4755, M_2023);
    write_file(&root.join("old-1960.txt"), b"old\n", 0o644, M_1960);
    write_file(&root.join("future-2100.txt"), b"future\n", 0o644, M_2100);
    write_file(
        &root.join(OsStr::from_bytes(b"caf\xe9-latin1.txt")),
        b"latin1\n",
        0o644,
        M_2010,
    );
    write_file(
        &root.join("with spaces ünïcödé ☃.txt"),
        b"unicode\n",
        0o644,
        M_2010,
    );
    write_file(&root.join("hardlink-a"), b"two names\n", 0o644, M_2001);
    fs::hard_link(root.join("hardlink-a"), root.join("dir/hardlink-b")).unwrap();
    std::os::unix::fs::symlink("dir/sub/deeper/file.txt", root.join("link-rel")).unwrap();
    std::os::unix::fs::symlink(
        "/nonexistent/oxiborg/dangling",
        root.join("link-abs-dangling"),
    )
    .unwrap();
    set_mtime(&root.join("link-rel"), M_2010);
    set_mtime(&root.join("link-abs-dangling"), M_2010);
    let fifo = root.join("fifo");
    sh(
        "mkfifo",
        &[OsStr::new("-m"), OsStr::new("644"), fifo.as_os_str()],
    );
    set_mtime(&fifo, M_2023);
    // optional bits
    let _ = Command::new("setfattr")
        .args(["-n", "user.test", "-v", "oxiborg-xattr"])
        .arg(root.join("hello.txt"))
        .stderr(Stdio::null())
        .status();
    write_file(&root.join("owned-numeric"), b"numeric\n", 0o644, M_2023);
    let _ = Command::new("chown")
        .arg("12345:54321")
        .arg(root.join("owned-numeric"))
        .stderr(Stdio::null())
        .status();
    fs::set_permissions(root.join("sticky"), fs::Permissions::from_mode(0o1777)).unwrap();
    for (d, t) in [
        ("sticky", M_2023),
        ("dir/empty-dir", M_2023),
        ("dir/sub/deeper", M_2023),
        ("dir/sub", M_2010),
        ("dir", M_2010),
        ("", M_2001),
    ] {
        set_mtime(&root.join(d), t);
    }
}

/// Writes `root/unique.bin` with content specific to `n` (so that an archive made after it
/// has new file chunks and new item chunks) and restores the directory's mtime.
pub fn set_unique_file(root: &Path, n: u64) {
    write_file(
        &root.join("unique.bin"),
        &mixed_content(1000 + n, 24 * 1024 + n as usize),
        0o644,
        M_2023,
    );
    set_mtime(root, M_2001);
}

// ---------------------------------------------------------------------------------------
// fixtures
// ---------------------------------------------------------------------------------------

pub const FIXTURE_REPOS: &[&str] = &[
    "repokey-blake2-lz4",
    "keyfile-zstd",
    "none-zlib",
    "authenticated-lzma",
    "repokey-auto-zstd",
    "keyfile-blake2-obfuscate",
];

pub fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for e in fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let ty = e.file_type().unwrap();
        let to = dst.join(e.file_name());
        if ty.is_dir() {
            copy_dir(&e.path(), &to);
        } else if ty.is_file() {
            fs::copy(e.path(), &to).unwrap();
        }
    }
}

/// Copies the committed fixture repository `name` into `env` (tests must not touch
/// testdata/) and points BORG_KEYS_DIR at testdata/keys. Returns the copy's path.
pub fn fixture_repo(env: &mut TestEnv, name: &str) -> PathBuf {
    let src = testdata().join("repos").join(name);
    assert!(
        src.join("config").is_file(),
        "fixture {} missing; run testdata/make-fixtures.sh",
        src.display()
    );
    let dst = env.path().join("repos").join(name);
    copy_dir(&src, &dst);
    env.set("BORG_KEYS_DIR", testdata().join("keys"));
    dst
}

/// One line of testdata/expected/<repo>/cases.tsv
#[derive(Debug, Clone)]
pub struct Case {
    pub file: String,
    /// arguments, with "@REPO@" still in them
    pub args: Vec<String>,
}

impl Case {
    pub fn args_for(&self, repo: &Path) -> Vec<OsString> {
        self.args
            .iter()
            .map(|a| match a.find("@REPO@") {
                Some(i) => {
                    let mut s = OsString::from(&a[..i]);
                    s.push(repo.as_os_str());
                    s.push(&a[i + "@REPO@".len()..]);
                    s
                }
                None => OsString::from(a),
            })
            .collect()
    }
}

pub fn expected_dir(name: &str) -> PathBuf {
    testdata().join("expected").join(name)
}

pub fn cases(name: &str) -> Vec<Case> {
    cases_in(&expected_dir(name))
}

/// The lines of `dir/cases.tsv` (an expected-output directory).
pub fn cases_in(dir: &Path) -> Vec<Case> {
    let p = dir.join("cases.tsv");
    let text = fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut it = l.split('\t');
            let file = it.next().unwrap().to_string();
            Case {
                file,
                args: it.map(str::to_string).collect(),
            }
        })
        .collect()
}

/// Archive names (in manifest time order) from the recorded `list.json`.
pub fn expected_archives(name: &str) -> Vec<(String, String)> {
    archives_of(&read_json(&expected_dir(name).join("list.json")))
}

/// The (name, id) pairs of a `borg list --json` document, in its order.
pub fn archives_of(v: &Value) -> Vec<(String, String)> {
    v["archives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                a["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

pub fn read_json(p: &Path) -> Value {
    let t = fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&t).unwrap_or_else(|e| panic!("{}: bad JSON: {e}", p.display()))
}

// ---------------------------------------------------------------------------------------
// borg 2.0.0b25 repositories
// ---------------------------------------------------------------------------------------

/// The second passphrase of the `multikey` repository of tests/borg2/make_repos.sh (every
/// repository there also opens with [`PASSPHRASE`]).
pub const BORG2_PASSPHRASE2: &str = "oxiborg-test-second";

/// The committed borg 2.0.0b25 fixtures in testdata/borg2/repos (testdata/borg2/README.md).
pub const BORG2_FIXTURE_REPOS: &[&str] = &[
    "chacha20-poly1305-blake3-repokey",
    "aes256-ocb-sha256-keyfile",
    "authenticated-blake3-repokey",
];

pub fn borg2_testdata() -> PathBuf {
    testdata().join("borg2")
}

/// testdata/borg2/expected/<name> (its cases.tsv: [`cases_in`]).
pub fn borg2_expected_dir(name: &str) -> PathBuf {
    borg2_testdata().join("expected").join(name)
}

/// Copies the committed borg 2 fixture repository `name` into `env` and points BORG_KEYS_DIR
/// at testdata/borg2/keys. Returns the copy's path. (git keeps no empty directories: the copy
/// has no empty `packs/XX`, `cache/` or `locks/`.)
pub fn borg2_fixture_repo(env: &mut TestEnv, name: &str) -> PathBuf {
    let src = borg2_testdata().join("repos").join(name);
    assert!(
        src.join("config/config").is_file(),
        "borg 2 fixture {} missing; run testdata/borg2/make-fixtures.sh",
        src.display()
    );
    let dst = env.path().join("repos").join(name);
    copy_dir(&src, &dst);
    env.set("BORG_KEYS_DIR", borg2_testdata().join("keys"));
    dst
}

/// One line of `repos.tsv` written by tests/borg2/make_repos.sh.
#[derive(Debug, Clone)]
pub struct Borg2Repo {
    /// directory name under the output directory
    pub name: String,
    /// `config/config` `encryption` (`aes256-ocb`, …); `borg1-repokey` for the borg 1.x
    /// source repository of `transferred`
    pub encryption: String,
    /// `config/config` `id_hash` (`sha256` or `blake3`)
    pub id_hash: String,
    /// `repokey` or `keyfile`
    pub key_location: String,
    /// every passphrase that opens it (the first is [`PASSPHRASE`])
    pub passphrases: Vec<String>,
    /// live archive names in `borg repo-list` order (archive time); names may repeat
    pub archives: Vec<String>,
}

impl Borg2Repo {
    /// The borg 1.x repository `transferred-source-borg1` (read it with borg 1.4).
    pub fn is_borg1(&self) -> bool {
        self.encryption.starts_with("borg1-")
    }
}

/// Parses `dir/repos.tsv` (see tests/borg2/make_repos.sh).
pub fn borg2_manifest(dir: &Path) -> Vec<Borg2Repo> {
    let p = dir.join("repos.tsv");
    let text = fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert!(f.len() >= 5, "{}: bad line {l:?}", p.display());
            Borg2Repo {
                name: f[0].to_string(),
                encryption: f[1].to_string(),
                id_hash: f[2].to_string(),
                key_location: f[3].to_string(),
                passphrases: f[4].split(',').map(str::to_string).collect(),
                archives: f[5..].iter().map(|s| s.to_string()).collect(),
            }
        })
        .collect()
}

enum Borg2Repos {
    Made(PathBuf),
    Skipped(String),
    Failed(String),
}

static BORG2_REPOS: std::sync::OnceLock<Borg2Repos> = std::sync::OnceLock::new();

/// The repositories of tests/borg2/make_repos.sh, made once per test binary (the first caller
/// runs the script, about a minute; the others wait) in
/// `<target>/tmp/borg2-repos/<test binary>` (replaced on the next run). Returns `None` after a
/// note when borg 2.0.0b25 is missing (the caller then returns early); panics instead when
/// `OXIBORG_REQUIRE_BORG=1`, and then borg 1.4 (for `transferred`) is required too. Panics if
/// the script fails.
///
/// The directory is shared by all tests of the binary: treat it as read-only. Copy a repository
/// ([`copy_borg2_repo`]) before running a borg command that writes to it — `check` writes
/// `cache/checked-packs`, and any borg command on `index-invalid` rebuilds its index and removes
/// the `cache/chunkindex-invalid` marker. Point BORG_KEYS_DIR at `<dir>/keys` ([`borg2_env`]).
pub fn borg2_repos() -> Option<PathBuf> {
    let state = BORG2_REPOS.get_or_init(|| {
        let Some(b2) = borg2() else {
            return Borg2Repos::Skipped("borg 2.0.0b25 missing".into());
        };
        let b14 = match probe_borg("1.4", "OXIBORG_BORG14", "/opt/borg145/bin/borg") {
            Ok(b) => b.path,
            Err(msg) if require_borg() => panic!("OXIBORG_REQUIRE_BORG=1 but {msg}"),
            Err(msg) => {
                eprintln!("note: {msg}: the borg 2 repositories have no `transferred`");
                PathBuf::from("/nonexistent/oxiborg/borg14")
            }
        };
        let exe = std::env::current_exe().expect("current_exe");
        let stem = exe.file_stem().expect("test binary name").to_os_string();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("borg2-repos")
            .join(stem);
        let script = manifest_dir().join("tests/borg2/make_repos.sh");
        let mut cmd = Command::new("bash");
        cmd.arg(&script)
            .arg(&dir)
            .env("OXIBORG_BORG2", &b2.path)
            .env("OXIBORG_BORG14", &b14);
        let out = run_command(cmd);
        if out.code != 0 {
            return Borg2Repos::Failed(format!(
                "tests/borg2/make_repos.sh failed\n{}",
                out.describe()
            ));
        }
        eprintln!("borg 2 repositories made in {}", dir.display());
        Borg2Repos::Made(dir)
    });
    match state {
        Borg2Repos::Made(dir) => Some(dir.clone()),
        Borg2Repos::Skipped(msg) => {
            eprintln!("note: skipping: {msg}");
            None
        }
        Borg2Repos::Failed(msg) => panic!("{msg}"),
    }
}

/// A [`TestEnv`] whose BORG_KEYS_DIR is the key directory of [`borg2_repos`]'s `dir`.
pub fn borg2_env(dir: &Path) -> TestEnv {
    let mut env = TestEnv::new();
    env.set("BORG_KEYS_DIR", dir.join("keys"));
    env
}

/// Copies repository `name` of [`borg2_repos`]'s `dir` into `env` and returns the copy's path.
pub fn copy_borg2_repo(env: &TestEnv, dir: &Path, name: &str) -> PathBuf {
    let dst = env.path().join("repos").join(name);
    copy_dir(&dir.join(name), &dst);
    dst
}

// ---------------------------------------------------------------------------------------
// comparisons
// ---------------------------------------------------------------------------------------

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 120 {
        format!("{}…", s.chars().take(120).collect::<String>())
    } else {
        s
    }
}

/// Appends one message per difference between `expected` and `actual` to `out`.
pub fn json_diff(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                match a.get(k) {
                    Some(av) => json_diff(&format!("{path}.{k}"), ev, av, out),
                    None => out.push(format!("{path}.{k}: missing (expected {})", short(ev))),
                }
            }
            for k in a.keys() {
                if !e.contains_key(k) {
                    out.push(format!(
                        "{path}.{k}: unexpected key (value {})",
                        short(&a[k])
                    ));
                }
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                json_diff(&format!("{path}[{i}]"), ev, av, out);
            }
        }
        (Value::Number(e), Value::Number(a)) => {
            let same = e == a || matches!((e.as_f64(), a.as_f64()), (Some(x), Some(y)) if x == y);
            if !same {
                out.push(format!("{path}: expected {e}, got {a}"));
            }
        }
        _ => {
            if expected != actual {
                out.push(format!(
                    "{path}: expected {}, got {}",
                    short(expected),
                    short(actual)
                ));
            }
        }
    }
}

/// Line-by-line comparison of JSON Lines output: same number of lines, each line parsed
/// and compared field for field.
pub fn jsonl_diff(expected: &str, actual: &str, out: &mut Vec<String>) {
    let el: Vec<&str> = expected.lines().collect();
    let al: Vec<&str> = actual.lines().collect();
    if el.len() != al.len() {
        out.push(format!(
            "expected {} lines, got {} lines",
            el.len(),
            al.len()
        ));
    }
    for (i, (e, a)) in el.iter().zip(&al).enumerate() {
        let ev: Value = match serde_json::from_str(e) {
            Ok(v) => v,
            Err(err) => {
                out.push(format!("expected line {} is not JSON ({err}): {e}", i + 1));
                continue;
            }
        };
        let av: Value = match serde_json::from_str(a) {
            Ok(v) => v,
            Err(err) => {
                out.push(format!("line {} is not JSON ({err}): {a}", i + 1));
                continue;
            }
        };
        let what = ev
            .get("path")
            .and_then(|p| p.as_str())
            .unwrap_or("?")
            .to_string();
        json_diff(&format!("line {} ({what})", i + 1), &ev, &av, out);
    }
}

/// Exact text comparison; on mismatch one message naming the first differing line.
pub fn text_diff(expected: &[u8], actual: &[u8], out: &mut Vec<String>) {
    if expected == actual {
        return;
    }
    let e = String::from_utf8_lossy(expected);
    let a = String::from_utf8_lossy(actual);
    let el: Vec<&str> = e.split_inclusive('\n').collect();
    let al: Vec<&str> = a.split_inclusive('\n').collect();
    for i in 0..el.len().max(al.len()) {
        let x = el.get(i).copied();
        let y = al.get(i).copied();
        if x != y {
            out.push(format!(
                "first difference at line {} (expected {} lines, got {}):\n  expected: {:?}\n  actual:   {:?}",
                i + 1,
                el.len(),
                al.len(),
                x.unwrap_or("<none>"),
                y.unwrap_or("<none>")
            ));
            return;
        }
    }
    out.push("outputs differ (invisible difference)".into());
}

/// Compares a command's output with borg's recorded output `expected` by the recorded file's
/// kind: `*.jsonl` line by line as JSON, `*.json` as JSON after `normalize` (which drops what
/// depends on the machine) on both sides, anything else byte for byte.
pub fn recorded_diff(
    file: &str,
    expected: &[u8],
    actual: &[u8],
    normalize: &dyn Fn(&mut Value),
    out: &mut Vec<String>,
) {
    if file.ends_with(".jsonl") {
        jsonl_diff(
            &String::from_utf8_lossy(expected),
            &String::from_utf8_lossy(actual),
            out,
        );
    } else if file.ends_with(".json") {
        let mut ev: Value = serde_json::from_slice(expected).unwrap();
        match serde_json::from_slice::<Value>(actual) {
            Err(e) => out.push(format!(
                "output is not JSON ({e}): {}",
                String::from_utf8_lossy(actual)
            )),
            Ok(mut av) => {
                normalize(&mut ev);
                normalize(&mut av);
                json_diff("", &ev, &av, out);
            }
        }
    } else {
        text_diff(expected, actual, out);
    }
}

/// Fails the test with all collected differences.
pub fn assert_no_diffs(what: &str, diffs: &[String]) {
    if !diffs.is_empty() {
        let n = diffs.len();
        let shown: Vec<&String> = diffs.iter().take(60).collect();
        panic!(
            "{what}: {n} difference(s):\n{}{}",
            shown
                .iter()
                .map(|s| format!("  - {s}\n"))
                .collect::<String>(),
            if n > 60 { "  …\n" } else { "" }
        );
    }
}

// ---------------------------------------------------------------------------------------
// segment files
// ---------------------------------------------------------------------------------------

pub const TAG_PUT: u8 = 0;
pub const TAG_DELETE: u8 = 1;
pub const TAG_COMMIT: u8 = 2;

/// zlib CRC-32 (the one borg uses for segment entries)
pub fn crc32(data: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (i, t) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *t = c;
    }
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc = table[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    crc ^ 0xFFFF_FFFF
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub offset: usize,
    pub size: usize,
    pub tag: u8,
    pub id: Option<[u8; 32]>,
}

/// Parses a segment file (`BORG_SEG` + entries); stops at the first malformed entry.
pub fn parse_segment(bytes: &[u8]) -> Vec<Entry> {
    assert_eq!(&bytes[..8], b"BORG_SEG", "not a segment file");
    let mut off = 8;
    let mut out = Vec::new();
    while off + 9 <= bytes.len() {
        let size = u32::from_le_bytes(bytes[off + 4..off + 8].try_into().unwrap()) as usize;
        let tag = bytes[off + 8];
        if size < 9 || off + size > bytes.len() {
            break;
        }
        let id = if tag == TAG_PUT || tag == TAG_DELETE {
            Some(bytes[off + 9..off + 41].try_into().unwrap())
        } else {
            None
        };
        out.push(Entry {
            offset: off,
            size,
            tag,
            id,
        });
        off += size;
    }
    out
}

/// All numeric segment files under `repo/data`, sorted by number.
pub fn segment_files(repo: &Path) -> Vec<(u64, PathBuf)> {
    let mut out = Vec::new();
    for d in fs::read_dir(repo.join("data")).unwrap() {
        let d = d.unwrap();
        if !d.file_type().unwrap().is_dir() {
            continue;
        }
        for f in fs::read_dir(d.path()).unwrap() {
            let f = f.unwrap();
            if let Some(n) = f.file_name().to_str().and_then(|s| s.parse::<u64>().ok()) {
                out.push((n, f.path()));
            }
        }
    }
    out.sort();
    out
}

/// The largest segment file (the one holding file, item and archive chunks).
pub fn largest_segment(repo: &Path) -> PathBuf {
    segment_files(repo)
        .into_iter()
        .max_by_key(|(_, p)| fs::metadata(p).unwrap().len())
        .expect("no segments")
        .1
}

/// Finds the PUT entry of object `id` (latest one, in segment order).
pub fn find_put(repo: &Path, id: &[u8; 32]) -> Option<(PathBuf, Entry)> {
    let mut found = None;
    for (_, p) in segment_files(repo) {
        let bytes = fs::read(&p).unwrap();
        if bytes.len() < 8 {
            continue;
        }
        for e in parse_segment(&bytes) {
            if e.tag == TAG_PUT && e.id.as_ref() == Some(id) {
                found = Some((p.clone(), e));
            }
        }
    }
    found
}

/// Recomputes the CRC-32 of the entry at `e.offset` in `bytes`.
pub fn fix_entry_crc(bytes: &mut [u8], e: &Entry) {
    let crc = crc32(&bytes[e.offset + 4..e.offset + e.size]);
    bytes[e.offset..e.offset + 4].copy_from_slice(&crc.to_le_bytes());
}

pub fn hex_to_id(h: &str) -> [u8; 32] {
    let mut id = [0u8; 32];
    assert_eq!(h.len(), 64, "not a 64-hex-digit id: {h}");
    for i in 0..32 {
        id[i] = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap();
    }
    id
}

//! Inputs at the limits, each of which used to take a whole restore down, crafted with borg's
//! Python API (`tests/extract_support/make_archive.py`):
//!
//! * paths thousands of levels deep (a property test over depth, seeded): oxiborg used to
//!   overflow its stack on 20,000 levels and restore nothing. Now every item up to
//!   `MAX_DEPTH` levels is restored, every deeper one is refused by name, everything else is
//!   restored; `list`, `--dry-run`, `--strip-components`, `export-tar` and `check` take the
//!   archive too. (borg 1.4.5 stops the whole extract with a `RecursionError` on such an item.)
//! * a valid chunk of 200 MiB (zeros, zstd): it used to make the whole item stream undecodable;
//!   now it is restored exactly as borg 1.4.5 restores it (compared tree to tree), and read by
//!   `--stdout`, `export-tar`, `check --verify-data` and the library's `FileReader`.
//! * a chunk too big for the memory the process may have (an address-space limit): that one
//!   file is not restored, by name; the rest is.
//! * a destination that runs out of space, then of inodes (a small tmpfs; needs root, skipped
//!   with a note otherwise): the up-front warning, each file that found no room named, no
//!   temporaries, and the closing line `N of M files not restored: No space left on device;
//!   X needed`.
//!
//! Skipped with a note (failed under `OXIBORG_REQUIRE_BORG=1`) without borg and its Python.

mod common;
mod extract_support;

use common::*;
use extract_support::*;
use oxiborg::extract::MAX_DEPTH;
use serde_json::{json, Value};
use std::ffi::OsString;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

/// A repository (with one ordinary archive) to add crafted archives to.
struct Crafted {
    env: TestEnv,
    borg: Borg,
    py: PathBuf,
    repo: PathBuf,
}

fn crafted() -> Option<Crafted> {
    let (borg, py) = borg_with_python()?;
    let env = TestEnv::new();
    let repo = repo_with_normal_archive(&env, &borg);
    Some(Crafted {
        env,
        borg,
        py,
        repo,
    })
}

impl Crafted {
    fn add(&self, name: &str, items: &[Value], compression: &str) {
        let spec = serde_json::to_string(items).unwrap();
        make_archive(
            &self.env,
            &self.py,
            &self.repo,
            name,
            &spec,
            Some(compression),
        );
    }

    fn oxiborg(&self, args: &[&str], archive: &str, extra: &[&str]) -> Output {
        let mut a: Vec<OsString> = args.iter().map(OsString::from).collect();
        a.push(repo_archive(&self.repo, archive));
        a.extend(extra.iter().map(OsString::from));
        self.env.oxiborg(a)
    }
}

fn file(path: &[u8], data: &[u8]) -> Value {
    json!({"path": hex(path), "kind": "file", "data": hex(data)})
}

/// Reads `rel` below `root` one component at a time (paths far longer than PATH_MAX).
fn read_at(root: &Path, rel: &[u8]) -> Option<Vec<u8>> {
    use rustix::fs::{openat, Mode, OFlags, CWD};
    let dir = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut at = openat(CWD, root, dir, Mode::empty()).ok()?;
    let comps: Vec<&[u8]> = rel.split(|b| *b == b'/').collect();
    let (last, parents) = comps.split_last()?;
    for c in parents {
        at = openat(&at, *c, dir, Mode::empty()).ok()?;
    }
    let f = openat(&at, *last, OFlags::RDONLY | OFlags::NOFOLLOW, Mode::empty()).ok()?;
    let mut data = Vec::new();
    std::io::Read::read_to_end(&mut fs::File::from(f), &mut data).ok()?;
    Some(data)
}

/// Removes a tree of any depth without recursion (going back up through `..`), so that the
/// test directory can be removed.
fn remove_deep_tree(p: &Path) {
    use rustix::fs::{openat, unlinkat, AtFlags, Dir, FileType, Mode, OFlags, CWD};
    let dir = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let Ok(mut fd) = openat(CWD, p, dir, Mode::empty()) else {
        return;
    };
    let mut names: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut sub = None;
        for e in Dir::read_from(&fd).unwrap().flatten() {
            let name = e.file_name().to_bytes().to_vec();
            if name == b"." || name == b".." {
                continue;
            }
            if e.file_type() == FileType::Directory {
                sub = Some(name);
                break;
            }
            unlinkat(&fd, name.as_slice(), AtFlags::empty()).unwrap();
        }
        match sub {
            Some(name) => {
                fd = openat(&fd, name.as_slice(), dir, Mode::empty()).unwrap();
                names.push(name);
            }
            None => {
                let Some(name) = names.pop() else { break };
                fd = openat(&fd, "..", dir, Mode::empty()).unwrap();
                unlinkat(&fd, name.as_slice(), AtFlags::REMOVEDIR).unwrap();
            }
        }
    }
    drop(fd);
    let _ = fs::remove_dir(p);
}

/// Temporary files anywhere below `root` (any depth).
fn temporaries(root: &Path) -> usize {
    use rustix::fs::{openat, Dir, FileType, Mode, OFlags, CWD};
    let dir = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut n = 0;
    let Ok(top) = openat(CWD, root, dir, Mode::empty()) else {
        return 0;
    };
    let mut stack = vec![top];
    while let Some(fd) = stack.pop() {
        for e in Dir::read_from(&fd).unwrap().flatten() {
            let name = e.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            if name.starts_with(b".oxiborg-") {
                n += 1;
            }
            if e.file_type() == FileType::Directory {
                // (one descriptor per level at most on the stack of a chain: depth ≤ MAX)
                if let Ok(sub) = openat(&fd, name, dir, Mode::empty()) {
                    stack.push(sub);
                }
            }
        }
    }
    n
}

/// Deterministic xorshift64*.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// The tail of a long path as oxiborg's refusal shows it (the middle left out).
fn tail_of(path: &[u8]) -> String {
    let s = String::from_utf8_lossy(path).into_owned();
    let chars: Vec<char> = s.chars().collect();
    chars[chars.len().saturating_sub(60)..].iter().collect()
}

#[test]
fn deep_paths_are_refused_by_name_and_everything_else_restored() {
    let Some(c) = crafted() else {
        return;
    };
    // Depths at the boundaries, far beyond, and random ones (seeded), each a file below a
    // chain of directories with random names; ordinary files between them.
    let mut rng = Rng(0x0dd_ba11_5eed);
    let mut depths = vec![
        1,
        2,
        999,
        1000,
        4097,
        MAX_DEPTH - 1,
        MAX_DEPTH,
        MAX_DEPTH + 1,
        MAX_DEPTH + 2,
        20_000,
        100_000,
    ];
    depths.extend((0..5).map(|_| 1 + rng.below(MAX_DEPTH as u64 * 3 / 2) as usize));
    let names = ["x", "yy", "z.z", "w w"];
    let mut items = vec![file(b"good-first.txt", b"first\n")];
    // (path, content, depth)
    let mut deep: Vec<(Vec<u8>, Vec<u8>, usize)> = Vec::new();
    for (k, depth) in depths.iter().copied().enumerate() {
        let mut comps: Vec<String> = vec![format!("deep{k}")];
        comps.extend((1..depth.saturating_sub(1)).map(|_| names[rng.below(4) as usize].into()));
        comps.truncate(depth.saturating_sub(1));
        comps.push(format!("f{k}-{depth}"));
        let path = comps.join("/").into_bytes();
        let data = format!("item {k}, {depth} levels\n").into_bytes();
        items.push(file(&path, &data));
        items.push(file(format!("good-{k}.txt").as_bytes(), &data));
        deep.push((path, data, depth));
    }
    c.add("deep", &items, "lz4");
    let mut diffs = Vec::new();
    // The trees are restored into a tmpfs where one can be mounted: removing tens of thousands
    // of nested directories from a disk takes long, unmounting takes nothing.
    let base = c.env.path().join("trees");
    let mounted = Tmpfs::mount(&base, "size=256m,nr_inodes=1000000");
    let mut dests = Vec::new();
    for strip in [0usize, 1] {
        let dest = base.join(format!("dest-{strip}"));
        dests.push(dest.clone());
        let d = dest.to_str().unwrap();
        let strip_arg = strip.to_string();
        let out = c.oxiborg(
            &["extract", "-C", d, "--strip-components", &strip_arg],
            "deep",
            &[],
        );
        let label = format!("extract --strip-components {strip}");
        if out.code != 1 || out.stderr.contains("panicked") || out.stderr.contains("overflow") {
            diffs.push(format!(
                "{label}: expected exit code 1 (refused items)\n{}",
                out.describe()
            ));
        }
        let refusals = out
            .stderr
            .matches("levels deep; oxiborg restores at most")
            .count();
        let mut refused = 0;
        for (path, data, depth) in &deep {
            let kept = depth - strip.min(*depth);
            let rel: Vec<u8> = path
                .split(|b| *b == b'/')
                .skip(strip)
                .collect::<Vec<_>>()
                .join(&b'/');
            let got = if kept == 0 {
                None
            } else {
                read_at(&dest, &rel)
            };
            if kept > MAX_DEPTH {
                refused += 1;
                let named = format!("refusing to extract: path is {kept} levels deep");
                if !out.stderr.contains(&named) || !out.stderr.contains(&tail_of(path)) {
                    diffs.push(format!("{label}: {depth} levels: not refused by name"));
                }
                if got.is_some() {
                    diffs.push(format!("{label}: {depth} levels: restored anyway"));
                }
            } else if kept > 0 && got.as_deref() != Some(data.as_slice()) {
                diffs.push(format!("{label}: {depth} levels: not restored ({got:?})"));
            }
        }
        if refusals != refused {
            diffs.push(format!(
                "{label}: {refusals} refusals for {refused} items too deep\n{}",
                out.stderr
            ));
        }
        let closing = format!(
            "{refused} of {} files not restored: refused: more than {MAX_DEPTH} levels deep",
            items.len()
        );
        if out.stderr.lines().last() != Some(closing.as_str()) && strip == 0 {
            diffs.push(format!(
                "{label}: expected the closing line {closing:?}\n{}",
                out.stderr
            ));
        }
        for (k, (_, data, _)) in deep.iter().enumerate() {
            let good = dest.join(format!("good-{k}.txt"));
            if strip == 0 && fs::read(&good).ok().as_deref() != Some(data.as_slice()) {
                diffs.push(format!("{label}: {} not restored", good.display()));
            }
        }
        let t = temporaries(&dest);
        if t > 0 {
            diffs.push(format!("{label}: {t} temporary files left"));
        }
    }
    // The other commands take the archive as a whole.
    let dry = c.oxiborg(&["extract", "--dry-run"], "deep", &[]);
    if dry.code != 1 || !dry.stderr.contains("levels deep") {
        diffs.push(format!(
            "--dry-run: expected the refusals, exit code 1\n{}",
            dry.describe()
        ));
    }
    let list = c.oxiborg(&["list", "--short"], "deep", &[]);
    if list.code != 0 || list.stdout_str().lines().count() != items.len() {
        diffs.push(format!(
            "list: expected {} lines\n{}",
            items.len(),
            list.describe()
        ));
    }
    let tar = c.env.path().join("deep.tar");
    let et = c.oxiborg(&["export-tar"], "deep", &[tar.to_str().unwrap()]);
    if et.code != 0 {
        diffs.push(format!("export-tar failed\n{}", et.describe()));
    }
    let check = c.env.oxiborg([
        OsString::from("check"),
        "--verify-data".into(),
        c.repo.clone().into_os_string(),
    ]);
    if check.code != 0 {
        diffs.push(format!("check failed\n{}", check.describe()));
    }
    if mounted.is_none() {
        for d in dests {
            remove_deep_tree(&d);
        }
    }
    drop(mounted);
    let _ = &c.borg;
    assert_no_diffs("deep paths", &diffs);
}

#[test]
fn chunk_over_128_mib_is_restored_as_borg_restores_it() {
    let Some(c) = crafted() else {
        return;
    };
    let big = 200usize << 20;
    c.add(
        "big",
        &[
            file(b"a.txt", b"before\n"),
            json!({"path": hex(b"big.bin"), "kind": "file", "zeros": big}),
            file(b"z.txt", b"after\n"),
        ],
        "zstd,3",
    );
    let mut r = Runner::new(&c.env, &c.borg, &c.repo);
    r.case("big chunk", "big", &Args::new(&[], &[]), false, true);
    r.stdout_case(
        "big chunk --stdout",
        "big",
        &Args::new(&[], &["big.bin"]),
        true,
    );
    r.dry_run_case(
        "big chunk --dry-run",
        "big",
        &Args::new(&["--dry-run"], &[]),
    );
    let mut diffs = std::mem::take(&mut r.diffs);
    let list = c.oxiborg(&["list", "--format", "{size} {path}{NL}"], "big", &[]);
    if list.code != 0 || list.stdout_str() != format!("7 a.txt\n{big} big.bin\n6 z.txt\n") {
        diffs.push(format!("list\n{}", list.describe()));
    }
    // export-tar: the member has the whole size (tar itself reads it)
    let tar = c.env.path().join("big.tar");
    let et = c.oxiborg(&["export-tar"], "big", &[tar.to_str().unwrap()]);
    let listed = std::process::Command::new("tar")
        .arg("-tvf")
        .arg(&tar)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if et.code != 0 || !listed.contains(&format!("{big} ")) || !listed.contains("z.txt") {
        diffs.push(format!("export-tar: {listed}\n{}", et.describe()));
    }
    for borg in [false, true] {
        let mut args = vec![OsString::from("check"), "--verify-data".into()];
        args.push(c.repo.clone().into_os_string());
        let out = if borg {
            c.env.borg(&c.borg, args)
        } else {
            c.env.oxiborg(args)
        };
        if out.code != 0 {
            diffs.push(format!(
                "check --verify-data (borg: {borg})\n{}",
                out.describe()
            ));
        }
    }
    // The library's reader.
    let opts = oxiborg::OpenOptions {
        passphrase: Some(oxiborg::Passphrase::new(PASSPHRASE)),
        ..oxiborg::OpenOptions::default()
    };
    let repo = oxiborg::Repository::open(
        &oxiborg::Location::parse(c.repo.to_str().unwrap()).unwrap(),
        &opts,
    )
    .unwrap();
    let archive = repo.archive("big").unwrap();
    for item in archive.items() {
        let item = item.unwrap();
        if item.path == b"big.bin" {
            let mut data = Vec::new();
            let n = std::io::Read::read_to_end(&mut archive.open_file(&item).unwrap(), &mut data);
            if n.as_ref().ok() != Some(&big) || data.iter().any(|b| *b != 0) {
                diffs.push(format!("FileReader: {n:?}"));
            }
        }
    }
    assert_no_diffs("a chunk over 128 MiB", &diffs);
}

#[test]
fn chunk_too_big_for_memory_fails_that_file_only() {
    let Some(c) = crafted() else {
        return;
    };
    c.add(
        "huge",
        &[
            file(b"a.txt", b"before\n"),
            json!({"path": hex(b"huge.bin"), "kind": "file", "zeros": 640usize << 20}),
            file(b"z.txt", b"after\n"),
        ],
        "zstd,3",
    );
    let dest = c.env.path().join("dest");
    let mut cmd = c.env.oxiborg_cmd([
        OsString::from("extract"),
        "-C".into(),
        dest.clone().into_os_string(),
        repo_archive(&c.repo, "huge"),
    ]);
    // 512 MiB of address space: the 640 MiB plaintext cannot be allocated.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 512 << 20,
                rlim_max: 512 << 20,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = run_command(cmd);
    let mut diffs = Vec::new();
    if out.code != 2 || out.stderr.contains("panicked") {
        diffs.push(format!("expected exit code 2\n{}", out.describe()));
    }
    if !out
        .stderr
        .contains("huge.bin: not restored: Not enough memory: cannot allocate 671088640 bytes")
    {
        diffs.push(format!("huge.bin not named\n{}", out.stderr));
    }
    if out.stderr.lines().last() != Some("1 of 3 files not restored: not enough memory") {
        diffs.push(format!("closing line\n{}", out.stderr));
    }
    for (name, data) in [("a.txt", &b"before\n"[..]), ("z.txt", b"after\n")] {
        if fs::read(dest.join(name)).ok().as_deref() != Some(data) {
            diffs.push(format!("{name} not restored"));
        }
    }
    if dest.join("huge.bin").exists() || temporaries(&dest) > 0 {
        diffs.push("huge.bin (or a temporary) left behind".into());
    }
    assert_no_diffs("a chunk too big for memory", &diffs);
}

/// A tmpfs mounted for a test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, options: &str) -> Option<Tmpfs> {
        fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!(
                "note: cannot mount a tmpfs at {} (not root, or no mount permission)",
                at.display()
            );
            return None;
        }
        Some(Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// The closing line: `(not restored, of, cause, needed)`.
fn closing(stderr: &str) -> Option<(u64, u64, String, String)> {
    let last = stderr.lines().last()?;
    let (counts, rest) = last.split_once(" files not restored: ")?;
    let (n, m) = counts.split_once(" of ")?;
    let (cause, needed) = rest.split_once("; ")?;
    Some((
        n.parse().ok()?,
        m.parse().ok()?,
        cause.to_string(),
        needed.strip_suffix(" needed")?.to_string(),
    ))
}

#[test]
fn full_destination_is_announced_and_summed_up() {
    let Some(borg) = any_borg() else {
        return;
    };
    let env = TestEnv::new();
    let src = env.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let mut content = std::collections::BTreeMap::new();
    for i in 0..8 {
        content.insert(format!("r{i}"), pseudo_random(100 + i, 300_000));
    }
    for i in 0..40 {
        content.insert(format!("s{i:02}"), format!("small {i}\n").into_bytes());
    }
    for (name, data) in &content {
        fs::write(src.join(name), data).unwrap();
    }
    let repo = env.path().join("repo");
    env.borg_init(&borg, &repo, "repokey-blake2", &[]);
    env.borg_create(&borg, &repo, "a", &src, &["."], &[]);
    let mut diffs = Vec::new();
    // 1 MiB for 2.4 MB of files; then plenty of space but 20 inodes for 49 items.
    for (case, options, cause) in [
        ("space", "size=1m,nr_inodes=1000", "No space left on device"),
        ("inodes", "size=16m,nr_inodes=20", "No space left on device"),
    ] {
        let Some(mnt) = Tmpfs::mount(&env.path().join(format!("mnt-{case}")), options) else {
            eprintln!("note: skipping the full-destination test: it needs a tmpfs");
            return;
        };
        let dest = mnt.0.join("dest");
        let out = env.oxiborg([
            OsString::from("extract"),
            "-C".into(),
            dest.clone().into_os_string(),
            repo_archive(&repo, "a"),
        ]);
        let items = content.len() as u64 + 1; // and "."
        if out.code != 2 || out.stderr.contains("panicked") {
            diffs.push(format!("{case}: expected exit code 2\n{}", out.describe()));
        }
        if !out
            .stderr
            .contains("The selection will not fit: it needs about")
        {
            diffs.push(format!("{case}: no warning up front\n{}", out.stderr));
        }
        let mut missing = Vec::new();
        for (name, data) in &content {
            match fs::read(dest.join(name)) {
                Ok(d) if &d == data => {}
                Ok(_) => diffs.push(format!("{case}: {name} restored with other content")),
                Err(_) => {
                    missing.push(name.clone());
                    if !out.stderr.contains(&format!("{name}: ")) {
                        diffs.push(format!("{case}: {name} missing and not named"));
                    }
                }
            }
        }
        let expected_needed: u64 = missing.iter().map(|n| content[n].len() as u64).sum();
        match closing(&out.stderr) {
            Some((n, m, got_cause, needed))
                if n as usize == missing.len() && m == items && got_cause == cause =>
            {
                let want = if expected_needed >= 1_000_000 {
                    format!("{:.1} MB", expected_needed as f64 / 1e6)
                } else {
                    format!("{:.1} kB", expected_needed as f64 / 1e3)
                };
                if needed != want {
                    diffs.push(format!("{case}: {needed} needed, expected {want}"));
                }
            }
            other => diffs.push(format!(
                "{case}: closing line {other:?}, expected {} of {items} not restored: {cause}\n{}",
                missing.len(),
                out.stderr
            )),
        }
        if missing.is_empty() {
            diffs.push(format!("{case}: everything fit (test setup?)"));
        }
        if temporaries(&dest) > 0 {
            diffs.push(format!("{case}: temporary files left"));
        }
    }
    assert_no_diffs("a full destination", &diffs);
}

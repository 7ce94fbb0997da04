//! `oxiborg extract` against real borg's `borg extract` (1.2: `OXIBORG_BORG12`, 1.4:
//! `OXIBORG_BORG14`).
//!
//! A source tree with every item kind (see `extract_support::build_source_tree`: sparse,
//! multi-chunk and all-zero files, odd modes incl. setuid/setgid/sticky/000, devices, fifos,
//! symlinks, hard-link groups incl. across directories and of fifos, foreign owners, mtimes
//! with nanoseconds / before 1970 / after 2038, xattrs, POSIX ACLs, non-UTF-8 and odd names)
//! is archived with borg; then every case is extracted by `borg extract` (cwd = dir A) and by
//! `oxiborg extract` with the same arguments (cwd = dir B, for some cases also `-C B2`), and
//! the trees are compared path by path (type, content, mode, owner, mtime/atime in ns,
//! symlink target, xattrs, `getfacl` output, hard-link groups, rdev, SEEK_DATA/SEEK_HOLE data
//! maps), as are the exit codes. Timestamps of directories made implicitly (parents of a
//! partial selection) are compared as "both fresh". Borg clamps times at create time, so the
//! reference is always what borg extract produced, never the source tree.
//!
//! Tests per borg version: `full_*` (two repositories: repokey-blake2 + lz4 with a normal and
//! a `.`-rooted archive, none + zstd), `chunked_sparse_*` (`--chunker-params 10,16,12,4095`,
//! `--sparse`), `partial_*` (keyfile-blake2 + zlib: PATH prefixes, every pattern style,
//! `--strip-components`, hard-link members whose master is not selected, `--dry-run`,
//! `--stdout`, `--list`). A missing borg skips its tests with a note, or fails them when
//! `OXIBORG_REQUIRE_BORG=1`.

mod common;
mod extract_support;

use common::*;
use extract_support::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

struct Setup {
    env: TestEnv,
    borg: Borg,
    /// the directory holding `src`
    parent: PathBuf,
    feat: Features,
}

fn setup(label: &str) -> Option<Setup> {
    let borg = borg(label)?;
    let env = TestEnv::new();
    let parent = env.path().join("srcparent");
    fs::create_dir_all(&parent).unwrap();
    let feat = build_source_tree(&parent.join("src"));
    eprintln!(
        "{} ({}): source tree features {feat:?}",
        borg.version, label
    );
    Some(Setup {
        env,
        borg,
        parent,
        feat,
    })
}

impl Setup {
    fn repo(&self, name: &str, mode: &str) -> PathBuf {
        let repo = self.env.path().join(name);
        self.env.borg_init(&self.borg, &repo, mode, &[]);
        repo
    }
    fn create(&self, repo: &Path, archive: &str, extra: &[&str]) {
        self.env
            .borg_create(&self.borg, repo, archive, &self.parent, &["src"], extra);
    }
}

fn none() -> Args {
    Args::new(&[], &[])
}

fn finish(what: &str, runners: Vec<Runner<'_>>) {
    let diffs: Vec<String> = runners.into_iter().flat_map(|r| r.diffs).collect();
    if !diffs.is_empty() {
        // all of them (assert_no_diffs shows the first 60)
        eprintln!("==== {what}: {} difference(s):", diffs.len());
        for d in &diffs {
            eprintln!("  - {d}");
        }
    }
    assert_no_diffs(what, &diffs);
}

// ---------------------------------------------------------------------------------------
// full extracts
// ---------------------------------------------------------------------------------------

fn full(label: &str) {
    let Some(s) = setup(label) else { return };
    let rk = s.repo("repo-rk", "repokey-blake2");
    s.create(&rk, "main", &["--compression", "lz4"]);
    // a `.`-rooted archive: its `.` item is the extraction directory itself
    s.env.borg_create(
        &s.borg,
        &rk,
        "dot",
        &s.parent.join("src"),
        &["."],
        &["--compression", "lz4"],
    );
    let plain = s.repo("repo-none", "none");
    s.create(&plain, "main", &["--compression", "zstd,3"]);

    let mut r1 = Runner::new(&s.env, &s.borg, &rk);
    if let Some(tree) = r1.case("repokey-blake2/lz4 full", "main", &none(), false, true) {
        check_borg_tree(&tree, &s.feat, &mut r1.diffs);
    }
    r1.case("dot-rooted archive", "dot", &none(), true, false);
    r1.case(
        "--numeric-ids",
        "main",
        &Args::new(&["--numeric-ids"], &[]),
        false,
        false,
    );
    r1.case(
        "--noacls --noxattrs --noflags",
        "main",
        &Args::new(&["--noacls", "--noxattrs", "--noflags"], &[]),
        false,
        false,
    );
    let mut r2 = Runner::new(&s.env, &s.borg, &plain);
    r2.case("none/zstd full", "main", &none(), false, true);
    finish(&format!("full extract vs {}", s.borg.version), vec![r1, r2]);
}

#[test]
fn full_borg12() {
    full("1.2");
}

#[test]
fn full_borg14() {
    full("1.4");
}

// ---------------------------------------------------------------------------------------
// many chunks, --sparse
// ---------------------------------------------------------------------------------------

fn chunked_sparse(label: &str) {
    let Some(s) = setup(label) else { return };
    let repo = s.repo("repo", "repokey-blake2");
    s.create(
        &repo,
        "small-chunks",
        &["--chunker-params", "10,16,12,4095", "--compression", "lz4"],
    );
    s.create(&repo, "default-chunks", &["--compression", "zstd,1"]);
    let mut r = Runner::new(&s.env, &s.borg, &repo);
    r.case("small chunks full", "small-chunks", &none(), false, true);
    r.case(
        "small chunks --sparse",
        "small-chunks",
        &Args::new(&["--sparse"], &[]),
        false,
        true,
    );
    r.case(
        "default chunks --sparse",
        "default-chunks",
        &Args::new(&["--sparse"], &[]),
        false,
        false,
    );
    r.case(
        "small chunks --sparse src/files --strip-components 1",
        "small-chunks",
        &Args::new(&["--sparse", "--strip-components", "1"], &["src/files"]),
        false,
        false,
    );
    r.stdout_case(
        "small chunks --stdout holey+multi",
        "small-chunks",
        &Args::new(&[], &["src/files/holey.bin", "src/files/multi.bin"]),
        true,
    );
    finish(
        &format!("chunked/sparse extract vs {}", s.borg.version),
        vec![r],
    );
}

#[test]
fn chunked_sparse_borg12() {
    chunked_sparse("1.2");
}

#[test]
fn chunked_sparse_borg14() {
    chunked_sparse("1.4");
}

// ---------------------------------------------------------------------------------------
// xattr / ACL edge cases
// ---------------------------------------------------------------------------------------

fn acl_xattr_edges(label: &str) {
    let Some(borg) = borg(label) else { return };
    let env = TestEnv::new();
    let parent = env.path().join("srcparent");
    fs::create_dir_all(&parent).unwrap();
    let feat = build_acl_xattr_edge_tree(&parent.join("src"));
    if !feat.xattrs && !feat.acls {
        eprintln!("note: skipping: neither xattrs nor ACLs can be set here");
        return;
    }
    let repo = env.path().join("repo");
    env.borg_init(&borg, &repo, "repokey-blake2", &[]);
    // one archive each, so that a fatal problem with one does not hide the other
    env.borg_create(&borg, &repo, "xattrs", &parent, &["src/xa"], &[]);
    env.borg_create(&borg, &repo, "acls", &parent, &["src/acl"], &[]);
    let mut r = Runner::new(&env, &borg, &repo);
    r.case("empty xattr values", "xattrs", &none(), false, true);
    r.case(
        "ACL entries with masked rights",
        "acls",
        &none(),
        false,
        true,
    );
    r.case(
        "ACL entries with masked rights, --numeric-ids",
        "acls",
        &Args::new(&["--numeric-ids"], &[]),
        false,
        false,
    );
    finish(
        &format!("xattr/ACL edge cases vs {}", borg.version),
        vec![r],
    );
}

#[test]
fn acl_xattr_edges_borg12() {
    acl_xattr_edges("1.2");
}

#[test]
fn acl_xattr_edges_borg14() {
    acl_xattr_edges("1.4");
}

// ---------------------------------------------------------------------------------------
// partial extracts
// ---------------------------------------------------------------------------------------

fn partial(label: &str) {
    let Some(s) = setup(label) else { return };
    let repo = s.repo("repo", "keyfile-blake2");
    s.create(&repo, "main", &["--compression", "zlib,6"]);
    let mut r = Runner::new(&s.env, &s.borg, &repo);
    let a = "main";

    // PATH arguments
    r.case(
        "PATH prefixes",
        a,
        &Args::new(&[], &["src/dirs/nested", "src/files/small.txt"]),
        false,
        true,
    );
    r.case(
        "PATH odd names",
        a,
        &Args::new(&[], &["src/names"]),
        false,
        false,
    );
    r.case(
        "PATH never matched",
        a,
        &Args::new(&[], &["src/does-not-exist"]),
        false,
        false,
    );
    r.case(
        "PATH + exclude",
        a,
        &Args::new(&["-e", "*.bin"], &["src/files"]),
        false,
        false,
    );

    // exclude styles
    for (name, pat) in [
        ("exclude fm:", "fm:src/files/*"),
        ("exclude re:", r"re:\.(bin|txt)$"),
        ("exclude pp:", "pp:src/dirs"),
        ("exclude sh:", "sh:src/**/*.txt"),
        ("exclude pf:", "pf:src/files/multi.bin"),
        ("exclude default style", "src/hl/*"),
    ] {
        r.case(name, a, &Args::new(&["--exclude", pat], &[]), false, false);
    }

    // --pattern
    r.case(
        "pattern + sh: - *",
        a,
        &Args::new(&["--pattern=+ sh:src/**/*.txt", "--pattern=- *"], &[]),
        false,
        false,
    );
    r.case(
        "pattern + re: - re:",
        a,
        &Args::new(&["--pattern=+ re:^src/hl/", "--pattern=- re:.*"], &[]),
        false,
        false,
    );
    r.case(
        "pattern fm: mix",
        a,
        &Args::new(
            &[
                "--pattern=- fm:src/files/*.bin",
                "--pattern=+ fm:src/files",
                "--pattern=- *",
            ],
            &[],
        ),
        false,
        false,
    );
    r.case(
        "pattern + pp:",
        a,
        &Args::new(&["--pattern=+ pp:src/xattrs", "--pattern=- *"], &[]),
        false,
        false,
    );
    r.case(
        "pattern + pf:",
        a,
        &Args::new(&["--pattern=+ pf:src/special/fifo", "--pattern=- *"], &[]),
        false,
        false,
    );

    // borg (argparse) takes a value that starts with "-" but contains a space as the option's
    // value: `--pattern '- *'` as two arguments (the form borg's docs use)
    r.case(
        "--pattern VALUE starting with '-'",
        a,
        &Args::new(&["--pattern", "+ src/hl", "--pattern", "- *"], &[]),
        false,
        false,
    );
    r.case(
        "--exclude VALUE starting with '-'",
        a,
        &Args::new(&["--exclude", "-weird name*"], &["src/names"]),
        false,
        false,
    );

    // --patterns-from / --exclude-from
    let pf = s.env.path().join("patterns.lst");
    fs::write(
        &pf,
        "# comment\n\nP fm\n- src/dirs/nested/a/b\n+ src/dirs\n! src/owners\n+ re:^src/acls/\n- *\n",
    )
    .unwrap();
    r.case(
        "--patterns-from",
        a,
        &Args::new(&["--patterns-from", pf.to_str().unwrap()], &[]),
        false,
        false,
    );
    let ef = s.env.path().join("excludes.lst");
    fs::write(
        &ef,
        "# comment\n\nsh:src/special/*\nre:ünï\nfm:src/owners\npp:src/links/rel\n",
    )
    .unwrap();
    r.case(
        "--exclude-from",
        a,
        &Args::new(&["--exclude-from", ef.to_str().unwrap()], &[]),
        false,
        false,
    );

    // --strip-components
    r.case(
        "--strip-components 1",
        a,
        &Args::new(&["--strip-components", "1"], &[]),
        false,
        true,
    );
    r.case(
        "--strip-components 2 src/dirs",
        a,
        &Args::new(&["--strip-components", "2"], &["src/dirs"]),
        false,
        false,
    );
    r.case(
        "--strip-components 1 src/hl",
        a,
        &Args::new(&["--strip-components", "1"], &["src/hl"]),
        false,
        false,
    );

    // hard-link members whose master is not selected
    let members = hardlink_members(&s.env, &s.borg, &repo, a, &[]);
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, source) in &members {
        groups.entry(source.clone()).or_default().push(path.clone());
    }
    assert!(
        groups.len() >= 3,
        "expected >= 3 hard-link groups in the archive, borg lists {members:?}"
    );
    for (master, slaves) in &groups {
        let sl: Vec<&str> = slaves.iter().map(String::as_str).collect();
        r.case(
            &format!("hard-link members without master {master}"),
            a,
            &Args::new(&[], &sl),
            false,
            false,
        );
        r.case(
            &format!("first hard-link member only, master {master}"),
            a,
            &Args::new(&[], &sl[..1]),
            false,
            false,
        );
        r.case(
            &format!("hard-link members without master {master}, strip 2"),
            a,
            &Args::new(&["--strip-components", "2"], &sl),
            false,
            false,
        );
        // excluding the master by pattern instead of selecting by PATH
        let ex = format!("pf:{master}");
        r.case(
            &format!("hard-link group with master {master} excluded"),
            a,
            &Args::new(
                &["-e", &ex],
                &["src/hl", "src/files", "src/dirs", "src/special"],
            ),
            false,
            false,
        );
    }
    // --stdout of a member whose master is not selected
    let hl_slave = groups
        .iter()
        .find(|(m, _)| m.starts_with("src/hl/"))
        .map(|(_, s)| s[0].clone())
        .expect("a member of the src/hl group");
    // (borg writes nothing for it: the member has no chunks of its own)
    r.stdout_case(
        "--stdout member without master",
        a,
        &Args::new(&[], &[&hl_slave]),
        false,
    );
    r.stdout_case(
        "--stdout src/files",
        a,
        &Args::new(&[], &["src/files"]),
        true,
    );
    r.stdout_case("--stdout everything", a, &none(), true);

    // --dry-run
    r.dry_run_case("--dry-run", a, &Args::new(&["--dry-run"], &[]));
    r.dry_run_case("-n PATH", a, &Args::new(&["-n"], &["src/hl", "src/files"]));

    // --list
    r.list_case(
        "--list",
        a,
        &Args::new(&["--list"], &["src/files", "src/hl"]),
    );

    // owner options on a subtree
    r.case(
        "--numeric-ids --noflags src/owners",
        a,
        &Args::new(&["--numeric-ids", "--noflags"], &["src/owners"]),
        false,
        false,
    );
    finish(&format!("partial extract vs {}", s.borg.version), vec![r]);
}

#[test]
fn partial_borg12() {
    partial("1.2");
}

#[test]
fn partial_borg14() {
    partial("1.4");
}

// ---------------------------------------------------------------------------------------
// the comparison itself
// ---------------------------------------------------------------------------------------

/// The tree comparison must notice every kind of difference it claims to check (no borg
/// needed): two trees that differ in one field per path.
#[test]
fn comparison_detects_differences() {
    use std::os::unix::fs::{symlink, FileExt};
    let tmp = tempfile::tempdir().unwrap();
    let mk = |name: &str, variant: bool| {
        let r = tmp.path().join(name);
        fs::create_dir_all(r.join("d")).unwrap();
        fs::write(r.join("content"), if variant { "b" } else { "a" }).unwrap();
        fs::write(r.join("mode"), "m").unwrap();
        chmod(&r.join("mode"), if variant { 0o4755 } else { 0o755 });
        fs::write(r.join("mtime"), "t").unwrap();
        set_mtime_ns(&r.join("mtime"), if variant { T_2010 + 1 } else { T_2010 });
        symlink(if variant { "x" } else { "y" }, r.join("link")).unwrap();
        fs::write(r.join("xattr"), "x").unwrap();
        let c =
            std::ffi::CString::new(r.join("xattr").into_os_string().into_encoded_bytes()).unwrap();
        let v: &[u8] = if variant { b"1" } else { b"2" };
        let ok = unsafe {
            libc::lsetxattr(
                c.as_ptr(),
                c"user.t".as_ptr(),
                v.as_ptr() as *const libc::c_void,
                v.len(),
                0,
            )
        } == 0;
        // data map: a hole in one, written zeros in the other
        let f = fs::File::create(r.join("sparse")).unwrap();
        if variant {
            f.set_len(1 << 20).unwrap();
        } else {
            f.write_all_at(&vec![0u8; 1 << 20], 0).unwrap();
        }
        f.sync_all().unwrap();
        fs::write(r.join("h1"), "h").unwrap();
        fs::write(r.join("h2"), "h").unwrap();
        if variant {
            fs::remove_file(r.join("h2")).unwrap();
            fs::hard_link(r.join("h1"), r.join("h2")).unwrap();
        }
        fs::write(r.join(if variant { "only-b" } else { "only-a" }), "").unwrap();
        (r, ok)
    };
    let (a, xa) = mk("a", false);
    let (b, _) = mk("b", true);
    let mut diffs = Vec::new();
    let opts = CompareOpts {
        root_meta: false,
        fresh_from_ns: now_ns(),
    };
    compare(
        "self-test",
        &Snapshot::take(&a),
        &Snapshot::take(&b),
        &opts,
        &mut diffs,
    );
    let all = diffs.join("\n");
    let mut expect = vec![
        "content: content differs",
        "mode: mode: borg 100755, oxiborg 104755",
        "mtime: mtime:",
        "link: symlink target: borg y, oxiborg x",
        "sparse: data/hole map",
        "h1: nlink",
        "hard-link group only in oxiborg's tree: h1 = h2",
        "only-a: missing in oxiborg's tree",
        "only-b: only in oxiborg's tree",
    ];
    if xa {
        expect.push("xattr: xattrs: borg {user.t=2}, oxiborg {user.t=1}");
    }
    for e in expect {
        assert!(
            all.contains(e),
            "comparison missed {e:?}; it reported:\n{all}"
        );
    }
}

//! The library opens repositories without side effects: `OpenOptions::default()` reads no
//! environment variable, writes nothing (no security directory) and asks nothing (no prompt);
//! `OpenOptions::from_env()` is the opt-in to borg's variables and security directory.
//!
//! One test in this file: it sets the process's environment.

mod common;

use common::*;
use oxiborg::{ErrorKind, Location, OpenOptions, Passphrase, Repository};

const REPO: &str = "repokey-blake2-lz4";

fn files_below(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn opening_has_no_side_effects_unless_asked() {
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, REPO);
    let loc = Location::parse(repo.to_str().unwrap()).unwrap();
    let home = env.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    // SAFETY (of the test): the only test of this binary; nothing else reads the environment.
    std::env::set_var("HOME", &home);
    std::env::remove_var("BORG_BASE_DIR");
    std::env::remove_var("BORG_SECURITY_DIR");
    std::env::remove_var("BORG_CONFIG_DIR");
    std::env::remove_var("XDG_CONFIG_HOME");
    // a wrong passphrase in the environment: default() must not read it
    std::env::set_var("BORG_PASSPHRASE", "wrong");
    std::env::remove_var("BORG_PASSCOMMAND");

    // no passphrase given and no prompt: a clear error, at once
    let e = Repository::open(&loc, &OpenOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Passphrase, "{e}");
    assert!(e.to_string().contains("none was given"), "{e}");

    let opts = OpenOptions {
        passphrase: Some(Passphrase::new(PASSPHRASE)),
        ..OpenOptions::default()
    };
    let r = Repository::open(&loc, &opts).unwrap();
    assert!(!r.archives().is_empty());
    assert_eq!(
        files_below(&home),
        Vec::<String>::new(),
        "default() wrote files"
    );

    // from_env(): borg's variables (the wrong passphrase) and its security directory
    let e = Repository::open(&loc, &OpenOptions::from_env()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Passphrase, "{e}");
    std::env::set_var("BORG_PASSPHRASE", PASSPHRASE);
    Repository::open(&loc, &OpenOptions::from_env()).unwrap();
    let written = files_below(&home);
    assert!(
        written.iter().any(|f| f.ends_with("manifest-timestamp")),
        "from_env() records the repository as borg does: {written:?}"
    );
}

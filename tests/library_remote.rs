//! A library user's remote repository: `OpenOptions::default()` with a passphrase given in the
//! options, and nothing from the environment (no `BORG_*`, no `OXIBORG_*`, no agent), opens an
//! `ssh://` repository served by real `borg serve` behind a real sshd (see `remote_support`),
//! with `~/.ssh/config` and `~/.ssh/known_hosts` of the test's `$HOME`; and what fails says how,
//! as an [`ErrorKind::Remote`] kind a caller can match.
//!
//! One test in this file: it sets `HOME` (and clears variables) for the whole process.

mod common;
mod remote_support;

use common::*;
use oxiborg::error::{ErrorKind, RemoteErrorKind};
use oxiborg::Passphrase;
use oxiborg::RemoteOptions;
use oxiborg::{Location, OpenOptions, Repository};
use remote_support::*;
use std::fs;
use std::io::Read;
use std::time::Duration;

/// `OpenOptions::default()` plus the passphrase: what a library user writes.
fn options() -> OpenOptions {
    OpenOptions {
        passphrase: Some(Passphrase::new(PASSPHRASE)),
        ..OpenOptions::default()
    }
}

/// The error opening `loc` with `opts`.
fn open_error(loc: &str, opts: &OpenOptions) -> oxiborg::Error {
    match Repository::open(&Location::parse(loc).unwrap(), opts) {
        Ok(_) => panic!("{loc} opened"),
        Err(e) => e,
    }
}

#[test]
fn default_open_options_open_an_ssh_repository() {
    let Some(borg) = any_borg() else { return };
    let Some(r) = Remote::new(borg) else { return };
    let src = r.env.path().join("src");
    fs::create_dir_all(src.join("data")).unwrap();
    fs::write(src.join("data/file"), b"library content\n").unwrap();
    let repo = r.init_repo(REPO_RK, "repokey");
    r.create(&repo, "a1", &src, &["data"], &[]);

    // The process is now the library user: its home is the test's (~/.ssh/config names the
    // server, its port, user and key; ~/.ssh/known_hosts its host key), and nothing else
    // comes from the environment.
    std::env::set_var("HOME", &r.env.base);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("BORG_") || k.starts_with("OXIBORG_") || k.starts_with("SSH_") {
            std::env::remove_var(&k);
        }
    }

    let opts = options();
    let loc = format!("{}:{REPO_RK}", Key::Forced.alias());
    let repo = Repository::open(&Location::parse(&loc).unwrap(), &opts)
        .unwrap_or_else(|e| panic!("OpenOptions::default() could not open {loc}: {e}"));
    let names: Vec<String> = repo.archives().iter().map(|a| a.display_name()).collect();
    assert_eq!(names, ["a1"]);
    let archive = repo.archive("a1").unwrap();
    let item = archive.find("data/file").unwrap().expect("data/file in a1");
    let mut text = String::new();
    archive
        .open_file(&item)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "library content\n");
    drop(archive);
    drop(repo);
    // (the documented defaults)
    assert_eq!(opts.remote.timeout, Duration::from_secs(120));
    assert_eq!(opts.remote.retries, 3);

    // What fails says how. The server's own refusal: a path outside the key's restriction.
    let e = open_error(&format!("{}:{REPO_KF}", Key::Forced.alias()), &opts);
    assert_eq!(e.kind(), ErrorKind::Remote(RemoteErrorKind::Server), "{e}");
    assert!(
        e.to_string().starts_with("Repository path not allowed"),
        "{e}"
    );
    // SSH refuses: a server whose host key is not known (and no one to ask).
    let empty = r.env.path().join("empty_known_hosts");
    fs::write(&empty, "").unwrap();
    let mut unknown = options();
    unknown.remote.known_hosts = Some(empty);
    let e = open_error(&loc, &unknown);
    assert_eq!(e.kind(), ErrorKind::Remote(RemoteErrorKind::Ssh), "{e}");
    assert!(e.to_string().contains("is not a known host"), "{e}");
    // Nothing listens: the connection cannot be made.
    let port = std::net::TcpListener::bind((HOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = open_error(
        &format!("ssh://{}@{HOST}:{port}/./{REPO_RK}", login_user()),
        &opts,
    );
    assert_eq!(e.kind(), ErrorKind::Remote(RemoteErrorKind::Connect), "{e}");
    assert!(e.to_string().contains("cannot connect"), "{e}");

    // The environment is read only when asked for.
    std::env::set_var("OXIBORG_REMOTE_TIMEOUT", "7");
    std::env::set_var("OXIBORG_REMOTE_RETRIES", "5");
    assert_eq!(
        RemoteOptions::from_env().timeout,
        Duration::from_secs(7),
        "from_env"
    );
    assert_eq!(RemoteOptions::from_env().retries, 5);
    assert_eq!(
        RemoteOptions::default().timeout,
        Duration::from_secs(120),
        "default"
    );
    assert_eq!(OpenOptions::default().remote.retries, 3);
}

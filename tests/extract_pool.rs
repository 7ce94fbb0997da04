//! A restore with its own pool (`ExtractOptions::threads` or `Extractor::with_pool`) runs no
//! work on the global rayon pool: with every thread of the global pool (4) held busy for the
//! whole test, counting the totals, a restore and a stream to a writer all finish — on an archive
//! made by borg 1.4.5 whose item stream has dozens of chunks (several decode groups: a single
//! group is decoded on the calling thread whatever the pool). Its own test binary: it takes
//! the global pool away from everything else in the process.

mod common;

use common::*;
use oxiborg::patterns::Matcher;
use oxiborg::{ExtractOptions, Extractor, Location, OpenOptions, Passphrase, Repository};
use std::sync::{mpsc, Arc};
use std::time::Duration;

const ARCHIVE: &str = "many";

#[test]
fn a_restore_on_its_own_pool_needs_nothing_of_the_global_pool() {
    let Some(borg) = borg("1.4") else { return };
    let env = TestEnv::new();
    // 10,000 empty files with long names: an item stream of about 3 MB, dozens of chunks
    let src = env.path().join("src");
    for d in 0..10 {
        let dir = src.join(format!("{d:02}-{}", "d".repeat(60)));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..1000 {
            std::fs::write(dir.join(format!("{f:04}-{}", "f".repeat(120))), b"").unwrap();
        }
    }
    let repo_dir = env.path().join("repo");
    env.borg_init(&borg, &repo_dir, "repokey-blake2", &[]);
    env.borg_create(&borg, &repo_dir, ARCHIVE, &src, &["."], &[]);
    let o = OpenOptions {
        passphrase: Some(Passphrase::new(PASSPHRASE)),
        ..OpenOptions::default()
    };
    let repo = Arc::new(
        Repository::open(&Location::parse(repo_dir.to_str().unwrap()).unwrap(), &o)
            .expect("open fixture"),
    );
    // The global pool: 4 threads (so that what sizes its work by the pool would split it),
    // every one held until the end of the test.
    const GLOBAL: usize = 4;
    rayon::ThreadPoolBuilder::new()
        .num_threads(GLOBAL)
        .build_global()
        .expect("the global pool is not built yet in this process");
    let (release, held) = release_channels(GLOBAL);
    let (started, running) = mpsc::channel::<()>();
    for held in held {
        let started = started.clone();
        rayon::spawn(move || {
            started.send(()).unwrap();
            let _ = held.recv();
        });
    }
    for _ in 0..GLOBAL {
        running.recv().unwrap();
    }

    let dest = env.path().join("dest");
    let (done, result) = mpsc::channel();
    let r = repo.clone();
    let d = dest.clone();
    std::thread::spawn(move || {
        let pool = Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap(),
        );
        let opts = ExtractOptions {
            destination: d,
            threads: Some(2),
            ..ExtractOptions::default()
        };
        let ex = Extractor::new(&r, opts);
        let totals = ex.totals(ARCHIVE, &Matcher::new()).expect("totals");
        let summary = ex
            .run(ARCHIVE, Matcher::new(), &mut |_| {})
            .expect("restore");
        let mut out = Vec::new();
        Extractor::new(&r, ExtractOptions::default())
            .with_pool(pool)
            .run_to(ARCHIVE, Matcher::new(), &mut out, &mut |_| {})
            .expect("stream");
        done.send((totals.files, summary.files, summary.failed, out.len()))
            .unwrap();
    });
    let (total_files, files, failed, streamed) = result
        .recv_timeout(Duration::from_secs(120))
        .expect("the restore waited for the global pool (it never finished)");
    for r in release {
        r.send(()).unwrap();
    }
    assert_eq!(files, 10_000);
    assert_eq!((total_files, failed), (files, 0));
    assert_eq!(streamed, 0, "empty files");
    assert!(dest.read_dir().unwrap().next().is_some());
}

/// `n` channels: the senders to release `n` waiting threads, and their receivers.
fn release_channels(n: usize) -> (Vec<mpsc::Sender<()>>, Vec<mpsc::Receiver<()>>) {
    (0..n).map(|_| mpsc::channel()).unzip()
}

//! The library's extract API under the caller's control: decoding on the caller's thread pool
//! or on a pool of a given size, with the same result as the global pool. Uses the committed
//! fixture repositories only.

mod common;

use common::*;
use oxiborg::extract::{ExtractOptions, Extractor};
use oxiborg::patterns::Matcher;
use oxiborg::Repository;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

const ARCHIVE: &str = "docs-2024-02-15";

fn open_fixture(env: &mut TestEnv) -> Repository {
    use oxiborg::Passphrase;
    use oxiborg::{Location, OpenOptions};
    let repo_dir = fixture_repo(env, "repokey-blake2-lz4");
    let mut o = OpenOptions::from_env();
    o.passphrase = Some(Passphrase::new(PASSPHRASE));
    Repository::open(&Location::parse(repo_dir.to_str().unwrap()).unwrap(), &o)
        .expect("open fixture")
}

/// Every path below `root` with its content (regular files), link target (symlinks) or kind.
fn snapshot(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let ft = std::fs::symlink_metadata(&p).unwrap().file_type();
            let what = if ft.is_symlink() {
                let mut v = b"link:".to_vec();
                v.extend(std::fs::read_link(&p).unwrap().to_string_lossy().bytes());
                v
            } else if ft.is_dir() {
                todo.push(p.clone());
                b"dir".to_vec()
            } else if ft.is_file() {
                std::fs::read(&p).unwrap()
            } else {
                b"special".to_vec()
            };
            out.insert(rel, what);
        }
    }
    out
}

/// Runs `f` on a thread of its own and fails (rather than hangs) when it does not end: a
/// restore that waits for a decode its own pool cannot run would never end.
fn finishes<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(f()).unwrap());
    rx.recv_timeout(std::time::Duration::from_secs(300))
        .unwrap_or_else(|_| panic!("{what}: the restore never finished (deadlock)"))
}

/// A restore decoding on the caller's one-thread pool, and one on a pool of one thread made for
/// it — with one file per batch and a byte budget smaller than any chunk, so the fetch loop
/// waits for the decodes all the time — give the same tree as one on the global pool; and the
/// caller's pool takes precedence over `threads`.
#[test]
fn own_pool_and_thread_count_restore_the_same_tree() {
    let mut env = TestEnv::new();
    let repo = Arc::new(open_fixture(&mut env));
    let base = env.path().to_path_buf();
    let restore = move |repo: Arc<Repository>,
                        dir: &str,
                        threads: Option<usize>,
                        pool: Option<Arc<rayon::ThreadPool>>| {
        let dest = base.join(dir);
        let opts = ExtractOptions {
            destination: dest.clone(),
            threads,
            batch_files: 1,
            inflight_bytes: 1,
            ..ExtractOptions::default()
        };
        let what = dir.to_string();
        let summary = finishes(dir, move || {
            let mut ex = Extractor::new(&repo, opts);
            if let Some(p) = pool {
                ex = ex.with_pool(p);
            }
            ex.run(ARCHIVE, Matcher::new(), &mut |_| {})
                .map(|s| (s.files, s.bytes, s.failed))
                .unwrap_or_else(|e| panic!("{what}: {e}"))
        });
        (summary, snapshot(&dest))
    };
    let global = restore(repo.clone(), "global", None, None);
    assert!(global.0 .0 > 1, "a fixture with files: {:?}", global.0);
    assert_eq!(global.0 .2, 0);
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let own = restore(repo.clone(), "own", Some(4), Some(Arc::new(one)));
    assert_eq!(own, global, "on the caller's pool");
    let counted = restore(repo.clone(), "threads", Some(1), None);
    assert_eq!(counted, global, "on a pool of 1 thread");
}

/// `run_to` decodes on the caller's pool too.
#[test]
fn run_to_on_an_own_pool_writes_the_same_stream() {
    let mut env = TestEnv::new();
    let repo = open_fixture(&mut env);
    let stream = |threads: Option<usize>| {
        let opts = ExtractOptions {
            threads,
            inflight_bytes: 1,
            ..ExtractOptions::default()
        };
        let mut out = Vec::new();
        Extractor::new(&repo, opts)
            .run_to(ARCHIVE, Matcher::new(), &mut out, &mut |_| {})
            .unwrap();
        out
    };
    let global = stream(None);
    assert!(!global.is_empty());
    assert!(
        stream(Some(1)) == global,
        "a pool of 1 thread streams other bytes"
    );
    assert!(
        stream(Some(3)) == global,
        "a pool of 3 threads streams other bytes"
    );
}

//! The fuzz targets (`oxiborg::fuzzing`) on every `cargo test`: each target runs over its
//! committed seed corpus (`fuzz/corpus/<target>/`, made from real borg output by
//! `fuzz/make-corpus.sh`), the crashers kept from fuzzing (`fuzz/regressions/<target>/`), and
//! deterministic mutations of both (bit flips, truncations, splices, length-field bumps). A
//! panic anywhere fails the test and names the input; coverage-guided runs are cargo-fuzz's job.
//!
//! `make_seed_corpus` (ignored; run by `fuzz/make-corpus.sh`) writes the seeds: raw objects,
//! payloads, manifests, archive metadata, item streams, segments, indexes, configs and key
//! files of the fixture repositories in `testdata/`, RPC frames recorded from a real `borg
//! serve`, HTTP responses recorded from a real borg 2 `borg serve --rest`
//! (`make_rest_response_seeds` alone), and hand-picked locations and patterns.

mod common;

use common::*;
use oxiborg::fuzzing::TARGETS;
use std::fs;
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    manifest_dir().join("fuzz")
}

fn files_in(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<(PathBuf, Vec<u8>)> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .filter(|e| e.path().is_file())
            .map(|e| (e.path(), fs::read(e.path()).unwrap()))
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

/// xorshift64*: the same mutations on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn mutate(seed: &[u8], other: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut d = seed.to_vec();
    for _ in 0..=rng.below(3) {
        match rng.below(6) {
            0 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] ^= 1 << rng.below(8);
            }
            1 => d.truncate(rng.below(d.len() + 1)),
            2 if !d.is_empty() => {
                // a byte that msgpack/segment headers read as a big length
                let i = rng.below(d.len());
                d[i] = [0xff, 0x7f, 0xdb, 0xc6, 0xdd, 0x00][rng.below(6)];
            }
            3 => {
                let at = rng.below(d.len() + 1);
                let from = rng.below(other.len() + 1);
                let len = rng.below(64).min(other.len() - from);
                d.splice(at..at, other[from..from + len].iter().copied());
            }
            4 if d.len() > 1 => {
                let i = rng.below(d.len() - 1);
                d.remove(i);
            }
            _ => {
                let i = rng.below(d.len() + 1);
                d.insert(i, rng.next() as u8);
            }
        }
    }
    d
}

#[test]
fn every_target_survives_its_corpus_and_mutations() {
    let mut total = 0usize;
    for (name, target) in TARGETS {
        let mut inputs = files_in(&fuzz_dir().join("corpus").join(name));
        inputs.extend(files_in(&fuzz_dir().join("regressions").join(name)));
        assert!(
            !inputs.is_empty(),
            "target {name} has no seeds in fuzz/corpus/{name} (run fuzz/make-corpus.sh)"
        );
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
        let runs_per_seed = (20_000 / inputs.len()).clamp(50, 2000);
        for (k, (path, seed)) in inputs.iter().enumerate() {
            let other = &inputs[(k + 1) % inputs.len()].1;
            let mut cases = vec![seed.clone()];
            cases.extend((0..runs_per_seed).map(|_| mutate(seed, other, &mut rng)));
            for case in cases {
                let r = std::panic::catch_unwind(|| target(&case));
                if r.is_err() {
                    let keep = std::env::temp_dir().join(format!("oxiborg-crash-{name}"));
                    fs::write(&keep, &case).unwrap();
                    panic!(
                        "fuzz target {name} panicked on a mutation of {} (input kept in {}; \
                         copy it to fuzz/regressions/{name}/ once fixed)",
                        path.display(),
                        keep.display()
                    );
                }
                total += 1;
            }
        }
    }
    eprintln!("{total} inputs over {} targets", TARGETS.len());
}

// ---------------------------------------------------------------------------------------
// seed corpus
// ---------------------------------------------------------------------------------------

fn put(target: &str, name: &str, data: &[u8]) {
    let dir = fuzz_dir().join("corpus").join(target);
    fs::create_dir_all(&dir).unwrap();
    // Seeds stay small: libFuzzer mutates small inputs best, and the repository stays light.
    let data = &data[..data.len().min(8 * 1024)];
    fs::write(dir.join(name), data).unwrap();
}

fn open_fixture(name: &str) -> oxiborg::Repository {
    let mut opts = oxiborg::OpenOptions::from_env();
    opts.passphrase = Some(oxiborg::Passphrase::new(PASSPHRASE));
    let key = testdata().join("keys").join(format!("{name}.key"));
    opts.key_file = key.exists().then_some(key);
    let loc =
        oxiborg::Location::parse(testdata().join("repos").join(name).to_str().unwrap()).unwrap();
    oxiborg::Repository::open(&loc, &opts).unwrap()
}

#[test]
#[ignore = "writes fuzz/corpus; run by fuzz/make-corpus.sh"]
fn make_seed_corpus() {
    let _ = fs::remove_dir_all(fuzz_dir().join("corpus"));
    for name in [
        "repokey-blake2-lz4",
        "keyfile-zstd",
        "none-zlib",
        "authenticated-lzma",
        "keyfile-blake2-obfuscate",
        "repokey-auto-zstd",
    ] {
        let root = testdata().join("repos").join(name);
        let repo = open_fixture(name);
        let store = repo.store();
        let key = repo.key();
        // manifest and archive metadata, their raw objects and payloads
        let mobj = store.get(&[0; 32]).unwrap();
        put("envelope", &format!("{name}-manifest"), &mobj);
        let mpayload = key.decrypt("manifest", &mobj).unwrap();
        put("decompress", &format!("{name}-manifest"), &mpayload);
        let mplain = key.open_object(None, &mobj, None).unwrap();
        put("manifest", name, &mplain);
        for (i, entry) in repo.archives().iter().enumerate() {
            let aobj = store.get(&entry.id.0).unwrap();
            put("envelope", &format!("{name}-archive{i}"), &aobj);
            put(
                "archive",
                &format!("{name}-{i}"),
                &key.open_object(Some(&entry.id.0), &aobj, None).unwrap(),
            );
            let archive = repo.archive_by_entry(entry).unwrap();
            // the item stream's first chunk, and the content chunks of a few files
            if let Some(first) = archive.meta.items.first() {
                let plain = repo.get_object(first, None).unwrap();
                put("item_stream", &format!("{name}-{i}"), &plain);
            }
            let mut n = 0;
            for item in archive.items() {
                let item = item.unwrap();
                for c in item.chunks.iter().flatten().take(1) {
                    if n < 4 && c.size < 8192 {
                        let obj = store.get(&c.id).unwrap();
                        put("envelope", &format!("{name}-{i}-chunk{n}"), &obj);
                        put(
                            "decompress",
                            &format!("{name}-{i}-chunk{n}"),
                            &key.decrypt("chunk", &obj).unwrap(),
                        );
                        n += 1;
                    }
                }
            }
        }
        put("config", name, &fs::read(root.join("config")).unwrap());
        let key_file = testdata().join("keys").join(format!("{name}.key"));
        if key_file.exists() {
            put("key_file", name, &fs::read(key_file).unwrap());
        }
        let config = fs::read_to_string(root.join("config")).unwrap();
        if let Some(k) = config.lines().find_map(|l| l.strip_prefix("key = ")) {
            put("key_file", &format!("{name}-repokey"), k.as_bytes());
        }
        for e in fs::read_dir(&root).unwrap().flatten() {
            let fname = e.file_name().to_string_lossy().into_owned();
            if fname.starts_with("index.") || fname.starts_with("hints.") {
                put(
                    "hashindex",
                    &format!("{name}-{fname}"),
                    &fs::read(e.path()).unwrap(),
                );
            }
        }
        let seg = segment_files(&root).into_iter().next().unwrap().1;
        put("segment", name, &fs::read(seg).unwrap());
    }
    for (i, loc) in [
        "/srv/borg/repo",
        "relative/repo::archive-2025-01-15",
        "ssh://borgwarehouse@voile.example:22222/./0a1b2c3d",
        "ssh://user@[::1]:2222/~/repo::a",
        "user@host:repo",
        "host:/abs/path::name",
        "file:///tmp/repo",
        "::only-archive",
    ]
    .iter()
    .enumerate()
    {
        put("location", &format!("loc{i}"), loc.as_bytes());
    }
    put(
        "patterns",
        "mixed",
        b"P sh\nR /home\n+ home/*/.config/**\n- home/*/.cache\n! re:\\.tmp$\n- fm:*.o\n+ pp:home/me\n- pf:home/me/x\nhome/me/.config/sops/age/keys.txt\n",
    );
    put(
        "patterns",
        "excludes",
        b"*.pyc\n# comment\n\nsh:**/node_modules\nre:^var/(log|cache)/\n",
    );
    record_rpc_frames();
    borg2_seeds();
    record_rest_responses();
}

#[test]
#[ignore = "writes fuzz/corpus/rest_response; run by fuzz/make-corpus.sh"]
fn make_rest_response_seeds() {
    record_rest_responses();
}

/// Requests to a real borg 2 `borg serve --rest` (`OXIBORG_BORG2`) over its stdio: `HEAD /`,
/// `config/config`, listings, a range, a range past the end, a gather, a missing file, and a
/// missing repository; the responses become rest_response seeds, the whole session and each
/// response alone.
fn record_rest_responses() {
    let _ = fs::remove_dir_all(fuzz_dir().join("corpus").join("rest_response"));
    let Some(borg) = borg("2") else {
        eprintln!("no borg 2: rest_response seeds are hand-made only");
        put(
            "rest_response",
            "handmade",
            b"HTTP/1.1 206 Partial Content\r\nContent-Length: 3\r\n\r\nabc\
              HTTP/1.1 404 nope\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        );
        return;
    };
    let env = TestEnv::new();
    let repo = env.path().join("b2repo");
    let src = env.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), pseudo_random(1, 5000)).unwrap();
    for args in [
        &["repo-create", "-e", "chacha20-poly1305", "-i", "blake3"][..],
        &["create", "a1", "f"],
    ] {
        let mut cmd = env.borg_cmd(&borg, [std::ffi::OsStr::new("-r"), repo.as_os_str()]);
        cmd.args(args).current_dir(&src);
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "borg 2 {args:?}: {out:?}");
    }
    let mut pack = String::new();
    for d in fs::read_dir(repo.join("packs")).unwrap().flatten() {
        for f in fs::read_dir(d.path()).unwrap().flatten() {
            pack = format!(
                "packs/{}/{}",
                d.file_name().to_string_lossy(),
                f.file_name().to_string_lossy()
            );
        }
    }
    let accept = "Accept: application/vnd.x.borgstore.rest.v1\r\nConnection: keep-alive\r\n";
    let gather = format!("[[\"{pack}\", 0, 8], [\"{pack}\", 41, 8]]");
    let requests: Vec<(bool, String)> = vec![
        (true, format!("HEAD / HTTP/1.1\r\n{accept}\r\n")),
        (
            false,
            format!("GET /config/config HTTP/1.1\r\n{accept}\r\n"),
        ),
        (false, format!("GET /keys/ HTTP/1.1\r\n{accept}\r\n")),
        (false, format!("GET /packs/ HTTP/1.1\r\n{accept}\r\n")),
        (true, format!("HEAD /config HTTP/1.1\r\n{accept}\r\n")),
        (
            false,
            format!("GET /{pack} HTTP/1.1\r\n{accept}Range: bytes=0-48\r\n\r\n"),
        ),
        (
            false,
            format!("GET /{pack} HTTP/1.1\r\n{accept}Range: bytes=999999-1000009\r\n\r\n"),
        ),
        (
            false,
            format!(
                "POST /?cmd=gather HTTP/1.1\r\n{accept}Content-Length: {}\r\n\r\n{gather}",
                gather.len()
            ),
        ),
        (false, format!("GET /nope HTTP/1.1\r\n{accept}\r\n")),
        (true, format!("HEAD /nope HTTP/1.1\r\n{accept}\r\n")),
    ];
    let serve = |repo: &Path, input: &str| -> Vec<u8> {
        let backend = format!("FILE:{}", repo.display());
        let mut cmd = env.borg_cmd(&borg, ["serve", "--rest", "--backend", &backend]);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(input.as_bytes()).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        assert!(!out.stdout.is_empty(), "borg serve --rest answered nothing");
        out.stdout
    };
    let all: String = requests.iter().map(|(_, r)| r.as_str()).collect();
    let session = serve(&repo, &all);
    put("rest_response", "borg2-rest-session", &session);
    // each response alone (HEAD responses have no body)
    let mut rest = session.as_slice();
    for (n, (head, _)) in requests.iter().enumerate() {
        let end = rest.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let text = String::from_utf8_lossy(&rest[..end]).to_ascii_lowercase();
        let len: usize = text
            .split("content-length: ")
            .nth(1)
            .and_then(|t| t.split("\r\n").next())
            .unwrap()
            .parse()
            .unwrap();
        let whole = if *head { end } else { end + len };
        put("rest_response", &format!("response{n}"), &rest[..whole]);
        rest = &rest[whole..];
    }
    let missing = serve(&env.path().join("nothing"), &requests[1].1);
    put("rest_response", "missing-repository", &missing);
}

/// The borg 2 seeds alone (`make_seed_corpus` writes them too).
#[test]
#[ignore = "writes fuzz/corpus/{blob2,key_blob2}; run by hand"]
fn make_borg2_seed_corpus() {
    for t in ["blob2", "key_blob2"] {
        let _ = fs::remove_dir_all(fuzz_dir().join("corpus").join(t));
    }
    borg2_seeds();
}

/// Seeds from the borg 2.0.0b25 vectors (`testdata/borg2-vectors`): a few blobs cut from each
/// suite's packs, an index fragment, `config/defaults`, the key blobs, and a key map; and from
/// the borg 2 fixtures (`testdata/borg2`) the decrypted `config/config`, archive metadata,
/// chunk-index fragments and item-stream chunks for the `config`, `archive`, `hashindex` and
/// `item_stream` targets.
fn borg2_seeds() {
    for name in BORG2_FIXTURE_REPOS {
        let loc =
            oxiborg::Location::parse(borg2_testdata().join("repos").join(name).to_str().unwrap())
                .unwrap();
        let options = oxiborg::OpenOptions {
            passphrase: Some(oxiborg::Passphrase::new(PASSPHRASE)),
            keys_dir: Some(borg2_testdata().join("keys")),
            ..oxiborg::OpenOptions::default()
        };
        let seeds = oxiborg::fuzzing::borg2_seed_plaintexts(&loc, &options).unwrap();
        for (n, (target, data)) in seeds.iter().enumerate() {
            put(target, &format!("borg2-{name}-{n}"), data);
        }
    }
    let root = testdata().join("borg2-vectors");
    let mut names: Vec<String> = fs::read_dir(&root)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("repo").is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        let repo = root.join(&name).join("repo");
        let mut packs: Vec<PathBuf> = fs::read_dir(repo.join("packs"))
            .unwrap()
            .flatten()
            .flat_map(|d| fs::read_dir(d.path()).unwrap().flatten().map(|e| e.path()))
            .collect();
        packs.sort();
        for (p, pack) in packs.iter().enumerate() {
            let pack = fs::read(pack).unwrap();
            let mut at = 0;
            let mut n = 0;
            while at + 49 <= pack.len() && n < 3 {
                let size = |o: usize| {
                    u32::from_le_bytes(pack[at + o..at + o + 4].try_into().unwrap()) as usize
                };
                let len = 49 + size(41) + size(45);
                put(
                    "blob2",
                    &format!("{name}-pack{p}-blob{n}"),
                    &pack[at..at + len],
                );
                at += len;
                n += 1;
            }
        }
        let mut index: Vec<PathBuf> = fs::read_dir(repo.join("index"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        index.sort();
        if let Some(f) = index.first() {
            put("blob2", &format!("{name}-index"), &fs::read(f).unwrap());
        }
        put(
            "blob2",
            &format!("{name}-defaults"),
            &fs::read(repo.join("config/defaults")).unwrap(),
        );
        for dir in [repo.join("keys"), root.join(&name).join("keyfiles")] {
            for e in fs::read_dir(dir).into_iter().flatten().flatten() {
                let file = e.file_name().to_string_lossy().into_owned();
                put(
                    "key_blob2",
                    &format!("{name}-{}", &file[..8]),
                    &fs::read(e.path()).unwrap(),
                );
            }
        }
    }
    // A key map (of made-up secrets), which the target also seals under tiny costs.
    let bin = |b: &[u8]| rmpv::Value::Binary(b.to_vec());
    let map = rmpv::Value::Map(vec![
        ("version".into(), 2.into()),
        ("repository_id".into(), bin(&[0x11; 32])),
        ("crypt_key".into(), bin(&[0x22; 64])),
        ("id_key".into(), bin(&[0x33; 32])),
        ("chunk_seed".into(), (-7).into()),
    ]);
    let mut keymap = Vec::new();
    rmpv::encode::write_value(&mut keymap, &map).unwrap();
    put("key_blob2", "keymap", &keymap);
}

/// Requests to a real `borg serve`: negotiate, open a fixture repository, `get` its manifest
/// and a missing object, `load_key`, `list`; the response bytes become rpc_frame seeds.
fn record_rpc_frames() {
    let Some(borg) = any_borg() else {
        eprintln!("no borg: rpc_frame seeds are hand-made only");
        put(
            "rpc_frame",
            "handmade",
            b"\x83\xa1i\x01\xa1r\xc4\x04abcd\x81\xa1i\x02",
        );
        return;
    };
    let mut env = TestEnv::new();
    let repo = fixture_repo(&mut env, "repokey-blake2-lz4");
    let mut req = Vec::new();
    let mut call = |id: u64, method: &str, args: &[(&str, rmpv::Value)]| {
        let a: Vec<(rmpv::Value, rmpv::Value)> = args
            .iter()
            .map(|(k, v)| (rmpv::Value::from(*k), v.clone()))
            .collect();
        let m = rmpv::Value::Map(vec![
            ("i".into(), id.into()),
            ("m".into(), method.into()),
            ("a".into(), rmpv::Value::Map(a)),
        ]);
        rmpv::encode::write_value(&mut req, &m).unwrap();
    };
    call(
        1,
        "negotiate",
        &[(
            "client_data",
            rmpv::Value::Map(vec![(
                "client_version".into(),
                rmpv::Value::Array(vec![1.into(), 4.into(), 5.into()]),
            )]),
        )],
    );
    call(
        2,
        "open",
        &[
            ("path", repo.to_str().unwrap().into()),
            ("create", false.into()),
            ("lock_wait", 1.0.into()),
            ("lock", false.into()),
            ("exclusive", false.into()),
            ("append_only", false.into()),
        ],
    );
    call(3, "get", &[("id", rmpv::Value::Binary(vec![0; 32]))]);
    call(4, "get", &[("id", rmpv::Value::Binary(vec![0x55; 32]))]);
    call(5, "load_key", &[]);
    call(
        6,
        "list",
        &[("limit", 8.into()), ("marker", rmpv::Value::Nil)],
    );
    let mut cmd = env.borg_cmd(&borg, ["serve"]);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&req).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.stdout.is_empty(), "borg serve answered nothing");
    put("rpc_frame", "borg-serve-session", &out.stdout);
    // each response alone, too
    let mut rest = out.stdout.as_slice();
    let mut n = 0;
    while !rest.is_empty() {
        let before = rest.len();
        if rmpv::decode::read_value(&mut rest).is_err() {
            break;
        }
        let used = before - rest.len();
        put(
            "rpc_frame",
            &format!("response{n}"),
            &out.stdout[out.stdout.len() - before..][..used],
        );
        n += 1;
    }
}

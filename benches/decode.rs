//! Per-MB costs of the decode stage: MAC + decrypt + decompress + id check on real objects of the
//! bundled fixture repositories, each decompressor alone, item-stream decoding, and borg 2
//! objects (a 2 MiB chunk, stored and lz4, under each of the six b25 suites).
//!
//! Run: `cargo bench --bench decode` (results under target/criterion).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use oxiborg::fuzzing::{borg2_blob, decode_item, decompress_payload, Decoded, Key, Sealed, BORG2};
use oxiborg::{Location, OpenOptions, Repository};
use std::hint::black_box;
use std::io::Write;

fn open(repo: &str) -> Repository {
    let mut opts = OpenOptions::from_env();
    opts.passphrase = Some(oxiborg::Passphrase::new("oxiborg-test"));
    opts.key_file = Some(format!("{}/testdata/keys/{repo}.key", env!("CARGO_MANIFEST_DIR")).into())
        .filter(|p: &std::path::PathBuf| p.exists());
    let path = format!("{}/testdata/repos/{repo}", env!("CARGO_MANIFEST_DIR"));
    Repository::open(&Location::parse(&path).expect("location"), &opts).expect("fixture repository")
}

/// All content chunks of the newest archive: (id, stored object, plaintext size).
fn chunks(repo: &Repository) -> Vec<([u8; 32], Vec<u8>, usize)> {
    let archive = repo
        .archive_by_entry(repo.archives().last().expect("archive"))
        .expect("archive");
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for item in archive.items() {
        for c in item.expect("item").chunks.unwrap_or_default() {
            if seen.insert(c.id) {
                out.push((
                    c.id,
                    repo.store().get(&c.id).expect("chunk"),
                    c.size as usize,
                ));
            }
        }
    }
    out
}

fn objects(c: &mut Criterion) {
    for name in [
        "repokey-blake2-lz4",
        "keyfile-zstd",
        "none-zlib",
        "authenticated-lzma",
    ] {
        let repo = open(name);
        let chunks = chunks(&repo);
        let bytes: usize = chunks.iter().map(|c| c.2).sum();
        let mut g = c.benchmark_group("open_object");
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                for (id, obj, size) in &chunks {
                    black_box(
                        repo.key()
                            .open_object(Some(id), obj, Some(*size))
                            .expect("valid"),
                    );
                }
            })
        });
        g.finish();
        // What the restore pipeline does: groups of Key::GROUP objects (multi-buffer MACs and
        // ids), decrypted in place. The copy into each group is part of the measurement, as
        // reading the object is in a restore.
        let mut g = c.benchmark_group("open_objects_grouped");
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                for group in chunks.chunks(Key::GROUP) {
                    let mut sealed: Vec<Sealed> = group
                        .iter()
                        .map(|(id, obj, size)| Sealed {
                            id: Some(*id),
                            data: obj.clone(),
                            size_hint: Some(*size),
                        })
                        .collect();
                    for r in repo.key().open_objects(&mut sealed) {
                        black_box(r.expect("valid"));
                    }
                }
            })
        });
        g.finish();
    }
}

fn text(n: usize) -> Vec<u8> {
    let words: [&[u8]; 8] = [
        b"alpha ",
        b"beta ",
        b"borg ",
        b"restore ",
        b"chunk ",
        b"\n",
        b"id ",
        b"x ",
    ];
    let mut v = Vec::with_capacity(n);
    let mut s: u32 = 1;
    while v.len() < n {
        s = s.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        v.extend_from_slice(words[(s >> 16) as usize % words.len()]);
    }
    v.truncate(n);
    v
}

fn with_header(h: [u8; 2], body: &[u8]) -> Vec<u8> {
    let mut v = h.to_vec();
    v.extend_from_slice(body);
    v
}

fn decompressors(c: &mut Criterion) {
    let data = text(4 << 20);
    let lz4 = with_header([1, 0], &lz4_flex::block::compress(&data));
    let zstd = with_header([3, 0], &zstd::bulk::compress(&data, 3).expect("zstd"));
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
    z.write_all(&data).expect("zlib");
    let zlib = z.finish().expect("zlib");
    let mut x = xz2::write::XzEncoder::new(Vec::new(), 6);
    x.write_all(&data).expect("xz");
    let lzma = with_header([2, 0], &x.finish().expect("xz"));
    let none = with_header([0, 0], &data);
    let mut g = c.benchmark_group("decompress");
    g.throughput(Throughput::Bytes(data.len() as u64));
    for (name, payload) in [
        ("none", &none),
        ("lz4", &lz4),
        ("zstd3", &zstd),
        ("zlib6", &zlib),
        ("lzma6", &lzma),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| black_box(decompress_payload(payload, Some(data.len())).expect("ok")))
        });
    }
    g.finish();
}

fn items(c: &mut Criterion) {
    // 10,000 items shaped like borg's (regular files with one chunk).
    let mut buf = Vec::new();
    for i in 0..10_000u32 {
        rmp::encode::write_map_len(&mut buf, 9).expect("encode");
        rmp::encode::write_str(&mut buf, "path").expect("encode");
        rmp::encode::write_str(&mut buf, &format!("home/user/dir{}/file{i}.txt", i / 100))
            .expect("encode");
        for (k, v) in [
            ("mode", 0o100644u64),
            ("uid", 1000),
            ("gid", 1000),
            ("mtime", 1_700_000_000_123_456_789),
            ("size", 4096),
        ] {
            rmp::encode::write_str(&mut buf, k).expect("encode");
            rmp::encode::write_uint(&mut buf, v).expect("encode");
        }
        for k in ["user", "group"] {
            rmp::encode::write_str(&mut buf, k).expect("encode");
            rmp::encode::write_str(&mut buf, "user").expect("encode");
        }
        rmp::encode::write_str(&mut buf, "chunks").expect("encode");
        rmp::encode::write_array_len(&mut buf, 1).expect("encode");
        rmp::encode::write_array_len(&mut buf, 3).expect("encode");
        rmp::encode::write_str_len(&mut buf, 32).expect("encode");
        buf.extend_from_slice(&[i as u8; 32]);
        rmp::encode::write_uint(&mut buf, 4096).expect("encode");
        rmp::encode::write_uint(&mut buf, 4200).expect("encode");
    }
    let mut g = c.benchmark_group("items");
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("decode_10k", |b| {
        b.iter(|| {
            let mut pos = 0;
            while let Decoded::Item(item, used) = decode_item(&buf[pos..]) {
                black_box(item);
                pos += used;
            }
            assert_eq!(pos, buf.len());
        })
    });
    g.finish();
}

fn borg2_objects(c: &mut Criterion) {
    let data = text(2 << 20);
    for (ctype, cname) in [(0u8, "none"), (1, "lz4")] {
        let mut g = c.benchmark_group(format!("open_blob2_{cname}"));
        g.throughput(Throughput::Bytes(data.len() as u64));
        for kt in BORG2 {
            let (key, id, blob) = borg2_blob(kt, &data, ctype);
            g.bench_function(format!("{kt:?}"), |b| {
                b.iter_batched(
                    || blob.clone(),
                    |blob| black_box(key.open_owned(Some(&id), blob, None).expect("valid")),
                    BatchSize::LargeInput,
                )
            });
        }
        g.finish();
    }
    // A 64-byte object: the fixed cost of one (two slots, two session keys, the id).
    let mut g = c.benchmark_group("open_blob2_64B");
    g.throughput(Throughput::Elements(1));
    for kt in BORG2 {
        let (key, id, blob) = borg2_blob(kt, &data[..64], 0);
        g.bench_function(format!("{kt:?}"), |b| {
            b.iter(|| black_box(key.open_object(Some(&id), &blob, None).expect("valid")))
        });
    }
    g.finish();
}

criterion_group!(benches, objects, decompressors, items, borg2_objects);
criterion_main!(benches);

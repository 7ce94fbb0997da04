//! Entry points of the fuzz targets: one function per decoder, each taking arbitrary bytes.
//!
//! `fuzz/` (cargo-fuzz) calls these, and `tests/fuzz_corpus.rs` runs them over the committed
//! seed corpora, the kept crashers (`fuzz/regressions/`) and mutations of both, so the targets
//! are exercised by every `cargo test`. The benchmarks (`benches/decode.rs`) reach the
//! decoders they time through here too. Not a stable API.

pub use crate::compress::decompress as decompress_payload;
pub use crate::format::items::{decode_item, Decoded};
pub use crate::key::{Key, Sealed};

use crate::format::item::Item;
use crate::format::msgpack::ReadError;
use crate::format::{ArchiveMeta, Manifest};
use crate::key::KeyType;
use crate::patterns::{Matcher, Pattern, Style};
use crate::store::hashindex::HashIndex;
use crate::store::local::RepoConfig;
use crate::store::segment;
use std::path::Path;

/// A fuzz target: its name (the directory of its corpus) and entry point.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: &[Target] = &[
    ("decompress", decompress),
    ("envelope", envelope),
    ("key_file", key_file),
    ("blob2", blob2),
    ("key_blob2", key_blob2),
    ("manifest", manifest),
    ("archive", archive),
    ("item_stream", item_stream),
    ("segment", segment_entries),
    ("hashindex", hashindex),
    ("config", config),
    ("rpc_frame", rpc_frame),
    ("rest_response", rest_response),
    ("location", location),
    ("patterns", patterns),
];

/// A size hint from the first byte (sometimes wrong, as hints may be).
fn hint(data: &[u8]) -> Option<usize> {
    data.first().map(|b| usize::from(*b) * 1000)
}

/// Compression header dispatch and every decompressor.
pub fn decompress(data: &[u8]) {
    let _ = crate::compress::decompress(data, hint(data));
    let _ = crate::compress::decompress_owned(data.to_vec(), 0, None, false);
}

/// The object envelope: type byte, MAC, decryption, decompression and id check, alone and in
/// groups, for every kind of key. Besides the raw bytes, each encrypted key also gets the bytes
/// sealed as a valid object, so that what lies behind the MAC is reached too.
pub fn envelope(data: &[u8]) {
    for kt in [
        KeyType::Plaintext,
        KeyType::Authenticated,
        KeyType::Blake2Authenticated,
        KeyType::Repokey,
        KeyType::Blake2Repokey,
    ] {
        let key = Key::fixed_for_tests(kt);
        let id = crate::compress::decompress(data, None)
            .map(|p| key.id_hash(&p))
            .unwrap_or([0x5a; 32]);
        let _ = key.open_object(Some(&id), data, hint(data));
        let _ = key.open_object(None, data, None);
        let sealed = key.seal(data, 1);
        let _ = key.open_object(Some(&id), &sealed, hint(data));
        // A group: the sealed object, the raw bytes, and pieces of them.
        let mut group = vec![
            Sealed {
                id: Some(id),
                data: sealed,
                size_hint: None,
            },
            Sealed {
                id: Some(id),
                data: data.to_vec(),
                size_hint: hint(data),
            },
        ];
        for piece in data.chunks(data.len() / 3 + 1) {
            group.push(Sealed {
                id: Some(id),
                data: key.seal(piece, 2),
                size_hint: Some(piece.len()),
            });
        }
        let _ = key.open_objects(&mut group);
    }
}

/// Key file text and key blobs: base64, the msgpack envelope, and (when it asks for few PBKDF2
/// iterations) decryption with the passphrase `fuzz` and the key map.
pub fn key_file(data: &[u8]) {
    crate::key::blob::fuzz_key_text(&String::from_utf8_lossy(data));
}

/// The borg 2 suites.
pub const BORG2: [KeyType; 6] = [
    KeyType::Aes256OcbSha256,
    KeyType::ChaCha20Poly1305Sha256,
    KeyType::Aes256OcbBlake3,
    KeyType::ChaCha20Poly1305Blake3,
    KeyType::AuthenticatedSha256,
    KeyType::AuthenticatedBlake3,
];

/// borg 2 repository objects and store objects: the raw bytes as a blob (header, sizes, both
/// slots, metadata, decompression, id check; alone, as a group, metadata only) and as store
/// objects, under every suite; and, for one suite, the bytes sealed as a blob's metadata, as its
/// data under metadata taken from the bytes, and as a store object, so that what lies behind the
/// authentication is reached too.
pub fn blob2(data: &[u8]) {
    use crate::key::{ObjMeta, StoreName};
    let repo_id = [0x11; 32];
    for kt in BORG2 {
        let key = Key::fixed_borg2_for_tests(kt, repo_id);
        let _ = key.open_blob(None, data.to_vec(), hint(data));
        let _ = key.open_blob_meta(None, data);
        let _ = key.open_store_object(StoreName::Hashed("index"), data);
        let _ = key.open_store_object(StoreName::Named("config/defaults"), data);
    }
    let b = |i: usize| data.get(i).copied().unwrap_or(0);
    let key = Key::fixed_borg2_for_tests(BORG2[usize::from(b(0)) % BORG2.len()], repo_id);
    let id = key.id_hash(data);
    // The bytes as packed metadata, over the bytes as data.
    let blob = key.seal_blob(&id, data, data, 0);
    let _ = key.open_blob(Some(&id), blob, None);
    // The bytes as (compressed, maybe padded) data under metadata that may or may not fit them.
    let len = data.len() as u64;
    let meta = ObjMeta {
        otype: b'F',
        ctype: b(1) % 7,
        clevel: b(2),
        csize: if b(3) & 1 == 0 {
            len
        } else {
            len ^ u64::from(b(4))
        },
        size: (b(3) & 2 == 0).then(|| u64::from(b(5)) * 97),
        psize: (b(3) & 4 == 0).then(|| len.saturating_sub(u64::from(b(6)))),
        olevel: Some(110),
    };
    let blob = key.seal_blob(&id, &crate::key::pack_meta(&meta), data, 2);
    let mut group = vec![
        Sealed {
            id: Some(id),
            data: blob.clone(),
            size_hint: hint(data),
        },
        Sealed {
            id: None,
            data: blob,
            size_hint: None,
        },
    ];
    let _ = key.open_objects(&mut group);
    let env = key.seal_store_object(StoreName::Hashed("index"), data);
    let _ = key.open_store_object(StoreName::Hashed("index"), &env);
}

/// A borg 2 key of type `ktype` (fixed, publicly known secrets) and a repository object of
/// `plain` compressed with `ctype` (0 none, 1 lz4, 2 lzma, 3 zstd, 5 zlib) sealed under it as
/// borg 2.0.0b25 writes one, with its id: for the benchmarks.
pub fn borg2_blob(ktype: KeyType, plain: &[u8], ctype: u8) -> (Key, crate::ObjectId, Vec<u8>) {
    let key = Key::fixed_borg2_for_tests(ktype, [0x11; 32]);
    let (id, blob) = key.seal_plain_blob(b'F', plain, ctype, true, 0);
    (key, id, blob)
}

/// borg 2 key blobs: the `BORG_KEY` line, base64, the msgpack envelope and its Argon2
/// parameters, (when its costs are tiny) decryption with the passphrase `fuzz`; and the bytes
/// sealed as a key map under tiny costs, so that the key-map decoder is reached.
pub fn key_blob2(data: &[u8]) {
    crate::key::blob2::fuzz_key_text(data);
}

/// The manifest, with and without a required TAM, under a plaintext and an authenticated key.
pub fn manifest(data: &[u8]) {
    for key in [
        Key::plaintext(),
        Key::fixed_for_tests(KeyType::Authenticated),
    ] {
        let _ = Manifest::parse(data, &key, true);
        let _ = Manifest::parse(data, &key, false);
    }
}

/// Archive metadata and its TAM (borg 1.x), and borg 2's archive metadata.
pub fn archive(data: &[u8]) {
    for key in [
        Key::plaintext(),
        Key::fixed_for_tests(KeyType::Blake2Authenticated),
    ] {
        let _ = ArchiveMeta::parse(data, &key, "fuzz", false);
        let _ = ArchiveMeta::parse(data, &key, "fuzz", true);
    }
    let _ = ArchiveMeta::parse_borg2(data, "fuzz");
}

/// The item-stream decoder: items one after another, and every prefix of the first one
/// (which must be "short", never an item or a panic).
pub fn item_stream(data: &[u8]) {
    let mut pos = 0;
    while let Ok((item, used)) = Item::decode(&data[pos..]) {
        assert!(
            used > 0 && pos + used <= data.len(),
            "decoder used {used} bytes"
        );
        let _ = item.display_path();
        let _ = item.content_size();
        pos += used;
    }
    if let Ok((_, used)) = Item::decode(data) {
        for cut in [0, used / 2, used.saturating_sub(1)] {
            assert!(
                matches!(Item::decode(&data[..cut]), Err(ReadError::Short)) || cut == used,
                "a {cut}-byte prefix of a {used}-byte item decoded"
            );
        }
    }
}

/// Segment files: a full scan, and reads of single entries at offsets taken from the data.
pub fn segment_entries(data: &[u8]) {
    let path = Path::new("fuzz-segment");
    let _ = segment::scan_reader(data, path, 1, |_| {});
    let mut with_magic = segment::MAGIC.to_vec();
    with_magic.extend_from_slice(data);
    let mut offsets = Vec::new();
    let _ = segment::scan_reader(with_magic.as_slice(), path, 1, |e| {
        offsets.push((e.offset, e.id, e.size))
    });
    #[cfg(target_os = "linux")]
    {
        use std::io::Write;
        let Ok(fd) = rustix::fs::memfd_create("oxiborg-fuzz", rustix::fs::MemfdFlags::CLOEXEC)
        else {
            return;
        };
        let mut file = std::fs::File::from(fd);
        if file.write_all(&with_magic).is_err() {
            return;
        }
        offsets.push((8, Some([0; 32]), 64));
        offsets.push((with_magic.len() as u32 / 2, None, 41));
        for (off, id, size) in offsets {
            let id = id.unwrap_or([0; 32]);
            for guess in [None, Some(size), Some(size / 2), Some(segment::SMALL_ENTRY)] {
                let _ = segment::read_put_sized(&file, 1, off, &id, guess);
            }
        }
    }
}

/// The on-disk hash index (borg 1.x), and borg 2's chunk-index fragments (borghash tables)
/// and object headers.
pub fn hashindex(data: &[u8]) {
    if let Ok(idx) = HashIndex::from_bytes(data.to_vec()) {
        let _ = idx.get(&[0u8; 32]);
        let _ = idx.iter().count();
    }
    let mut index = crate::store::borg2::index::ChunkIndex::default();
    if crate::store::borg2::index::add_fragment(&mut index, data).is_ok() {
        for loc in index.map.values() {
            assert!(
                (loc.pack as usize) < index.packs.len(),
                "a pack number out of range"
            );
        }
    }
    let _ = crate::store::borg2::index::parse_header(data);
}

/// The repository `config` file (borg 1.x), and borg 2's `config/config`.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = RepoConfig::parse(&text);
    let _ = crate::store::borg2::config::Borg2Config::parse(&text);
}

/// Opens borg 1.x's `borg serve` session to `location` (the RPC alone, without falling back
/// to borg 2's REST), for the tests of the fallback.
///
/// # Errors
/// As the remote connection: `Connect`, `Ssh`, `Protocol` (a borg 2 server), `Dropped`.
pub fn connect_borg_serve(
    location: &crate::Location,
    options: &crate::RemoteOptions,
) -> crate::Result<()> {
    crate::remote::connect(location, options).map(drop)
}

/// The decrypted metadata objects of a borg 2 repository, for seed corpora: its
/// `config/config`, each archive's metadata (target `archive`), each chunk-index fragment
/// (`hashindex`) and the first item-stream chunk of each archive (`item_stream`), as
/// `(target, plaintext)`.
///
/// # Errors
/// The repository cannot be opened with `options`.
pub fn borg2_seed_plaintexts(
    location: &crate::Location,
    options: &crate::OpenOptions,
) -> crate::Result<Vec<(&'static str, Vec<u8>)>> {
    let repo = crate::Repository::open(location, options)?;
    let root = Path::new(&location.path);
    let mut out = vec![(
        "config",
        std::fs::read(root.join("config/config")).unwrap_or_default(),
    )];
    let mut frags: Vec<_> = std::fs::read_dir(root.join("index"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    frags.sort();
    for f in frags {
        let env = std::fs::read(&f).unwrap_or_default();
        if let Ok(p) = repo
            .key()
            .open_store_object(crate::key::StoreName::Hashed("index"), &env)
        {
            out.push(("hashindex", p));
        }
    }
    for entry in repo.archives() {
        let (_, plain) =
            repo.key()
                .open_blob(Some(&entry.id.0), repo.store().get(&entry.id.0)?, None)?;
        out.push(("archive", plain));
        let archive = repo.archive_by_entry(entry)?;
        if let Some(id) = archive.meta.items.first() {
            out.push(("item_stream", repo.get_object(id, None)?));
        }
    }
    Ok(out)
}

/// `borg serve` response frames, read and interpreted as the client does.
pub fn rpc_frame(data: &[u8]) {
    crate::remote::fuzz_frames(data);
}

/// `borg serve --rest` responses (HTTP/1.1 framed by `Content-Length`), read as the client
/// reads them.
pub fn rest_response(data: &[u8]) {
    crate::remote::rest::fuzz_responses(data);
}

/// Repository locations (every URL form, `::archive`).
pub fn location(data: &[u8]) {
    use std::os::unix::ffi::OsStrExt;
    let s = String::from_utf8_lossy(data);
    if let Ok(loc) = crate::Location::parse_bytes(data) {
        let _ = loc.canonical();
        let _ = loc.archive_display();
    }
    let os = std::ffi::OsStr::from_bytes(data);
    let _ = crate::Location::parse_with_default(Some(os), Some("/repo"));
    let _ = crate::Location::parse_with_default(None, Some(&s));
}

/// Patterns: pattern files, single patterns of every style, and matching paths taken from
/// the data.
pub fn patterns(data: &[u8]) {
    let mut m = Matcher::new();
    let _ = m.add_pattern_lines(data);
    let _ = m.add_exclude_lines(data);
    let paths: Vec<&[u8]> = data.split(|b| *b == b'\n').take(16).collect();
    for style in [
        Style::PathPrefix,
        Style::FnMatch,
        Style::Shell,
        Style::Regex,
        Style::PathFull,
    ] {
        for line in data.split(|b| *b == b'\n').take(8) {
            if let Ok(p) = Pattern::parse(line, style) {
                for path in &paths {
                    let _ = p.matches(path);
                }
            }
        }
    }
    for path in paths {
        let _ = m.matches(path);
    }
    let _ = m.unmatched_includes();
}

/// A tree of named files read the way the borg 2 store reads it — a local directory, or a
/// repository behind `borg serve --rest` over SSH — with plain types, for the tests that
/// compare the two.
pub struct FilesProbe(Box<dyn crate::store::files::Files>);

/// A directory entry: name, size (0 for a directory), is it a directory.
pub type ProbeEntry = (String, u64, bool);

impl FilesProbe {
    /// The files of the local directory `dir`.
    pub fn local(dir: &Path) -> FilesProbe {
        FilesProbe(Box::new(crate::store::files::LocalFiles::new(
            dir,
            &dir.display().to_string(),
        )))
    }

    /// The files of the borg 2 repository at `loc`, through `borg serve --rest`.
    ///
    /// # Errors
    /// As the REST transport's `connect`.
    pub fn rest(loc: &crate::Location, opts: &crate::RemoteOptions) -> crate::Result<FilesProbe> {
        Ok(FilesProbe(Box::new(crate::remote::rest::connect(
            loc, opts,
        )?)))
    }

    /// The location named in messages.
    pub fn location(&self) -> &str {
        self.0.location()
    }

    /// One level of `dir`, in name order; `None` when there is no such directory.
    ///
    /// # Errors
    /// The transport failing.
    pub fn list(&self, dir: &str) -> crate::Result<Option<Vec<ProbeEntry>>> {
        Ok(self
            .0
            .list(dir)?
            .map(|v| v.into_iter().map(|e| (e.name, e.size, e.is_dir)).collect()))
    }

    /// A whole file; `None` when there is none.
    ///
    /// # Errors
    /// The transport failing.
    pub fn load(&self, name: &str) -> crate::Result<Option<Vec<u8>>> {
        self.0.load(name)
    }

    /// `len` bytes at `offset` of `name`.
    ///
    /// # Errors
    /// The transport failing, a file that ends sooner.
    pub fn load_range(&self, name: &str, offset: u64, len: u64) -> crate::Result<Vec<u8>> {
        self.0.load_range(&crate::store::files::Range {
            name: name.into(),
            offset,
            len,
        })
    }

    /// Many `(name, offset, len)` ranges at once; the results in the order asked.
    ///
    /// # Errors
    /// The transport failing (a range that fails alone has its error in its place).
    pub fn load_ranges(
        &self,
        ranges: &[(String, u64, u64)],
    ) -> crate::Result<Vec<crate::Result<Vec<u8>>>> {
        let want: Vec<crate::store::files::Range> = ranges
            .iter()
            .map(|(name, offset, len)| crate::store::files::Range {
                name: name.clone(),
                offset: *offset,
                len: *len,
            })
            .collect();
        let mut out: Vec<Option<crate::Result<Vec<u8>>>> = (0..want.len()).map(|_| None).collect();
        self.0.load_ranges(&want, &mut |i, r| {
            if out[i].replace(r).is_some() {
                return Err(crate::Error::Other(format!("range {i} was answered twice")));
            }
            Ok(())
        })?;
        out.into_iter()
            .enumerate()
            .map(|(i, r)| {
                r.ok_or_else(|| crate::Error::Other(format!("range {i} was not answered")))
            })
            .collect()
    }

    /// What is at `name`: `Some(true)` a directory, `Some(false)` a file, `None` nothing.
    ///
    /// # Errors
    /// The transport failing.
    pub fn kind(&self, name: &str) -> crate::Result<Option<bool>> {
        self.0.kind(name)
    }
}

/// Whether `e` is the 1.x client's failure against a borg 2 `borg serve` (see
/// `remote::is_borg2_server`).
pub fn is_borg2_server(e: &crate::Error) -> bool {
    crate::remote::is_borg2_server(e)
}

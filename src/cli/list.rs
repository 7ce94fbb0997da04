//! `list` and `info`: listings in borg's formats.

use super::format::{Format, Value};
use super::json::{self, J};
use super::timefmt::{self, archive_time, item_time};
use super::{ArchiveFilterArgs, GlobalArgs, InfoArgs, ListArgs};
use crate::error::{Error, Result};
use crate::format::item::{
    Item, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK,
};
use crate::format::text::display_bytes;
use crate::format::ArchiveEntry;
use crate::patterns::Matcher;
use crate::repository::Repository;
use crate::stats::{self, ArchiveStats, CacheStats};
use std::io::Write;

const DEFAULT_ARCHIVE_FORMAT: &str = "{archive:<36} {time} [{id}]{NL}";
const SHORT_ARCHIVE_FORMAT: &str = "{archive}{NL}";
const DEFAULT_ITEM_FORMAT: &str = "{mode} {user:6} {group:6} {size:8} {mtime} {path}{extra}{NL}";
const SHORT_ITEM_FORMAT: &str = "{path}{NL}";

fn io(e: std::io::Error) -> Error {
    Error::io("<stdout>", e)
}

fn usage(e: String) -> Error {
    Error::InvalidInput(e)
}

/// Archives selected by the filter options, in the order borg lists them.
pub(super) fn select_archives<'a>(
    repo: &'a Repository,
    f: &ArchiveFilterArgs,
    consider_checkpoints: bool,
) -> Result<Vec<&'a ArchiveEntry>> {
    repo.select(&f.to_filter(consider_checkpoints)?)
}

/// Keys of an archive that need its metadata object.
const ARCHIVE_CALL_KEYS: &[&str] = &[
    "end",
    "comment",
    "bcomment",
    "command_line",
    "hostname",
    "username",
    "tam",
];

fn shlex_quote(s: &str) -> String {
    if s.is_empty() {
        return "''".into();
    }
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\"'\"'"))
}

fn command_line(args: &[Vec<u8>]) -> String {
    args.iter()
        .map(|a| shlex_quote(&display_bytes(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn encryption_json(repo: &Repository) -> J {
    let key = repo.key();
    let mut e = vec![("mode".to_string(), J::s(key.key_type().mode_name()))];
    if key.key_type().is_keyfile() {
        e.push(("keyfile".to_string(), J::s(key.origin())));
    }
    J::Obj(e)
}

fn repository_json(repo: &Repository) -> J {
    let last = crate::format::parse_time(&repo.manifest().timestamp)
        .map(|t| J::s(timefmt::iso(&archive_time(&t))))
        .unwrap_or(J::Null);
    J::obj([
        ("id", J::s(hex::encode(repo.store().id()))),
        ("last_modified", last),
        ("location", J::s(canonical_location(repo))),
    ])
}

fn canonical_location(repo: &Repository) -> String {
    let loc = repo.location();
    if loc.is_local() {
        std::path::absolute(&loc.path)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| loc.path.clone())
    } else {
        loc.canonical()
    }
}

/// `list REPO`.
pub(super) fn list_repository(
    repo: &Repository,
    args: &ListArgs,
    out: &mut impl Write,
) -> Result<i32> {
    let fmt_text = match (&args.format, args.short) {
        (Some(f), _) => f.clone(),
        (None, true) => SHORT_ARCHIVE_FORMAT.into(),
        (None, false) => DEFAULT_ARCHIVE_FORMAT.into(),
    };
    let fmt = Format::parse(&fmt_text).map_err(usage)?;
    let selected = select_archives(repo, &args.filter, args.filter.consider_checkpoints)?;
    let needs_meta = ARCHIVE_CALL_KEYS.iter().any(|k| fmt.uses(k));
    let mut json_archives = Vec::new();
    let mut line = String::new();
    for entry in selected {
        let meta = if needs_meta {
            Some(repo.archive_by_entry(entry)?.meta)
        } else {
            None
        };
        let tam = needs_meta.then(|| {
            if meta.as_ref().is_some_and(|m| m.tam.is_some()) {
                "verified"
            } else {
                "none"
            }
        });
        let name = entry.display_name();
        let start = archive_time(&entry.time_utc);
        let end = meta
            .as_ref()
            .and_then(|m| crate::format::parse_time(m.time_end()))
            .map(|t| archive_time(&t));
        let lookup = |k: &str| -> Option<Value> {
            let m = meta.as_ref();
            Some(match k {
                "archive" | "name" | "barchive" => Value::Str(name.clone()),
                "id" => Value::Str(hex::encode(entry.id)),
                "start" | "time" => Value::Time(start),
                "end" => Value::Time(end.unwrap_or(start)),
                "comment" | "bcomment" => {
                    Value::Str(display_bytes(m?.comment.as_deref().unwrap_or(b"")))
                }
                "command_line" => Value::Str(command_line(&m?.cmdline)),
                "hostname" => Value::Str(display_bytes(&m?.hostname)),
                "username" => Value::Str(display_bytes(&m?.username)),
                "tam" => Value::Str(tam?.to_string()),
                _ => return None,
            })
        };
        if args.json {
            let mut obj = vec![
                ("archive".to_string(), J::s(&name)),
                ("barchive".to_string(), J::s(&name)),
                ("id".to_string(), J::s(hex::encode(entry.id))),
                ("name".to_string(), J::s(&name)),
                ("start".to_string(), J::s(timefmt::iso(&start))),
                ("time".to_string(), J::s(timefmt::iso(&start))),
            ];
            if let Some(m) = &meta {
                for k in ARCHIVE_CALL_KEYS.iter().filter(|k| fmt.uses(k)) {
                    let v = match *k {
                        "end" => J::s(timefmt::iso(&end.unwrap_or(start))),
                        "comment" => J::s(display_bytes(m.comment.as_deref().unwrap_or(b""))),
                        "bcomment" => J::Bytes(m.comment.clone().unwrap_or_default()),
                        "command_line" => {
                            J::Arr(m.cmdline.iter().map(|a| J::s(display_bytes(a))).collect())
                        }
                        "hostname" => J::s(display_bytes(&m.hostname)),
                        "username" => J::s(display_bytes(&m.username)),
                        _ => J::s(tam.unwrap_or("none")),
                    };
                    obj.push((k.to_string(), v));
                }
            }
            json_archives.push(J::Obj(obj));
            continue;
        }
        line.clear();
        fmt.render(&mut line, lookup).map_err(usage)?;
        out.write_all(line.as_bytes()).map_err(io)?;
    }
    if args.json {
        let doc = J::obj([
            ("archives", J::Arr(json_archives)),
            ("encryption", encryption_json(repo)),
            ("repository", repository_json(repo)),
        ]);
        writeln!(out, "{}", json::pretty(&doc)).map_err(io)?;
    }
    Ok(0)
}

/// `stat.filemode`.
fn filemode(mode: u32) -> String {
    let t = match mode & S_IFMT {
        S_IFREG => '-',
        S_IFDIR => 'd',
        S_IFLNK => 'l',
        S_IFCHR => 'c',
        S_IFBLK => 'b',
        S_IFIFO => 'p',
        S_IFSOCK => 's',
        _ => '?',
    };
    let mut s = String::with_capacity(10);
    s.push(t);
    let bit = |m: u32, c: char| if mode & m != 0 { c } else { '-' };
    s.push(bit(0o400, 'r'));
    s.push(bit(0o200, 'w'));
    s.push(match (mode & 0o100 != 0, mode & 0o4000 != 0) {
        (true, true) => 's',
        (false, true) => 'S',
        (true, false) => 'x',
        _ => '-',
    });
    s.push(bit(0o040, 'r'));
    s.push(bit(0o020, 'w'));
    s.push(match (mode & 0o010 != 0, mode & 0o2000 != 0) {
        (true, true) => 's',
        (false, true) => 'S',
        (true, false) => 'x',
        _ => '-',
    });
    s.push(bit(0o004, 'r'));
    s.push(bit(0o002, 'w'));
    s.push(match (mode & 0o001 != 0, mode & 0o1000 != 0) {
        (true, true) => 't',
        (false, true) => 'T',
        (true, false) => 'x',
        _ => '-',
    });
    s
}

/// Placeholders that become extra keys of a `--json-lines` object, in emission order.
const ITEM_CALL_KEYS: &[&str] = &[
    "size",
    "csize",
    "num_chunks",
    "isomtime",
    "isoctime",
    "isoatime",
    "mtime",
    "ctime",
    "atime",
    "md5",
    "sha1",
    "sha224",
    "sha256",
    "sha384",
    "sha512",
    "sha3_224",
    "sha3_256",
    "sha3_384",
    "sha3_512",
    "blake2b",
    "blake2s",
    "xxh64",
];

/// The content-hash placeholders (hex digest of the file's content, read from the repository).
const HASHES: &[&str] = &[
    "md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha3_224", "sha3_256", "sha3_384",
    "sha3_512", "blake2b", "blake2s", "xxh64",
];

/// borg's hash placeholders: "" for items without content, else the hex digest of the content.
fn content_hash(repo: &Repository, item: &Item, algo: &str) -> Result<String> {
    use sha2::digest::DynDigest;
    use std::io::Read;
    if item.chunks.is_none() {
        return Ok(String::new());
    }
    enum H {
        D(Box<dyn DynDigest>),
        X(xxhash_rust::xxh64::Xxh64),
    }
    let mut h = match algo {
        "md5" => H::D(Box::new(md5::Md5::default())),
        "sha1" => H::D(Box::new(sha1::Sha1::default())),
        "sha224" => H::D(Box::new(sha2::Sha224::default())),
        "sha256" => H::D(Box::new(sha2::Sha256::default())),
        "sha384" => H::D(Box::new(sha2::Sha384::default())),
        "sha512" => H::D(Box::new(sha2::Sha512::default())),
        "sha3_224" => H::D(Box::new(sha3::Sha3_224::default())),
        "sha3_256" => H::D(Box::new(sha3::Sha3_256::default())),
        "sha3_384" => H::D(Box::new(sha3::Sha3_384::default())),
        "sha3_512" => H::D(Box::new(sha3::Sha3_512::default())),
        "blake2b" => H::D(Box::new(blake2::Blake2b512::default())),
        "blake2s" => H::D(Box::new(blake2::Blake2s256::default())),
        _ => H::X(xxhash_rust::xxh64::Xxh64::new(0)),
    };
    let mut reader = repo.open_chunks_reader(item);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| Error::Integrity(e.to_string()))?;
        if n == 0 {
            break;
        }
        match &mut h {
            H::D(d) => d.update(&buf[..n]),
            H::X(x) => x.update(&buf[..n]),
        }
    }
    Ok(match h {
        H::D(d) => hex::encode(d.finalize()),
        H::X(x) => format!("{:016x}", x.digest()),
    })
}
struct ItemView<'a> {
    item: &'a Item,
    source: String,
    hardlink: bool,
}

impl<'a> ItemView<'a> {
    fn new(item: &'a Item) -> Self {
        ItemView {
            item,
            source: item
                .source
                .as_deref()
                .map(display_bytes)
                .unwrap_or_default(),
            hardlink: item.is_hardlink_slave()
                && item.source.as_ref().is_some_and(|s| !s.is_empty()),
        }
    }

    fn mode(&self) -> String {
        let mut m = filemode(self.item.mode);
        if self.hardlink {
            m.replace_range(0..1, "h");
        }
        m
    }

    fn size(&self) -> i64 {
        self.item.listed_size() as i64
    }

    fn csize(&self) -> i64 {
        if self.item.is_symlink() {
            return self.source.chars().count() as i64;
        }
        self.item
            .chunks
            .as_ref()
            .map(|c| {
                c.iter()
                    .map(|c| c.csize.unwrap_or(0))
                    .fold(0u64, u64::saturating_add) as i64
            })
            .unwrap_or(0)
    }

    fn time(&self, key: &str) -> chrono::DateTime<chrono::Local> {
        let it = self.item;
        let v = match key {
            "ctime" => it.ctime,
            "atime" => it.atime,
            _ => None,
        };
        item_time(v.filter(|v| *v != 0).unwrap_or(it.mtime))
    }

    fn owner(name: &Option<Vec<u8>>, id: u32) -> Value {
        match name {
            Some(n) if !n.is_empty() => Value::Str(String::from_utf8_lossy(n).into_owned()),
            _ => Value::Int(i64::from(id)),
        }
    }

    fn value(&self, k: &str) -> Option<Value> {
        let it = self.item;
        Some(match k {
            "type" => Value::Str(filemode(it.mode)[..1].to_string()),
            "mode" => Value::Str(self.mode()),
            "uid" => Value::Int(i64::from(it.uid)),
            "gid" => Value::Int(i64::from(it.gid)),
            "user" => Self::owner(&it.user, it.uid),
            "group" => Self::owner(&it.group, it.gid),
            "path" | "bpath" => Value::Str(it.display_path()),
            "source" | "linktarget" => Value::Str(self.source.clone()),
            "extra" => Value::Str(if it.is_symlink() {
                format!(" -> {}", self.source)
            } else if self.hardlink {
                format!(" link to {}", self.source)
            } else {
                String::new()
            }),
            "flags" => Value::Int(i64::from(it.bsdflags.unwrap_or(0))),
            "size" => Value::Int(self.size()),
            "csize" => Value::Int(self.csize()),
            "num_chunks" => Value::Int(it.chunks.as_ref().map_or(0, |c| c.len()) as i64),
            "mtime" | "ctime" | "atime" => Value::Time(self.time(k)),
            "isomtime" | "isoctime" | "isoatime" => Value::Str(timefmt::iso(&self.time(&k[3..]))),
            "health" => Value::Str(
                if it.chunks_healthy.is_some() {
                    "broken"
                } else {
                    "healthy"
                }
                .into(),
            ),
            _ => return None,
        })
    }

    fn json(&self, fmt: &Format, archive: &str, archive_id: &str) -> J {
        let it = self.item;
        let mut o: Vec<(String, J)> = Vec::with_capacity(14);
        if fmt.uses("archivename") {
            o.push(("archivename".into(), J::s(archive)));
        }
        if fmt.uses("archiveid") {
            o.push(("archiveid".into(), J::s(archive_id)));
        }
        let owner = |v: Value| match v {
            Value::Int(i) => J::Int(i128::from(i)),
            Value::Str(s) => J::Str(s),
            _ => J::Null,
        };
        o.push(("type".into(), J::s(filemode(it.mode)[..1].to_string())));
        o.push(("mode".into(), J::s(self.mode())));
        o.push(("user".into(), owner(Self::owner(&it.user, it.uid))));
        o.push(("group".into(), owner(Self::owner(&it.group, it.gid))));
        o.push(("uid".into(), J::Int(i128::from(it.uid))));
        o.push(("gid".into(), J::Int(i128::from(it.gid))));
        o.push(("path".into(), J::s(it.display_path())));
        o.push(("healthy".into(), J::Bool(it.chunks_healthy.is_none())));
        o.push(("source".into(), J::s(&self.source)));
        o.push(("linktarget".into(), J::s(&self.source)));
        o.push(("flags".into(), J::Int(i128::from(it.bsdflags.unwrap_or(0)))));
        for k in ITEM_CALL_KEYS.iter().filter(|k| fmt.uses(k)) {
            let v = match self.value(k) {
                Some(Value::Int(i)) => J::Int(i128::from(i)),
                Some(Value::Time(t)) => J::s(timefmt::iso(&t)),
                Some(Value::Str(s)) => J::Str(s),
                _ => J::Null,
            };
            o.push((k.to_string(), v));
        }
        J::Obj(o)
    }
}

/// `list REPO::ARCHIVE [PATH...]`.
pub(super) fn list_archive(
    repo: &Repository,
    name: &[u8],
    args: &ListArgs,
    mut matcher: Matcher,
    global: &GlobalArgs,
    out: &mut impl Write,
) -> Result<i32> {
    let fmt_text = match (&args.format, args.short) {
        (Some(f), _) => f.clone(),
        (None, true) => SHORT_ITEM_FORMAT.into(),
        (None, false) => DEFAULT_ITEM_FORMAT.into(),
    };
    let fmt = Format::parse(&fmt_text).map_err(usage)?;
    let archive = repo.archive(name)?;
    let archive_name = archive.name();
    let archive_id = hex::encode(archive.entry.id);
    let mut line = String::new();
    archive.each_item(|item| {
        if item.part.is_some() && !global.consider_part_files {
            return Ok(());
        }
        if !matcher.matches(&item.path) {
            return Ok(());
        }
        let view = ItemView::new(&item);
        line.clear();
        if args.json_lines {
            let mut obj = view.json(&fmt, &archive_name, &archive_id);
            if let J::Obj(fields) = &mut obj {
                for (k, v) in fields.iter_mut() {
                    if HASHES.contains(&k.as_str()) {
                        *v = J::Str(content_hash(repo, &item, k)?);
                    }
                }
            }
            line.push_str(&json::line(&obj));
            line.push('\n');
        } else {
            let mut hash_err = None;
            fmt.render(&mut line, |k| match k {
                "archivename" => Some(Value::Str(archive_name.clone())),
                "archiveid" => Some(Value::Str(archive_id.clone())),
                k if HASHES.contains(&k) => match content_hash(repo, &item, k) {
                    Ok(h) => Some(Value::Str(h)),
                    Err(e) => {
                        hash_err = Some(e);
                        Some(Value::Str(String::new()))
                    }
                },
                k => view.value(k),
            })
            .map_err(usage)?;
            if let Some(e) = hash_err {
                return Err(e);
            }
        }
        out.write_all(line.as_bytes()).map_err(io)
    })?;
    Ok(0)
}

fn enc_text(repo: &Repository) -> String {
    use crate::key::KeyType::*;
    match repo.key().key_type() {
        Plaintext | Authenticated => "No".into(),
        Repokey => "Yes (repokey)".into(),
        Blake2Repokey => "Yes (repokey BLAKE2b)".into(),
        Keyfile => "Yes (key file)".into(),
        Blake2Keyfile => "Yes (key file BLAKE2b)".into(),
        Blake2Authenticated => "Yes (authenticated BLAKE2b)".into(),
        Passphrase => "Yes (passphrase)".into(),
    }
}

fn cache_dir(repo: &Repository) -> String {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
    };
    let base = var("BORG_BASE_DIR");
    let dir = var("BORG_CACHE_DIR").unwrap_or_else(|| {
        let home = match (&base, var("XDG_CACHE_HOME")) {
            (None, Some(x)) => x,
            (Some(b), _) => b.join(".cache"),
            (None, None) => var("HOME").unwrap_or_else(|| "/".into()).join(".cache"),
        };
        home.join("borg")
    });
    dir.join(hex::encode(repo.store().id()))
        .display()
        .to_string()
}

fn cache_json(repo: &Repository, c: &CacheStats) -> J {
    J::obj([
        ("path", J::s(cache_dir(repo))),
        (
            "stats",
            J::obj([
                ("total_chunks", J::Int(c.total_chunks.into())),
                ("total_csize", J::Int(c.total_csize.into())),
                ("total_size", J::Int(c.total_size.into())),
                ("total_unique_chunks", J::Int(c.total_unique_chunks.into())),
                ("unique_csize", J::Int(c.unique_csize.into())),
                ("unique_size", J::Int(c.unique_size.into())),
            ]),
        ),
    ])
}

fn cache_text(c: &CacheStats, iec: bool) -> String {
    let fs = |v: u64| timefmt::file_size(v as i64, iec);
    format!(
        "All archives:   {:>20} {:>20} {:>20}\n\n                       Unique chunks         Total chunks\nChunk index:    {:>20} {:>20}\n",
        fs(c.total_size),
        fs(c.total_csize),
        fs(c.unique_csize),
        c.total_unique_chunks,
        c.total_chunks
    )
}

const SEPARATOR: &str =
    "------------------------------------------------------------------------------";
const SIZE_HEADER: &str =
    "                       Original size      Compressed size    Deduplicated size";

/// Where the 20 MiB object limit puts an archive: `borg info`'s "utilization".
const MAX_DATA_SIZE: f64 = 20_971_479.0;

fn chunker_params_json(v: &Option<rmpv::Value>) -> J {
    fn conv(v: &rmpv::Value) -> J {
        match v {
            rmpv::Value::Integer(i) => J::Int(
                i.as_i64()
                    .map(i128::from)
                    .or(i.as_u64().map(i128::from))
                    .unwrap_or(0),
            ),
            rmpv::Value::String(s) => J::Bytes(s.as_bytes().to_vec()),
            rmpv::Value::Binary(b) => J::Bytes(b.clone()),
            rmpv::Value::Array(a) => J::Arr(a.iter().map(conv).collect()),
            rmpv::Value::Boolean(b) => J::Bool(*b),
            rmpv::Value::F64(f) => J::Float(*f),
            rmpv::Value::F32(f) => J::Float(f64::from(*f)),
            _ => J::Null,
        }
    }
    match v {
        Some(rmpv::Value::Array(a))
            if a.len() == 4 && a.iter().all(|x| x.is_i64() || x.is_u64()) =>
        {
            let mut v = vec![J::s("buzhash")];
            v.extend(a.iter().map(conv));
            J::Arr(v)
        }
        Some(v) => conv(v),
        None => J::s(""),
    }
}

fn duration(st: &ArchiveStats) -> f64 {
    let start = crate::format::parse_time(&st.meta.time);
    let end = crate::format::parse_time(st.meta.time_end());
    match (start, end) {
        (Some(s), Some(e)) => (e - s).num_microseconds().unwrap_or(0) as f64 / 1e6,
        _ => 0.0,
    }
}

/// `info REPO` and `info REPO::ARCHIVE`.
pub(super) fn info(
    repo: &Repository,
    args: &InfoArgs,
    named: Option<&[u8]>,
    global: &GlobalArgs,
    out: &mut impl Write,
) -> Result<i32> {
    let f = &args.filter;
    let archive_mode = named.is_some()
        || f.first.is_some()
        || f.last.is_some()
        || f.prefix.is_some()
        || f.glob_archives.is_some();
    let selected: Vec<ArchiveEntry> = if let Some(name) = named {
        vec![repo.manifest().find_or_suggest(name)?.clone()]
    } else if archive_mode {
        select_archives(repo, f, true)?
            .into_iter()
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    let ids: Vec<_> = selected.iter().map(|a| a.id.0).collect();
    let st = stats::compute(repo, &ids, global.consider_part_files)?;
    let iec = global.iec;
    if args.json {
        let mut doc = Vec::new();
        if archive_mode {
            let archives = st
                .archives
                .iter()
                .map(|a| {
                    let m = &a.meta;
                    let start = crate::format::parse_time(&m.time)
                        .map(|t| timefmt::iso(&archive_time(&t)))
                        .unwrap_or_default();
                    let end = crate::format::parse_time(m.time_end())
                        .map(|t| timefmt::iso(&archive_time(&t)))
                        .unwrap_or_default();
                    let mut o = vec![
                        (
                            "chunker_params".to_string(),
                            chunker_params_json(&m.chunker_params),
                        ),
                        (
                            "command_line".to_string(),
                            J::Arr(m.cmdline.iter().map(|c| J::Bytes(c.clone())).collect()),
                        ),
                        (
                            "comment".to_string(),
                            J::Bytes(m.comment.clone().unwrap_or_default()),
                        ),
                        ("duration".to_string(), J::Float(duration(a))),
                        ("end".to_string(), J::s(end)),
                        ("hostname".to_string(), J::Bytes(m.hostname.clone())),
                        ("id".to_string(), J::s(hex::encode(a.entry.id))),
                        (
                            "limits".to_string(),
                            J::obj([(
                                "max_archive_size",
                                J::Float(a.meta_csize as f64 / MAX_DATA_SIZE),
                            )]),
                        ),
                        ("name".to_string(), J::s(a.entry.display_name())),
                        ("start".to_string(), J::s(start)),
                        (
                            "stats".to_string(),
                            J::obj([
                                ("compressed_size", J::Int(a.compressed_size.into())),
                                ("deduplicated_size", J::Int(a.deduplicated_size.into())),
                                ("nfiles", J::Int(a.nfiles.into())),
                                ("original_size", J::Int(a.original_size.into())),
                            ]),
                        ),
                        ("username".to_string(), J::Bytes(m.username.clone())),
                    ];
                    o.push((
                        "cwd".to_string(),
                        J::Bytes(m.cwd.clone().unwrap_or_default()),
                    ));
                    J::Obj(o)
                })
                .collect();
            doc.push(("archives".to_string(), J::Arr(archives)));
        }
        doc.push(("cache".to_string(), cache_json(repo, &st.cache)));
        doc.push(("encryption".to_string(), encryption_json(repo)));
        doc.push(("repository".to_string(), repository_json(repo)));
        if !archive_mode {
            let sec = crate::key::blob::BorgDirs::from_env()
                .security
                .join(hex::encode(repo.store().id()));
            doc.push(("security_dir".to_string(), J::s(sec.display().to_string())));
        }
        writeln!(out, "{}", json::pretty(&J::Obj(doc))).map_err(io)?;
        return Ok(0);
    }
    let mut text = String::new();
    if archive_mode {
        for (i, a) in st.archives.iter().enumerate() {
            if i > 0 {
                text.push('\n');
            }
            let m = &a.meta;
            let t = |s: &str| {
                crate::format::parse_time(s)
                    .map(|t| timefmt::human(&archive_time(&t)))
                    .unwrap_or_default()
            };
            text.push_str(&format!("Archive name: {}\n", a.entry.display_name()));
            text.push_str(&format!(
                "Archive fingerprint: {}\n",
                hex::encode(a.entry.id)
            ));
            text.push_str(&format!(
                "Comment: {}\n",
                display_bytes(m.comment.as_deref().unwrap_or(b""))
            ));
            text.push_str(&format!("Hostname: {}\n", display_bytes(&m.hostname)));
            text.push_str(&format!("Username: {}\n", display_bytes(&m.username)));
            text.push_str(&format!("Time (start): {}\n", t(&m.time)));
            text.push_str(&format!("Time (end): {}\n", t(m.time_end())));
            text.push_str(&format!("Duration: {}\n", timefmt::timedelta(duration(a))));
            text.push_str(&format!("Number of files: {}\n", a.nfiles));
            text.push_str(&format!(
                "Working Directory: {}\n",
                display_bytes(m.cwd.as_deref().unwrap_or(b""))
            ));
            text.push_str(&format!("Command line: {}\n", command_line(&m.cmdline)));
            let util = a.meta_csize as f64 / MAX_DATA_SIZE * 100.0;
            text.push_str(&format!(
                "Utilization of maximum supported archive size: {util:.0}%\n"
            ));
            text.push_str(SEPARATOR);
            text.push('\n');
            text.push_str(SIZE_HEADER);
            text.push('\n');
            let fs = |v: u64| timefmt::file_size(v as i64, iec);
            text.push_str(&format!(
                "This archive:   {:>20} {:>20} {:>20}\n",
                fs(a.original_size),
                fs(a.compressed_size),
                fs(a.deduplicated_size)
            ));
            text.push_str(&cache_text(&st.cache, iec));
        }
    } else {
        text.push_str(&format!(
            "Repository ID: {}\n",
            hex::encode(repo.store().id())
        ));
        text.push_str(&format!("Location: {}\n", canonical_location(repo)));
        text.push_str(&format!("Encrypted: {}\n", enc_text(repo)));
        if repo.key().key_type().is_keyfile() {
            text.push_str(&format!("Key file: {}\n", repo.key().origin()));
        }
        text.push_str(&format!("Cache: {}\n", cache_dir(repo)));
        let sec = crate::key::blob::BorgDirs::from_env()
            .security
            .join(hex::encode(repo.store().id()));
        text.push_str(&format!("Security dir: {}\n", sec.display()));
        text.push_str(SEPARATOR);
        text.push('\n');
        text.push_str(SIZE_HEADER);
        text.push('\n');
        text.push_str(&cache_text(&st.cache, iec));
    }
    out.write_all(text.as_bytes()).map_err(io)?;
    Ok(0)
}

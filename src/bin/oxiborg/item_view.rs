//! One item as `list` shows it: borg's format keys, file modes and content hashes.

use super::format::{Format, Value};
use super::json::J;
use super::timefmt::{self, item_time};
use oxiborg::display_bytes;
use oxiborg::error::{Error, Result};
use oxiborg::repository::Repository;
use oxiborg::Item;

/// `stat.filemode` of an item: its kind's letter, then the permission bits.
pub(crate) fn filemode(item: &Item) -> String {
    let mode = item.mode;
    let mut s = String::with_capacity(10);
    s.push(item.kind().letter());
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
pub(crate) const ITEM_CALL_KEYS: &[&str] = &[
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

/// borg 2's placeholders that become extra keys of a `--json-lines` object (content hashes
/// are added by the caller).
pub(crate) const ITEM_CALL_KEYS_BORG2: &[&str] = &[
    "size",
    "num_chunks",
    "isomtime",
    "isoctime",
    "isoatime",
    "mtime",
    "ctime",
    "atime",
];

/// An owner's name, or (borg 2) its number as text when the archive has no name for it.
fn owner_text(name: &Option<Vec<u8>>, id: u32) -> String {
    match name {
        Some(n) => display_bytes(n),
        None => id.to_string(),
    }
}

/// The content-hash placeholders (hex digest of the file's content, read from the repository).
pub(crate) const HASHES: &[&str] = &[
    "md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha3_224", "sha3_256", "sha3_384",
    "sha3_512", "blake2b", "blake2s", "xxh64",
];

/// borg's hash placeholders: "" for items without content, else the hex digest of the content.
pub(crate) fn content_hash(repo: &Repository, item: &Item, algo: &str) -> Result<String> {
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
pub(crate) struct ItemView<'a> {
    item: &'a Item,
    source: String,
    hardlink: bool,
    /// Shown as borg 2 shows it (its keys, times with offsets).
    borg2: bool,
}

impl<'a> ItemView<'a> {
    pub(crate) fn new(item: &'a Item, borg2: bool) -> Self {
        ItemView {
            item,
            borg2,
            source: item
                .source
                .as_deref()
                .map(display_bytes)
                .unwrap_or_default(),
            hardlink: item.is_hardlink_slave()
                && item.source.as_ref().is_some_and(|s| !s.is_empty()),
        }
    }

    pub(crate) fn mode(&self) -> String {
        let mut m = filemode(self.item);
        if self.hardlink && !self.borg2 {
            m.replace_range(0..1, "h");
        }
        m
    }

    pub(crate) fn size(&self) -> i64 {
        self.item.listed_size() as i64
    }

    pub(crate) fn csize(&self) -> i64 {
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

    pub(crate) fn time(&self, key: &str) -> chrono::DateTime<chrono::Local> {
        let it = self.item;
        let v = match key {
            "ctime" => it.ctime,
            "atime" => it.atime,
            _ => None,
        };
        item_time(v.filter(|v| *v != 0).unwrap_or(it.mtime))
    }

    pub(crate) fn owner(name: &Option<Vec<u8>>, id: u32) -> Value {
        match name {
            Some(n) if !n.is_empty() => Value::Str(String::from_utf8_lossy(n).into_owned()),
            _ => Value::Int(i64::from(id)),
        }
    }

    pub(crate) fn value(&self, k: &str) -> Option<Value> {
        if self.borg2 {
            return self.value_borg2(k);
        }
        let it = self.item;
        Some(match k {
            "type" => Value::Str(filemode(it)[..1].to_string()),
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

    /// A symlink's target as text ("" for anything else).
    fn target(&self) -> String {
        self.item
            .link_target()
            .map(display_bytes)
            .unwrap_or_default()
    }

    /// A time as borg 2 shows it.
    fn time_borg2(&self, key: &str) -> chrono::DateTime<chrono::Local> {
        let it = self.item;
        let v = match key {
            "ctime" => it.ctime,
            "atime" => it.atime,
            _ => None,
        };
        timefmt::item_time_borg2(v.filter(|v| *v != 0).unwrap_or(it.mtime))
    }

    /// borg 2's placeholders (`ItemFormatter` of 2.0.0b25).
    fn value_borg2(&self, k: &str) -> Option<Value> {
        let it = self.item;
        Some(match k {
            "type" => Value::Str(filemode(it)[..1].to_string()),
            "mode" => Value::Str(self.mode()),
            "uid" => Value::Int(i64::from(it.uid)),
            "gid" => Value::Int(i64::from(it.gid)),
            "user" => Value::Str(owner_text(&it.user, it.uid)),
            "group" => Value::Str(owner_text(&it.group, it.gid)),
            "path" => Value::Str(it.display_path()),
            "target" => Value::Str(self.target()),
            "hlid" => Value::Str(it.hlid.map(hex::encode).unwrap_or_default()),
            "inode" => Value::Str(it.inode.map(|i| i.to_string()).unwrap_or("None".into())),
            "flags" => Value::Str(it.bsdflags.map(|f| f.to_string()).unwrap_or("None".into())),
            "extra" => Value::Str(if it.is_symlink() {
                format!(" -> {}", self.target())
            } else {
                String::new()
            }),
            "size" => Value::Int(self.size()),
            "num_chunks" => Value::Int(it.chunks.as_ref().map_or(0, |c| c.len()) as i64),
            "mtime" | "ctime" | "atime" => Value::TimeTz(self.time_borg2(k)),
            "isomtime" | "isoctime" | "isoatime" => {
                Value::Str(timefmt::iso_tz(&self.time_borg2(&k[3..])))
            }
            _ => return None,
        })
    }

    /// One `--json-lines` object as borg 2 writes it: keys sorted, text that is not UTF-8
    /// shown with `?` and given again as base64 in `<key>_b64`.
    pub(crate) fn json_borg2(&self, fmt: &Format, archive: &str, archive_id: &str) -> J {
        let it = self.item;
        let mut o: Vec<(String, J)> = Vec::with_capacity(16);
        let text = |o: &mut Vec<(String, J)>, key: &str, raw: &[u8]| {
            o.push((key.to_string(), J::s(display_bytes(raw))));
            if std::str::from_utf8(raw).is_err() {
                use base64::Engine;
                o.push((
                    format!("{key}_b64"),
                    J::s(base64::engine::general_purpose::STANDARD.encode(raw)),
                ));
            }
        };
        text(&mut o, "path", &it.path);
        text(&mut o, "target", it.link_target().unwrap_or_default());
        let uid = it.uid.to_string();
        let gid = it.gid.to_string();
        text(&mut o, "user", it.user.as_deref().unwrap_or(uid.as_bytes()));
        text(
            &mut o,
            "group",
            it.group.as_deref().unwrap_or(gid.as_bytes()),
        );
        o.push((
            "hlid".into(),
            J::s(it.hlid.map(hex::encode).unwrap_or_default()),
        ));
        o.push(("type".into(), J::s(filemode(it)[..1].to_string())));
        o.push(("mode".into(), J::s(self.mode())));
        o.push(("uid".into(), J::Int(i128::from(it.uid))));
        o.push(("gid".into(), J::Int(i128::from(it.gid))));
        o.push((
            "flags".into(),
            it.bsdflags.map_or(J::Null, |f| J::Int(i128::from(f))),
        ));
        o.push((
            "inode".into(),
            it.inode.map_or(J::Null, |i| J::Int(i128::from(i))),
        ));
        for k in ITEM_CALL_KEYS_BORG2.iter().filter(|k| fmt.uses(k)) {
            let v = match self.value_borg2(k) {
                Some(Value::Int(i)) => J::Int(i128::from(i)),
                Some(Value::TimeTz(t)) => J::s(timefmt::iso_tz(&t)),
                Some(Value::Str(s)) => J::Str(s),
                _ => J::Null,
            };
            o.push((k.to_string(), v));
        }
        // (the caller fills in the content hashes)
        for k in HASHES.iter().chain(&["blake3"]).filter(|k| fmt.uses(k)) {
            if **k != *"xxh64" {
                o.push((k.to_string(), J::s("")));
            }
        }
        if fmt.uses("archivename") {
            o.push(("archivename".into(), J::s(archive)));
        }
        if fmt.uses("archiveid") {
            o.push(("archiveid".into(), J::s(archive_id)));
        }
        o.sort_by(|a, b| a.0.cmp(&b.0));
        J::Obj(o)
    }

    pub(crate) fn json(&self, fmt: &Format, archive: &str, archive_id: &str) -> J {
        if self.borg2 {
            return self.json_borg2(fmt, archive, archive_id);
        }
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
        o.push(("type".into(), J::s(filemode(it)[..1].to_string())));
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

//! `info`: a repository, or an archive, in detail (text or JSON).

use super::json::{self, J};
use super::timefmt::{self, archive_time};
use crate::args::{GlobalArgs, InfoArgs};
use crate::list::{canonical_location, command_line, encryption_json, io, repository_json};
use crate::open::{open_options, warn_store};
use oxiborg::display_bytes;
use oxiborg::error::{Error, Result};
use oxiborg::repository::Repository;
use oxiborg::stats::{self, ArchiveStats, CacheStats};
use oxiborg::ArchiveEntry;
use oxiborg::Location;
use std::io::Write;

/// `info`: the repository, or an archive, in detail.
pub(crate) fn run(args: InfoArgs, global: &GlobalArgs) -> Result<i32> {
    let loc = Location::parse_with_env(args.location.as_deref())?;
    let repo = Repository::open(&loc, &open_options(global))?;
    warn_store(&repo);
    let archive = args.filter.archive(&repo, &loc, args.latest)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let rc = info(&repo, &args, archive.as_deref(), global, &mut out)?;
    out.flush().map_err(|e| Error::io("<stdout>", e))?;
    Ok(rc)
}

fn enc_text(repo: &Repository) -> String {
    use oxiborg::KeyType::*;
    match repo.key_type() {
        k if k.is_borg2() => k.mode_name().into(),
        Plaintext | Authenticated => "No".into(),
        Repokey => "Yes (repokey)".into(),
        Blake2Repokey => "Yes (repokey BLAKE2b)".into(),
        Keyfile => "Yes (key file)".into(),
        Blake2Keyfile => "Yes (key file BLAKE2b)".into(),
        Blake2Authenticated => "Yes (authenticated BLAKE2b)".into(),
        Passphrase => "Yes (passphrase)".into(),
        // borg 2: b25's words less the key's location, which the type does not tell.
        k @ (AuthenticatedSha256 | AuthenticatedBlake3) => format!("No ({})", k.mode_name()),
        k @ (Aes256OcbSha256
        | ChaCha20Poly1305Sha256
        | Aes256OcbBlake3
        | ChaCha20Poly1305Blake3) => {
            format!("Yes ({}, {})", k.mode_name(), k.id_hash_name())
        }
    }
}

pub(crate) fn cache_dir(repo: &Repository) -> String {
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
    dir.join(repo.id().to_string()).display().to_string()
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

pub(crate) fn chunker_params_json(v: &Option<rmpv::Value>) -> J {
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
    let start = oxiborg::parse_time(&st.meta.time);
    let end = oxiborg::parse_time(st.meta.time_end());
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
        f.select(repo, true)?.into_iter().cloned().collect()
    } else {
        Vec::new()
    };
    if repo.is_borg2() {
        let selected = archive_mode.then_some(selected);
        return crate::info_borg2::info(repo, args, selected, global, out);
    }
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
                    let start = oxiborg::parse_time(&m.time)
                        .map(|t| timefmt::iso(&archive_time(&t)))
                        .unwrap_or_default();
                    let end = oxiborg::parse_time(m.time_end())
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
            let sec = oxiborg::BorgDirs::from_env()
                .security
                .join(repo.id().to_string());
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
                oxiborg::parse_time(s)
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
        text.push_str(&format!("Repository ID: {}\n", repo.id()));
        text.push_str(&format!("Location: {}\n", canonical_location(repo)));
        text.push_str(&format!("Encrypted: {}\n", enc_text(repo)));
        if repo.key_type().is_keyfile() {
            text.push_str(&format!("Key file: {}\n", repo.key_origin()));
        }
        text.push_str(&format!("Cache: {}\n", cache_dir(repo)));
        let sec = oxiborg::BorgDirs::from_env()
            .security
            .join(repo.id().to_string());
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

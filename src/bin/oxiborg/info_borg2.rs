//! `info` of a borg 2 repository, as borg 2 shows it: `repo-info` for the repository,
//! `info` for archives (their metadata; borg 2 computes no deduplicated sizes there).

use super::json::{self, J};
use super::timefmt;
use crate::args::{GlobalArgs, InfoArgs};
use crate::info::cache_dir;
use crate::list::{canonical_location, io};
use oxiborg::display_bytes;
use oxiborg::error::Result;
use oxiborg::repository::Repository;
use oxiborg::ArchiveEntry;
use std::io::Write;

/// The security directory borg 2 keeps for this repository.
fn security_dir(repo: &Repository) -> String {
    oxiborg::BorgDirs::from_env()
        .borg2_security
        .join(repo.id().to_string())
        .display()
        .to_string()
}

/// `{"encryption": …, "id_hash": …}` (and the key file), borg 2's `encryption` object.
fn encryption_json(repo: &Repository) -> J {
    let kt = repo.key_type();
    let mut e = vec![
        ("encryption".to_string(), J::s(kt.mode_name())),
        ("id_hash".to_string(), J::s(kt.id_hash_name())),
    ];
    if let Some(f) = key_file(repo) {
        e.push(("keyfile".to_string(), J::s(f)));
    }
    J::Obj(e)
}

/// The key file the key came from (`None` for a key stored in the repository).
fn key_file(repo: &Repository) -> Option<&str> {
    Some(repo.key_origin()).filter(|o| *o != "repository")
}

fn repository_json(repo: &Repository) -> J {
    J::obj([
        ("id", J::s(repo.id().to_string())),
        ("location", J::s(canonical_location(repo))),
    ])
}

/// `Encrypted: Yes (repokey, chacha20-poly1305, blake3)` and the key file line.
fn encryption_text(repo: &Repository) -> String {
    let kt = repo.key_type();
    let storage = if key_file(repo).is_some() {
        "keyfile"
    } else {
        "repokey"
    };
    let suite = if kt.mode_name().starts_with("authenticated") {
        kt.mode_name().to_string()
    } else {
        format!("{}, {}", kt.mode_name(), kt.id_hash_name())
    };
    let yes = if kt.is_encrypted() { "Yes" } else { "No" };
    let mut s = format!("Encrypted: {yes} ({storage}, {suite})");
    if let Some(f) = key_file(repo) {
        s.push_str(&format!("\nKey file: {f}"));
    }
    s
}

/// `info` of a borg 2 repository: the repository, or the selected archives.
pub(crate) fn info(
    repo: &Repository,
    args: &InfoArgs,
    selected: Option<Vec<ArchiveEntry>>,
    global: &GlobalArgs,
    out: &mut impl Write,
) -> Result<i32> {
    let Some(selected) = selected else {
        return repo_info(repo, args, out);
    };
    let iec = global.iec;
    let mut json_archives = Vec::new();
    let mut text = String::new();
    for (i, entry) in selected.iter().enumerate() {
        let archive = repo.archive_by_entry(entry)?;
        let m = &archive.meta;
        let at = |t: Option<&String>| {
            t.and_then(|t| oxiborg::parse_time(t))
                .map(|t| timefmt::archive_time_borg2(&t))
                .unwrap_or_else(|| timefmt::archive_time_borg2(&entry.time_utc))
        };
        let (time, start, end) = (
            timefmt::archive_time_borg2(&entry.time_utc),
            at(m.start.as_ref()),
            at(m.end.as_ref()),
        );
        let duration = (end - start).num_microseconds().unwrap_or(0) as f64 / 1e6;
        let command_line = display_bytes(m.command_line.as_deref().unwrap_or(b""));
        let nfiles = m.nfiles.unwrap_or(0);
        let size = m.size.unwrap_or(0);
        if args.json {
            let o = vec![
                (
                    "chunker_params".to_string(),
                    crate::info::chunker_params_json(&m.chunker_params),
                ),
                ("command_line".to_string(), J::s(&command_line)),
                (
                    "comment".to_string(),
                    J::s(display_bytes(m.comment.as_deref().unwrap_or(b""))),
                ),
                (
                    "cwd".to_string(),
                    J::s(display_bytes(m.cwd.as_deref().unwrap_or(b""))),
                ),
                ("duration".to_string(), J::Float(duration)),
                ("end".to_string(), J::s(timefmt::iso_tz(&end))),
                ("hostname".to_string(), J::s(display_bytes(&m.hostname))),
                ("id".to_string(), J::s(hex::encode(entry.id))),
                ("name".to_string(), J::s(entry.display_name())),
                ("start".to_string(), J::s(timefmt::iso_tz(&start))),
                (
                    "stats".to_string(),
                    J::obj([
                        ("chunking_time", J::Float(0.0)),
                        ("files_stats", J::Obj(Vec::new())),
                        ("hashing_time", J::Float(0.0)),
                        ("nfiles", J::Int(nfiles.into())),
                        ("original_size", J::Int(size.into())),
                        ("store_stats", J::Obj(Vec::new())),
                    ]),
                ),
                (
                    "tags".to_string(),
                    J::Arr(m.tags.iter().map(J::s).collect()),
                ),
                ("time".to_string(), J::s(timefmt::iso_tz(&time))),
                ("username".to_string(), J::s(display_bytes(&m.username))),
            ];
            json_archives.push(J::Obj(o));
            continue;
        }
        if i > 0 {
            text.push('\n');
        }
        let human = |t| t_human(&t);
        text.push_str(&format!(
            "Archive name: {}\nArchive fingerprint: {}\nComment: {}\nHostname: {}\n\
             Username: {}\nTags: {}\nTime (nominal): {}\nTime (start): {}\nTime (end): {}\n\
             Duration: {}\nCommand line: {}\nWorking Directory: {}\nNumber of files: {}\n\
             Original size: {}\n",
            entry.display_name(),
            hex::encode(entry.id),
            display_bytes(m.comment.as_deref().unwrap_or(b"")),
            display_bytes(&m.hostname),
            display_bytes(&m.username),
            m.tags.join(","),
            human(time),
            human(start),
            human(end),
            timefmt::timedelta(duration),
            command_line,
            display_bytes(m.cwd.as_deref().unwrap_or(b"")),
            nfiles,
            timefmt::file_size(size as i64, iec),
        ));
    }
    if args.json {
        let doc = J::obj([
            ("archives", J::Arr(json_archives)),
            ("cache", J::obj([("path", J::s(cache_dir(repo)))])),
            ("encryption", encryption_json(repo)),
            ("repository", repository_json(repo)),
        ]);
        writeln!(out, "{}", json::pretty(&doc)).map_err(io)?;
    } else {
        out.write_all(text.as_bytes()).map_err(io)?;
    }
    Ok(0)
}

fn t_human(t: &chrono::DateTime<chrono::Local>) -> String {
    t.format(super::format::DEFAULT_TIME_TZ).to_string()
}

/// borg 2's `repo-info`.
fn repo_info(repo: &Repository, args: &InfoArgs, out: &mut impl Write) -> Result<i32> {
    let defaults = repo.borg2_defaults().cloned().unwrap_or_default();
    let (compression, chunker_params) = (
        defaults.compression.clone().unwrap_or_else(|| "lz4".into()),
        defaults
            .chunker_params
            .clone()
            .unwrap_or_else(|| "fastcdc,19,23,21,2".into()),
    );
    if args.json {
        let doc = J::obj([
            ("cache", J::obj([("path", J::s(cache_dir(repo)))])),
            (
                "defaults",
                J::obj([
                    ("chunker_params", J::s(&chunker_params)),
                    ("compression", J::s(&compression)),
                ]),
            ),
            ("encryption", encryption_json(repo)),
            ("repository", repository_json(repo)),
            ("security_dir", J::s(security_dir(repo))),
        ]);
        writeln!(out, "{}", json::pretty(&doc)).map_err(io)?;
        return Ok(0);
    }
    let builtin = |set: bool| if set { "" } else { " (built-in)" };
    let text = format!(
        "Repository ID: {}\nLocation: {}\nRepository version: 5\n{}\nSecurity directory: {}\n\
         Default compression: {compression}{}\nDefault chunker params: {chunker_params}{}\n\
         Cache: {}\n\n",
        repo.id(),
        canonical_location(repo),
        encryption_text(repo),
        security_dir(repo),
        builtin(defaults.compression.is_some()),
        builtin(defaults.chunker_params.is_some()),
        cache_dir(repo),
    );
    out.write_all(text.as_bytes()).map_err(io)?;
    Ok(0)
}

//! `list`: the repository's archives, or an archive's items, in borg's formats.

use super::format::{Format, Value};
use super::json::{self, J};
use super::timefmt::{self, archive_time};
use crate::args::{GlobalArgs, ListArgs};
use crate::item_view::{content_hash, ItemView, HASHES};
use crate::matcher::build_matcher;
use crate::open::{open_options, warn_store};
use crate::select::archive_location;
use oxiborg::display_bytes;
use oxiborg::error::{Error, Result};
use oxiborg::patterns::Matcher;
use oxiborg::repository::Repository;
use std::io::Write;

const DEFAULT_ARCHIVE_FORMAT: &str = "{archive:<36} {time} [{id}]{NL}";
const SHORT_ARCHIVE_FORMAT: &str = "{archive}{NL}";
const DEFAULT_ITEM_FORMAT: &str = "{mode} {user:6} {group:6} {size:8} {mtime} {path}{extra}{NL}";
const SHORT_ITEM_FORMAT: &str = "{path}{NL}";
/// borg 2's `repo-list` default (`BORG_REPO_LIST_FORMAT`).
const DEFAULT_ARCHIVE_FORMAT_BORG2: &str =
    "{id:.8}  {time}  {archive:<15}  {tags:<10}  {username:<10}  {hostname:<10}  {comment:.40}{NL}";

pub(crate) fn io(e: std::io::Error) -> Error {
    Error::io("<stdout>", e)
}

pub(crate) fn usage(e: String) -> Error {
    Error::InvalidInput(e)
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

pub(crate) fn shlex_quote(s: &str) -> String {
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

pub(crate) fn command_line(args: &[Vec<u8>]) -> String {
    args.iter()
        .map(|a| shlex_quote(&display_bytes(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn encryption_json(repo: &Repository) -> J {
    let mut e = vec![("mode".to_string(), J::s(repo.key_type().mode_name()))];
    if repo.key_type().is_keyfile() {
        e.push(("keyfile".to_string(), J::s(repo.key_origin())));
    }
    J::Obj(e)
}

pub(crate) fn repository_json(repo: &Repository) -> J {
    let last = oxiborg::parse_time(&repo.manifest().timestamp)
        .map(|t| J::s(timefmt::iso(&archive_time(&t))))
        .unwrap_or(J::Null);
    J::obj([
        ("id", J::s(repo.id().to_string())),
        ("last_modified", last),
        ("location", J::s(canonical_location(repo))),
    ])
}

pub(crate) fn canonical_location(repo: &Repository) -> String {
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
    if repo.is_borg2() {
        return list_repository_borg2(repo, args, out);
    }
    let fmt_text = match (&args.format, args.short) {
        (Some(f), _) => f.clone(),
        (None, true) => SHORT_ARCHIVE_FORMAT.into(),
        (None, false) => DEFAULT_ARCHIVE_FORMAT.into(),
    };
    let fmt = Format::parse(&fmt_text).map_err(usage)?;
    let selected = args.filter.select(repo, args.filter.consider_checkpoints)?;
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
            .and_then(|m| oxiborg::parse_time(m.time_end()))
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

/// Keys of a borg 2 archive that need its metadata object.
const ARCHIVE_CALL_KEYS_BORG2: &[&str] = &[
    "hostname",
    "username",
    "comment",
    "command_line",
    "size",
    "nfiles",
    "start",
    "end",
    "tags",
];

/// `list REPO` of a borg 2 repository, as borg 2's `repo-list` shows it.
fn list_repository_borg2(repo: &Repository, args: &ListArgs, out: &mut impl Write) -> Result<i32> {
    let fmt_text = match (&args.format, args.short) {
        (Some(f), _) => f.clone(),
        (None, true) => "{id}{NL}".into(),
        (None, false) => std::env::var("BORG_REPO_LIST_FORMAT")
            .unwrap_or_else(|_| DEFAULT_ARCHIVE_FORMAT_BORG2.into()),
    };
    let fmt = Format::parse(&fmt_text).map_err(usage)?;
    let selected = args.filter.select(repo, args.filter.consider_checkpoints)?;
    let needs_meta = ARCHIVE_CALL_KEYS_BORG2.iter().any(|k| fmt.uses(k));
    let mut json_archives = Vec::new();
    let mut line = String::new();
    for entry in selected {
        let meta = if needs_meta {
            Some(repo.archive_by_entry(entry)?.meta)
        } else {
            None
        };
        let name = entry.display_name();
        let time = timefmt::archive_time_borg2(&entry.time_utc);
        let at = |t: Option<&String>| {
            t.and_then(|t| oxiborg::parse_time(t))
                .map_or(time, |t| timefmt::archive_time_borg2(&t))
        };
        let value = |k: &str| -> Option<Value> {
            let m = meta.as_ref();
            Some(match k {
                "archive" | "name" => Value::Str(name.clone()),
                "id" => Value::Str(hex::encode(entry.id)),
                "time" => Value::TimeTz(time),
                "start" => Value::TimeTz(at(m?.start.as_ref())),
                "end" => Value::TimeTz(at(m?.end.as_ref())),
                "comment" => Value::Str(display_bytes(m?.comment.as_deref().unwrap_or(b""))),
                "command_line" => {
                    Value::Str(display_bytes(m?.command_line.as_deref().unwrap_or(b"")))
                }
                "hostname" => Value::Str(display_bytes(&m?.hostname)),
                "username" => Value::Str(display_bytes(&m?.username)),
                "size" => Value::Int(m?.size.unwrap_or(0) as i64),
                "nfiles" => Value::Int(m?.nfiles.unwrap_or(0) as i64),
                "tags" => Value::Str(m?.tags.join(",")),
                _ => return None,
            })
        };
        if args.json {
            let mut obj = vec![
                ("archive".to_string(), J::s(&name)),
                ("id".to_string(), J::s(hex::encode(entry.id))),
                ("name".to_string(), J::s(&name)),
                ("time".to_string(), J::s(timefmt::iso_tz(&time))),
            ];
            for k in ARCHIVE_CALL_KEYS_BORG2.iter().filter(|k| fmt.uses(k)) {
                let v = match value(k) {
                    Some(Value::Int(i)) => J::Int(i128::from(i)),
                    Some(Value::TimeTz(t)) => J::s(timefmt::iso_tz(&t)),
                    Some(Value::Str(s)) => J::Str(s),
                    _ => J::Null,
                };
                obj.push((k.to_string(), v));
            }
            obj.sort_by(|a, b| a.0.cmp(&b.0));
            json_archives.push(J::Obj(obj));
            continue;
        }
        line.clear();
        fmt.render(&mut line, value).map_err(usage)?;
        out.write_all(line.as_bytes()).map_err(io)?;
    }
    if args.json {
        let mut encryption = vec![
            ("encryption".to_string(), J::s(repo.key_type().mode_name())),
            ("id_hash".to_string(), J::s(repo.key_type().id_hash_name())),
        ];
        if repo.key_origin() != "repository" {
            encryption.push(("keyfile".to_string(), J::s(repo.key_origin())));
        }
        let doc = J::obj([
            ("archives", J::Arr(json_archives)),
            ("encryption", J::Obj(encryption)),
            (
                "repository",
                J::obj([
                    ("id", J::s(repo.id().to_string())),
                    ("location", J::s(canonical_location(repo))),
                ]),
            ),
        ]);
        writeln!(out, "{}", json::pretty(&doc)).map_err(io)?;
    }
    Ok(0)
}

/// `list`: the repository's archives, or an archive's items.
pub(crate) fn run(
    mut args: ListArgs,
    global: &GlobalArgs,
    sub: Option<&clap::ArgMatches>,
) -> Result<i32> {
    let named = args.latest || args.borgmatic.archive.is_some();
    let loc = archive_location(
        &mut args.location,
        &mut args.paths,
        &args.borgmatic,
        global,
        named,
    )?;
    if loc.archive.is_some() && args.json {
        return Err(Error::InvalidInput(
            "The --json option is only valid for listing archives, not archive contents.".into(),
        ));
    }
    if loc.archive.is_none() && args.json_lines {
        return Err(Error::InvalidInput(
            "The --json-lines option is only valid for listing archive contents, not archives."
                .into(),
        ));
    }
    let repo = Repository::open(&loc, &open_options(global))?;
    warn_store(&repo);
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let archive = args.filter.archive(&repo, &loc, args.latest)?;
    let rc = match &archive {
        Some(name) => {
            let matcher = build_matcher(&args.paths, &args.patterns, sub)?;
            list_archive(&repo, name, &args, matcher, global, &mut out)?
        }
        None => list_repository(&repo, &args, &mut out)?,
    };
    out.flush().map_err(|e| Error::io("<stdout>", e))?;
    Ok(rc)
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
        let view = ItemView::new(&item, repo.is_borg2());
        line.clear();
        if args.json_lines {
            let mut obj = view.json(&fmt, &archive_name, &archive_id);
            if let J::Obj(fields) = &mut obj {
                for (k, v) in fields.iter_mut() {
                    if HASHES.contains(&k.as_str()) || k == "blake3" {
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
                k if HASHES.contains(&k) || (k == "blake3" && repo.is_borg2()) => {
                    match content_hash(repo, &item, k) {
                        Ok(h) => Some(Value::Str(h)),
                        Err(e) => {
                            hash_err = Some(e);
                            Some(Value::Str(String::new()))
                        }
                    }
                }
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

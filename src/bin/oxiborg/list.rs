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

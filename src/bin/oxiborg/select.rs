//! Which repository, archive and paths the arguments name: positionals when the repository
//! comes from `BORG_REPO`, borgmatic's `--archive`/`--path`, `--latest` and archive filters.

use crate::args::{ArchiveFilterArgs, BorgmaticArgs, GlobalArgs, LatestArgs};
use oxiborg::error::{Error, Result};
use oxiborg::repository::Repository;
use oxiborg::Location;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

/// `BORG_REPO`, when set (also by a borgmatic configuration).
pub(crate) fn default_repo() -> Option<OsString> {
    std::env::var_os("BORG_REPO").filter(|r| !r.is_empty())
}

/// Whether a positional argument is a repository location rather than a PATH: it names an
/// archive (`::`), is a URL or `host:path`, or is a repository directory here.
pub(crate) fn looks_like_location(arg: &[u8]) -> bool {
    if arg.windows(2).any(|w| w == b"::")
        || arg.starts_with(b"ssh://")
        || arg.starts_with(b"file://")
    {
        return true;
    }
    // scp style: a ':' before any '/'
    if let Some(i) = arg.iter().position(|b| matches!(b, b':' | b'/')) {
        if arg[i] == b':' && i > 0 {
            return true;
        }
    }
    let dir = std::path::Path::new(std::ffi::OsStr::from_bytes(arg));
    dir.join("config").is_file() && dir.join("data").is_dir()
}

/// The location and PATH arguments of a command that reads an archive: when the repository
/// comes from `BORG_REPO` (or a borgmatic configuration) and the archive from an option
/// (`--latest`, `--archive`; or the command always needs one), a first positional that is
/// not a location is the first PATH (`oxiborg --borgmatic extract --latest home/me/.bashrc`).
fn split_positionals(
    first: Option<OsString>,
    mut paths: Vec<OsString>,
    archive_needed: bool,
) -> (Option<OsString>, Vec<OsString>) {
    match first {
        Some(f)
            if archive_needed
                && default_repo().is_some()
                && !f.is_empty()
                && !looks_like_location(f.as_bytes()) =>
        {
            paths.insert(0, f);
            (None, paths)
        }
        first => (first, paths),
    }
}

/// borgmatic's `--archive NAME --path PATH`: under `--borgmatic-config`/`--borgmatic` they
/// become `::NAME` and PATHs; otherwise the error names the oxiborg spelling.
fn borgmatic_args(
    b: &BorgmaticArgs,
    borgmatic: bool,
    location: &mut Option<OsString>,
    paths: &mut Vec<OsString>,
) -> Result<()> {
    if b.archive.is_none() && b.path.is_empty() {
        return Ok(());
    }
    if !borgmatic {
        let archive = b
            .archive
            .as_deref()
            .map_or("ARCHIVE".into(), |a| a.to_string_lossy());
        let paths: Vec<String> = b
            .path
            .iter()
            .map(|p| shell_words::quote(&p.to_string_lossy()).into_owned())
            .collect();
        return Err(Error::InvalidInput(format!(
            "--archive and --path are borgmatic's options; oxiborg takes them with \
             --borgmatic-config FILE or --borgmatic. With borg's arguments: oxiborg extract \
             REPO::{archive} {} (or ::{archive} with BORG_REPO set; --latest for the newest)",
            if paths.is_empty() {
                "[PATH…]".into()
            } else {
                paths.join(" ")
            }
        )));
    }
    if let Some(a) = &b.archive {
        match location.as_deref() {
            Some(l) if l.as_bytes().windows(2).any(|w| w == b"::") => {
                return Err(Error::InvalidInput(format!(
                    "--archive {} and an archive in {}: give one of them",
                    a.to_string_lossy(),
                    l.to_string_lossy()
                )))
            }
            l => {
                let mut text = l.map(OsString::from).unwrap_or_default();
                text.push("::");
                text.push(a);
                *location = Some(text);
            }
        }
    }
    paths.extend(b.path.iter().cloned());
    Ok(())
}

impl ArchiveFilterArgs {
    /// The archives these options select, in the order borg lists them.
    pub(crate) fn select<'a>(
        &self,
        repo: &'a Repository,
        consider_checkpoints: bool,
    ) -> Result<Vec<&'a oxiborg::ArchiveEntry>> {
        repo.select(&self.to_filter(consider_checkpoints)?)
    }

    /// The library's filter.
    fn to_filter(&self, consider_checkpoints: bool) -> Result<oxiborg::ArchiveFilter> {
        Ok(oxiborg::ArchiveFilter {
            glob: self.glob_archives.clone(),
            prefix: self.prefix.clone(),
            sort_by: self
                .sort_by
                .split(',')
                .map(str::parse)
                .collect::<Result<Vec<_>>>()?,
            first: self.first,
            last: self.last,
            consider_checkpoints,
        })
    }
}

/// The archive a command works on: the one named, or with `--latest` (or `::latest` when no
/// archive has that name) the newest of those the prefix or glob selects.
fn resolve_archive(
    repo: &Repository,
    loc: &Location,
    latest: bool,
    prefix: Option<&String>,
    glob: Option<&String>,
) -> Result<Option<Vec<u8>>> {
    let named = loc.archive.as_deref();
    let magic = named == Some(b"latest") && repo.manifest().find("latest").is_none();
    if latest && named.is_some() && !magic {
        return Err(Error::InvalidInput(
            "--latest and an archive name: give one of them".into(),
        ));
    }
    if !latest && !magic {
        return Ok(named.map(<[u8]>::to_vec));
    }
    let filter = oxiborg::ArchiveFilter {
        prefix: prefix.cloned(),
        glob: glob.cloned(),
        ..oxiborg::ArchiveFilter::default()
    };
    Ok(Some(repo.latest(&filter)?.name.clone()))
}

impl ArchiveFilterArgs {
    /// The archive named in `loc`, or with `latest` the newest of those the prefix or glob
    /// selects; `None` for the repository itself.
    pub(crate) fn archive(
        &self,
        repo: &Repository,
        loc: &Location,
        latest: bool,
    ) -> Result<Option<Vec<u8>>> {
        resolve_archive(
            repo,
            loc,
            latest,
            self.prefix.as_ref(),
            self.glob_archives.as_ref(),
        )
    }
}

/// The location of a command that reads an archive, and its PATHs: the positionals as
/// [`split_positionals`] reads them, then borgmatic's `--archive` and `--path`.
pub(crate) fn archive_location(
    location: &mut Option<OsString>,
    paths: &mut Vec<OsString>,
    borgmatic: &BorgmaticArgs,
    global: &GlobalArgs,
    archive_needed: bool,
) -> Result<Location> {
    (*location, *paths) = split_positionals(location.take(), std::mem::take(paths), archive_needed);
    borgmatic_args(borgmatic, global.uses_borgmatic(), location, paths)?;
    Location::parse_with_env(location.as_deref())
}

impl LatestArgs {
    /// The archive `command` works on: named in `loc`, or the newest with `--latest`.
    pub(crate) fn archive(
        &self,
        repo: &Repository,
        loc: &Location,
        command: &str,
    ) -> Result<Vec<u8>> {
        resolve_archive(
            repo,
            loc,
            self.latest,
            self.prefix.as_ref(),
            self.glob_archives.as_ref(),
        )?
        .ok_or_else(|| {
            Error::InvalidInput(format!(
                "{command} needs an archive: REPO::ARCHIVE, or REPO --latest"
            ))
        })
    }
}

impl GlobalArgs {
    /// Whether a borgmatic configuration supplies the repository (`--borgmatic-config`,
    /// `--borgmatic`).
    pub(crate) fn uses_borgmatic(&self) -> bool {
        self.borgmatic_config.is_some() || self.borgmatic
    }
}

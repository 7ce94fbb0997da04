//! `oxiborg check`: borg's repository and archive checks, read-only.

use crate::args::{ArchiveFilterArgs, GlobalArgs};
use crate::logger::emit;
use crate::open::open_options;
use crate::progress;
use clap::Args;
use oxiborg::check::{ArchiveCheck, Selection};
use oxiborg::error::{Error, Result};
use oxiborg::repository::Repository;
use oxiborg::Location;
use std::sync::Arc;

#[derive(Debug, Args)]
pub(super) struct CheckArgs {
    /// Repository, or REPO::ARCHIVE to check only that archive.
    pub(crate) location: Option<std::ffi::OsString>,
    /// Only check the repository (segments and index).
    #[arg(long = "repository-only")]
    repository_only: bool,
    /// Only check the archives (metadata, items, chunk references).
    #[arg(long, conflicts_with = "repository_only")]
    archives_only: bool,
    /// Also fetch every object and verify it completely (MAC, decryption, id).
    #[arg(long)]
    verify_data: bool,
    /// Not supported: oxiborg never writes to a repository (use `borg check --repair`).
    #[arg(long)]
    repair: bool,
    /// Show progress of --verify-data on stderr (the default on a terminal).
    #[arg(short = 'p', long)]
    progress: bool,
    #[command(flatten)]
    filter: ArchiveFilterArgs,
}

pub(super) fn run(args: &CheckArgs, global: &GlobalArgs) -> Result<i32> {
    if args.repair {
        return Err(Error::InvalidInput(
            "oxiborg check does not repair: it never writes to a repository. Run `borg check --repair` \
             (after reading its warnings)."
                .into(),
        ));
    }
    let f = &args.filter;
    if args.repository_only
        && (args.verify_data
            || f.first.is_some()
            || f.last.is_some()
            || f.prefix.is_some()
            || f.glob_archives.is_some())
    {
        return Err(Error::InvalidInput(
            "--repository-only contradicts --first, --last, --glob-archives, --prefix and --verify-data arguments."
                .into(),
        ));
    }
    let loc = Location::parse_with_env(args.location.as_deref())?;
    let opts = open_options(global);
    let target = oxiborg::check::Target::open(&loc, &opts)?;
    let mut repo_report =
        |level: log::Level, msg: String| emit(level.into(), "borg.repository", &msg);
    if !args.archives_only && target.check_repository(&mut repo_report)? > 0 {
        return Ok(1);
    }
    if args.repository_only {
        return Ok(0);
    }
    let mut report = |level: log::Level, msg: String| emit(level.into(), "borg.archive", &msg);
    let filter = |repo: &Repository| -> Result<Vec<oxiborg::ArchiveEntry>> {
        Ok(f.select(repo, true)?.into_iter().cloned().collect())
    };
    let select = match &loc.archive {
        Some(name) => Selection::Named(name),
        None if f.first.is_some()
            || f.last.is_some()
            || f.prefix.is_some()
            || f.glob_archives.is_some() =>
        {
            Selection::Filter(&filter)
        }
        None => Selection::All,
    };
    let counters = Arc::new(oxiborg::progress::Progress::new());
    let display = (args.verify_data && progress::wanted() && !global.log_json)
        .then(|| progress::Display::start_count("Verifying", counters.clone()));
    let stop = super::interrupt::Interrupt::install();
    let flag = stop.flag();
    let what = ArchiveCheck {
        select,
        verify_data: args.verify_data,
        progress: Some(&counters),
        interrupt: Some(&flag),
    };
    let problems = oxiborg::check::check_archives(target, &opts, &what, &mut report);
    drop(display);
    match problems {
        Err(Error::Interrupted) => Ok(stop.report(Some("the check did not finish"))),
        p => Ok(if p? > 0 { 1 } else { 0 }),
    }
}

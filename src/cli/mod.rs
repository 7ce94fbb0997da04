//! The `oxiborg` command line: borg-compatible arguments, output formats and exit codes.
//!
//! `main.rs` only calls [`main`]; every command is a thin layer over the library.

mod check;
mod docs;
mod exit;
pub mod format;
mod interrupt;
pub mod json;
mod list;
pub(crate) mod logger;
mod outcome;
mod progress;
mod timefmt;

use crate::error::{Error, Result};
use crate::patterns::{Matcher, Style};
use crate::repository::{OpenOptions, Repository};
use crate::Location;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Read BorgBackup 1.x repositories without borg.
#[derive(Debug, Parser)]
#[command(
    name = "oxiborg",
    version,
    about,
    max_term_width = 100,
    after_help = REMOTE_HELP
)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// How remote repositories are reached, for `oxiborg --help`.
const REMOTE_HELP: &str = "\
Remote repositories (ssh://…, user@host:path): BORG_RSH / --rsh runs that command as borg does; \
without it the built-in SSH client connects, with ~/.ssh/config, the SSH agent or the key named by \
--ssh-identity / OXIBORG_SSH_IDENTITY (OXIBORG_SSH_KEY_PASSPHRASE for a protected key), and \
~/.ssh/known_hosts (OXIBORG_SSH_KNOWN_HOSTS): an unknown host is asked about on a terminal, or \
recorded with StrictHostKeyChecking accept-new. OXIBORG_REMOTE_TIMEOUT (default 120 s) is how long \
the server may send nothing while a request waits; OXIBORG_REMOTE_RETRIES (default 3) is how many \
reconnections in a row may fail without progress.";

/// Options borg accepts for every command.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
struct GlobalArgs {
    /// Read without waiting for or checking borg's repository lock.
    #[arg(long, global = true)]
    bypass_lock: bool,
    /// Wait at most SECONDS for a writer's lock to go away.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 1.0)]
    lock_wait: f64,
    /// Print the return code on exit (as borg does).
    #[arg(long, global = true)]
    show_rc: bool,
    /// Log level info (accepted for borg compatibility).
    #[arg(short = 'v', long = "info", visible_alias = "verbose", global = true)]
    info: bool,
    /// Log level debug.
    #[arg(long, global = true)]
    debug: bool,
    /// Log level warning (the default).
    #[arg(long, global = true)]
    warning: bool,
    /// Log level error.
    #[arg(long, global = true)]
    error: bool,
    /// Log level critical.
    #[arg(long, global = true)]
    critical: bool,
    /// Write log messages as JSON lines on stderr (borg's `log_message` objects); no progress bar.
    #[arg(long, global = true)]
    log_json: bool,
    /// Use the remote borg at PATH (for ssh:// repositories).
    #[arg(long, global = true, value_name = "PATH")]
    remote_path: Option<String>,
    /// Use this command instead of ssh (for ssh:// repositories); it overrides BORG_RSH and a
    /// borgmatic ssh_command.
    #[arg(long, global = true, value_name = "RSH")]
    rsh: Option<String>,
    /// The built-in SSH client (used when BORG_RSH / --rsh is not set): the private key to log in
    /// with, e.g. /etc/borgmatic/key (as OXIBORG_SSH_IDENTITY).
    #[arg(long, global = true, value_name = "FILE")]
    ssh_identity: Option<std::path::PathBuf>,
    /// Open N `borg serve` sessions for a remote repository and spread the reads over them.
    #[arg(long, global = true, value_name = "N")]
    connections: Option<usize>,
    /// Show sizes in IEC units (KiB, MiB, …).
    #[arg(long, global = true)]
    iec: bool,
    /// Include checkpoint parts of files.
    #[arg(long, global = true)]
    consider_part_files: bool,
    /// Take the repository and its credentials (passphrase or passcommand, ssh_command,
    /// remote_path, key and base directories) from a borgmatic configuration FILE; they win over
    /// BORG_PASSPHRASE, BORG_PASSCOMMAND and BORG_RSH, as in borgmatic (--rsh still overrides).
    #[arg(long, global = true, value_name = "FILE")]
    borgmatic_config: Option<std::path::PathBuf>,
    /// Like --borgmatic-config, from borgmatic's default places: /etc/borgmatic/config.yaml,
    /// /etc/borgmatic.d/*.yaml, ~/.config/borgmatic/config.yaml, ~/.config/borgmatic.d/*.yaml.
    #[arg(long, global = true, conflicts_with = "borgmatic_config")]
    borgmatic: bool,
    /// With --borgmatic-config: the repository to use, by path or label.
    #[arg(long, global = true, value_name = "PATH|LABEL")]
    repository: Option<String>,
    /// The borgmatic configuration in use (set by `use_borgmatic`).
    #[arg(skip)]
    borgmatic_in_use: Option<crate::borgmatic::BorgmaticConfig>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List archives of a repository, or the contents of an archive.
    List(ListArgs),
    /// Show information about a repository or archives.
    Info(InfoArgs),
    /// Restore files from an archive (into the current directory, or -C DIR).
    Extract(ExtractArgs),
    /// Check repository and archive consistency, read-only (borg check without --repair).
    Check(check::CheckArgs),
    /// Write an archive (or part of it) as a tar file, or to stdout with "-".
    ExportTar(ExportTarArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completion(CompletionArgs),
    /// Print the man page (roff) to stdout, or write one page per command into a directory.
    Man(ManArgs),
}

#[derive(Debug, Args)]
struct CompletionArgs {
    /// The shell to complete for.
    shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
struct ManArgs {
    /// Write oxiborg.1 and oxiborg-COMMAND.1 pages into DIR instead.
    #[arg(long, value_name = "DIR")]
    dir: Option<std::path::PathBuf>,
}

/// Archive selection options shared by list and info.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Archive selection")]
struct ArchiveFilterArgs {
    /// Only archives whose name starts with PREFIX.
    #[arg(
        short = 'P',
        long,
        value_name = "PREFIX",
        conflicts_with = "glob_archives"
    )]
    prefix: Option<String>,
    /// Only archives whose name matches GLOB (sh: style).
    #[arg(short = 'a', long, value_name = "GLOB")]
    glob_archives: Option<String>,
    /// Sort archives by KEYS (comma-separated: timestamp, name, archive, id).
    #[arg(long, value_name = "KEYS", default_value = "timestamp")]
    sort_by: String,
    /// Only the first N archives (after sorting).
    #[arg(long, value_name = "N", conflicts_with = "last", value_parser = positive)]
    first: Option<usize>,
    /// Only the last N archives (after sorting).
    #[arg(long, value_name = "N", value_parser = positive)]
    last: Option<usize>,
    /// Show checkpoint archives too.
    #[arg(long)]
    consider_checkpoints: bool,
}

fn positive(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("A positive integer is required: {s}")),
    }
}

/// Path selection options (borg's exclusion options).
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Path selection")]
struct PatternArgs {
    /// Exclude paths matching PATTERN (default style fm:).
    #[arg(
        short = 'e',
        long = "exclude",
        value_name = "PATTERN",
        allow_hyphen_values = true
    )]
    exclude: Vec<OsString>,
    /// Read exclude patterns from FILE, one per line.
    #[arg(long, value_name = "FILE")]
    exclude_from: Vec<PathBuf>,
    /// Include/exclude paths: "+ pat", "- pat", "! pat", "R root" (default style sh:).
    #[arg(long = "pattern", value_name = "PATTERN", allow_hyphen_values = true)]
    pattern: Vec<OsString>,
    /// Read include/exclude patterns from FILE.
    #[arg(long, value_name = "FILE")]
    patterns_from: Vec<PathBuf>,
}

/// borgmatic's way of naming the archive and paths (`borgmatic extract --archive A --path P`),
/// accepted under `--borgmatic-config` / `--borgmatic`.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "borgmatic's spellings")]
struct BorgmaticArgs {
    /// With --borgmatic-config/--borgmatic (borgmatic's spelling): the archive, "latest" for
    /// the newest.
    #[arg(long = "archive", value_name = "NAME")]
    archive: Option<OsString>,
    /// With --borgmatic-config/--borgmatic (borgmatic's spelling): a PATH (repeatable).
    #[arg(long = "path", value_name = "PATH")]
    path: Vec<OsString>,
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Repository or archive (REPO, REPO::ARCHIVE, ::ARCHIVE with BORG_REPO).
    location: Option<OsString>,
    /// Paths to list; default: all.
    paths: Vec<OsString>,
    /// Only print archive names or file paths.
    #[arg(long)]
    short: bool,
    /// Format output with borg's placeholders, e.g. "{mode} {path}{NL}".
    #[arg(long, visible_alias = "list-format", value_name = "FORMAT")]
    format: Option<String>,
    /// Output the archive list as JSON.
    #[arg(long)]
    json: bool,
    /// Output archive contents as JSON lines.
    #[arg(long)]
    json_lines: bool,
    /// List the contents of the newest archive (of those --prefix / --glob-archives select).
    #[arg(long)]
    latest: bool,
    #[command(flatten)]
    filter: ArchiveFilterArgs,
    #[command(flatten)]
    patterns: PatternArgs,
    #[command(flatten)]
    borgmatic: BorgmaticArgs,
}

/// Choosing the newest archive instead of naming one (the runbook's "latest archive").
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Archive selection")]
struct LatestArgs {
    /// Use the newest archive (of those --prefix / --glob-archives select) instead of naming
    /// one; REPO::latest does the same when no archive is called "latest".
    #[arg(long)]
    latest: bool,
    /// With --latest: only archives whose name starts with PREFIX.
    #[arg(
        short = 'P',
        long,
        value_name = "PREFIX",
        requires = "latest",
        conflicts_with = "glob_archives"
    )]
    prefix: Option<String>,
    /// With --latest: only archives whose name matches GLOB.
    #[arg(short = 'a', long, value_name = "GLOB", requires = "latest")]
    glob_archives: Option<String>,
}

#[derive(Debug, Args)]
struct ExtractArgs {
    /// The archive (REPO::ARCHIVE, or ::ARCHIVE with BORG_REPO).
    location: Option<OsString>,
    /// Paths to extract; default: everything.
    paths: Vec<OsString>,
    /// Restore into DIR instead of the current directory.
    #[arg(short = 'C', long = "destination", value_name = "DIR")]
    destination: Option<std::path::PathBuf>,
    /// Remove N leading path components.
    #[arg(long, value_name = "N", default_value_t = 0)]
    strip_components: usize,
    /// Read and verify everything, write nothing.
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Write the selected files' contents to stdout.
    #[arg(long)]
    stdout: bool,
    /// Print each item's path as it is extracted (on stderr).
    #[arg(long)]
    list: bool,
    /// Use numeric uid/gid, not user and group names.
    #[arg(long, visible_alias = "numeric-owner")]
    numeric_ids: bool,
    /// Make holes in the output for all-zero chunks.
    #[arg(long)]
    sparse: bool,
    /// Do not restore ACLs.
    #[arg(long)]
    noacls: bool,
    /// Do not restore extended attributes.
    #[arg(long)]
    noxattrs: bool,
    /// Do not restore BSD flags.
    #[arg(long)]
    noflags: bool,
    /// Show progress (bytes, files, rate, ETA) on stderr; the default when stderr is a
    /// terminal, never drawn when it is not.
    #[arg(short = 'p', long)]
    progress: bool,
    /// Resume an interrupted restore into the same destination: keep files already complete
    /// (same size and modification time), restore the rest.
    #[arg(long = "continue")]
    resume: bool,
    /// Print throughput and the time spent per pipeline stage at the end (on stderr).
    #[arg(short = 's', long)]
    stats: bool,
    #[command(flatten)]
    latest: LatestArgs,
    #[command(flatten)]
    patterns: PatternArgs,
    #[command(flatten)]
    borgmatic: BorgmaticArgs,
}

#[derive(Debug, Args)]
struct ExportTarArgs {
    /// The archive (REPO::ARCHIVE, ::ARCHIVE with BORG_REPO, or REPO with --latest).
    location: OsString,
    /// The tar file to write; "-" for stdout.
    tarfile: std::path::PathBuf,
    /// Paths to export; default: everything.
    paths: Vec<OsString>,
    /// Pipe the tar stream through this command; "auto" (the default) picks one by the
    /// file's suffix: .tar.gz/.tgz gzip, .tar.bz2/.tbz bzip2, .tar.xz/.txz xz, .tar.lz4 lz4,
    /// .tar.zst/.tar.zstd zstd (none for "-" or a plain .tar).
    #[arg(long, default_value = "auto", value_name = "COMMAND")]
    tar_filter: String,
    /// Print each item's path on stderr as it is written.
    #[arg(long = "list")]
    output_list: bool,
    /// Remove N leading path components.
    #[arg(long, value_name = "N", default_value_t = 0)]
    strip_components: usize,
    #[command(flatten)]
    latest: LatestArgs,
    #[command(flatten)]
    patterns: PatternArgs,
}

#[derive(Debug, Args)]
struct InfoArgs {
    /// Repository or archive.
    location: Option<OsString>,
    /// Output JSON.
    #[arg(long)]
    json: bool,
    /// Show the newest archive (of those --prefix / --glob-archives select); REPO::latest does
    /// the same when no archive is called "latest".
    #[arg(long, conflicts_with_all = ["first", "last"])]
    latest: bool,
    #[command(flatten)]
    filter: ArchiveFilterArgs,
}

/// Runs the CLI with the process arguments; returns the exit code.
pub fn main() -> i32 {
    let matches = docs::command(Cli::command()).get_matches();
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let modern = std::env::var("BORG_EXIT_CODES").is_ok_and(|v| v == "modern");
    let show_rc = cli.global.show_rc;
    setup_logging(&cli.global);
    let json_log = cli.global.log_json;
    let sub = matches.subcommand().map(|(_, m)| m.clone());
    // A command whose standard output is data (file content, a tar stream): if its reader goes
    // away the stream is incomplete, and that is an error (as borg's exit code 2 says). Text
    // output (`list | head`) just ends quietly.
    let data_stream = match &cli.command {
        Command::Extract(a) => a.stdout,
        Command::ExportTar(_) => true,
        _ => false,
    };
    let rc = match use_borgmatic(&mut cli.global).and_then(|()| run(cli, sub.as_ref())) {
        Ok(rc) => rc,
        Err(e) => {
            let e = match e {
                Error::Io { source, path } if source.kind() == std::io::ErrorKind::BrokenPipe => {
                    if !data_stream {
                        return 0;
                    }
                    Error::Other(format!(
                        "Broken pipe: the program reading {} stopped before the end; what it \
                         received is incomplete",
                        path.display()
                    ))
                }
                e => e,
            };
            if json_log {
                progress::print_line(&log_json_line(
                    crate::cli::logger::Level::Error,
                    "borg.archiver",
                    &e.located(),
                    exit::msgid(&e),
                ));
            } else {
                crate::cli::logger::error("borg.archiver", &e.located());
            }
            exit::exit_code(&e, modern)
        }
    };
    if show_rc {
        let (what, level) = match rc {
            0 => ("success", crate::cli::logger::Level::Info),
            1 => ("warning", crate::cli::logger::Level::Warning),
            _ => ("error", crate::cli::logger::Level::Error),
        };
        crate::cli::logger::emit_always(
            level,
            "borg.output.show-rc",
            &format!("terminating with {what} status, rc {rc}"),
        );
    }
    rc
}

/// The log threshold from `--debug` … `--critical`, and `--log-json`'s format; messages go
/// through the progress display when one is shown.
fn setup_logging(g: &GlobalArgs) {
    use crate::cli::logger::Level;
    let level = if g.debug {
        Level::Debug
    } else if g.info {
        Level::Info
    } else if g.critical {
        Level::Critical
    } else if g.error {
        Level::Error
    } else {
        Level::Warning
    };
    crate::cli::logger::set_threshold(level);
    crate::cli::logger::install();
    let json = g.log_json;
    crate::cli::logger::set_sink(Box::new(move |level, logger, msg| {
        if json {
            progress::print_line(&log_json_line(level, logger, msg, None));
        } else {
            progress::print_line(msg);
        }
    }));
}

/// One `--log-json` line, as borg writes it (`json.dumps` of its `log_message` record).
fn log_json_line(
    level: crate::cli::logger::Level,
    logger: &str,
    msg: &str,
    msgid: crate::cli::logger::MsgId,
) -> String {
    use json::J;
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let mut fields = vec![
        ("type", J::s("log_message")),
        ("time", J::Float(time)),
        ("message", J::s(msg)),
        ("levelname", J::s(level.name())),
        ("name", J::s(logger)),
    ];
    if let Some(id) = msgid {
        fields.push(("msgid", J::s(id)));
    }
    json::line(&J::obj(fields))
}

/// `--borgmatic-config`: the chosen repository and its settings become the `BORG_*` variables
/// borg would have had from borgmatic (before anything reads them; the process is still
/// single-threaded here) — but the passphrase and `ssh_command` go into the options with their
/// origin (see `open_options`), so that messages name the configuration, not the environment.
fn use_borgmatic(g: &mut GlobalArgs) -> Result<()> {
    if g.borgmatic_config.is_none() && !g.borgmatic {
        if g.repository.is_some() {
            return Err(Error::InvalidInput(
                "--repository chooses a repository of a borgmatic configuration: use it with --borgmatic-config FILE or --borgmatic"
                    .into(),
            ));
        }
        return Ok(());
    }
    let configs = crate::borgmatic::load_all(g.borgmatic_config.as_deref())?;
    let (config, repo) = crate::borgmatic::select(&configs, g.repository.as_deref())?;
    crate::cli::logger::debug(
        "borg.borgmatic",
        &format!(
            "using repository {} of {}",
            repo.path,
            config.file.display()
        ),
    );
    for (k, v) in config.environment(repo) {
        if !matches!(k, "BORG_PASSPHRASE" | "BORG_PASSCOMMAND") {
            std::env::set_var(k, v);
        }
    }
    if config.passphrase().is_some() {
        std::env::remove_var("BORG_PASSPHRASE");
        std::env::remove_var("BORG_PASSCOMMAND");
    }
    g.borgmatic_in_use = Some(config.clone());
    Ok(())
}

fn open_options(g: &GlobalArgs) -> OpenOptions {
    use crate::origin::Origin;
    let mut o = OpenOptions::from_env();
    if let Some(config) = &g.borgmatic_in_use {
        config.apply(&mut o);
    }
    o.bypass_lock = g.bypass_lock;
    o.lock_wait = std::time::Duration::from_secs_f64(g.lock_wait.max(0.0));
    if let Some(r) = &g.rsh {
        o.remote.rsh = Some(r.clone());
        o.remote.rsh_origin = Origin::Flag("--rsh");
    }
    if let Some(f) = &g.ssh_identity {
        o.remote.identity = Some(f.clone());
        o.remote.identity_origin = Origin::Flag("--ssh-identity");
    }
    o.remote.host_key_prompt = Some(crate::remote::ssh::HostKeyPrompt::terminal());
    o.prompt = Some(std::sync::Arc::new(crate::key::passphrase::terminal_prompt));
    if let Some(r) = &g.remote_path {
        o.remote.remote_path = Some(r.clone());
    }
    if let Some(n) = g.connections {
        o.remote.connections = n;
    }
    o
}

fn run(cli: Cli, sub: Option<&clap::ArgMatches>) -> Result<i32> {
    let borgmatic = cli.global.borgmatic_config.is_some() || cli.global.borgmatic;
    match cli.command {
        Command::List(mut args) => {
            let named = args.latest || args.borgmatic.archive.is_some();
            (args.location, args.paths) =
                split_positionals(args.location.take(), std::mem::take(&mut args.paths), named);
            borgmatic_args(
                &args.borgmatic,
                borgmatic,
                &mut args.location,
                &mut args.paths,
            )?;
            let loc = Location::parse_with_env(args.location.as_deref())?;
            if loc.archive.is_some() && args.json {
                return Err(Error::InvalidInput(
                    "The --json option is only valid for listing archives, not archive contents."
                        .into(),
                ));
            }
            if loc.archive.is_none() && args.json_lines {
                return Err(Error::InvalidInput(
                    "The --json-lines option is only valid for listing archive contents, not archives."
                        .into(),
                ));
            }
            let repo = Repository::open(&loc, &open_options(&cli.global))?;
            warn_store(&repo);
            let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
            let archive = resolve_archive(
                &repo,
                loc.archive.as_deref(),
                args.latest,
                args.filter.prefix.as_ref(),
                args.filter.glob_archives.as_ref(),
            )?;
            let rc = match &archive {
                Some(name) => {
                    let matcher = build_matcher(&args.paths, &args.patterns, sub)?;
                    list::list_archive(&repo, name, &args, matcher, &cli.global, &mut out)?
                }
                None => list::list_repository(&repo, &args, &mut out)?,
            };
            out.flush().map_err(|e| Error::io("<stdout>", e))?;
            Ok(rc)
        }
        Command::Extract(mut args) => {
            (args.location, args.paths) =
                split_positionals(args.location.take(), std::mem::take(&mut args.paths), true);
            borgmatic_args(
                &args.borgmatic,
                borgmatic,
                &mut args.location,
                &mut args.paths,
            )?;
            let loc = Location::parse_with_env(args.location.as_deref())?;
            let repo = Repository::open(&loc, &open_options(&cli.global))?;
            warn_store(&repo);
            let archive = args.latest.archive(&repo, &loc, "extract")?;
            let matcher = build_matcher(&args.paths, &args.patterns, sub)?;
            let opts = crate::extract::ExtractOptions {
                destination: args.destination.clone().unwrap_or_else(|| ".".into()),
                strip_components: args.strip_components,
                dry_run: args.dry_run,
                sparse: args.sparse,
                meta: crate::extract::metadata::MetaOptions {
                    numeric_ids: args.numeric_ids,
                    noacls: args.noacls,
                    noxattrs: args.noxattrs,
                    noflags: args.noflags,
                },
                consider_part_files: cli.global.consider_part_files,
                resume: args.resume,
                ..Default::default()
            };
            let opts = tuned(opts);
            let list = args.list;
            let mut extractor = crate::extract::Extractor::new(&repo, opts);
            let stop = interrupt::Interrupt::install();
            extractor.options_mut().interrupt = Some(stop.flag());
            let mut totals = None;
            let display = if progress::wanted() && !cli.global.log_json {
                let counters = std::sync::Arc::new(crate::progress::Progress::new());
                extractor.options_mut().progress = Some(counters.clone());
                // (the totals go into the counters too)
                let t = match extractor.totals(&archive, &matcher) {
                    Err(Error::Interrupted) => return Ok(stop.report(None)),
                    r => r?,
                };
                totals = Some(t);
                Some(progress::Display::start(
                    if args.dry_run {
                        "Verifying"
                    } else {
                        "Extracting"
                    },
                    counters,
                ))
            } else {
                None
            };
            let dest = args.destination.clone().unwrap_or_else(|| ".".into());
            if !args.dry_run && !args.stdout && !args.resume {
                let short = match extractor.space_check(&archive, &matcher, totals.as_ref()) {
                    Err(Error::Interrupted) => return Ok(stop.report(None)),
                    r => r?,
                };
                if let Some(s) = short {
                    crate::cli::logger::warning(
                        "borg.archiver",
                        &outcome::shortfall_line(&s, &dest),
                    );
                }
            }
            use crate::cli::logger::{emit_always, error, warning, Level};
            let mut done = outcome::Done::default();
            let mut on_event = |ev: crate::extract::Event<'_>| match ev {
                crate::extract::Event::Item(p) if list => {
                    emit_always(Level::Info, "borg.output.list", p)
                }
                crate::extract::Event::Warning(m) => warning("borg.archiver", &m),
                crate::extract::Event::Error(m) => error("borg.archiver", &m),
                crate::extract::Event::StaleRemoved { files } => {
                    warning("borg.archiver", &outcome::stale_line(files, &dest))
                }
                crate::extract::Event::FileDone { bytes, .. }
                | crate::extract::Event::FileKept { bytes, .. } => done.add(bytes),
                _ => {}
            };
            let summary = if args.stdout {
                let mut out = std::io::stdout().lock();
                match extractor.run_to(&archive, matcher, &mut out, &mut on_event) {
                    // (the library's name for its output is ours to give)
                    Err(Error::Io { path, source })
                        if path.as_os_str() == crate::extract::OUTPUT =>
                    {
                        Err(Error::io("<stdout>", source))
                    }
                    r => r,
                }
            } else {
                extractor.run(&archive, matcher, &mut on_event)
            };
            if let Some(d) = display {
                d.finish();
            }
            let summary = match summary {
                Err(Error::Interrupted) => {
                    let what = done.restored(args.dry_run, args.stdout);
                    return Ok(stop.report(what.as_deref()));
                }
                r => r?,
            };
            if args.stats {
                let stats = extract_stats(&summary, args.dry_run);
                crate::cli::logger::stderr_line(stats.trim_end_matches('\n'));
            }
            if let Some(line) = outcome::failure_line(&summary, args.dry_run) {
                error("borg.archiver", &line);
            }
            Ok(outcome::exit_code(&summary))
        }
        Command::Check(args) => check::run(&args, &cli.global),
        Command::ExportTar(mut args) => {
            // `export-tar --latest FILE [PATH…]` with the repository from BORG_REPO: the first
            // positional is the tar file.
            if !looks_like_location(args.location.as_bytes()) && default_repo().is_some() {
                let tarfile = std::mem::replace(&mut args.tarfile, args.location.clone().into());
                args.location = OsString::new();
                args.paths.insert(0, tarfile.into_os_string());
            }
            export_tar(&args, &cli.global, sub)
        }
        Command::Completion(args) => {
            let mut cmd = docs::command(Cli::command());
            // Into memory first: the generator panics on a write error (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(args.shell, &mut cmd, "oxiborg", &mut script);
            let mut out = std::io::stdout().lock();
            out.write_all(&script)
                .and_then(|_| out.flush())
                .map_err(|e| Error::io("<stdout>", e))?;
            Ok(0)
        }
        Command::Man(args) => {
            let pages = docs::man_pages(docs::command(Cli::command()))
                .map_err(|e| Error::io("<man page>", e))?;
            match args.dir {
                Some(dir) => {
                    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
                    for (name, page) in pages {
                        let path = dir.join(name);
                        std::fs::write(&path, page).map_err(|e| Error::io(&path, e))?;
                    }
                }
                None => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&pages[0].1)
                        .and_then(|_| out.flush())
                        .map_err(|e| Error::io("<stdout>", e))?;
                }
            }
            Ok(0)
        }
        Command::Info(args) => {
            let loc = Location::parse_with_env(args.location.as_deref())?;
            let repo = Repository::open(&loc, &open_options(&cli.global))?;
            warn_store(&repo);
            let archive = resolve_archive(
                &repo,
                loc.archive.as_deref(),
                args.latest,
                args.filter.prefix.as_ref(),
                args.filter.glob_archives.as_ref(),
            )?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let rc = list::info(&repo, &args, archive.as_deref(), &cli.global, &mut out)?;
            out.flush().map_err(|e| Error::io("<stdout>", e))?;
            Ok(rc)
        }
    }
}

/// `BORG_REPO`, when set (also by a borgmatic configuration).
fn default_repo() -> Option<OsString> {
    std::env::var_os("BORG_REPO").filter(|r| !r.is_empty())
}

/// Whether a positional argument is a repository location rather than a PATH: it names an
/// archive (`::`), is a URL or `host:path`, or is a repository directory here.
fn looks_like_location(arg: &[u8]) -> bool {
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
    /// The library's filter.
    fn to_filter(&self, consider_checkpoints: bool) -> Result<crate::ArchiveFilter> {
        Ok(crate::ArchiveFilter {
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
    named: Option<&[u8]>,
    latest: bool,
    prefix: Option<&String>,
    glob: Option<&String>,
) -> Result<Option<Vec<u8>>> {
    let magic = named == Some(b"latest") && repo.manifest().find("latest").is_none();
    if latest && named.is_some() && !magic {
        return Err(Error::InvalidInput(
            "--latest and an archive name: give one of them".into(),
        ));
    }
    if !latest && !magic {
        return Ok(named.map(<[u8]>::to_vec));
    }
    let filter = crate::ArchiveFilter {
        prefix: prefix.cloned(),
        glob: glob.cloned(),
        ..crate::ArchiveFilter::default()
    };
    Ok(Some(repo.latest(&filter)?.name.clone()))
}

impl LatestArgs {
    /// The archive `command` works on: named in `loc`, or the newest with `--latest`.
    fn archive(&self, repo: &Repository, loc: &Location, command: &str) -> Result<Vec<u8>> {
        resolve_archive(
            repo,
            loc.archive.as_deref(),
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

/// The filter borg picks for a tar file name (`--tar-filter auto`).
fn tar_filter_for(name: &std::path::Path) -> Option<&'static str> {
    let n = name.to_string_lossy();
    [
        (&[".tar.gz", ".tgz"][..], "gzip"),
        (&[".tar.bz2", ".tbz"][..], "bzip2"),
        (&[".tar.xz", ".txz"][..], "xz"),
        (&[".tar.lz4"][..], "lz4"),
        (&[".tar.zstd", ".tar.zst"][..], "zstd"),
    ]
    .into_iter()
    .find(|(suffixes, _)| suffixes.iter().any(|s| n.ends_with(s)))
    .map(|(_, f)| f)
}

fn export_tar(
    args: &ExportTarArgs,
    global: &GlobalArgs,
    sub: Option<&clap::ArgMatches>,
) -> Result<i32> {
    use std::process::{Command, Stdio};
    let loc = Location::parse_with_env(Some(&args.location))?;
    let to_stdout = args.tarfile.as_os_str() == "-";
    let filter: Option<String> = match args.tar_filter.as_str() {
        "auto" if to_stdout => None,
        "auto" => tar_filter_for(&args.tarfile).map(str::to_string),
        "" => None,
        f => Some(f.to_string()),
    };
    let repo = Repository::open(&loc, &open_options(global))?;
    warn_store(&repo);
    let archive = args.latest.archive(&repo, &loc, "export-tar")?;
    let matcher = build_matcher(&args.paths, &args.patterns, sub)?;
    let stop = interrupt::Interrupt::install();
    let opts = crate::export_tar::TarOptions {
        strip_components: args.strip_components,
        consider_part_files: global.consider_part_files,
        interrupt: Some(stop.flag()),
        progress: None,
    };
    // Where the tar stream (or the filter's output) goes.
    let file = if to_stdout {
        None
    } else {
        // private, as borg (umask 077) makes it: the tarball holds everything it exports
        use std::os::unix::fs::OpenOptionsExt;
        Some(
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&args.tarfile)
                .map_err(|e| Error::io(&args.tarfile, e))?,
        )
    };
    let mut child = None;
    let mut out: Box<dyn std::io::Write> = match (&filter, file) {
        (None, Some(f)) => Box::new(std::io::BufWriter::with_capacity(1 << 20, f)),
        (None, None) => Box::new(std::io::BufWriter::with_capacity(
            1 << 20,
            std::io::stdout().lock(),
        )),
        (Some(cmd), file) => {
            let argv = shell_words::split(cmd)
                .map_err(|e| Error::InvalidInput(format!("--tar-filter {cmd:?}: {e}")))?;
            let (prog, rest) = argv
                .split_first()
                .ok_or_else(|| Error::InvalidInput("--tar-filter: empty command".into()))?;
            let mut c = Command::new(prog)
                .args(rest)
                .stdin(Stdio::piped())
                .stdout(file.map_or_else(Stdio::inherit, Stdio::from))
                .spawn()
                .map_err(|e| Error::Other(format!("cannot run the tar filter {cmd:?}: {e}")))?;
            let stdin = c
                .stdin
                .take()
                .ok_or_else(|| Error::Other("tar filter: no stdin".into()))?;
            child = Some((c, cmd.clone()));
            Box::new(std::io::BufWriter::with_capacity(1 << 20, stdin))
        }
    };
    let list = args.output_list;
    let summary = crate::export_tar::export_tar(
        &repo,
        &archive,
        matcher,
        &opts,
        &mut out,
        &mut |ev| match ev {
            crate::export_tar::TarEvent::Item(p) if list => crate::cli::logger::emit_always(
                crate::cli::logger::Level::Info,
                "borg.output.list",
                p,
            ),
            crate::export_tar::TarEvent::Warning(m) => {
                crate::cli::logger::warning("borg.archiver", &m)
            }
            _ => {}
        },
    );
    drop(out);
    let status = child.map(|(mut c, cmd)| (c.wait(), cmd));
    // (interrupted: whatever else went wrong then — a filter that got the signal too — is a
    // consequence)
    if summary.is_err() && stop.flag().load(std::sync::atomic::Ordering::SeqCst) {
        let what = if to_stdout {
            "the tar stream is incomplete (it has no end-of-archive blocks)".to_string()
        } else {
            format!(
                "{} is incomplete (it has no end-of-archive blocks)",
                args.tarfile.display()
            )
        };
        return Ok(stop.report(Some(&what)));
    }
    if let Some((status, cmd)) = status {
        let status = status.map_err(|e| Error::Other(format!("tar filter {cmd:?}: {e}")))?;
        if !status.success() && summary.is_ok() {
            return Err(Error::Other(format!(
                "the tar filter {cmd:?} failed ({status})"
            )));
        }
    }
    let summary = summary?;
    Ok(if summary.warnings > 0 { 1 } else { 0 })
}

fn warn_store(repo: &Repository) {
    for w in repo.store().warnings() {
        crate::cli::logger::warning("borg.repository", &format!("Warning: {w}"));
    }
}

/// Builds the matcher from exclusion options in command-line order, then the PATH arguments.
/// Patterns, paths and pattern files are bytes, as archive paths are (a PATH that is not
/// UTF-8 selects the same bytes).
fn build_matcher(
    paths: &[OsString],
    p: &PatternArgs,
    sub: Option<&clap::ArgMatches>,
) -> Result<Matcher> {
    enum Arg<'a> {
        Exclude(&'a OsString),
        ExcludeFrom(&'a PathBuf),
        Pattern(&'a OsString),
        PatternsFrom(&'a PathBuf),
    }
    // (command-line index, option)
    let mut ordered: Vec<(usize, Arg<'_>)> = Vec::new();
    let index = |id: &str| -> Vec<usize> {
        sub.and_then(|m| m.indices_of(id))
            .map(|i| i.collect())
            .unwrap_or_default()
    };
    let at = |idx: &[usize], n: usize| idx.get(n).copied().unwrap_or(usize::MAX);
    let idx = index("exclude");
    ordered.extend(
        p.exclude
            .iter()
            .enumerate()
            .map(|(n, v)| (at(&idx, n), Arg::Exclude(v))),
    );
    let idx = index("exclude_from");
    ordered.extend(
        p.exclude_from
            .iter()
            .enumerate()
            .map(|(n, v)| (at(&idx, n), Arg::ExcludeFrom(v))),
    );
    let idx = index("pattern");
    ordered.extend(
        p.pattern
            .iter()
            .enumerate()
            .map(|(n, v)| (at(&idx, n), Arg::Pattern(v))),
    );
    let idx = index("patterns_from");
    ordered.extend(
        p.patterns_from
            .iter()
            .enumerate()
            .map(|(n, v)| (at(&idx, n), Arg::PatternsFrom(v))),
    );
    ordered.sort_by_key(|(i, _)| *i);
    let mut m = Matcher::new();
    let read = |f: &PathBuf| std::fs::read(f).map_err(|e| Error::io(f, e));
    for (_, arg) in ordered {
        match arg {
            Arg::Exclude(v) => m.add_exclude(v.as_bytes())?,
            Arg::ExcludeFrom(f) => m.add_exclude_lines(read(f)?)?,
            Arg::Pattern(v) => m.add_pattern_line(v.as_bytes(), Style::Shell)?,
            Arg::PatternsFrom(f) => m.add_pattern_lines(read(f)?)?,
        }
    }
    let paths: Vec<&[u8]> = paths.iter().map(|p| p.as_bytes()).collect();
    m.add_paths(&paths)?;
    Ok(m)
}

/// Applies the pipeline tuning variables `OXIBORG_BATCH_FILES` (files per batch) and
/// `OXIBORG_BATCH_MB` / `OXIBORG_INFLIGHT_MB` (bytes per batch / decoded bytes in flight).
fn tuned(mut o: crate::extract::ExtractOptions) -> crate::extract::ExtractOptions {
    let var = |k: &str| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|v| *v > 0)
    };
    if let Some(n) = var("OXIBORG_BATCH_FILES") {
        o.batch_files = n as usize;
    }
    if let Some(n) = var("OXIBORG_BATCH_MB") {
        o.batch_bytes = n << 20;
    }
    if let Some(n) = var("OXIBORG_INFLIGHT_MB") {
        o.inflight_bytes = n << 20;
    }
    o
}

/// The `--stats` report of an extract.
fn extract_stats(s: &crate::extract::Summary, dry_run: bool) -> String {
    let st = &s.stages;
    let secs = st.total.as_secs_f64().max(1e-9);
    let mb = |b: u64| b as f64 / 1e6;
    let line = "-".repeat(78);
    let kept = if s.kept > 0 || s.stale_removed > 0 {
        format!(
            "Kept: {} complete files, {:.1} MB, from an earlier run; {} temporary files removed\n",
            s.kept,
            mb(s.kept_bytes),
            s.stale_removed
        )
    } else {
        String::new()
    };
    format!(
        "{line}\n{kept}{verb}: {files} files, {bytes:.1} MB in {secs:.2} s ({rate:.1} MB/s, {fps:.0} files/s)\n\
         Read: {chunks} chunks, {read:.1} MB stored ({rrate:.1} MB/s)\n\
         Time per stage: plan {plan:.2} s, fetch {fetch:.2} s, decode {decode:.2} s*, write+finish {write:.2} s*, \
         finalize {fin:.2} s (* summed over {threads} threads)\n{line}\n",
        verb = if dry_run { "Verified" } else { "Restored" },
        files = s.files,
        bytes = mb(s.bytes),
        rate = mb(s.bytes) / secs,
        fps = s.files as f64 / secs,
        chunks = s.chunks,
        read = mb(s.read_bytes),
        rrate = mb(s.read_bytes) / secs,
        plan = st.plan.as_secs_f64(),
        fetch = st.fetch.as_secs_f64(),
        decode = st.decode.as_secs_f64(),
        write = st.write.as_secs_f64(),
        fin = st.finalize.as_secs_f64(),
        threads = rayon::current_num_threads(),
    )
}

//! The `oxiborg` command line: borg-compatible arguments, output formats and exit codes.
//!
//! `main.rs` only calls [`main`]; every command is a thin layer over the library.

mod check;
pub mod format;
mod interrupt;
pub mod json;
mod list;
mod outcome;
mod progress;
mod timefmt;

use crate::error::{Error, Result};
use crate::patterns::{Matcher, Style};
use crate::repository::{OpenOptions, Repository};
use crate::Location;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::io::Write;

/// Read BorgBackup 1.x repositories without borg.
#[derive(Debug, Parser)]
#[command(name = "oxiborg", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options borg accepts for every command.
#[derive(Debug, Args)]
struct GlobalArgs {
    /// Read without waiting for or checking borg's repository lock.
    #[arg(long, global = true)]
    bypass_lock: bool,
    /// Wait at most SECONDS for a lock (default 1).
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
    /// Use this command instead of ssh (for ssh:// repositories).
    #[arg(long, global = true, value_name = "RSH")]
    rsh: Option<String>,
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
    /// remote_path, key and base directories) from a borgmatic configuration FILE.
    #[arg(long, global = true, value_name = "FILE")]
    borgmatic_config: Option<std::path::PathBuf>,
    /// Like --borgmatic-config, from borgmatic's default places: /etc/borgmatic/config.yaml,
    /// /etc/borgmatic.d/*.yaml, ~/.config/borgmatic/config.yaml, ~/.config/borgmatic.d/*.yaml.
    #[arg(long, global = true, conflicts_with = "borgmatic_config")]
    borgmatic: bool,
    /// With --borgmatic-config: the repository to use, by path or label.
    #[arg(long, global = true, value_name = "PATH|LABEL")]
    repository: Option<String>,
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
struct ArchiveFilter {
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
struct PatternArgs {
    /// Exclude paths matching PATTERN (default style fm:).
    #[arg(
        short = 'e',
        long = "exclude",
        value_name = "PATTERN",
        allow_hyphen_values = true
    )]
    exclude: Vec<String>,
    /// Read exclude patterns from FILE, one per line.
    #[arg(long, value_name = "FILE")]
    exclude_from: Vec<String>,
    /// Include/exclude paths: "+ pat", "- pat", "! pat", "R root" (default style sh:).
    #[arg(long = "pattern", value_name = "PATTERN", allow_hyphen_values = true)]
    pattern: Vec<String>,
    /// Read include/exclude patterns from FILE.
    #[arg(long, value_name = "FILE")]
    patterns_from: Vec<String>,
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Repository or archive (REPO, REPO::ARCHIVE, ::ARCHIVE with BORG_REPO).
    location: Option<String>,
    /// Paths to list; default: all.
    paths: Vec<String>,
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
    filter: ArchiveFilter,
    #[command(flatten)]
    patterns: PatternArgs,
}

/// Choosing the newest archive instead of naming one (the runbook's "latest archive").
#[derive(Debug, Args, Clone)]
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
    location: Option<String>,
    /// Paths to extract; default: everything.
    paths: Vec<String>,
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
}

#[derive(Debug, Args)]
struct ExportTarArgs {
    /// The archive (REPO::ARCHIVE, ::ARCHIVE with BORG_REPO, or REPO with --latest).
    location: String,
    /// The tar file to write; "-" for stdout.
    tarfile: std::path::PathBuf,
    /// Paths to export; default: everything.
    paths: Vec<String>,
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
    location: Option<String>,
    /// Output JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    filter: ArchiveFilter,
}

/// Runs the CLI with the process arguments; returns the exit code.
pub fn main() -> i32 {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let modern = std::env::var("BORG_EXIT_CODES").is_ok_and(|v| v == "modern");
    let show_rc = cli.global.show_rc;
    setup_logging(&cli.global);
    let json_log = cli.global.log_json;
    let sub = matches.subcommand().map(|(_, m)| m.clone());
    let rc = match use_borgmatic(&cli.global).and_then(|()| run(cli, sub.as_ref())) {
        Ok(rc) => rc,
        Err(e) => {
            if let Error::Io { source, .. } = &e {
                if source.kind() == std::io::ErrorKind::BrokenPipe {
                    return 0;
                }
            }
            if json_log {
                progress::print_line(&log_json_line(
                    crate::log::Level::Error,
                    "borg.archiver",
                    &e.located(),
                    e.msgid(),
                ));
            } else {
                crate::log::error("borg.archiver", &e.located());
            }
            e.exit_code(modern)
        }
    };
    if show_rc {
        let (what, level) = match rc {
            0 => ("success", crate::log::Level::Info),
            1 => ("warning", crate::log::Level::Warning),
            _ => ("error", crate::log::Level::Error),
        };
        crate::log::emit_always(
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
    use crate::log::Level;
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
    crate::log::set_threshold(level);
    let json = g.log_json;
    crate::log::set_sink(Box::new(move |level, logger, msg| {
        if json {
            progress::print_line(&log_json_line(level, logger, msg, None));
        } else {
            progress::print_line(msg);
        }
    }));
}

/// One `--log-json` line, as borg writes it (`json.dumps` of its `log_message` record).
fn log_json_line(
    level: crate::log::Level,
    logger: &str,
    msg: &str,
    msgid: crate::log::MsgId,
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

/// `--borgmatic-config`: the chosen repository and its credentials become the `BORG_*`
/// variables borg would have had from borgmatic (before anything reads them; the process is
/// still single-threaded here).
fn use_borgmatic(g: &GlobalArgs) -> Result<()> {
    if g.borgmatic_config.is_none() && !g.borgmatic {
        if g.repository.is_some() {
            return Err(Error::Usage(
                "--repository chooses a repository of a borgmatic configuration: use it with --borgmatic-config FILE or --borgmatic"
                    .into(),
            ));
        }
        return Ok(());
    }
    let configs = crate::borgmatic::load_all(g.borgmatic_config.as_deref())?;
    let (config, repo) = crate::borgmatic::select(&configs, g.repository.as_deref())?;
    crate::log::debug(
        "borg.borgmatic",
        &format!(
            "using repository {} of {}",
            repo.path,
            config.file.display()
        ),
    );
    for (k, v) in config.environment(repo) {
        std::env::set_var(k, v);
    }
    if config.encryption_passphrase.is_some() {
        std::env::remove_var("BORG_PASSCOMMAND");
    } else if config.encryption_passcommand.is_some() {
        std::env::remove_var("BORG_PASSPHRASE");
    }
    Ok(())
}

fn open_options(g: &GlobalArgs) -> OpenOptions {
    let mut o = OpenOptions::from_env();
    o.bypass_lock = g.bypass_lock;
    o.lock_wait = std::time::Duration::from_secs_f64(g.lock_wait.max(0.0));
    if let Some(r) = &g.rsh {
        o.remote.rsh = Some(r.clone());
    }
    if let Some(r) = &g.remote_path {
        o.remote.remote_path = Some(r.clone());
    }
    if let Some(n) = g.connections {
        o.remote.connections = n;
    }
    o
}

fn run(cli: Cli, sub: Option<&clap::ArgMatches>) -> Result<i32> {
    match cli.command {
        Command::List(args) => {
            let loc = Location::parse_with_env(args.location.as_deref())?;
            if loc.archive.is_some() && args.json {
                return Err(Error::Usage(
                    "The --json option is only valid for listing archives, not archive contents."
                        .into(),
                ));
            }
            if loc.archive.is_none() && args.json_lines {
                return Err(Error::Usage(
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
        Command::Extract(args) => {
            let loc = Location::parse_with_env(args.location.as_deref())?;
            let repo = Repository::open(&loc, &open_options(&cli.global))?;
            warn_store(&repo);
            let archive = args.latest.archive(&repo, &loc, "extract")?;
            let matcher = build_matcher(&args.paths, &args.patterns, sub)?;
            let opts = crate::extract::ExtractOptions {
                destination: args.destination.clone().unwrap_or_else(|| ".".into()),
                strip_components: args.strip_components,
                dry_run: args.dry_run,
                stdout: args.stdout,
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
                let counters = std::sync::Arc::new(crate::extract::Progress::default());
                let t = match extractor.totals(&archive, &matcher) {
                    Err(Error::Interrupted) => return Ok(stop.report(None)),
                    r => r?,
                };
                totals = Some(t);
                extractor.options_mut().progress = Some(counters.clone());
                Some(progress::Display::start(
                    if args.dry_run {
                        "Verifying"
                    } else {
                        "Extracting"
                    },
                    t.files,
                    t.bytes,
                    progress::reader(&counters, true),
                    progress::reader(&counters, false),
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
                    crate::log::warning("borg.archiver", &outcome::shortfall_line(&s, &dest));
                }
            }
            use crate::log::{emit_always, error, warning, Level};
            let mut done = outcome::Done::default();
            let summary = extractor.run(&archive, matcher, &mut |ev| match ev {
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
            });
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
                crate::log::stderr_line(stats.trim_end_matches('\n'));
            }
            if let Some(line) = outcome::failure_line(&summary, args.dry_run) {
                error("borg.archiver", &line);
            }
            Ok(summary.exit_code())
        }
        Command::Check(args) => check::run(&args, &cli.global),
        Command::ExportTar(args) => export_tar(&args, &cli.global, sub),
        Command::Completion(args) => {
            let mut cmd = Cli::command();
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
            let cmd = Cli::command();
            match args.dir {
                Some(dir) => {
                    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
                    clap_mangen::generate_to(cmd, &dir).map_err(|e| Error::io(&dir, e))?;
                }
                None => {
                    let mut page = Vec::new();
                    clap_mangen::Man::new(cmd)
                        .render(&mut page)
                        .map_err(|e| Error::io("<stdout>", e))?;
                    let mut out = std::io::stdout().lock();
                    out.write_all(&page)
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
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let rc = list::info(&repo, &args, &cli.global, &mut out)?;
            out.flush().map_err(|e| Error::io("<stdout>", e))?;
            Ok(rc)
        }
    }
}

/// The archive a command works on: the one named, or with `--latest` (or `::latest` when no
/// archive has that name) the newest of those the prefix or glob selects.
fn resolve_archive(
    repo: &Repository,
    named: Option<&str>,
    latest: bool,
    prefix: Option<&String>,
    glob: Option<&String>,
) -> Result<Option<String>> {
    let magic = named == Some("latest") && repo.manifest().find("latest").is_none();
    if latest && named.is_some() && !magic {
        return Err(Error::Usage(
            "--latest and an archive name: give one of them".into(),
        ));
    }
    if !latest && !magic {
        return Ok(named.map(str::to_string));
    }
    let filter = ArchiveFilter {
        prefix: prefix.cloned(),
        glob_archives: glob.cloned(),
        sort_by: "timestamp".into(),
        first: None,
        last: Some(1),
        consider_checkpoints: false,
    };
    match list::select_archives(repo, &filter, false)?.first() {
        Some(a) => Ok(Some(a.display_name())),
        None => Err(Error::Usage(format!(
            "No archives found in {}{}: the host may not have backed up yet (a new repository?), \
             or the repository was never initialized. `oxiborg list {}` shows what is there.",
            repo.location(),
            match (prefix, glob) {
                (Some(p), _) => format!(" with prefix {p:?}"),
                (_, Some(g)) => format!(" matching {g:?}"),
                _ => String::new(),
            },
            repo.location()
        ))),
    }
}

impl LatestArgs {
    /// The archive `command` works on: named in `loc`, or the newest with `--latest`.
    fn archive(&self, repo: &Repository, loc: &Location, command: &str) -> Result<String> {
        resolve_archive(
            repo,
            loc.archive.as_deref(),
            self.latest,
            self.prefix.as_ref(),
            self.glob_archives.as_ref(),
        )?
        .ok_or_else(|| {
            Error::Usage(format!(
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
                .map_err(|e| Error::Usage(format!("--tar-filter {cmd:?}: {e}")))?;
            let (prog, rest) = argv
                .split_first()
                .ok_or_else(|| Error::Usage("--tar-filter: empty command".into()))?;
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
            crate::export_tar::TarEvent::Item(p) if list => {
                crate::log::emit_always(crate::log::Level::Info, "borg.output.list", p)
            }
            crate::export_tar::TarEvent::Warning(m) => crate::log::warning("borg.archiver", &m),
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
        crate::log::warning("borg.repository", &format!("Warning: {w}"));
    }
}

/// Builds the matcher from exclusion options in command-line order, then the PATH arguments.
fn build_matcher<'a>(
    paths: &[String],
    p: &'a PatternArgs,
    sub: Option<&clap::ArgMatches>,
) -> Result<Matcher> {
    // (command-line index, kind, value)
    let mut ordered: Vec<(usize, u8, &String)> = Vec::new();
    let mut collect = |id: &str, kind: u8, vals: &'a [String]| {
        let idx: Vec<usize> = sub
            .and_then(|m| m.indices_of(id))
            .map(|i| i.collect())
            .unwrap_or_default();
        for (n, v) in vals.iter().enumerate() {
            ordered.push((idx.get(n).copied().unwrap_or(usize::MAX), kind, v));
        }
    };
    collect("exclude", 0, &p.exclude);
    collect("exclude_from", 1, &p.exclude_from);
    collect("pattern", 2, &p.pattern);
    collect("patterns_from", 3, &p.patterns_from);
    ordered.sort_by_key(|(i, _, _)| *i);
    let mut m = Matcher::new();
    let read = |f: &str| std::fs::read_to_string(f).map_err(|e| Error::io(f, e));
    for (_, kind, v) in ordered {
        match kind {
            0 => m.add_exclude(v)?,
            1 => m.add_exclude_lines(&read(v)?)?,
            2 => m.add_pattern_line(v, Style::Shell)?,
            _ => m.add_pattern_lines(&read(v)?)?,
        }
    }
    m.add_paths(paths)?;
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

//! The arguments: borg's commands and options, as clap parses them.

use clap::{Args, Parser, Subcommand};
use std::ffi::OsString;
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
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// How remote repositories are reached, for `oxiborg --help`.
pub(crate) const REMOTE_HELP: &str = "\
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
pub(crate) struct GlobalArgs {
    /// The repository, as borg 2 takes it (`-r REPO list ARCHIVE`): the command's positional
    /// location then names only the archive (or is left out).
    #[arg(short = 'r', long = "repo", global = true, value_name = "REPO")]
    pub(crate) repo: Option<OsString>,
    /// Read without waiting for or checking borg's repository lock.
    #[arg(long, global = true)]
    pub(crate) bypass_lock: bool,
    /// Wait at most SECONDS for a writer's lock to go away.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 1.0)]
    pub(crate) lock_wait: f64,
    /// Print the return code on exit (as borg does).
    #[arg(long, global = true)]
    pub(crate) show_rc: bool,
    /// Log level info (accepted for borg compatibility).
    #[arg(short = 'v', long = "info", visible_alias = "verbose", global = true)]
    pub(crate) info: bool,
    /// Log level debug.
    #[arg(long, global = true)]
    pub(crate) debug: bool,
    /// Log level warning (the default).
    #[arg(long, global = true)]
    pub(crate) warning: bool,
    /// Log level error.
    #[arg(long, global = true)]
    pub(crate) error: bool,
    /// Log level critical.
    #[arg(long, global = true)]
    pub(crate) critical: bool,
    /// Write log messages as JSON lines on stderr (borg's `log_message` objects); no progress bar.
    #[arg(long, global = true)]
    pub(crate) log_json: bool,
    /// Use the remote borg at PATH (for ssh:// repositories).
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) remote_path: Option<String>,
    /// Use this command instead of ssh (for ssh:// repositories); it overrides BORG_RSH and a
    /// borgmatic ssh_command.
    #[arg(long, global = true, value_name = "RSH")]
    pub(crate) rsh: Option<String>,
    /// The built-in SSH client (used when BORG_RSH / --rsh is not set): the private key to log in
    /// with, e.g. /etc/borgmatic/key (as OXIBORG_SSH_IDENTITY).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) ssh_identity: Option<std::path::PathBuf>,
    /// Open N `borg serve` sessions for a remote repository and spread the reads over them.
    #[arg(long, global = true, value_name = "N")]
    pub(crate) connections: Option<usize>,
    /// Show sizes in IEC units (KiB, MiB, …).
    #[arg(long, global = true)]
    pub(crate) iec: bool,
    /// Include checkpoint parts of files.
    #[arg(long, global = true)]
    pub(crate) consider_part_files: bool,
    /// Take the repository and its credentials (passphrase or passcommand, ssh_command,
    /// remote_path, key and base directories) from a borgmatic configuration FILE; they win over
    /// BORG_PASSPHRASE, BORG_PASSCOMMAND and BORG_RSH, as in borgmatic (--rsh still overrides).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) borgmatic_config: Option<std::path::PathBuf>,
    /// Like --borgmatic-config, from borgmatic's default places: /etc/borgmatic/config.yaml,
    /// /etc/borgmatic.d/*.yaml, ~/.config/borgmatic/config.yaml, ~/.config/borgmatic.d/*.yaml.
    #[arg(long, global = true, conflicts_with = "borgmatic_config")]
    pub(crate) borgmatic: bool,
    /// With --borgmatic-config: the repository to use, by path or label.
    #[arg(long, global = true, value_name = "PATH|LABEL")]
    pub(crate) repository: Option<String>,
    /// The borgmatic configuration in use (set by `use_borgmatic`).
    #[arg(skip)]
    pub(crate) borgmatic_in_use: Option<oxiborg::borgmatic::BorgmaticConfig>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// List archives of a repository, or the contents of an archive.
    #[command(visible_alias = "repo-list")]
    List(ListArgs),
    /// Show information about a repository or archives.
    #[command(visible_alias = "repo-info")]
    Info(InfoArgs),
    /// Restore files from an archive (into the current directory, or -C DIR).
    Extract(ExtractArgs),
    /// Check repository and archive consistency, read-only (borg check without --repair).
    Check(crate::check::CheckArgs),
    /// Write an archive (or part of it) as a tar file, or to stdout with "-".
    ExportTar(ExportTarArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completion(CompletionArgs),
    /// Print the man page (roff) to stdout, or write one page per command into a directory.
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CompletionArgs {
    /// The shell to complete for.
    pub(crate) shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub(crate) struct ManArgs {
    /// Write oxiborg.1 and oxiborg-COMMAND.1 pages into DIR instead.
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<std::path::PathBuf>,
}

/// Archive selection options shared by list and info.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Archive selection")]
pub(crate) struct ArchiveFilterArgs {
    /// Only archives whose name starts with PREFIX.
    #[arg(
        short = 'P',
        long,
        value_name = "PREFIX",
        conflicts_with = "glob_archives"
    )]
    pub(crate) prefix: Option<String>,
    /// Only archives whose name matches GLOB (sh: style).
    #[arg(short = 'a', long, value_name = "GLOB")]
    pub(crate) glob_archives: Option<String>,
    /// Sort archives by KEYS (comma-separated: timestamp, name, archive, id).
    #[arg(long, value_name = "KEYS", default_value = "timestamp")]
    pub(crate) sort_by: String,
    /// Only the first N archives (after sorting).
    #[arg(long, value_name = "N", conflicts_with = "last", value_parser = positive)]
    pub(crate) first: Option<usize>,
    /// Only the last N archives (after sorting).
    #[arg(long, value_name = "N", value_parser = positive)]
    pub(crate) last: Option<usize>,
    /// Show checkpoint archives too.
    #[arg(long)]
    pub(crate) consider_checkpoints: bool,
}

pub(crate) fn positive(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("A positive integer is required: {s}")),
    }
}

/// Path selection options (borg's exclusion options).
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Path selection")]
pub(crate) struct PatternArgs {
    /// Exclude paths matching PATTERN (default style fm:).
    #[arg(
        short = 'e',
        long = "exclude",
        value_name = "PATTERN",
        allow_hyphen_values = true
    )]
    pub(crate) exclude: Vec<OsString>,
    /// Read exclude patterns from FILE, one per line.
    #[arg(long, value_name = "FILE")]
    pub(crate) exclude_from: Vec<PathBuf>,
    /// Include/exclude paths: "+ pat", "- pat", "! pat", "R root" (default style sh:).
    #[arg(long = "pattern", value_name = "PATTERN", allow_hyphen_values = true)]
    pub(crate) pattern: Vec<OsString>,
    /// Read include/exclude patterns from FILE.
    #[arg(long, value_name = "FILE")]
    pub(crate) patterns_from: Vec<PathBuf>,
}

/// borgmatic's way of naming the archive and paths (`borgmatic extract --archive A --path P`),
/// accepted under `--borgmatic-config` / `--borgmatic`.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "borgmatic's spellings")]
pub(crate) struct BorgmaticArgs {
    /// With --borgmatic-config/--borgmatic (borgmatic's spelling): the archive, "latest" for
    /// the newest.
    #[arg(long = "archive", value_name = "NAME")]
    pub(crate) archive: Option<OsString>,
    /// With --borgmatic-config/--borgmatic (borgmatic's spelling): a PATH (repeatable).
    #[arg(long = "path", value_name = "PATH")]
    pub(crate) path: Vec<OsString>,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Repository or archive (REPO, REPO::ARCHIVE, ::ARCHIVE with BORG_REPO).
    pub(crate) location: Option<OsString>,
    /// Paths to list; default: all.
    pub(crate) paths: Vec<OsString>,
    /// Only print archive names or file paths.
    #[arg(long)]
    pub(crate) short: bool,
    /// Format output with borg's placeholders, e.g. "{mode} {path}{NL}".
    #[arg(long, visible_alias = "list-format", value_name = "FORMAT")]
    pub(crate) format: Option<String>,
    /// Output the archive list as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Output archive contents as JSON lines.
    #[arg(long)]
    pub(crate) json_lines: bool,
    /// List the contents of the newest archive (of those --prefix / --glob-archives select).
    #[arg(long)]
    pub(crate) latest: bool,
    #[command(flatten)]
    pub(crate) filter: ArchiveFilterArgs,
    #[command(flatten)]
    pub(crate) patterns: PatternArgs,
    #[command(flatten)]
    pub(crate) borgmatic: BorgmaticArgs,
}

/// Choosing the newest archive instead of naming one (the runbook's "latest archive").
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Archive selection")]
pub(crate) struct LatestArgs {
    /// Use the newest archive (of those --prefix / --glob-archives select) instead of naming
    /// one; REPO::latest does the same when no archive is called "latest".
    #[arg(long)]
    pub(crate) latest: bool,
    /// With --latest: only archives whose name starts with PREFIX.
    #[arg(
        short = 'P',
        long,
        value_name = "PREFIX",
        requires = "latest",
        conflicts_with = "glob_archives"
    )]
    pub(crate) prefix: Option<String>,
    /// With --latest: only archives whose name matches GLOB.
    #[arg(short = 'a', long, value_name = "GLOB", requires = "latest")]
    pub(crate) glob_archives: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ExtractArgs {
    /// The archive (REPO::ARCHIVE, or ::ARCHIVE with BORG_REPO).
    pub(crate) location: Option<OsString>,
    /// Paths to extract; default: everything.
    pub(crate) paths: Vec<OsString>,
    /// Restore into DIR instead of the current directory.
    #[arg(short = 'C', long = "destination", value_name = "DIR")]
    pub(crate) destination: Option<std::path::PathBuf>,
    /// Remove N leading path components.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) strip_components: usize,
    /// Read and verify everything, write nothing.
    #[arg(short = 'n', long)]
    pub(crate) dry_run: bool,
    /// Write the selected files' contents to stdout.
    #[arg(long)]
    pub(crate) stdout: bool,
    /// Print each item's path as it is extracted (on stderr).
    #[arg(long)]
    pub(crate) list: bool,
    /// Use numeric uid/gid, not user and group names.
    #[arg(long, visible_alias = "numeric-owner")]
    pub(crate) numeric_ids: bool,
    /// Make holes in the output for all-zero chunks.
    #[arg(long)]
    pub(crate) sparse: bool,
    /// Do not restore ACLs.
    #[arg(long)]
    pub(crate) noacls: bool,
    /// Do not restore extended attributes.
    #[arg(long)]
    pub(crate) noxattrs: bool,
    /// Do not restore BSD flags.
    #[arg(long)]
    pub(crate) noflags: bool,
    /// Show progress (bytes, files, rate, ETA) on stderr; the default when stderr is a
    /// terminal, never drawn when it is not.
    #[arg(short = 'p', long)]
    pub(crate) progress: bool,
    /// Resume an interrupted restore into the same destination: keep files already complete
    /// (same size and modification time), restore the rest.
    #[arg(long = "continue")]
    pub(crate) resume: bool,
    /// Print throughput and the time spent per pipeline stage at the end (on stderr).
    #[arg(short = 's', long)]
    pub(crate) stats: bool,
    #[command(flatten)]
    pub(crate) latest: LatestArgs,
    #[command(flatten)]
    pub(crate) patterns: PatternArgs,
    #[command(flatten)]
    pub(crate) borgmatic: BorgmaticArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ExportTarArgs {
    /// The archive (REPO::ARCHIVE, ::ARCHIVE with BORG_REPO, or REPO with --latest).
    pub(crate) location: OsString,
    /// The tar file to write; "-" for stdout.
    pub(crate) tarfile: std::path::PathBuf,
    /// Paths to export; default: everything.
    pub(crate) paths: Vec<OsString>,
    /// Pipe the tar stream through this command; "auto" (the default) picks one by the
    /// file's suffix: .tar.gz/.tgz gzip, .tar.bz2/.tbz bzip2, .tar.xz/.txz xz, .tar.lz4 lz4,
    /// .tar.zst/.tar.zstd zstd (none for "-" or a plain .tar).
    #[arg(long, default_value = "auto", value_name = "COMMAND")]
    pub(crate) tar_filter: String,
    /// Print each item's path on stderr as it is written.
    #[arg(long = "list")]
    pub(crate) output_list: bool,
    /// Remove N leading path components.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) strip_components: usize,
    #[command(flatten)]
    pub(crate) latest: LatestArgs,
    #[command(flatten)]
    pub(crate) patterns: PatternArgs,
}

#[derive(Debug, Args)]
pub(crate) struct InfoArgs {
    /// Repository or archive.
    pub(crate) location: Option<OsString>,
    /// Output JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Show the newest archive (of those --prefix / --glob-archives select); REPO::latest does
    /// the same when no archive is called "latest".
    #[arg(long, conflicts_with_all = ["first", "last"])]
    pub(crate) latest: bool,
    #[command(flatten)]
    pub(crate) filter: ArchiveFilterArgs,
}

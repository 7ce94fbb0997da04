//! The `oxiborg` command line: borg-compatible arguments, output formats and exit codes.
//!
//! Every command is a thin layer over the `oxiborg` library; this binary adds the arguments,
//! the output formats, the logger, the progress display, signal handling and exit codes.

mod args;
mod check;
mod docs;
mod exit;
mod export_tar;
mod extract;
mod format;
mod info;
mod info_borg2;
mod interrupt;
mod item_view;
mod json;
mod list;
mod logger;
mod matcher;
mod open;
mod outcome;
mod progress;
mod select;
mod timefmt;

use args::{Cli, Command, GlobalArgs};
use clap::{CommandFactory, FromArgMatches};
use open::use_borgmatic;
use oxiborg::error::{Error, Result};

// mimalloc: the item stream allocates a few small buffers per item on one thread and frees them
// on another; glibc's malloc spends a quarter of a 1,000,000-item listing on that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// borg 2's `-r REPO`: the command's location becomes `REPO::ARCHIVE` when it names an
/// archive (`ARCHIVE` or `::ARCHIVE`), else `REPO`.
fn apply_repo_option(command: &mut Command, repo: &std::ffi::OsStr) {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let with_repo = |archive: Option<&std::ffi::OsStr>| -> std::ffi::OsString {
        let mut v = repo.as_bytes().to_vec();
        if let Some(a) = archive.filter(|a| !a.is_empty()) {
            let a = a.as_bytes();
            v.extend_from_slice(b"::");
            v.extend_from_slice(a.strip_prefix(b"::").unwrap_or(a));
        }
        std::ffi::OsString::from_vec(v)
    };
    // With --latest the archive is not named: a positional is then the first PATH.
    let shift = |location: &mut Option<std::ffi::OsString>, paths: &mut Vec<std::ffi::OsString>| {
        if let Some(p) = location.take() {
            paths.insert(0, p);
        }
        *location = Some(with_repo(None));
    };
    match command {
        Command::List(a) if a.latest => shift(&mut a.location, &mut a.paths),
        Command::List(a) => a.location = Some(with_repo(a.location.as_deref())),
        Command::Info(a) => a.location = Some(with_repo(a.location.as_deref())),
        Command::Check(a) => a.location = Some(with_repo(a.location.as_deref())),
        Command::Extract(a) if a.latest.latest => shift(&mut a.location, &mut a.paths),
        Command::Extract(a) => a.location = Some(with_repo(a.location.as_deref())),
        Command::ExportTar(a) if a.latest.latest => {
            // `-r REPO export-tar --latest FILE [PATH…]`: the positionals move up by one
            let file = std::mem::replace(&mut a.location, with_repo(None));
            let first = std::mem::replace(&mut a.tarfile, std::path::PathBuf::from(file));
            if !first.as_os_str().is_empty() {
                a.paths.insert(0, first.into_os_string());
            }
        }
        Command::ExportTar(a) => a.location = with_repo(Some(&a.location)),
        Command::Completion(_) | Command::Man(_) => {}
    }
}

fn main() {
    std::process::exit(cli_main());
}

/// Runs the CLI with the process arguments; returns the exit code.
fn cli_main() -> i32 {
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
    if let Some(repo) = cli.global.repo.clone() {
        apply_repo_option(&mut cli.command, &repo);
    }
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
                    crate::logger::Level::Error,
                    "borg.archiver",
                    &e.located(),
                    exit::msgid(&e),
                ));
            } else {
                crate::logger::error("borg.archiver", &e.located());
            }
            exit::exit_code(&e, modern)
        }
    };
    if show_rc {
        let (what, level) = match rc {
            0 => ("success", crate::logger::Level::Info),
            1 => ("warning", crate::logger::Level::Warning),
            _ => ("error", crate::logger::Level::Error),
        };
        crate::logger::emit_always(
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
    use crate::logger::Level;
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
    crate::logger::set_threshold(level);
    crate::logger::install();
    let json = g.log_json;
    crate::logger::set_sink(Box::new(move |level, logger, msg| {
        if json {
            progress::print_line(&log_json_line(level, logger, msg, None));
        } else {
            progress::print_line(msg);
        }
    }));
}

/// One `--log-json` line, as borg writes it (`json.dumps` of its `log_message` record).
fn log_json_line(
    level: crate::logger::Level,
    logger: &str,
    msg: &str,
    msgid: crate::logger::MsgId,
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

/// Runs one command.
fn run(cli: Cli, sub: Option<&clap::ArgMatches>) -> Result<i32> {
    let global = &cli.global;
    match cli.command {
        Command::List(args) => list::run(args, global, sub),
        Command::Extract(args) => extract::run(args, global, sub),
        Command::Check(args) => check::run(&args, global),
        Command::ExportTar(args) => export_tar::run(args, global, sub),
        Command::Completion(args) => docs::completion(args),
        Command::Man(args) => docs::man(args),
        Command::Info(args) => info::run(args, global),
    }
}

//! `export-tar`: an archive as a tar stream, optionally through a compression filter.

use crate::args::{ExportTarArgs, GlobalArgs};
use crate::interrupt;
use crate::matcher::build_matcher;
use crate::open::{open_options, warn_store};
use crate::select::{default_repo, looks_like_location};
use oxiborg::error::{Error, Result};
use oxiborg::repository::Repository;
use oxiborg::Location;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

/// `export-tar`: writes an archive's files as a tar stream (to a file, stdout or a filter).
pub(crate) fn run(
    mut args: ExportTarArgs,
    global: &GlobalArgs,
    sub: Option<&clap::ArgMatches>,
) -> Result<i32> {
    // `export-tar --latest FILE [PATH…]` with the repository from BORG_REPO: the first
    // positional is the tar file.
    if !looks_like_location(args.location.as_bytes()) && default_repo().is_some() {
        let tarfile = std::mem::replace(&mut args.tarfile, args.location.clone().into());
        args.location = OsString::new();
        args.paths.insert(0, tarfile.into_os_string());
    }
    export_tar(&args, global, sub)
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
    let opts = oxiborg::export_tar::TarOptions {
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
    let summary =
        oxiborg::export_tar::export_tar(&repo, &archive, matcher, &opts, &mut out, &mut |ev| {
            match ev {
                oxiborg::export_tar::TarEvent::Item(p) if list => {
                    crate::logger::emit_always(crate::logger::Level::Info, "borg.output.list", p)
                }
                oxiborg::export_tar::TarEvent::Warning(m) => {
                    crate::logger::warning("borg.archiver", &m)
                }
                _ => {}
            }
        });
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

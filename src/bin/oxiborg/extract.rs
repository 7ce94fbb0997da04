//! `extract`: the restore, its progress display, interruption and summary.

use crate::args::{ExtractArgs, GlobalArgs};
use crate::matcher::build_matcher;
use crate::open::{open_options, warn_store};
use crate::select::archive_location;
use crate::{interrupt, outcome, progress};
use oxiborg::error::{Error, Result};
use oxiborg::repository::Repository;

/// `extract`: restores (or verifies, or writes to stdout) an archive's files.
pub(crate) fn run(
    mut args: ExtractArgs,
    global: &GlobalArgs,
    sub: Option<&clap::ArgMatches>,
) -> Result<i32> {
    let loc = archive_location(
        &mut args.location,
        &mut args.paths,
        &args.borgmatic,
        global,
        true,
    )?;
    let repo = Repository::open(&loc, &open_options(global))?;
    warn_store(&repo);
    let archive = args.latest.archive(&repo, &loc, "extract")?;
    let matcher = build_matcher(&args.paths, &args.patterns, sub)?;
    let opts = oxiborg::extract::ExtractOptions {
        destination: args.destination.clone().unwrap_or_else(|| ".".into()),
        strip_components: args.strip_components,
        dry_run: args.dry_run,
        sparse: args.sparse,
        meta: oxiborg::extract::MetaOptions {
            numeric_ids: args.numeric_ids,
            noacls: args.noacls,
            noxattrs: args.noxattrs,
            noflags: args.noflags,
        },
        consider_part_files: global.consider_part_files,
        resume: args.resume,
        ..Default::default()
    };
    let opts = tuned(opts);
    let list = args.list;
    let mut extractor = oxiborg::extract::Extractor::new(&repo, opts);
    let stop = interrupt::Interrupt::install();
    extractor.options_mut().interrupt = Some(stop.flag());
    let mut totals = None;
    let display = if progress::wanted() && !global.log_json {
        let counters = std::sync::Arc::new(oxiborg::progress::Progress::new());
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
            crate::logger::warning("borg.archiver", &outcome::shortfall_line(&s, &dest));
        }
    }
    use crate::logger::{emit_always, error, warning, Level};
    let mut done = outcome::Done::default();
    let mut on_event = |ev: oxiborg::extract::Event<'_>| match ev {
        oxiborg::extract::Event::Item(p) if list => emit_always(Level::Info, "borg.output.list", p),
        oxiborg::extract::Event::Warning(m) => warning("borg.archiver", &m),
        oxiborg::extract::Event::Error(m) => error("borg.archiver", &m),
        oxiborg::extract::Event::StaleRemoved { files } => {
            warning("borg.archiver", &outcome::stale_line(files, &dest))
        }
        oxiborg::extract::Event::FileDone { bytes, .. }
        | oxiborg::extract::Event::FileKept { bytes, .. } => done.add(bytes),
        _ => {}
    };
    let summary = if args.stdout {
        let mut out = std::io::stdout().lock();
        match extractor.run_to(&archive, matcher, &mut out, &mut on_event) {
            // (the library's name for its output is ours to give)
            Err(Error::Io { path, source }) if path.as_os_str() == oxiborg::extract::OUTPUT => {
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
        crate::logger::stderr_line(stats.trim_end_matches('\n'));
    }
    if let Some(line) = outcome::failure_line(&summary, args.dry_run) {
        error("borg.archiver", &line);
    }
    Ok(outcome::exit_code(&summary))
}

/// Applies the pipeline tuning variables `OXIBORG_BATCH_FILES` (files per batch) and
/// `OXIBORG_BATCH_MB` / `OXIBORG_INFLIGHT_MB` (bytes per batch / decoded bytes in flight).
fn tuned(mut o: oxiborg::extract::ExtractOptions) -> oxiborg::extract::ExtractOptions {
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
fn extract_stats(s: &oxiborg::extract::Summary, dry_run: bool) -> String {
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

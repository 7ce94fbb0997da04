//! Restore an archive (the newest one unless `REPOSITORY::ARCHIVE` names one) into a directory
//! with a simple progress line, using the library's extractor and its live counters.
//!
//! ```sh
//! BORG_PASSPHRASE=oxiborg-test cargo run --example extract_progress -- \
//!     testdata/repos/repokey-blake2-lz4 /tmp/restored
//! ```

use oxiborg::extract::{Event, ExtractOptions, Extractor};
use oxiborg::patterns::Matcher;
use oxiborg::{Location, OpenOptions, Progress, Repository};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (location, dest) = match (args.next(), args.next()) {
        (Some(l), Some(d)) => (l, d),
        _ => return Err("usage: extract_progress REPOSITORY[::ARCHIVE] DESTINATION".into()),
    };
    let location = Location::parse(&location)?;
    let repo = Repository::open(&location, &OpenOptions::from_env())?;
    let name = match &location.archive {
        Some(name) => name.clone(),
        None => repo
            .archives()
            .last()
            .ok_or("repository has no archives")?
            .name
            .clone(),
    };
    let counters = Arc::new(Progress::new());
    let opts = ExtractOptions {
        destination: dest.into(),
        progress: Some(counters.clone()),
        ..ExtractOptions::default()
    };
    let extractor = Extractor::new(&repo, opts);
    let matcher = Matcher::new();
    // One cheap pass over the item stream gives the totals for a percentage.
    let totals = extractor.totals(&name, &matcher)?;
    let done = Arc::new(AtomicBool::new(false));
    let printer = {
        let (counters, done) = (counters.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let (bytes, files) = (counters.bytes(), counters.items());
                let pct = 100.0 * bytes as f64 / totals.bytes.max(1) as f64;
                eprint!("\r{pct:5.1}%  {files}/{} files", totals.files);
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let summary = extractor.run(&name, matcher, &mut |event| {
        if let Event::Warning(m) | Event::Error(m) = event {
            eprintln!("\n{m}");
        }
    });
    done.store(true, Ordering::Relaxed);
    let _ = printer.join();
    let summary = summary?;
    // borg's exit codes: 2 when files were lost to damaged data, 1 for warnings or refused items
    let code = if summary.failed > 0 {
        2
    } else if summary.warnings > 0 || summary.refused > 0 {
        1
    } else {
        0
    };
    eprintln!(
        "\rrestored {} files, {} bytes from {} (exit code {code})",
        summary.files,
        summary.bytes,
        String::from_utf8_lossy(&name),
    );
    std::process::exit(code);
}

//! `restore REPO ARCHIVE DEST [PATH…]`: restores into DEST with a progress line; Ctrl-C stops it
//! cleanly (files are renamed into place only when complete; `ExtractOptions::resume` goes on).
use oxiborg::patterns::Matcher;
use oxiborg::{ExtractOptions, Extractor, Location, OpenOptions, Progress, Repository};
use std::sync::{atomic::AtomicBool, Arc};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, repo, archive, dest, paths @ ..] = &args[..] else {
        return Err("usage: restore REPO ARCHIVE DEST [PATH…]".into());
    };
    let repo = Repository::open(&Location::parse(repo)?, &OpenOptions::from_env())?;
    let (progress, stop) = (Arc::new(Progress::new()), Arc::new(AtomicBool::new(false)));
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    let opts = ExtractOptions {
        destination: dest.into(),
        progress: Some(progress.clone()),
        interrupt: Some(stop),
        ..Default::default()
    };
    let (name, matcher) = (
        &repo.find_archive(archive)?.name,
        Matcher::from_paths(paths)?,
    );
    let summary = std::thread::scope(|s| {
        let run = s.spawn(|| Extractor::new(&repo, opts).run(name, matcher, &mut |_| {}));
        while !run.is_finished() {
            eprint!("\r{progress}");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        run.join().expect("the restore thread")
    })?;
    let not_restored = summary.failed + summary.refused;
    eprintln!(
        "\rrestored {} files; {not_restored} not restored",
        summary.files
    );
    Ok(())
}

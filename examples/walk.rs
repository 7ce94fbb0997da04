//! `walk REPO ARCHIVE`: the type, size and path of every item (`ARCHIVE` may be `latest`).
use oxiborg::{Location, OpenOptions, Repository};
use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, repo, archive] = &args[..] else {
        return Err("usage: walk REPO ARCHIVE".into());
    };
    let repo = Repository::open(&Location::parse(repo)?, &OpenOptions::from_env())?;
    let archive = repo.archive_by_entry(repo.find_archive(archive)?)?;
    let mut out = std::io::stdout().lock();
    for item in archive.items() {
        let item = item?;
        writeln!(
            out,
            "{:<8} {:>12} {}",
            item.kind(),
            item.listed_size(),
            item.display_path()
        )?;
    }
    Ok(())
}

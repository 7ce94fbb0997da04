//! `cat_file REPO ARCHIVE PATH`: one file's content to stdout (`ARCHIVE` may be `latest`).
//! A hard-link member reads as the file it is (its master's content).
use oxiborg::{Location, OpenOptions, Repository};
use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, repo, archive, path] = &args[..] else {
        return Err("usage: cat_file REPO ARCHIVE PATH".into());
    };
    let repo = Repository::open(&Location::parse(repo)?, &OpenOptions::from_env())?;
    let archive = repo.archive_by_entry(repo.find_archive(archive)?)?;
    let item = archive
        .find(path)?
        .ok_or(format!("{path}: not in the archive"))?;
    let mut out = std::io::stdout().lock();
    std::io::copy(&mut archive.open_file(&item)?, &mut out)?;
    out.flush()?;
    Ok(())
}

//! `read_at REPO ARCHIVE PATH OFFSET LEN`: LEN bytes of a file from OFFSET, to stdout
//! (random access: only the chunks holding them are fetched).
use oxiborg::{Location, OpenOptions, Repository};
use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, repo, archive, path, offset, len] = &args[..] else {
        return Err("usage: read_at REPO ARCHIVE PATH OFFSET LEN".into());
    };
    let repo = Repository::open(&Location::parse(repo)?, &OpenOptions::from_env())?;
    let archive = repo.archive_by_entry(repo.find_archive(archive)?)?;
    let item = archive
        .find(path)?
        .ok_or(format!("{path}: not in the archive"))?;
    let mut buf = vec![0u8; len.parse()?];
    let n = archive
        .open_file(&item)?
        .read_at(offset.parse()?, &mut buf)?;
    std::io::stdout().write_all(&buf[..n])?;
    Ok(())
}

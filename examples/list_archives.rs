//! `list_archives REPO`: every archive's name, start time and id, newest last.
//! Passphrase, key file and SSH settings come from borg's environment variables.
use oxiborg::{Location, OpenOptions, Repository};
use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let repo_arg = std::env::args().nth(1).expect("usage: list_archives REPO");
    let repo = Repository::open(&Location::parse(&repo_arg)?, &OpenOptions::from_env())?;
    let mut out = std::io::stdout().lock();
    for archive in repo.archives() {
        let time = archive.time_utc.format("%Y-%m-%d %H:%M:%S");
        writeln!(out, "{:<36} {time} {}", archive.display_name(), archive.id)?;
    }
    Ok(())
}

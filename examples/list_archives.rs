//! List the archives of a repository, newest last, like `borg list REPO`.
//!
//! ```sh
//! BORG_PASSPHRASE=oxiborg-test cargo run --example list_archives -- testdata/repos/repokey-blake2-lz4
//! ```

use oxiborg::{Location, OpenOptions, Repository};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let location = std::env::args()
        .nth(1)
        .ok_or("usage: list_archives REPOSITORY")?;
    let repo = Repository::open(&Location::parse(&location)?, &OpenOptions::from_env())?;
    for archive in repo.archives() {
        println!(
            "{:<36} {} UTC [{}]",
            archive.display_name(),
            archive.time_utc,
            hex(&archive.id)
        );
    }
    Ok(())
}

fn hex(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

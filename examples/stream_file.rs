//! Stream one file out of the newest archive to stdout — the runbook's "pull the key file out
//! of the newest archive" step — using the library's `std::io::Read` file reader.
//!
//! ```sh
//! BORG_PASSPHRASE=oxiborg-test cargo run --example stream_file -- \
//!     testdata/repos/repokey-blake2-lz4 tree/hello.txt
//! ```

use oxiborg::{Location, OpenOptions, Repository};
use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (location, path) = match (args.next(), args.next()) {
        (Some(l), Some(p)) => (l, p),
        _ => return Err("usage: stream_file REPOSITORY[::ARCHIVE] PATH".into()),
    };
    let location = Location::parse(&location)?;
    let repo = Repository::open(&location, &OpenOptions::from_env())?;
    let archive = match &location.archive {
        Some(name) => repo.archive(name)?,
        None => {
            repo.archive_by_entry(repo.archives().last().ok_or("repository has no archives")?)?
        }
    };
    for item in archive.items() {
        let item = item?;
        if item.path == path.as_bytes() && item.is_regular() {
            let mut stdout = std::io::stdout().lock();
            std::io::copy(&mut repo.open_file(&item), &mut stdout)?;
            stdout.flush()?;
            return Ok(());
        }
    }
    Err(format!("{path} is not a regular file in archive {}", archive.name()).into())
}

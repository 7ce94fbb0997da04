//! Stored objects by id: the bytes layer under everything else.
//!
//! A [`Store`] yields the raw, still encrypted objects of a repository and knows nothing of what
//! they mean. [`local::LocalStore`] reads a borg 1.x repository directory (segments, hash
//! index, scan fallback); a `borg serve` client implements the same trait, and so does
//! [`borg2::Borg2Store`] for borg 2.0.0b25 repositories (packs), over any [`files::Files`].

pub(crate) mod borg2;
pub(crate) mod files;
pub mod hashindex;
pub mod local;
mod lock;
pub mod segment;

use crate::error::Result;
use crate::id::ObjectId;
use log::Level;

/// Raw access to a repository's objects.
pub trait Store: Send + Sync {
    /// The repository id from its config.
    fn id(&self) -> ObjectId;

    /// The repository's location as text, for messages.
    fn location(&self) -> &str;

    /// The repokey blob from the repository config (`None` when the config has none).
    fn load_key(&self) -> Result<Option<String>>;

    /// The stored bytes of one object.
    fn get(&self, id: &ObjectId) -> Result<Vec<u8>>;

    /// Fetches many objects, handing each to `sink` with its index in `ids` as it arrives
    /// (not necessarily in order). Stops at the first error `sink` returns.
    fn get_many(
        &self,
        ids: &[ObjectId],
        sink: &mut dyn FnMut(usize, Result<Vec<u8>>) -> Result<()>,
    ) -> Result<()> {
        for (i, id) in ids.iter().enumerate() {
            sink(i, self.get(id))?;
        }
        Ok(())
    }

    /// Problems met while opening that did not stop it (e.g. a damaged segment tail skipped).
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }

    /// The ids of every object the repository holds (its index; borg's `list`).
    fn list_ids(&self) -> Result<Vec<ObjectId>>;

    /// The repository part of `borg check`: are the stored objects intact and does the index
    /// agree with them? Every finding goes to `report` (with borg's wording where borg has
    /// one); returns how many problems were found. This default reads every listed object
    /// (which checks what the store checks on each read, e.g. a server's CRCs);
    /// [`local::LocalStore`] reads the segments themselves and compares them with the index.
    fn check(&self, report: &mut dyn FnMut(Level, String)) -> Result<u64> {
        report(Level::Info, "Starting repository check".into());
        let ids = self.list_ids()?;
        let mut problems = 0u64;
        self.get_many(&ids, &mut |i, r| {
            if let Err(e) = r {
                problems += 1;
                report(Level::Error, format!("{}: {e}", hex::encode(ids[i])));
            }
            Ok(())
        })?;
        report(
            Level::Info,
            format!(
                "{} objects listed by the index, {problems} unreadable",
                ids.len()
            ),
        );
        finish_repository_check(problems, report);
        Ok(problems)
    }
}

/// borg's closing line of a repository check.
pub(crate) fn finish_repository_check(problems: u64, report: &mut dyn FnMut(Level, String)) {
    if problems > 0 {
        report(
            Level::Error,
            "Finished full repository check, errors found.".into(),
        );
    } else {
        report(
            Level::Info,
            "Finished full repository check, no problems found.".into(),
        );
    }
}

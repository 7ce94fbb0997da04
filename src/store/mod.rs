//! Stored objects by id: the bytes layer under everything else.
//!
//! A [`Store`] yields the raw, still encrypted objects of a repository and knows nothing of what
//! they mean. [`local::LocalStore`] reads a repository directory (segments, hash index, scan
//! fallback); a `borg serve` client implements the same trait.

pub mod hashindex;
pub mod local;
pub mod segment;

use crate::error::Result;
use crate::ObjectId;

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
}

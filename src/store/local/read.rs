//! Reading objects from a local repository: the open segment files (a bounded cache), and the
//! read by id, with a scan of the segments as the fallback when the index misplaces an object.

use super::{segment_path, LocalStore};
use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::store::segment;
use std::fs::File;
use std::sync::Arc;

const MAX_OPEN_SEGMENTS: usize = 128;

impl LocalStore {
    fn file(&self, seg: u32) -> Result<Arc<File>> {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = files.get(&seg) {
            return Ok(f.clone());
        }
        let path = segment_path(&self.root, self.config.segments_per_dir, seg);
        let f = Arc::new(File::open(&path).map_err(|e| {
            Error::Integrity(format!(
                "Segment {seg} cannot be opened ({}): {e}",
                path.display()
            ))
        })?);
        if files.len() >= MAX_OPEN_SEGMENTS {
            files.clear();
        }
        files.insert(seg, f.clone());
        Ok(f)
    }

    /// Where an object is stored, `(segment, offset)`.
    pub fn locate(&self, id: &ObjectId) -> Option<(u32, u32)> {
        self.map.get(id)
    }

    fn not_found(&self, id: &ObjectId) -> Error {
        Error::ObjectNotFound {
            id: hex::encode(id),
            location: self.location.clone(),
        }
    }

    fn read_at(&self, id: &ObjectId, seg: u32, off: u32, guess: Option<u32>) -> Result<Vec<u8>> {
        segment::read_put_sized(&*self.file(seg)?, seg, off, id, guess)
    }

    /// [`Store::get`](crate::store::Store::get) with a guess of the entry's length (see
    /// [`segment::read_put_sized`]).
    pub(super) fn get_sized(&self, id: &ObjectId, guess: Option<u32>) -> Result<Vec<u8>> {
        let Some((seg, off)) = self.locate(id) else {
            return Err(self.not_found(id));
        };
        match self.read_at(id, seg, off, guess) {
            Ok(data) => Ok(data),
            Err(first) if self.uses_index() => {
                // The index may be stale: if a scan of the segments has the object elsewhere,
                // read it there. The index stays the map: one damaged entry must not hide the
                // intact objects that follow it in its segment (a scan stops at damage).
                let rescanned = self.rescanned.get_or_init(|| self.scan().ok());
                match rescanned.as_ref().and_then(|m| m.get(id)).copied() {
                    Some((s, o)) if (s, o) != (seg, off) => {
                        if !self
                            .stale_warned
                            .swap(true, std::sync::atomic::Ordering::Relaxed)
                        {
                            self.warn(format!(
                                "index.{} did not match the segments ({first}); objects it \
                                 misplaces are found by scanning",
                                self.transaction.unwrap_or(0),
                            ));
                        }
                        self.read_at(id, s, o, None)
                    }
                    // Where the index points is where the object is (or was): that is damage.
                    _ => Err(first),
                }
            }
            Err(e) => Err(e),
        }
    }
}

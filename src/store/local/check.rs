//! The repository part of `borg check` on a local repository: every committed segment read
//! (CRC of every entry), the object map rebuilt from them and compared with `index.T`.

use super::{segment_path, IdMap, LocalStore};
use crate::error::Result;
use crate::id::ObjectId;
use crate::store::segment::{self, Tag};
use log::Level;

impl LocalStore {
    /// Reads every committed segment (CRC of every entry), rebuilds the object map from them
    /// and compares it with `index.T`, reporting in borg's words. Nothing is written. (What
    /// [`crate::store::Store::check`] does for a local repository.)
    pub(super) fn check_segments(&self, report: &mut dyn FnMut(Level, String)) -> Result<u64> {
        report(Level::Info, "Starting repository check".into());
        let Some(t) = self.transaction else {
            report(
                Level::Error,
                "This repository contains no valid data.".into(),
            );
            crate::store::finish_repository_check(1, report);
            return Ok(1);
        };
        let mut problems = 0u64;
        let mut rebuilt = IdMap::default();
        for &seg in self.segments.iter().filter(|&&s| s <= t) {
            let path = segment_path(&self.root, self.config.segments_per_dir, seg);
            report(
                Level::Debug,
                format!("checking segment file {}...", path.display()),
            );
            let mut entries = Vec::new();
            // Like borg, a damaged segment contributes nothing (its index entries then show
            // up as mismatches below).
            match segment::scan(&path, seg, |e| entries.push((e.tag, e.id, e.offset))) {
                Ok(()) => {
                    for (tag, id, offset) in entries {
                        match (tag, id) {
                            (Tag::Put, Some(id)) => {
                                rebuilt.insert(id, (seg, offset));
                            }
                            (Tag::Delete, Some(id)) => {
                                rebuilt.remove(&id);
                            }
                            _ => {}
                        }
                    }
                }
                Err(e) => {
                    problems += 1;
                    report(Level::Error, e.to_string());
                }
            }
        }
        report(
            Level::Info,
            format!("finished segment check at segment {t}"),
        );
        report(Level::Info, "Starting repository index check".into());
        match self.load_index() {
            None => report(
                Level::Info,
                format!("No usable index.{t}: nothing to compare the segments with"),
            ),
            Some(idx) => {
                let show = |v: Option<(u32, u32)>| match v {
                    Some((s, o)) => format!("({s}, {o})"),
                    None => "<not found>".to_string(),
                };
                // (id, where the segments have it, where the index has it)
                type Loc = Option<(u32, u32)>;
                let mut mismatches: Vec<(ObjectId, Loc, Loc)> = Vec::new();
                if idx.len() != rebuilt.len() {
                    report(Level::Error, "Index object count mismatch.".into());
                    report(
                        Level::Error,
                        format!("committed index: {} objects", idx.len()),
                    );
                    report(
                        Level::Error,
                        format!("rebuilt index:   {} objects", rebuilt.len()),
                    );
                    problems += 1;
                } else {
                    report(Level::Info, "Index object count match.".into());
                }
                for (id, v) in &rebuilt {
                    let c = idx.get(id);
                    if c != Some(*v) {
                        mismatches.push((*id, Some(*v), c));
                    }
                }
                for (id, s, o) in idx.iter() {
                    if !rebuilt.contains_key(&id) {
                        mismatches.push((id, None, Some((s, o))));
                    }
                }
                for (id, r, c) in mismatches {
                    problems += 1;
                    report(
                        Level::Error,
                        format!(
                            "ID: {:<64} rebuilt index: {:<16} committed index: {:<16}",
                            hex::encode(id),
                            show(r),
                            show(c)
                        ),
                    );
                }
            }
        }
        crate::store::finish_repository_check(problems, report);
        Ok(problems)
    }
}

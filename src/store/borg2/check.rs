//! The repository part of `check` for borg 2 (read-only, no key needed): every pack read
//! whole, its name compared with the BLAKE3 hash of its content (borgstore names packs so),
//! its objects walked header by header to its end; and, once the chunk index is loaded (it
//! needs the key), every entry checked to lie on an object header inside an existing pack.

use super::index::{parse_header, OBJECT_HEADER};
use super::{pack_name, Borg2Store};
use crate::error::Result;
use crate::id::ObjectId;
use crate::store::finish_repository_check;
use log::Level;
use std::collections::{HashMap, HashSet};

impl Borg2Store {
    /// See the module documentation; returns how many problems were found.
    pub(super) fn check_packs(&self, report: &mut dyn FnMut(Level, String)) -> Result<u64> {
        report(Level::Info, "Starting repository check".into());
        let mut problems = 0u64;
        // pack id → the offsets of its object headers
        let mut headers: HashMap<ObjectId, HashSet<u32>> = HashMap::new();
        let mut packs = 0u64;
        for dir in self.files.list("packs")?.unwrap_or_default() {
            if !dir.is_dir {
                continue;
            }
            let sub = format!("packs/{}", dir.name);
            for e in self.files.list(&sub)?.unwrap_or_default() {
                if e.is_dir || super::is_temporary(&e.name) {
                    continue;
                }
                let name = format!("{sub}/{}", e.name);
                let Some(pack) = hex::decode(&e.name)
                    .ok()
                    .and_then(|b| ObjectId::try_from(b).ok())
                else {
                    problems += 1;
                    report(Level::Error, format!("{name}: not a pack name"));
                    continue;
                };
                let Some(data) = self.files.load(&name)? else {
                    continue; // removed while listing
                };
                packs += 1;
                if blake3::hash(&data).as_bytes() != &pack {
                    problems += 1;
                    report(
                        Level::Error,
                        format!("{name}: its content does not hash to its name (damaged)"),
                    );
                }
                let offsets = headers.entry(pack).or_default();
                let mut at = 0usize;
                while at < data.len() {
                    let end = (at + OBJECT_HEADER).min(data.len());
                    match parse_header(&data[at..end]) {
                        Ok((_, len)) if at as u64 + len <= data.len() as u64 => {
                            offsets.insert(at as u32);
                            at += len as usize;
                        }
                        Ok(_) => {
                            problems += 1;
                            report(
                                Level::Error,
                                format!(
                                    "{name}: the object at offset {at} runs past the pack's end"
                                ),
                            );
                            break;
                        }
                        Err(m) => {
                            problems += 1;
                            report(Level::Error, format!("{name}: at offset {at}: {m}"));
                            break;
                        }
                    }
                }
            }
        }
        let mut missing = 0u64;
        for (id, loc) in &self.index.map {
            let pack = self.index.packs[loc.pack as usize];
            if !headers.get(&pack).is_some_and(|h| h.contains(&loc.offset)) {
                missing += 1;
                if missing <= 100 {
                    report(
                        Level::Error,
                        format!(
                            "Object {}: the chunk index puts it at offset {} of {}, where no object starts",
                            hex::encode(id),
                            loc.offset,
                            pack_name(&pack)
                        ),
                    );
                }
            }
        }
        problems += missing;
        report(
            Level::Info,
            if self.index.map.is_empty() {
                format!("{packs} packs read")
            } else {
                format!(
                    "{packs} packs read, {} objects in the chunk index, {missing} of them not found",
                    self.index.map.len()
                )
            },
        );
        finish_repository_check(problems, report);
        Ok(problems)
    }
}

//! Several sessions to one repository used as one store ([`RemotePool`]).

use super::reconnect::Session;
use super::{connect, RemoteOptions, RemoteStore};
use crate::error::{Error, RemoteErrorKind, Result};
use crate::id::ObjectId;
use crate::location::Location;
use crate::store::Store;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

/// Several `borg serve` sessions to one repository, used as one store: `get_many` spreads its
/// requests over all of them (a 1.x server is a single-threaded Python process, so one
/// connection is often the bottleneck). A session whose connection drops is reopened (see
/// [`RemoteOptions::retries`]).
pub struct RemotePool {
    sessions: Vec<Session>,
    next: AtomicU64,
    repo_id: ObjectId,
    location: String,
}

impl RemotePool {
    /// Opens `n` sessions (at least one), in parallel. They all must report the same
    /// repository id.
    ///
    /// # Errors
    ///
    /// The first session's error, as [`connect`](super::connect) gives it, or any other's;
    /// [`Error::Remote`] (`Protocol`) when the sessions reach different repositories.
    pub fn connect(loc: &Location, opts: &RemoteOptions, n: usize) -> Result<RemotePool> {
        let first = connect(loc, opts)?;
        let (repo_id, location) = (first.id(), first.location().to_string());
        let mut sessions = vec![Session::new(first, loc, opts)];
        if n > 1 {
            let more: Vec<Result<RemoteStore>> = std::thread::scope(|s| {
                let handles: Vec<_> = (1..n).map(|_| s.spawn(|| connect(loc, opts))).collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(Error::remote(RemoteErrorKind::Connect, "connect failed"))
                        })
                    })
                    .collect()
            });
            for st in more {
                let st = st?;
                if st.id() != repo_id {
                    return Err(Error::remote(
                        RemoteErrorKind::Protocol,
                        "the connections reached different repositories",
                    ));
                }
                sessions.push(Session::new(st, loc, opts));
            }
        }
        Ok(RemotePool {
            sessions,
            next: AtomicU64::new(0),
            repo_id,
            location,
        })
    }

    /// The next session, round robin.
    fn pick(&self) -> &Session {
        let i = self.next.fetch_add(1, Ordering::Relaxed) as usize % self.sessions.len();
        &self.sessions[i]
    }
}

impl Store for RemotePool {
    fn id(&self) -> ObjectId {
        self.repo_id
    }

    fn list_ids(&self) -> Result<Vec<ObjectId>> {
        self.sessions[0].with(|s| s.list_ids())
    }

    fn location(&self) -> &str {
        &self.location
    }

    fn load_key(&self) -> Result<Option<String>> {
        self.sessions[0].with(|s| s.load_key())
    }

    fn get(&self, id: &ObjectId) -> Result<Vec<u8>> {
        self.pick().with(|s| s.get(id))
    }

    fn get_many(
        &self,
        ids: &[ObjectId],
        sink: &mut dyn FnMut(usize, Result<Vec<u8>>) -> Result<()>,
    ) -> Result<()> {
        let n = self.sessions.len();
        if n == 1 || ids.len() < 2 {
            return self.sessions[0].get_many(ids, sink);
        }
        // Contiguous shares keep each server reading its segments in order.
        let share = ids.len().div_ceil(n);
        std::thread::scope(|s| {
            let (tx, rx) = mpsc::sync_channel::<(usize, Result<Vec<u8>>)>(64);
            let stop = Arc::new(AtomicBool::new(false));
            let mut workers = Vec::new();
            for (k, session) in self.sessions.iter().enumerate() {
                let start = k * share;
                if start >= ids.len() {
                    break;
                }
                let part = &ids[start..(start + share).min(ids.len())];
                let (tx, stop) = (tx.clone(), stop.clone());
                workers.push(s.spawn(move || {
                    session.get_many(part, &mut |i, r| {
                        if stop.load(Ordering::Relaxed) || tx.send((start + i, r)).is_err() {
                            // (the caller's sink failed: its error is the result)
                            return Err(Error::Interrupted);
                        }
                        Ok(())
                    })
                }));
            }
            drop(tx);
            let mut result = Ok(());
            for (i, r) in rx.iter() {
                if let Err(e) = sink(i, r) {
                    stop.store(true, Ordering::Relaxed);
                    result = Err(e);
                    break;
                }
            }
            drop(rx);
            for w in workers {
                match w.join() {
                    Ok(Err(e)) if result.is_ok() => result = Err(e),
                    _ => {}
                }
            }
            result
        })
    }
}

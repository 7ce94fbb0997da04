//! Several sessions to one repository used as one store ([`RemotePool`]).

use super::fanout::{even_shares, fan_out};
use super::reconnect::{open_sessions, Session};
use super::{RemoteOptions, RemoteStore};
use crate::error::Result;
use crate::id::ObjectId;
use crate::location::Location;
use crate::store::Store;
use std::sync::atomic::{AtomicU64, Ordering};

/// Several `borg serve` sessions to one repository, used as one store: `get_many` spreads its
/// requests over all of them (a 1.x server is a single-threaded Python process, so one
/// connection is often the bottleneck). A session whose connection drops is reopened (see
/// [`RemoteOptions::retries`]).
pub struct RemotePool {
    sessions: Vec<Session<RemoteStore>>,
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
    /// [`Error::Remote`](crate::Error::Remote) (`Protocol`) when the sessions reach different
    /// repositories.
    pub fn connect(loc: &Location, opts: &RemoteOptions, n: usize) -> Result<RemotePool> {
        let sessions = open_sessions::<RemoteStore>(loc, opts, n)?;
        let (repo_id, location) = sessions[0].with(|s| Ok((s.id(), s.location().to_string())))?;
        Ok(RemotePool {
            sessions,
            next: AtomicU64::new(0),
            repo_id,
            location,
        })
    }

    /// The next session, round robin.
    fn pick(&self) -> &Session<RemoteStore> {
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
        fan_out(
            &self.sessions,
            &even_shares(ids.len(), n),
            sink,
            |session, share, sink| session.get_many(&ids[share], sink),
        )
    }
}

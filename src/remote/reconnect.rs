//! Reopening dropped sessions: [`Session`] runs an operation on a [`RemoteStore`] and, when the
//! connection broke in a way a new session may cure, resumes it on a new one, within the
//! retry budget ([`RemoteOptions::retries`]).

use super::{connect, RemoteOptions, RemoteStore};
use crate::error::{Error, ErrorKind, RemoteErrorKind, Result};
use crate::id::ObjectId;
use crate::location::Location;
use crate::store::Store;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One `borg serve` session that is reopened when its connection drops: an operation that
/// fails because the session broke is resumed on a new session (with what it still needs).
/// Failures are counted in a row: a session that answered something before it dropped starts
/// the count again, so a flaky link that keeps making progress is never given up on, while one
/// that fails [`RemoteOptions::retries`] times more without progress is. Each attempt waits a
/// little longer than the one before.
pub(super) struct Session {
    current: Mutex<Arc<RemoteStore>>,
    loc: Location,
    opts: RemoteOptions,
    /// Reconnections made so far (all operations together).
    pub(super) reconnects: AtomicU64,
    /// Failures in a row without progress (under `current`'s lock).
    failures: AtomicU64,
}

impl Session {
    /// A session that starts on `store`, reopened at `loc` with `opts` when it drops.
    pub(super) fn new(store: RemoteStore, loc: &Location, opts: &RemoteOptions) -> Session {
        Session {
            current: Mutex::new(Arc::new(store)),
            loc: loc.clone(),
            opts: opts.clone(),
            reconnects: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    /// The current session.
    fn store(&self) -> Arc<RemoteStore> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// After `failed` broke with `why`: opens a new session in its place, or says why not.
    fn reconnect(&self, failed: &Arc<RemoteStore>, why: &Error) -> Result<()> {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if !Arc::ptr_eq(&cur, failed) {
            // Another thread already replaced the broken session.
            return Ok(());
        }
        let retries = u64::from(self.opts.retries);
        let mut failures = if failed.answered() {
            0
        } else {
            self.failures.load(Ordering::Relaxed)
        };
        let mut last_attempt: Option<Error> = None;
        loop {
            failures += 1;
            self.failures.store(failures, Ordering::Relaxed);
            if failures > retries {
                let gave_up = if retries == 0 {
                    String::new()
                } else {
                    format!(
                        " (gave up after {retries} reconnection attempt{})",
                        if retries == 1 { "" } else { "s" }
                    )
                };
                // How it failed in the end: as the last attempt to reconnect did, else as the
                // session did.
                let kind = last_attempt
                    .as_ref()
                    .and_then(remote_kind)
                    .or_else(|| remote_kind(why))
                    .unwrap_or(RemoteErrorKind::Dropped);
                return Err(Error::remote(
                    kind,
                    match last_attempt {
                        None => format!("{why}{gave_up}"),
                        Some(e) => format!("{why}; reconnecting failed: {e}{gave_up}"),
                    },
                ));
            }
            log::warn!(target: "borg.remote",
                "Remote: connection to {} lost ({}); reconnecting (attempt {failures} of {retries})",
                self.loc.canonical(),
                last_attempt.as_ref().map_or_else(
                    || why.to_string(),
                    |e| format!("{why}; reconnecting failed: {e}")
                ),
            );
            std::thread::sleep(Duration::from_millis(250u64 << failures.min(6)));
            match connect(&self.loc, &self.opts) {
                Ok(store) if store.id() != failed.id() => {
                    return Err(Error::remote(
                        RemoteErrorKind::Protocol,
                        format!(
                            "{why}; after reconnecting, {} is a different repository",
                            self.loc.canonical()
                        ),
                    ));
                }
                Ok(store) => {
                    self.reconnects.fetch_add(1, Ordering::Relaxed);
                    *cur = Arc::new(store);
                    return Ok(());
                }
                Err(e) => last_attempt = Some(e),
            }
        }
    }

    /// Runs `f` on the session, reconnecting and running it again when the session broke.
    pub(super) fn with<T>(&self, mut f: impl FnMut(&RemoteStore) -> Result<T>) -> Result<T> {
        loop {
            let store = self.store();
            match f(&store) {
                Err(e) if store.is_retryable() => self.reconnect(&store, &e)?,
                r => return r,
            }
        }
    }

    /// `get_many` that survives dropped connections: objects already handed to `sink` are not
    /// fetched again.
    pub(super) fn get_many(
        &self,
        ids: &[ObjectId],
        sink: &mut dyn FnMut(usize, Result<Vec<u8>>) -> Result<()>,
    ) -> Result<()> {
        let mut remaining: Vec<usize> = (0..ids.len()).collect();
        loop {
            let store = self.store();
            let want: Vec<ObjectId> = remaining.iter().map(|&i| ids[i]).collect();
            let mut delivered = vec![false; remaining.len()];
            let mut sink_failed = false;
            let r = store.get_many(&want, &mut |k, res| {
                delivered[k] = true;
                let r = sink(remaining[k], res);
                sink_failed |= r.is_err();
                r
            });
            match r {
                Err(e) if !sink_failed && store.is_retryable() => {
                    self.reconnect(&store, &e)?;
                    remaining = remaining
                        .into_iter()
                        .zip(delivered)
                        .filter_map(|(i, d)| (!d).then_some(i))
                        .collect();
                }
                r => return r,
            }
        }
    }
}

/// How a remote error failed, if it is one.
fn remote_kind(e: &Error) -> Option<RemoteErrorKind> {
    match e.kind() {
        ErrorKind::Remote(k) => Some(k),
        _ => None,
    }
}

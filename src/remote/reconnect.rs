//! Reopening dropped sessions: [`Session`] runs an operation on a session (a [`RemoteStore`],
//! or a REST session: anything [`Reopen`]) and, when the connection broke in a way a new
//! session may cure, resumes it on a new one, within the retry budget
//! ([`RemoteOptions::retries`]). [`open_sessions`] opens several at once.

use super::{connect, RemoteOptions, RemoteStore};
use crate::error::{Error, ErrorKind, RemoteErrorKind, Result};
use crate::id::ObjectId;
use crate::location::Location;
use crate::store::Store;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A session that [`Session`] can replace with a new one when it drops.
pub(super) trait Reopen: Sized + Send + Sync {
    /// Opens a new session to the repository at `loc`.
    fn reopen(loc: &Location, opts: &RemoteOptions) -> Result<Self>;
    /// Whether the server answered anything after the session was opened (a session that
    /// dropped after answering made progress: reconnecting starts the failure count again).
    fn answered(&self) -> bool;
    /// Whether the session broke in a way a new session may cure.
    fn is_retryable(&self) -> bool;
    /// Whether `other` reached another repository than this session.
    fn differs(&self, other: &Self) -> bool;
}

impl Reopen for RemoteStore {
    fn reopen(loc: &Location, opts: &RemoteOptions) -> Result<Self> {
        connect(loc, opts)
    }

    fn answered(&self) -> bool {
        RemoteStore::answered(self)
    }

    fn is_retryable(&self) -> bool {
        RemoteStore::is_retryable(self)
    }

    fn differs(&self, other: &Self) -> bool {
        self.id() != other.id()
    }
}

/// What a resumable operation hands its results to: the item's position and its result.
pub(super) type Sink<'a> = dyn FnMut(usize, Result<Vec<u8>>) -> Result<()> + 'a;

/// One session that is reopened when its connection drops: an operation that fails because
/// the session broke is resumed on a new session (with what it still needs).
/// Failures are counted in a row: a session that answered something before it dropped starts
/// the count again, so a flaky link that keeps making progress is never given up on, while one
/// that fails [`RemoteOptions::retries`] times more without progress is. Each attempt waits a
/// little longer than the one before.
pub(super) struct Session<S> {
    current: Mutex<Arc<S>>,
    loc: Location,
    opts: RemoteOptions,
    /// Reconnections made so far (all operations together).
    pub(super) reconnects: AtomicU64,
    /// Failures in a row without progress (under `current`'s lock).
    failures: AtomicU64,
}

impl<S: Reopen> Session<S> {
    /// A session that starts on `store`, reopened at `loc` with `opts` when it drops.
    pub(super) fn new(store: S, loc: &Location, opts: &RemoteOptions) -> Session<S> {
        Session {
            current: Mutex::new(Arc::new(store)),
            loc: loc.clone(),
            opts: opts.clone(),
            reconnects: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    /// The current session.
    fn store(&self) -> Arc<S> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// After `failed` broke with `why`: opens a new session in its place, or says why not.
    fn reconnect(&self, failed: &Arc<S>, why: &Error) -> Result<()> {
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
            match S::reopen(&self.loc, &self.opts) {
                Ok(store) if failed.differs(&store) => {
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
    pub(super) fn with<T>(&self, mut f: impl FnMut(&S) -> Result<T>) -> Result<T> {
        loop {
            let store = self.store();
            match f(&store) {
                Err(e) if store.is_retryable() => self.reconnect(&store, &e)?,
                r => return r,
            }
        }
    }

    /// Runs `run` for `n` items, resuming it on a new session when the session broke: `run`
    /// gets the positions of the items still wanted and hands each result to its sink with
    /// that position's index in them; results already handed to `sink` are not asked again.
    pub(super) fn resume(
        &self,
        n: usize,
        sink: &mut Sink<'_>,
        mut run: impl FnMut(&S, &[usize], &mut Sink<'_>) -> Result<()>,
    ) -> Result<()> {
        let mut remaining: Vec<usize> = (0..n).collect();
        loop {
            let store = self.store();
            let mut delivered = vec![false; remaining.len()];
            let mut sink_failed = false;
            let r = run(&store, &remaining, &mut |k, res| {
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

impl Session<RemoteStore> {
    /// `get_many` that survives dropped connections: objects already handed to `sink` are not
    /// fetched again.
    pub(super) fn get_many(&self, ids: &[ObjectId], sink: &mut Sink<'_>) -> Result<()> {
        self.resume(ids.len(), sink, |store, remaining, sink| {
            let want: Vec<ObjectId> = remaining.iter().map(|&i| ids[i]).collect();
            store.get_many(&want, sink)
        })
    }
}

/// Opens `n` sessions (at least one; the first alone, then the others in parallel), each
/// reopened when it drops. They all must reach the same repository.
///
/// # Errors
///
/// The first session's error, or any other's; [`Error::Remote`] (`Protocol`) when the sessions
/// reach different repositories.
pub(super) fn open_sessions<S: Reopen>(
    loc: &Location,
    opts: &RemoteOptions,
    n: usize,
) -> Result<Vec<Session<S>>> {
    let first = S::reopen(loc, opts)?;
    let more: Vec<Result<S>> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..n.max(1))
            .map(|_| s.spawn(|| S::reopen(loc, opts)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::remote(RemoteErrorKind::Connect, "connect failed"))
                })
            })
            .collect()
    });
    let mut sessions = Vec::with_capacity(n.max(1));
    for st in more {
        let st = st?;
        if first.differs(&st) {
            return Err(Error::remote(
                RemoteErrorKind::Protocol,
                "the connections reached different repositories",
            ));
        }
        sessions.push(Session::new(st, loc, opts));
    }
    sessions.insert(0, Session::new(first, loc, opts));
    Ok(sessions)
}

/// How a remote error failed, if it is one.
fn remote_kind(e: &Error) -> Option<RemoteErrorKind> {
    match e.kind() {
        ErrorKind::Remote(k) => Some(k),
        _ => None,
    }
}

//! What every session over a [`Connection`](super::Connection) shares, whatever it speaks
//! (borg 1.x's RPC in `session`, HTTP in `rest`): why it ended ([`Ended`]), when the server
//! last sent a byte ([`Link`], [`Arrivals`]: the silence limit counts from there), waiting for a
//! reply within that limit ([`Link::wait`]), and the request stream that, when it breaks, says
//! why the server went away ([`Requests`]).

use crate::error::{Error, RemoteErrorKind, Result};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a session ended with when this client closed it.
pub(super) const CLOSED: &str = "connection closed";

/// What a session ended with when the server closed it.
pub(super) const CLOSED_BY_SERVER: &str =
    "Connection closed by remote host. Is borg working on the server?";

/// Why a session is over.
#[derive(Debug, Clone)]
pub(super) struct Ended {
    /// How: [`RemoteErrorKind::Dropped`] (a new session may cure it),
    /// [`RemoteErrorKind::Protocol`] (the server broke the protocol) or another kind the
    /// server's last words show.
    pub(super) kind: RemoteErrorKind,
    /// What happened, in borg's words.
    pub(super) why: String,
    /// This client closed the session (it is being dropped): the server is not dead.
    pub(super) by_us: bool,
}

impl Ended {
    /// The session dropped (or went silent): a new one may cure it.
    pub(super) fn dropped(why: impl Into<String>) -> Ended {
        Ended::new(RemoteErrorKind::Dropped, why)
    }

    /// The server sent something that is not its protocol.
    pub(super) fn protocol(why: impl Into<String>) -> Ended {
        Ended::new(RemoteErrorKind::Protocol, why)
    }

    /// The session ended as `kind` says.
    pub(super) fn new(kind: RemoteErrorKind, why: impl Into<String>) -> Ended {
        Ended {
            kind,
            why: why.into(),
            by_us: false,
        }
    }

    /// This client closed the session.
    pub(super) fn closed() -> Ended {
        Ended {
            by_us: true,
            ..Ended::dropped(CLOSED)
        }
    }

    /// The error requests see.
    pub(super) fn error(&self) -> Error {
        Error::remote(self.kind, self.why.clone())
    }
}

/// The state of one session's connection: whether and why it ended, when the last response
/// byte arrived, how many replies came.
pub(super) struct Link {
    broken: Mutex<Option<Ended>>,
    /// This client is closing the session.
    pub(super) closed: AtomicBool,
    /// When the session started: `last_byte` counts from here.
    epoch: Instant,
    /// Milliseconds after `epoch` at which the last response byte arrived.
    last_byte: AtomicU64,
    /// Replies handed to their requests so far.
    pub(super) replies: AtomicU64,
}

impl Link {
    /// A session starting now.
    pub(super) fn new() -> Link {
        Link {
            broken: Mutex::new(None),
            closed: AtomicBool::new(false),
            epoch: Instant::now(),
            last_byte: AtomicU64::new(0),
            replies: AtomicU64::new(0),
        }
    }

    /// When the last response byte arrived (the session start if none did).
    pub(super) fn last_byte(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last_byte.load(Ordering::Relaxed))
    }

    /// Notes that response bytes arrived.
    fn arrived(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_byte.fetch_max(ms, Ordering::Relaxed);
    }

    /// Why the session is over, if it is.
    pub(super) fn ended(&self) -> Option<Ended> {
        self.broken
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records that the session is over (the first reason is kept); returns the reason kept.
    pub(super) fn end(&self, why: Ended) -> Ended {
        let mut b = self.broken.lock().unwrap_or_else(|e| e.into_inner());
        b.get_or_insert(why).clone()
    }

    /// Whether the session broke in a way a new session may cure (the connection dropped, the
    /// server died or went silent), rather than because the server broke the protocol.
    pub(super) fn is_retryable(&self) -> bool {
        self.ended().is_some_and(|why| why.kind.is_retryable())
    }

    /// The next reply on `rx`, or `None` when the server sent nothing at all for `timeout`
    /// while this request was outstanding (or the replies' sender is gone). One that keeps
    /// sending (a long response over a slow link) is waited for.
    pub(super) fn wait<T>(&self, rx: &Receiver<T>, timeout: Duration) -> Option<T> {
        let asked = Instant::now();
        loop {
            // Silence counts from the later of the last byte received and this wait's start.
            let deadline = self.last_byte().max(asked) + timeout;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            match rx.recv_timeout(left) {
                Ok(r) => return Some(r),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// The reason for a server that did not answer `what` within `timeout`.
    pub(super) fn silent(what: &str, timeout: Duration) -> Ended {
        Ended::dropped(format!(
            "The server did not answer {what}: nothing received for {} s; giving up.",
            timeout.as_secs_f64()
        ))
    }
}

/// The server's responses, noting when bytes arrive (the silence limit measures silence, not
/// how long a response takes).
pub(super) struct Arrivals<R> {
    inner: R,
    link: std::sync::Arc<Link>,
}

impl<R> Arrivals<R> {
    /// `inner`, noting arrivals in `link`.
    pub(super) fn new(inner: R, link: std::sync::Arc<Link>) -> Arrivals<R> {
        Arrivals { inner, link }
    }
}

impl<R: Read> Read for Arrivals<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.link.arrived();
        }
        Ok(n)
    }
}

/// The request stream (the server's stdin); closing it ends the session.
pub(super) struct Requests(Mutex<Option<Box<dyn Write + Send>>>);

impl Requests {
    /// Requests written to `w`.
    pub(super) fn new(w: Box<dyn Write + Send>) -> Requests {
        Requests(Mutex::new(Some(w)))
    }

    /// Runs `before` and writes `frame`, under one lock (so that what `before` records is in
    /// the order of the requests). When the server went away, `fail` is told why and the error
    /// is returned: its stdout usually says why (garbage, EOF), so the reader thread gets a
    /// moment to record that instead of a bare "broken pipe".
    pub(super) fn send(
        &self,
        link: &Link,
        frame: &[u8],
        before: impl FnOnce() -> Result<()>,
        fail: impl FnOnce(Ended) -> Ended,
    ) -> Result<()> {
        let mut w = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some(w) = w.as_mut() else {
            return Err(Error::remote(RemoteErrorKind::Dropped, CLOSED));
        };
        before()?;
        w.write_all(frame).and_then(|_| w.flush()).map_err(|e| {
            for _ in 0..40 {
                if let Some(why) = link.ended() {
                    return why.error();
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            fail(Ended::dropped(format!("{CLOSED_BY_SERVER} ({e})"))).error()
        })
    }

    /// Closes the stream: the server sees EOF and exits.
    pub(super) fn close(&self) {
        drop(self.0.lock().unwrap_or_else(|e| e.into_inner()).take());
    }
}

//! One `borg serve --rest` session ([`RestSession`]): requests written in order on the
//! server's stdin, each with what its response may hold queued for the reader thread, which
//! reads the responses in the same order (HTTP/1.1 pipelining: several requests may be in
//! flight) and hands each to its request. Waiting is bounded by the server's silence, as in
//! the 1.x session; the server's stderr is relayed, and its last lines explain a server that
//! exits.

use super::super::link::{Arrivals, Ended, Link, Requests, CLOSED_BY_SERVER};
use super::super::log_relay::{self, Tail};
use super::super::reconnect::Reopen;
use super::super::{open_connection, Connection, Finish, RemoteOptions};
use super::http::{self, Expect, HttpError, Response};
use crate::error::{Error, RemoteErrorKind, Result};
use crate::location::Location;
use std::collections::VecDeque;
use std::io::BufReader;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// A response, or why the session ended before it came.
pub(super) type Reply = std::result::Result<Response, Ended>;

/// A request whose response has not been read yet.
struct Waiting {
    seq: u64,
    expect: Expect,
    tx: Sender<Reply>,
}

/// What the reader thread and the requests share.
struct Shared {
    link: Arc<Link>,
    /// The requests sent and not answered yet, in order, and the next sequence number.
    queue: Mutex<(VecDeque<Waiting>, u64)>,
    /// Signalled when a request is queued or the session ends.
    ready: Condvar,
}

impl Shared {
    /// Ends the session (the first reason is kept) and fails every outstanding request.
    fn fail_all(&self, why: Ended) -> Ended {
        let why = self.link.end(why);
        let waiting: Vec<Waiting> = {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            q.0.drain(..).collect()
        };
        for w in waiting {
            let _ = w.tx.send(Err(why.clone()));
        }
        self.ready.notify_all();
        why
    }

    /// The oldest request without a response, once there is one; `None` when the session is
    /// over.
    fn next(&self) -> Option<(u64, Expect)> {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if self.link.closed.load(Ordering::SeqCst) || self.link.ended().is_some() {
                return None;
            }
            if let Some(w) = q.0.front() {
                return Some((w.seq, w.expect));
            }
            q = self.ready.wait(q).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Hands `resp` to the request `seq` (unless the session was failed meanwhile).
    fn answer(&self, seq: u64, resp: Response) {
        let w = {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            match q.0.front() {
                Some(w) if w.seq == seq => q.0.pop_front(),
                _ => None,
            }
        };
        if let Some(w) = w {
            self.link.replies.fetch_add(1, Ordering::Relaxed);
            let _ = w.tx.send(Ok(resp));
        }
    }
}

/// Why the responses stopped, with the server's last words (a server that exits usually says
/// why on stderr: no such borg, a borg 1.x that has no `serve --rest`, a path it does not
/// allow).
fn ended_by(e: HttpError, tail: &Tail) -> Ended {
    let closed = match e {
        HttpError::Eof(false) => CLOSED_BY_SERVER.to_string(),
        HttpError::Eof(true) => {
            "Connection closed by remote host in the middle of a response. Is borg working on \
             the server?"
                .to_string()
        }
        HttpError::Io(e) => format!("{CLOSED_BY_SERVER} ({e})"),
        HttpError::Malformed(m) => {
            return Ended::protocol(format!(
                "The server's answer is not borg serve --rest's HTTP: {m}"
            ))
        }
        HttpError::NoMemory(n) => {
            return Ended::protocol(format!(
                "Not enough memory for a response of {n} bytes from the server"
            ))
        }
    };
    let words = tail.last_words(Duration::from_secs(2));
    if words.is_empty() {
        return Ended::dropped(closed);
    }
    let said = words.join(" / ");
    if said.contains("--rest") && (said.contains("ambiguous option") || said.contains("unrecogn")) {
        return Ended::protocol(format!(
            "The remote borg has no `borg serve --rest` (borg 1.x?): a borg 2 repository is read \
             through borg 2.0.0b25 on the server (BORG_REMOTE_PATH / --remote-path names it). \
             The server said: {said}"
        ));
    }
    let kind = if said.contains("Repository path not allowed") {
        RemoteErrorKind::Server
    } else {
        RemoteErrorKind::Dropped
    };
    Ended::new(kind, format!("{closed} The server said: {said}"))
}

/// A session with `borg serve --rest`.
pub(super) struct RestSession {
    requests: Requests,
    shared: Arc<Shared>,
    timeout: Duration,
    /// The repository, for messages.
    pub(super) location: String,
    /// Replies received by the end of `open`.
    opened_replies: u64,
    finish: Mutex<Option<Finish>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl RestSession {
    /// Starts `borg serve --rest` for `loc` (see [`super::command_words`]) and checks that it
    /// serves the repository (one `HEAD /`).
    ///
    /// # Errors
    ///
    /// As [`open_connection`]; then as [`RestSession::start`]'s first request: `Dropped` when the
    /// server goes away or stays silent, `Protocol` when it does not speak `borg serve --rest`,
    /// `Server` for its refusals; [`Error::RepositoryDoesNotExist`] when there is no
    /// repository at the path.
    pub(super) fn open(loc: &Location, opts: &RemoteOptions) -> Result<RestSession> {
        let conn = open_connection(loc, opts, &super::command_words(loc, opts))?;
        let mut s = RestSession::start(conn, &loc.canonical(), opts);
        super::ops::probe(&s)?;
        s.opened_replies = s.shared.link.replies.load(Ordering::Relaxed);
        Ok(s)
    }

    /// Starts a session over `conn` (sending nothing yet).
    pub(super) fn start(conn: Connection, location: &str, opts: &RemoteOptions) -> RestSession {
        let link = Arc::new(Link::new());
        let shared = Arc::new(Shared {
            link: link.clone(),
            queue: Mutex::new((VecDeque::new(), 0)),
            ready: Condvar::new(),
        });
        let mut threads = Vec::new();
        let tail = match conn.log {
            Some(log) => {
                let tail = Tail::new();
                threads.push(log_relay::spawn(log, tail.clone()));
                tail
            }
            None => Tail::none(),
        };
        let sh = shared.clone();
        let mut responses = BufReader::with_capacity(1 << 20, Arrivals::new(conn.responses, link));
        threads.push(std::thread::spawn(move || {
            while let Some((seq, expect)) = sh.next() {
                match http::read_response(&mut responses, expect) {
                    Ok(resp) => sh.answer(seq, resp),
                    Err(e) => {
                        let why = if sh.link.closed.load(Ordering::SeqCst) {
                            Ended::closed()
                        } else {
                            ended_by(e, &tail)
                        };
                        sh.fail_all(why);
                        return;
                    }
                }
            }
        }));
        RestSession {
            requests: Requests::new(conn.requests),
            shared,
            timeout: opts.timeout,
            location: location.to_string(),
            opened_replies: 0,
            finish: Mutex::new(Some(conn.finish)),
            threads: Mutex::new(threads),
        }
    }

    /// Sends `request`, whose response may hold what `expect` says; the response comes on the
    /// receiver returned. Requests are answered in the order they are sent.
    pub(super) fn send(&self, request: &[u8], expect: Expect) -> Result<Receiver<Reply>> {
        let (tx, rx) = mpsc::channel();
        let sh = &self.shared;
        self.requests.send(
            &sh.link,
            request,
            || {
                if let Some(why) = sh.link.ended() {
                    return Err(why.error());
                }
                let mut q = sh.queue.lock().unwrap_or_else(|e| e.into_inner());
                let seq = q.1;
                q.1 += 1;
                q.0.push_back(Waiting { seq, expect, tx });
                sh.ready.notify_all();
                Ok(())
            },
            |why| sh.fail_all(why),
        )?;
        Ok(rx)
    }

    /// The response on `rx` (to the request `what`). A server that sends nothing at all for the
    /// timeout while a request is outstanding is declared dead; one that keeps sending (a long
    /// response over a slow link) is waited for.
    pub(super) fn wait(&self, rx: &Receiver<Reply>, what: &str) -> Result<Response> {
        match self.shared.link.wait(rx, self.timeout) {
            Some(Ok(r)) => Ok(r),
            Some(Err(why)) => Err(why.error()),
            // (the first reason recorded wins: the reader may have seen the end first)
            None => Err(self
                .shared
                .fail_all(Link::silent(what, self.timeout))
                .error()),
        }
    }

    /// Sends `request` and waits for its response.
    pub(super) fn call(&self, request: &[u8], expect: Expect, what: &str) -> Result<Response> {
        let rx = self.send(request, expect)?;
        self.wait(&rx, what)
    }

    /// Ends the session because the server broke the protocol (`what`): no second chance.
    pub(super) fn violation(&self, what: String) -> Error {
        self.shared.fail_all(Ended::protocol(what)).error()
    }
}

impl Reopen for RestSession {
    fn reopen(loc: &Location, opts: &RemoteOptions) -> Result<Self> {
        RestSession::open(loc, opts)
    }

    fn answered(&self) -> bool {
        self.shared.link.replies.load(Ordering::Relaxed) > self.opened_replies
    }

    fn is_retryable(&self) -> bool {
        self.shared.link.is_retryable()
    }

    fn differs(&self, _other: &Self) -> bool {
        // (the same path on the same host: a REST session has no repository id to compare)
        false
    }
}

impl Drop for RestSession {
    fn drop(&mut self) {
        // Closing stdin ends the session; the server exits. (`closed` is set under the queue's
        // lock, so the reader thread cannot miss the wake-up between its check and its wait.)
        {
            let _q = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.link.closed.store(true, Ordering::SeqCst);
        }
        self.shared.ready.notify_all();
        self.requests.close();
        // A server that failed (rather than one this client closed) is stopped at once.
        let dead = self.shared.link.ended().is_some_and(|why| !why.by_us);
        if let Some(f) = self.finish.lock().unwrap_or_else(|e| e.into_inner()).take() {
            f(dead);
        }
        for t in self
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = t.join();
        }
    }
}

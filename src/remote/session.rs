//! One `borg serve` session ([`RemoteStore`]): a reader thread that hands each response to the
//! request waiting for its msgid, sending and waiting with a limit on the server's silence, and
//! `get_many` keeping many `get` requests in flight (the 1.x servers have no `get_many`), bounded
//! by count and by bytes. Closing the request stream ends the session, as borg's client does.

use super::framing::{read_frame, FrameError};
use super::link::{Arrivals, Ended, Link, Requests, CLOSED_BY_SERVER};
use super::log_relay::{self, is_borg2_refusal, Tail};
use super::rpc::{
    bytes_result, classify, map_get, negotiate_request, protocol_error, request, server_error,
    value_bytes, Arg, PROTOCOL_VIOLATION,
};
use super::{Connection, Finish, RemoteOptions, BORG2_SERVER};
use crate::error::{Error, RemoteErrorKind, Result};
use crate::id::ObjectId;
use crate::location::Location;
use crate::store::Store;
use rmpv::Value;
use std::collections::HashMap;
use std::io::BufReader;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Requests kept in flight by `get_many`.
const MAX_INFLIGHT: usize = 256;
/// Response bytes budget for `get_many` (objects are ≤ 20 MiB each).
const INFLIGHT_BYTES: u64 = 64 << 20;

/// Why a request has no result.
enum RpcErr {
    /// The server raised an exception (its error map).
    Server(Vec<(Value, Value)>),
    /// The session is over.
    Broken(Ended),
}

/// A reply: its msgid, and the result or why there is none.
type Reply = (u64, std::result::Result<Value, RpcErr>);

/// What the reader thread and the requests share.
struct Shared {
    waiters: Mutex<HashMap<u64, Sender<Reply>>>,
    link: Arc<Link>,
}

impl Shared {
    /// Ends the session (the first reason is kept) and fails every outstanding request.
    fn fail_all(&self, why: Ended) -> Ended {
        let why = self.link.end(why);
        let waiters: Vec<(u64, Sender<Reply>)> = self
            .waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        for (id, tx) in waiters {
            let _ = tx.send((id, Err(RpcErr::Broken(why.clone()))));
        }
        why
    }
}

/// Why the server's stdout ended before the session did: a borg 2 server refusing borg 1.x's
/// RPC says so on stderr (and then `is_borg2_server` recognises the error), anything else
/// is a dropped connection.
fn end_of_responses(tail: &Tail) -> Ended {
    let words = tail.last_words(Duration::from_secs(2));
    match words.iter().find(|l| is_borg2_refusal(l)) {
        Some(line) => Ended::protocol(format!("{BORG2_SERVER} (it said: {line})")),
        None => Ended::dropped(CLOSED_BY_SERVER),
    }
}

/// A repository behind `borg serve`.
pub struct RemoteStore {
    location: String,
    writer: Requests,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    repo_id: ObjectId,
    timeout: Duration,
    /// Replies received by the end of `open` (negotiate, open).
    opened_replies: u64,
    finish: Mutex<Option<Finish>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl RemoteStore {
    /// Starts a session over `conn` and opens the repository `loc` read-only (taking no lock).
    ///
    /// # Errors
    ///
    /// [`Error::Remote`]: `Dropped` when the server goes away or stays silent for
    /// [`RemoteOptions::timeout`], `Protocol` when it sends what is not borg's protocol or runs
    /// borg 1.0, `Server` for its own refusals (a path outside `--restrict-to-repository`);
    /// [`Error::RepositoryDoesNotExist`], [`Error::InvalidRepository`] and the other
    /// repository errors the server reports.
    pub fn open(conn: Connection, loc: &Location, opts: &RemoteOptions) -> Result<RemoteStore> {
        let location = loc.canonical();
        let link = Arc::new(Link::new());
        let shared = Arc::new(Shared {
            waiters: Mutex::new(HashMap::new()),
            link: link.clone(),
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
        let mut responses =
            BufReader::with_capacity(1 << 20, Arrivals::new(conn.responses, link.clone()));
        threads.push(std::thread::spawn(move || loop {
            let v = match read_frame(&mut responses) {
                Ok(v) => v,
                Err(e) => {
                    let why = match e {
                        _ if sh.link.closed.load(Ordering::SeqCst) => Ended::closed(),
                        FrameError::Eof => end_of_responses(&tail),
                        FrameError::Garbage(e) => {
                            Ended::protocol(format!("{PROTOCOL_VIOLATION}: {e}"))
                        }
                    };
                    sh.fail_all(why);
                    return;
                }
            };
            let (msgid, result) = classify(&v);
            let Some(id) = msgid else {
                sh.fail_all(Ended::protocol(format!("{PROTOCOL_VIOLATION}.")));
                return;
            };
            let tx = sh
                .waiters
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            if let Some(tx) = tx {
                sh.link.replies.fetch_add(1, Ordering::Relaxed);
                let _ = tx.send((id, result.map_err(RpcErr::Server)));
            }
        }));
        let mut store = RemoteStore {
            location: location.clone(),
            writer: Requests::new(conn.requests),
            shared,
            next_id: AtomicU64::new(1),
            repo_id: [0; 32],
            timeout: opts.timeout,
            opened_replies: 0,
            finish: Mutex::new(Some(conn.finish)),
            threads: Mutex::new(threads),
        };
        store.negotiate()?;
        let path = loc.path.as_bytes();
        let rid = store.call(
            "open",
            &[
                ("path", Arg::Bytes(path)),
                ("create", Arg::Bool(false)),
                // A pure reader takes no lock, as locally: a shared lock would write lock files
                // on the server and make a backup that starts during a long restore fail. With
                // no lock there is nothing to wait for: `lock_wait` is borg's default (None).
                ("lock_wait", Arg::Nil),
                ("lock", Arg::Bool(false)),
                ("exclusive", Arg::Bool(false)),
                ("append_only", Arg::Bool(false)),
                ("make_parent_dirs", Arg::Bool(false)),
            ],
        )?;
        let rid: ObjectId = value_bytes(&rid)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| protocol_error("open did not return a repository id"))?;
        store.repo_id = rid;
        store.opened_replies = store.shared.link.replies.load(Ordering::Relaxed);
        Ok(store)
    }

    /// Whether the server answered anything after the session was opened (a session that
    /// dropped after answering made progress: reconnecting starts the failure count again).
    pub fn answered(&self) -> bool {
        self.shared.link.replies.load(Ordering::Relaxed) > self.opened_replies
    }

    /// `negotiate`: a borg 1.1+ server answers with its version; a 1.0 server with an integer.
    fn negotiate(&self) -> Result<()> {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let out = negotiate_request(id);
        let rx = self.send(id, &out)?;
        let v = self.wait(&rx, "negotiate")?;
        match v {
            Value::Map(m) if map_get(&m, "server_version").is_some() => Ok(()),
            Value::Integer(_) => Err(Error::remote(
                RemoteErrorKind::Protocol,
                "the server runs borg 1.0, which oxiborg does not support (borg serve 1.1 or newer \
                 is needed)",
            )),
            _ => Err(Error::remote(
                RemoteErrorKind::Protocol,
                format!("{PROTOCOL_VIOLATION} (negotiate)."),
            )),
        }
    }

    /// Sends a request frame; its reply comes on the receiver returned.
    fn send(&self, id: u64, frame: &[u8]) -> Result<Receiver<Reply>> {
        let (tx, rx) = mpsc::channel();
        self.register(id, tx)?;
        self.write(frame)?;
        Ok(rx)
    }

    /// Makes `tx` the waiter for `id` (or says why the session is over).
    fn register(&self, id: u64, tx: Sender<Reply>) -> Result<()> {
        if let Some(why) = self.shared.link.ended() {
            return Err(why.error());
        }
        self.shared
            .waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        Ok(())
    }

    /// Writes a request frame (or says why the server is gone).
    fn write(&self, frame: &[u8]) -> Result<()> {
        self.writer.send(
            &self.shared.link,
            frame,
            || Ok(()),
            |why| self.shared.fail_all(why),
        )
    }

    /// Whether the session broke in a way a new session may cure (the connection dropped, the
    /// server died or went silent), rather than because the server broke the protocol: a
    /// server that sends garbage gets no second chance.
    pub fn is_retryable(&self) -> bool {
        self.shared.link.is_retryable()
    }

    /// The next reply on `rx`. A server that sends nothing at all for the timeout while this
    /// request is outstanding is declared dead; one that keeps sending (a long response over a
    /// slow link) is waited for.
    fn recv(&self, rx: &Receiver<Reply>, what: &str) -> Result<Reply> {
        match self.shared.link.wait(rx, self.timeout) {
            Some(r) => Ok(r),
            // (the first reason recorded wins: the reader may have seen the end first)
            None => Err(self
                .shared
                .fail_all(Link::silent(what, self.timeout))
                .error()),
        }
    }

    /// The result of the request answered on `rx`.
    fn wait(&self, rx: &Receiver<Reply>, what: &str) -> Result<Value> {
        self.recv(rx, what)?.1.map_err(|e| self.rpc_error(e))
    }

    /// The error for a request without a result.
    fn rpc_error(&self, e: RpcErr) -> Error {
        match e {
            RpcErr::Server(map) => server_error(&map, &self.location),
            RpcErr::Broken(why) => why.error(),
        }
    }

    /// Calls `method` and waits for its result.
    fn call(&self, method: &str, args: &[(&str, Arg<'_>)]) -> Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let rx = self.send(id, &request(id, method, args))?;
        self.wait(&rx, method)
    }
}

impl Store for RemoteStore {
    fn id(&self) -> ObjectId {
        self.repo_id
    }

    fn list_ids(&self) -> Result<Vec<ObjectId>> {
        const PAGE: u64 = 100_000;
        let mut out: Vec<ObjectId> = Vec::new();
        loop {
            let marker = out.last().copied();
            let v = self.call(
                "list",
                &[
                    ("limit", Arg::Int(PAGE)),
                    (
                        "marker",
                        marker.as_ref().map_or(Arg::Nil, |m| Arg::Bytes(m)),
                    ),
                ],
            )?;
            let Value::Array(ids) = v else {
                return Err(protocol_error("list did not return a list"));
            };
            let n = ids.len();
            let before = out.len();
            for id in ids {
                let b = bytes_result(id, "list")?;
                let id: ObjectId = b
                    .as_slice()
                    .try_into()
                    .map_err(|_| protocol_error(&format!("an id of {} bytes", b.len())))?;
                out.push(id);
            }
            if (n as u64) < PAGE {
                return Ok(out);
            }
            // A full page must move on past its marker, or the server is going round in
            // circles (and would keep this loop, and its memory, growing).
            if out[before..].iter().any(|id| Some(*id) == marker) {
                return Err(protocol_error("list repeated its marker"));
            }
        }
    }

    fn location(&self) -> &str {
        &self.location
    }

    fn load_key(&self) -> Result<Option<String>> {
        let v = self.call("load_key", &[])?;
        let b = bytes_result(v, "load_key")?;
        let s = String::from_utf8_lossy(&b).trim().to_string();
        Ok((!s.is_empty()).then_some(s))
    }

    fn get(&self, id: &ObjectId) -> Result<Vec<u8>> {
        let v = self.call("get", &[("id", Arg::Bytes(id))])?;
        bytes_result(v, "get")
    }

    fn get_many(
        &self,
        ids: &[ObjectId],
        sink: &mut dyn FnMut(usize, Result<Vec<u8>>) -> Result<()>,
    ) -> Result<()> {
        let (tx, rx) = mpsc::channel::<Reply>();
        let mut index: HashMap<u64, usize> = HashMap::new();
        let mut next = 0usize;
        let mut inflight = 0usize;
        let mut done = 0usize;
        let mut received_bytes: u64 = 0;
        let avg = |rb: u64, d: usize| {
            if d == 0 {
                1 << 20
            } else {
                (rb / d as u64).max(1)
            }
        };
        while done < ids.len() {
            // Keep the pipe full, bounded by count and by expected bytes.
            while next < ids.len()
                && inflight < MAX_INFLIGHT
                && (inflight as u64) * avg(received_bytes, done) < INFLIGHT_BYTES
            {
                let msgid = self.next_id.fetch_add(1, Ordering::SeqCst);
                self.register(msgid, tx.clone())?;
                index.insert(msgid, next);
                self.write(&request(msgid, "get", &[("id", Arg::Bytes(&ids[next]))]))?;
                next += 1;
                inflight += 1;
            }
            let (msgid, res) = self.recv(&rx, "get")?;
            let Some(i) = index.remove(&msgid) else {
                continue;
            };
            inflight -= 1;
            done += 1;
            let res = match res {
                Err(RpcErr::Broken(why)) => return Err(why.error()),
                Err(e) => Err(self.rpc_error(e)),
                Ok(v) => bytes_result(v, "get"),
            };
            if let Ok(b) = &res {
                received_bytes += b.len() as u64;
            }
            sink(i, res)?;
        }
        Ok(())
    }
}

impl Drop for RemoteStore {
    fn drop(&mut self) {
        // Closing stdin ends the session; the server closes the repository and exits.
        self.shared.link.closed.store(true, Ordering::SeqCst);
        self.writer.close();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    /// Opens a session whose server sends `responses` and then closes its stdout.
    fn open_over(responses: &'static [u8]) -> Error {
        open_with_log(responses, None)
    }

    /// [`open_over`] with a server that writes `log` on stderr.
    fn open_with_log(responses: &'static [u8], log: Option<&'static [u8]>) -> Error {
        let conn = Connection {
            requests: Box::new(std::io::sink()),
            responses: Box::new(responses),
            log: log.map(|l| Box::new(l) as Box<dyn std::io::Read + Send>),
            finish: Box::new(|_| {}),
        };
        let opts = RemoteOptions {
            timeout: Duration::from_secs(60),
            ..RemoteOptions::default()
        };
        let loc = Location::parse("ssh://host/./repo").unwrap();
        match RemoteStore::open(conn, &loc, &opts) {
            Ok(_) => panic!("opened a session with no server"),
            Err(e) => e,
        }
    }

    #[test]
    fn a_session_ends_with_a_kind_of_failure() {
        // The server goes away: a new session may cure that.
        let e = open_over(b"");
        assert_eq!(e.kind(), ErrorKind::Remote(RemoteErrorKind::Dropped));
        assert_eq!(
            e.to_string(),
            "Connection closed by remote host. Is borg working on the server?"
        );
        // It sends what is not msgpack: no second chance.
        let e = open_over(&[0xc1]);
        assert_eq!(e.kind(), ErrorKind::Remote(RemoteErrorKind::Protocol));
        assert_eq!(
            e.to_string(),
            "Got unexpected RPC data format from server: invalid msgpack marker 0xc1"
        );
        // A frame without a message id.
        let e = open_over(&[0x80]);
        assert_eq!(e.kind(), ErrorKind::Remote(RemoteErrorKind::Protocol));
        assert_eq!(e.to_string(), "Got unexpected RPC data format from server.");
    }

    #[test]
    fn a_borg_2_server_is_recognised_by_its_refusal() {
        let refusal = &b"Borg 2.0.0b25: Got unexpected RPC data format from client.\n"[..];
        let e = open_with_log(b"", Some(refusal));
        assert!(crate::remote::is_borg2_server(&e), "{e}");
        assert_eq!(e.kind(), ErrorKind::Remote(RemoteErrorKind::Protocol));
        assert!(
            e.to_string()
                .contains("it said: Borg 2.0.0b25: Got unexpected"),
            "{e}"
        );
        // a 1.x server that says something else before it goes away is a dropped session
        let e = open_with_log(
            b"",
            Some(&b"Borg 1.4.5: Got unexpected RPC data format from client.\n"[..]),
        );
        assert!(!crate::remote::is_borg2_server(&e), "{e}");
        assert_eq!(e.kind(), ErrorKind::Remote(RemoteErrorKind::Dropped));
        assert!(!crate::remote::is_borg2_server(&open_over(b"")));
    }
}

//! The `borg serve` client: borg 1.x's msgpack RPC over a byte transport.
//!
//! Requests go out as msgpack maps `{"i": msgid, "m": method, "a": {args}}` (after a tuple-form
//! `negotiate`), with every byte string packed as msgpack *str* (borg 1.1/1.2 servers die on
//! *bin*). A reader thread decodes responses and hands each to whoever waits for its msgid; a
//! stderr thread turns the server's log lines into `Remote: …` messages. `get_many` keeps many
//! `get` requests in flight (the 1.x servers have no `get_many`), bounded by count and by bytes.
//! Closing the request stream ends the session, as borg's client does.

pub mod command;
pub mod knownhosts;
pub mod ssh;
pub mod sshconfig;

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::location::Location;
use crate::origin::Origin;
use crate::store::Store;
use rmpv::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `borg serve` sessions opened per repository unless `--connections` says otherwise: half the
/// cores, 1 to 4. Measured on 2 cores with the server on the same machine, a second session only
/// competes with decoding for the CPU (250 MB restore: 1 session 2.4 s, 2 sessions 2.6 s); with the
/// server elsewhere, each session adds a server process.
pub fn default_connections() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / 2).clamp(1, 4)
}

/// The client version sent in `negotiate`.
const CLIENT_VERSION: [i64; 4] = [1, 2, 4, -1];
/// Requests kept in flight by `get_many`.
const MAX_INFLIGHT: usize = 256;
/// Response bytes budget for `get_many` (objects are ≤ 20 MiB each).
const INFLIGHT_BYTES: u64 = 64 << 20;
/// Largest response frame accepted.
const MAX_FRAME: usize = 64 << 20;

/// Ends a session: the argument says the server was declared dead (stop it at once).
pub type Finish = Box<dyn FnOnce(bool) + Send>;

/// A connected byte stream to a `borg serve` process.
pub struct Connection {
    /// Requests (the server's stdin).
    pub requests: Box<dyn Write + Send>,
    /// Responses (the server's stdout).
    pub responses: Box<dyn Read + Send>,
    /// Log lines (the server's stderr), if separate.
    pub log: Option<Box<dyn Read + Send>>,
    /// Called once the session is over: waits for the server to exit (or, with `true`, when the
    /// server was declared dead, stops it at once).
    pub finish: Finish,
}

/// How to reach `borg serve`.
#[derive(Debug, Clone, Default)]
pub struct RemoteOptions {
    /// `BORG_RSH` / `--rsh`: spawn this command (shell-split) instead of native SSH. When it is
    /// `ssh …` and no `ssh` is installed, the built-in client is used with what it can take from
    /// it (see [`command::builtin_options`]).
    pub rsh: Option<String>,
    /// Where `rsh` came from (named in messages about it).
    pub rsh_origin: Origin,
    /// `BORG_REMOTE_PATH` / `--remote-path` (default `borg`).
    pub remote_path: Option<String>,
    /// Take no lock on the server (`--bypass-lock`).
    pub bypass_lock: bool,
    /// Seconds the server waits for a lock.
    pub lock_wait: f64,
    /// How long the server may stay silent — no byte received while a request is outstanding —
    /// before it is declared dead (`OXIBORG_REMOTE_TIMEOUT`, default 120 s). A slow link that
    /// keeps delivering is never cut, however long a response takes.
    pub timeout: Duration,
    /// Native SSH: known_hosts file override (the file new host keys are recorded in).
    pub known_hosts: Option<std::path::PathBuf>,
    /// Native SSH: the identity (private key) file to try first (`--ssh-identity`,
    /// `OXIBORG_SSH_IDENTITY`).
    pub identity: Option<std::path::PathBuf>,
    /// Where `identity` came from (named in messages about it).
    pub identity_origin: Origin,
    /// Native SSH: the port when the location names none (before `~/.ssh/config`'s `Port`).
    pub port: Option<u16>,
    /// Native SSH: read this file instead of `~/.ssh/config` (`ssh -F`).
    pub ssh_config: Option<std::path::PathBuf>,
    /// Native SSH: `StrictHostKeyChecking`, over `~/.ssh/config`'s (default: ask).
    pub strict_host_key_checking: Option<sshconfig::StrictHostKeyChecking>,
    /// Native SSH: asks whether to trust a server whose host key is not known (OpenSSH's
    /// first-contact question); `None` refuses such servers unless `StrictHostKeyChecking`
    /// accepts new keys.
    pub host_key_prompt: Option<ssh::HostKeyPrompt>,
    /// `borg serve` sessions to open (`--connections`); 0 means the default.
    pub connections: usize,
    /// How many failed reconnections in a row — with nothing answered in between — a session
    /// makes before its operation gives up (`OXIBORG_REMOTE_RETRIES`, default 3). A session
    /// that answered something before it dropped starts the count again.
    pub retries: u32,
}

impl RemoteOptions {
    /// Options from `BORG_RSH`, `BORG_REMOTE_PATH` and oxiborg's SSH variables.
    pub fn from_env() -> RemoteOptions {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        RemoteOptions {
            rsh: var("BORG_RSH"),
            rsh_origin: Origin::Env("BORG_RSH"),
            remote_path: var("BORG_REMOTE_PATH"),
            bypass_lock: false,
            lock_wait: 1.0,
            timeout: Duration::from_secs(
                var("OXIBORG_REMOTE_TIMEOUT")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(120),
            ),
            known_hosts: var("OXIBORG_SSH_KNOWN_HOSTS").map(Into::into),
            identity: var("OXIBORG_SSH_IDENTITY").map(Into::into),
            identity_origin: Origin::Env("OXIBORG_SSH_IDENTITY"),
            port: None,
            ssh_config: None,
            strict_host_key_checking: None,
            host_key_prompt: None,
            connections: var("OXIBORG_CONNECTIONS")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            retries: var("OXIBORG_REMOTE_RETRIES")
                .and_then(|v| v.parse().ok())
                .unwrap_or(3),
        }
    }

    /// The remote command words: `<remote path> serve [--info|--debug]`.
    pub fn serve_command(&self) -> Vec<String> {
        let mut v = vec![self.remote_path.clone().unwrap_or_else(|| "borg".into())];
        v.push("serve".into());
        v
    }
}

/// Why a request has no result.
enum RpcErr {
    /// The server raised an exception (its error map).
    Server(Vec<(Value, Value)>),
    /// The connection is gone.
    Broken(String),
}

type Reply = (u64, std::result::Result<Value, RpcErr>);

struct Shared {
    waiters: Mutex<HashMap<u64, Sender<Reply>>>,
    broken: Mutex<Option<String>>,
    closed: AtomicBool,
    /// When the session started: `last_byte` counts from here.
    epoch: Instant,
    /// Milliseconds after `epoch` at which the last response byte arrived.
    last_byte: AtomicU64,
    /// Replies handed to their waiters so far.
    replies: AtomicU64,
}

impl Shared {
    /// When the last response byte arrived (the session start if none did).
    fn last_byte(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last_byte.load(Ordering::Relaxed))
    }

    fn fail_all(&self, why: String) {
        let mut b = self.broken.lock().unwrap_or_else(|e| e.into_inner());
        if b.is_none() {
            *b = Some(why.clone());
        }
        let waiters: Vec<(u64, Sender<Reply>)> = self
            .waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        for (id, tx) in waiters {
            let _ = tx.send((id, Err(RpcErr::Broken(why.clone()))));
        }
    }
}

/// The server's responses, noting when bytes arrive (the timeout measures silence, not how long
/// a response takes).
struct Arrivals<R> {
    inner: R,
    shared: Arc<Shared>,
}

impl<R: Read> Read for Arrivals<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            let ms = self.shared.epoch.elapsed().as_millis() as u64;
            self.shared.last_byte.fetch_max(ms, Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// A repository behind `borg serve`.
pub struct RemoteStore {
    location: String,
    writer: Mutex<Option<Box<dyn Write + Send>>>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    repo_id: ObjectId,
    timeout: Duration,
    /// Replies received by the end of `open` (negotiate, open).
    opened_replies: u64,
    finish: Mutex<Option<Finish>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// Packs bytes as msgpack str (never bin).
fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    let _ = rmp::encode::write_str_len(out, b.len() as u32);
    out.extend_from_slice(b);
}

/// A request argument.
enum Arg<'a> {
    Bytes(&'a [u8]),
    Bool(bool),
    Float(f64),
    Int(u64),
    Nil,
}

fn request(msgid: u64, method: &str, args: &[(&str, Arg<'_>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    let _ = rmp::encode::write_map_len(&mut out, 3);
    put_bytes(&mut out, b"i");
    let _ = rmp::encode::write_uint(&mut out, msgid);
    put_bytes(&mut out, b"m");
    put_bytes(&mut out, method.as_bytes());
    put_bytes(&mut out, b"a");
    let _ = rmp::encode::write_map_len(&mut out, args.len() as u32);
    for (k, v) in args {
        put_bytes(&mut out, k.as_bytes());
        match v {
            Arg::Bytes(b) => put_bytes(&mut out, b),
            Arg::Bool(b) => {
                let _ = rmp::encode::write_bool(&mut out, *b);
            }
            Arg::Float(f) => {
                let _ = rmp::encode::write_f64(&mut out, *f);
            }
            Arg::Int(n) => {
                let _ = rmp::encode::write_uint(&mut out, *n);
            }
            Arg::Nil => {
                let _ = rmp::encode::write_nil(&mut out);
            }
        }
    }
    out
}

fn map_get<'a>(m: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    m.iter()
        .find(|(k, _)| value_bytes(k) == Some(key.as_bytes()))
        .map(|(_, v)| v)
}

fn value_bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::String(s) => Some(s.as_bytes()),
        Value::Binary(b) => Some(b),
        _ => None,
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Array(a) => a.iter().map(value_text).collect::<Vec<_>>().join("\n"),
        v => value_bytes(v)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_else(|| v.to_string()),
    }
}

/// Turns a server exception into the client's error, as borg shows it.
fn server_error(m: &[(Value, Value)], location: &str) -> Error {
    let class = map_get(m, "exception_class")
        .map(value_text)
        .unwrap_or_default();
    let args: Vec<String> = match map_get(m, "exception_args") {
        Some(Value::Array(a)) => a.iter().map(value_text).collect(),
        _ => Vec::new(),
    };
    let short = map_get(m, "exception_short")
        .map(value_text)
        .unwrap_or_default();
    let arg0 = args.first().cloned().unwrap_or_default();
    match class.as_str() {
        "DoesNotExist" => Error::RepositoryDoesNotExist(location.to_string()),
        "InvalidRepository" => Error::InvalidRepository {
            location: location.to_string(),
            reason: "remote".into(),
        },
        "PathNotAllowed" => Error::Other(format!("Repository path not allowed: {arg0}")),
        "LockTimeout" => Error::LockTimeout(arg0),
        "ObjectNotFound" => Error::ObjectNotFound {
            id: arg0,
            location: location.to_string(),
        },
        "IntegrityError" => Error::Integrity(format!("{arg0} (reported by the server)")),
        _ if !short.is_empty() => Error::Other(format!("Remote: {}", short.trim_end())),
        _ => Error::Other(format!("Remote exception {class}: {}", args.join(", "))),
    }
}

/// Prints one server log line the way borg's client shows it.
fn show_log_line(line: &str) {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.is_empty() {
        return;
    }
    if line.starts_with('{') {
        if let Ok(serde_json::Value::Object(o)) = serde_json::from_str::<serde_json::Value>(line) {
            let typ = o.get("type").and_then(|v| v.as_str()).unwrap_or("");
            let msg = o.get("message").and_then(|v| v.as_str()).unwrap_or("");
            match typ {
                "log_message" => {
                    let level = o.get("levelname").and_then(|v| v.as_str()).unwrap_or("");
                    log::log!(target: "borg.remote", remote_level(level), "Remote: {msg}");
                }
                "progress_percent" | "progress_message" => {}
                _ => log::warn!(target: "borg.remote", "{}", format!("Remote: {line}")),
            }
            return;
        }
    }
    if let Some(rest) = line.strip_prefix("$LOG ") {
        let msg = rest.split_once("Remote: ").map(|(_, m)| m).unwrap_or(rest);
        let level = rest.split(' ').next().unwrap_or("");
        log::log!(target: "borg.remote", remote_level(level), "Remote: {msg}");
        return;
    }
    log::warn!(target: "borg.remote", "{}", format!("Remote: {line}"));
}

/// The level of a server log line by its level name (unknown names count as warnings;
/// CRITICAL is an error).
fn remote_level(name: &str) -> log::Level {
    use log::Level;
    match name {
        "DEBUG" => Level::Debug,
        "INFO" => Level::Info,
        "ERROR" | "CRITICAL" => Level::Error,
        _ => Level::Warn,
    }
}

/// A response frame's message id and its result (`Err`: the server's exception map).
type Classified = (Option<u64>, std::result::Result<Value, Vec<(Value, Value)>>);

/// Splits a response frame into its message id and result: the dict form of borg 1.1+, or
/// the legacy tuple `[1, msgid, error, result]`.
fn classify(v: &Value) -> Classified {
    match v {
        Value::Map(m) => {
            let id = map_get(m, "i").and_then(Value::as_u64);
            let r = if let Some(r) = map_get(m, "r") {
                Ok(r.clone())
            } else if map_get(m, "exception_class").is_some() {
                Err(m.clone())
            } else {
                Ok(Value::Nil)
            };
            (id, r)
        }
        Value::Array(a) if a.len() == 4 => {
            let id = a[1].as_u64();
            let r = if a[2].is_nil() {
                Ok(a[3].clone())
            } else {
                Err(vec![(Value::from("exception_class"), a[2].clone())])
            };
            (id, r)
        }
        _ => (None, Ok(Value::Nil)),
    }
}

/// Reads response frames from `data` and interprets each as the client would (message id,
/// result or server exception); for the fuzz target.
pub(crate) fn fuzz_frames(mut data: &[u8]) {
    while let Ok(v) = read_frame(&mut data) {
        if let (_, Err(m)) = classify(&v) {
            let _ = server_error(&m, "fuzz").to_string();
        }
    }
}

/// How every complaint about what a server sent begins (borg's wording).
const PROTOCOL_VIOLATION: &str = "Got unexpected RPC data format from server";

/// Why no frame could be read.
enum FrameError {
    /// The stream ended (possibly in the middle of a frame).
    Eof,
    /// Bytes that are not a msgpack frame.
    Garbage(String),
}

/// Reads one msgpack frame, checking every declared length against what is left of
/// [`MAX_FRAME`] *before* reading the bytes, so a lying header is refused at once.
fn read_frame(r: &mut impl Read) -> std::result::Result<Value, FrameError> {
    let mut buf = Vec::new();
    copy_value(r, &mut buf, 0)?;
    rmpv::decode::read_value(&mut buf.as_slice()).map_err(|e| FrameError::Garbage(e.to_string()))
}

fn take_exact(
    r: &mut impl Read,
    buf: &mut Vec<u8>,
    n: usize,
) -> std::result::Result<(), FrameError> {
    if buf.len() + n > MAX_FRAME {
        return Err(FrameError::Garbage(format!(
            "a frame larger than {} MiB was announced",
            MAX_FRAME >> 20
        )));
    }
    let start = buf.len();
    buf.resize(start + n, 0);
    r.read_exact(&mut buf[start..]).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => FrameError::Eof,
        _ => FrameError::Garbage(e.to_string()),
    })
}

fn be_len(b: &[u8]) -> usize {
    b.iter().fold(0usize, |n, x| (n << 8) | usize::from(*x))
}

/// Copies one msgpack value from `r` to `buf`, validating lengths and nesting.
fn copy_value(
    r: &mut impl Read,
    buf: &mut Vec<u8>,
    depth: u32,
) -> std::result::Result<(), FrameError> {
    if depth > 64 {
        return Err(FrameError::Garbage("msgpack nested too deeply".into()));
    }
    take_exact(r, buf, 1)?;
    let m = buf[buf.len() - 1];
    // (bytes of length field, payload bytes, child values)
    let (len_bytes, fixed, children): (usize, usize, usize) = match m {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0, 0),
        0x80..=0x8f => (0, 0, 2 * usize::from(m & 0x0f)),
        0x90..=0x9f => (0, 0, usize::from(m & 0x0f)),
        0xa0..=0xbf => (0, usize::from(m & 0x1f), 0),
        0xc4 | 0xd9 => (1, 0, 0),
        0xc5 | 0xda => (2, 0, 0),
        0xc6 | 0xdb => (4, 0, 0),
        0xc7 => (1, 1, 0),
        0xc8 => (2, 1, 0),
        0xc9 => (4, 1, 0),
        0xca => (0, 4, 0),
        0xcb => (0, 8, 0),
        0xcc | 0xd0 => (0, 1, 0),
        0xcd | 0xd1 => (0, 2, 0),
        0xce | 0xd2 => (0, 4, 0),
        0xcf | 0xd3 => (0, 8, 0),
        0xd4 => (0, 2, 0),
        0xd5 => (0, 3, 0),
        0xd6 => (0, 5, 0),
        0xd7 => (0, 9, 0),
        0xd8 => (0, 17, 0),
        0xdc => (2, 0, usize::MAX),
        0xdd => (4, 0, usize::MAX),
        0xde => (2, 0, usize::MAX - 1),
        0xdf => (4, 0, usize::MAX - 1),
        0xc1 => return Err(FrameError::Garbage("invalid msgpack marker 0xc1".into())),
    };
    let (mut payload, mut children) = (fixed, children);
    if len_bytes > 0 {
        take_exact(r, buf, len_bytes)?;
        let n = be_len(&buf[buf.len() - len_bytes..]);
        match children {
            usize::MAX => children = n,
            c if c == usize::MAX - 1 => children = n.saturating_mul(2),
            _ => payload += n,
        }
    }
    // Every child takes at least one byte: refuse counts the frame cannot hold.
    if buf.len().saturating_add(payload).saturating_add(children) > MAX_FRAME {
        return Err(FrameError::Garbage(format!(
            "a frame larger than {} MiB was announced",
            MAX_FRAME >> 20
        )));
    }
    take_exact(r, buf, payload)?;
    for _ in 0..children {
        copy_value(r, buf, depth + 1)?;
    }
    Ok(())
}

impl RemoteStore {
    /// Starts a session over `conn` and opens the repository `loc` read-only.
    pub fn open(conn: Connection, loc: &Location, opts: &RemoteOptions) -> Result<RemoteStore> {
        let location = loc.canonical();
        let shared = Arc::new(Shared {
            waiters: Mutex::new(HashMap::new()),
            broken: Mutex::new(None),
            closed: AtomicBool::new(false),
            epoch: Instant::now(),
            last_byte: AtomicU64::new(0),
            replies: AtomicU64::new(0),
        });
        let mut threads = Vec::new();
        if let Some(log) = conn.log {
            threads.push(std::thread::spawn(move || {
                let mut r = BufReader::new(log);
                let mut line = Vec::new();
                while matches!(r.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                    show_log_line(&String::from_utf8_lossy(&line));
                    line.clear();
                }
            }));
        }
        let sh = shared.clone();
        let mut responses = BufReader::with_capacity(
            1 << 20,
            Arrivals {
                inner: conn.responses,
                shared: shared.clone(),
            },
        );
        threads.push(std::thread::spawn(move || loop {
            let v = match read_frame(&mut responses) {
                Ok(v) => v,
                Err(e) => {
                    let why = match e {
                        _ if sh.closed.load(Ordering::SeqCst) => "connection closed".to_string(),
                        FrameError::Eof => {
                            "Connection closed by remote host. Is borg working on the server?"
                                .to_string()
                        }
                        FrameError::Garbage(e) => {
                            format!("Got unexpected RPC data format from server: {e}")
                        }
                    };
                    sh.fail_all(why);
                    return;
                }
            };
            let (msgid, result) = classify(&v);
            let Some(id) = msgid else {
                sh.fail_all("Got unexpected RPC data format from server.".into());
                return;
            };
            let tx = sh
                .waiters
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            if let Some(tx) = tx {
                sh.replies.fetch_add(1, Ordering::Relaxed);
                let _ = tx.send((id, result.map_err(RpcErr::Server)));
            }
        }));
        let mut store = RemoteStore {
            location: location.clone(),
            writer: Mutex::new(Some(conn.requests)),
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
                ("lock_wait", Arg::Float(opts.lock_wait)),
                // A pure reader takes no lock, as locally: a shared lock would write lock files
                // on the server and make a backup that starts during a long restore fail.
                ("lock", Arg::Bool(false)),
                ("exclusive", Arg::Bool(false)),
                ("append_only", Arg::Bool(false)),
                ("make_parent_dirs", Arg::Bool(false)),
            ],
        )?;
        let rid: ObjectId = value_bytes(&rid)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| Error::Other("Got unexpected RPC data format from server: open did not return a repository id".into()))?;
        store.repo_id = rid;
        store.opened_replies = store.shared.replies.load(Ordering::Relaxed);
        Ok(store)
    }

    /// Whether the server answered anything after the session was opened (a session that
    /// dropped after answering made progress: reconnecting starts the failure count again).
    pub fn answered(&self) -> bool {
        self.shared.replies.load(Ordering::Relaxed) > self.opened_replies
    }

    fn negotiate(&self) -> Result<()> {
        // Tuple form, alone, as borg does; the answer says which format the server speaks.
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let mut out = Vec::new();
        let _ = rmp::encode::write_array_len(&mut out, 4);
        let _ = rmp::encode::write_uint(&mut out, 1);
        let _ = rmp::encode::write_uint(&mut out, id);
        put_bytes(&mut out, b"negotiate");
        let _ = rmp::encode::write_array_len(&mut out, 1);
        let _ = rmp::encode::write_map_len(&mut out, 1);
        put_bytes(&mut out, b"client_version");
        let _ = rmp::encode::write_array_len(&mut out, 4);
        for v in CLIENT_VERSION {
            let _ = rmp::encode::write_sint(&mut out, v);
        }
        let rx = self.send(id, &out)?;
        let v = self.wait(&rx, "negotiate")?;
        match v {
            Value::Map(m) if map_get(&m, "server_version").is_some() => Ok(()),
            Value::Integer(_) => Err(Error::Other(
                "the server runs borg 1.0, which oxiborg does not support (borg serve 1.1 or newer is needed)".into(),
            )),
            _ => Err(Error::Other("Got unexpected RPC data format from server (negotiate).".into())),
        }
    }

    fn send(&self, id: u64, frame: &[u8]) -> Result<Receiver<Reply>> {
        let (tx, rx) = mpsc::channel();
        self.register(id, tx)?;
        self.write(frame)?;
        Ok(rx)
    }

    fn register(&self, id: u64, tx: Sender<Reply>) -> Result<()> {
        if let Some(why) = self
            .shared
            .broken
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Err(Error::Other(why));
        }
        self.shared
            .waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        Ok(())
    }

    fn write(&self, frame: &[u8]) -> Result<()> {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let Some(w) = w.as_mut() else {
            return Err(Error::Other("connection closed".into()));
        };
        w.write_all(frame).and_then(|_| w.flush()).map_err(|e| {
            // The server went away; its stdout usually says why (garbage, EOF): give the reader
            // thread a moment to report that instead of a bare "broken pipe".
            for _ in 0..40 {
                if let Some(why) = self
                    .shared
                    .broken
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone()
                {
                    return Error::Other(why);
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            let why =
                format!("Connection closed by remote host. Is borg working on the server? ({e})");
            self.shared.fail_all(why.clone());
            Error::Other(why)
        })
    }

    /// Whether the session is over (the connection broke or the server was declared dead).
    pub fn is_broken(&self) -> bool {
        self.shared
            .broken
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Whether the session broke in a way a new session may cure (the connection dropped, the
    /// server died or went silent), rather than because the server broke the protocol: a
    /// server that sends garbage gets no second chance.
    pub fn is_retryable(&self) -> bool {
        self.shared
            .broken
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_deref()
            .is_some_and(|why| !why.starts_with(PROTOCOL_VIOLATION))
    }

    /// The next reply on `rx`. A server that sends nothing at all for the timeout while this
    /// request is outstanding is declared dead; one that keeps sending (a long response over a
    /// slow link) is waited for.
    fn recv(&self, rx: &Receiver<Reply>, what: &str) -> Result<Reply> {
        let asked = Instant::now();
        loop {
            // Silence counts from the later of the last byte received and this wait's start.
            let quiet_since = self.shared.last_byte().max(asked);
            let deadline = quiet_since + self.timeout;
            let now = Instant::now();
            let left = deadline.saturating_duration_since(now);
            if !left.is_zero() {
                match rx.recv_timeout(left) {
                    Ok(r) => return Ok(r),
                    Err(mpsc::RecvTimeoutError::Timeout) => continue,
                    Err(mpsc::RecvTimeoutError::Disconnected) => {}
                }
            }
            self.shared.fail_all(format!(
                "The server did not answer {what}: nothing received for {} s; giving up.",
                self.timeout.as_secs_f64()
            ));
            let why = self
                .shared
                .broken
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            return Err(Error::Other(why.unwrap_or_default()));
        }
    }

    fn wait(&self, rx: &Receiver<Reply>, what: &str) -> Result<Value> {
        self.recv(rx, what)?.1.map_err(|e| self.rpc_error(e))
    }

    fn rpc_error(&self, e: RpcErr) -> Error {
        match e {
            RpcErr::Server(map) => server_error(&map, &self.location),
            RpcErr::Broken(why) => Error::Other(why),
        }
    }

    fn call(&self, method: &str, args: &[(&str, Arg<'_>)]) -> Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let rx = self.send(id, &request(id, method, args))?;
        self.wait(&rx, method)
    }

    fn bytes_result(&self, v: Value, what: &str) -> Result<Vec<u8>> {
        match v {
            Value::String(s) => Ok(s.into_bytes()),
            Value::Binary(b) => Ok(b),
            _ => Err(Error::Other(format!(
                "Got unexpected RPC data format from server: {what} did not return bytes"
            ))),
        }
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
                return Err(Error::Other(
                    "Got unexpected RPC data format from server: list did not return a list".into(),
                ));
            };
            let n = ids.len();
            let before = out.len();
            for id in ids {
                let b = self.bytes_result(id, "list")?;
                let id: ObjectId = b.as_slice().try_into().map_err(|_| {
                    Error::Other(format!(
                        "Got unexpected RPC data format from server: an id of {} bytes",
                        b.len()
                    ))
                })?;
                out.push(id);
            }
            if (n as u64) < PAGE {
                return Ok(out);
            }
            // A full page must move on past its marker, or the server is going round in
            // circles (and would keep this loop, and its memory, growing).
            if out[before..].iter().any(|id| Some(*id) == marker) {
                return Err(Error::Other(format!(
                    "{PROTOCOL_VIOLATION}: list repeated its marker"
                )));
            }
        }
    }

    fn location(&self) -> &str {
        &self.location
    }

    fn load_key(&self) -> Result<Option<String>> {
        let v = self.call("load_key", &[])?;
        let b = self.bytes_result(v, "load_key")?;
        let s = String::from_utf8_lossy(&b).trim().to_string();
        Ok((!s.is_empty()).then_some(s))
    }

    fn get(&self, id: &ObjectId) -> Result<Vec<u8>> {
        let v = self.call("get", &[("id", Arg::Bytes(id))])?;
        self.bytes_result(v, "get")
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
                Err(RpcErr::Broken(why)) => return Err(Error::Other(why)),
                Err(e) => Err(self.rpc_error(e)),
                Ok(v) => self.bytes_result(v, "get"),
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
        // Closing stdin ends the session; the server releases its lock and exits.
        self.shared.closed.store(true, Ordering::SeqCst);
        drop(self.writer.lock().unwrap_or_else(|e| e.into_inner()).take());
        let dead = {
            let b = self.shared.broken.lock().unwrap_or_else(|e| e.into_inner());
            b.as_deref().is_some_and(|w| w != "connection closed")
        };
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

/// The runbook's "Permission denied on key" case: an SSH key file that exists but that this
/// user cannot read (it is usually root's, mode 0400) — with what to do about it. `origin` says
/// where the key was named; `builtin`: the built-in client reads it (else OpenSSH, through the
/// `rsh` command). The fix offered is one that works for that origin: a borgmatic
/// configuration's `ssh_command` is overridden by `--rsh`, not by `BORG_RSH`.
pub(crate) fn unreadable_key(
    key: &std::path::Path,
    origin: &Origin,
    builtin: bool,
) -> Option<Error> {
    match std::fs::File::open(key) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            let user = std::env::var("USER")
                .ok()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| rustix::process::getuid().as_raw().to_string());
            let copy = "/tmp/borg-key";
            let then = if builtin {
                format!("then pass --ssh-identity {copy}")
            } else {
                let rsh = format!("\"ssh -i {copy}\"");
                match origin.root() {
                    Origin::Flag(_) => format!("then pass --rsh {rsh}"),
                    Origin::Borgmatic { file, key } => format!(
                        "then pass --rsh {rsh} (the command line overrides {key} of {}), or \
                         change {key} in that file",
                        file.display()
                    ),
                    _ => format!("then export BORG_RSH={rsh}"),
                }
            };
            Some(Error::Other(format!(
                "The SSH key {k} ({origin}) cannot be read by {user}: permission denied. It is usually \
                 root's (mode 0400). Run oxiborg as root (sudo -E), or copy the key to a file you can \
                 read: sudo cp {k} {copy} && sudo chown {user} {copy} && chmod 400 {copy}, {then}.",
                k = key.display()
            )))
        }
        _ => None,
    }
}

/// Connects to the repository at an `ssh://` or `user@host:` location: through `BORG_RSH` /
/// `--rsh` when set (or, when that is `ssh …` and no `ssh` is installed, natively with what it
/// says), else natively with libssh2.
pub fn connect(loc: &Location, opts: &RemoteOptions) -> Result<RemoteStore> {
    let conn = match &opts.rsh {
        Some(rsh) => match command::builtin_options(rsh, opts)? {
            Some(builtin) => ssh::connect(loc, &builtin)?,
            None => command::spawn(rsh, loc, opts)?,
        },
        None => ssh::connect(loc, opts)?,
    };
    RemoteStore::open(conn, loc, opts)
}

/// One `borg serve` session that is reopened when its connection drops: an operation that
/// fails because the session broke is resumed on a new session (with what it still needs).
/// Failures are counted in a row: a session that answered something before it dropped starts
/// the count again, so a flaky link that keeps making progress is never given up on, while one
/// that fails [`RemoteOptions::retries`] times more without progress is. Each attempt waits a
/// little longer than the one before.
struct Session {
    current: Mutex<Arc<RemoteStore>>,
    loc: Location,
    opts: RemoteOptions,
    /// Reconnections made so far (all operations together).
    reconnects: AtomicU64,
    /// Failures in a row without progress (under `current`'s lock).
    failures: AtomicU64,
}

impl Session {
    fn new(store: RemoteStore, loc: &Location, opts: &RemoteOptions) -> Session {
        Session {
            current: Mutex::new(Arc::new(store)),
            loc: loc.clone(),
            opts: opts.clone(),
            reconnects: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

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
                return Err(Error::Other(match last_attempt {
                    None => format!("{why}{gave_up}"),
                    Some(e) => format!("{why}; reconnecting failed: {e}{gave_up}"),
                }));
            }
            log::warn!(target: "borg.remote", "{}", format!(
                    "Remote: connection to {} lost ({}); reconnecting (attempt {failures} of {retries})",
                    self.loc.canonical(),
                    last_attempt.as_ref().map_or_else(
                        || why.to_string(),
                        |e| format!("{why}; reconnecting failed: {e}")
                    ),
                ),
            );
            std::thread::sleep(Duration::from_millis(250u64 << failures.min(6)));
            match connect(&self.loc, &self.opts) {
                Ok(store) if store.id() != failed.id() => {
                    return Err(Error::Other(format!(
                        "{why}; after reconnecting, {} is a different repository",
                        self.loc.canonical()
                    )));
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
    fn with<T>(&self, mut f: impl FnMut(&RemoteStore) -> Result<T>) -> Result<T> {
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
    fn get_many(
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
    /// Opens `n` sessions (at least one). They all must report the same repository id.
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
                        h.join()
                            .unwrap_or_else(|_| Err(Error::Other("connect failed".into())))
                    })
                    .collect()
            });
            for st in more {
                let st = st?;
                if st.id() != repo_id {
                    return Err(Error::Other(
                        "the connections reached different repositories".into(),
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

    /// How many times a dropped session was reopened so far.
    pub fn reconnects(&self) -> u64 {
        self.sessions
            .iter()
            .map(|s| s.reconnects.load(Ordering::Relaxed))
            .sum()
    }

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
                            return Err(Error::Other("cancelled".into()));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_checked_before_reading() {
        let ok = request(7, "get", &[("id", Arg::Bytes(&[1u8; 32]))]);
        let v = read_frame(&mut ok.as_slice()).unwrap_or_else(|_| panic!("valid frame"));
        assert!(matches!(v, Value::Map(_)));
        // str32 announcing 4 GiB: refused without waiting for the bytes.
        let huge = [0xdbu8, 0xff, 0xff, 0xff, 0xf0, b'x'];
        assert!(matches!(
            read_frame(&mut &huge[..]),
            Err(FrameError::Garbage(_))
        ));
        let huge_array = [0xddu8, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert!(matches!(
            read_frame(&mut &huge_array[..]),
            Err(FrameError::Garbage(_))
        ));
        assert!(matches!(
            read_frame(&mut &ok[..ok.len() - 3]),
            Err(FrameError::Eof)
        ));
        assert!(matches!(
            read_frame(&mut &[0xc1u8][..]),
            Err(FrameError::Garbage(_))
        ));
        let mut deep = vec![0x91u8; 100];
        deep.push(0x01);
        assert!(matches!(
            read_frame(&mut deep.as_slice()),
            Err(FrameError::Garbage(_))
        ));
    }
}

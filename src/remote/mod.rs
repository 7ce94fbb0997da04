//! The `borg serve` client: borg 1.x's msgpack RPC over a byte transport.
//!
//! Requests go out as msgpack maps `{"i": msgid, "m": method, "a": {args}}` (after a tuple-form
//! `negotiate`), with every byte string packed as msgpack *str* (borg 1.1/1.2 servers die on
//! *bin*). A reader thread decodes responses and hands each to whoever waits for its msgid; a
//! stderr thread turns the server's log lines into `Remote: …` messages. `get_many` keeps many
//! `get` requests in flight (the 1.x servers have no `get_many`), bounded by count and by bytes.
//! Closing the request stream ends the session, as borg's client does.
//!
//! The parts, one concern each:
//! - the transports, giving a [`Connection`]: [`ssh`] (the built-in client, libssh2, configured
//!   by [`sshconfig`], host keys checked against [`knownhosts`]) and [`command`] (`BORG_RSH`);
//! - `framing` (response frames, lengths checked before they are read), `rpc` (requests,
//!   server exceptions as errors), `log_relay` (the server's log lines to the `log` facade,
//!   target `borg.remote`);
//! - [`RemoteStore`]: one session; `reconnect`: a session reopened when it drops, within
//!   [`RemoteOptions::retries`]; [`RemotePool`]: several sessions used as one store.
//!
//! Failures are [`Error::Remote`](crate::Error::Remote) with a
//! [`RemoteErrorKind`](crate::error::RemoteErrorKind): `Connect` and `Ssh` while connecting,
//! `Dropped` when a session breaks (the only kind a new session may cure: see
//! [`RemoteErrorKind::is_retryable`](crate::error::RemoteErrorKind::is_retryable)), `Protocol`
//! when the server breaks the protocol, `Server` for the server's own errors.
//!
//! ```no_run
//! use oxiborg::{Location, OpenOptions, Repository};
//! # fn main() -> oxiborg::Result<()> {
//! // The documented defaults (120 s silence limit, 3 retries, the built-in SSH client with
//! // ~/.ssh/config and ~/.ssh/known_hosts); RemoteOptions::from_env() reads BORG_RSH & co.
//! let mut opts = OpenOptions::default();
//! opts.passphrase = Some("secret".into());
//! let repo = Repository::open(&Location::parse("ssh://backup@host/./repo")?, &opts)?;
//! println!("{} archives", repo.archives().len());
//! # Ok(()) }
//! ```

pub mod command;
mod fanout;
mod framing;
pub mod knownhosts;
mod link;
mod log_relay;
mod pool;
mod reconnect;
pub(crate) mod rest;
mod rpc;
mod session;
pub mod ssh;
pub mod sshconfig;

pub use pool::RemotePool;
pub use session::RemoteStore;

use crate::error::Result;
use crate::location::Location;
use crate::origin::Origin;
use std::io::{Read, Write};
use std::time::Duration;

/// `borg serve` sessions opened per repository unless `--connections` says otherwise: half the
/// cores, 1 to 4. Measured on 2 cores with the server on the same machine, a second session only
/// competes with decoding for the CPU (250 MB restore: 1 session 2.4 s, 2 sessions 2.6 s); with the
/// server elsewhere, each session adds a server process.
pub fn default_connections() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / 2).clamp(1, 4)
}

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

/// How to reach `borg serve`. [`RemoteOptions::default`] gives the documented defaults and reads
/// nothing from the environment; [`RemoteOptions::from_env`] reads what borg and oxiborg read.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// `BORG_RSH` / `--rsh`: spawn this command (shell-split) instead of native SSH. When it is
    /// `ssh …` and no `ssh` is installed, the built-in client is used with what it can take from
    /// it (see `command::builtin_options`).
    pub rsh: Option<String>,
    /// Where `rsh` came from (named in messages about it).
    pub rsh_origin: Origin,
    /// `BORG_REMOTE_PATH` / `--remote-path` (default `borg`).
    pub remote_path: Option<String>,
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

/// The silence limit when nothing says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Failed reconnections in a row a session makes when nothing says otherwise.
const DEFAULT_RETRIES: u32 = 3;

impl Default for RemoteOptions {
    /// The documented defaults, nothing from the environment: the built-in SSH client (with
    /// `~/.ssh/config` and `~/.ssh/known_hosts`, asking about no unknown host), `borg` as the
    /// remote command, a 120 s silence limit, 3 reconnection attempts, the default number of
    /// sessions (`default_connections`: 2).
    fn default() -> Self {
        RemoteOptions {
            rsh: None,
            rsh_origin: Origin::Caller,
            remote_path: None,
            timeout: DEFAULT_TIMEOUT,
            known_hosts: None,
            identity: None,
            identity_origin: Origin::Caller,
            port: None,
            ssh_config: None,
            strict_host_key_checking: None,
            host_key_prompt: None,
            connections: 0,
            retries: DEFAULT_RETRIES,
        }
    }
}

impl RemoteOptions {
    /// The defaults, with what the environment sets: `BORG_RSH`, `BORG_REMOTE_PATH`,
    /// `OXIBORG_REMOTE_TIMEOUT` (seconds), `OXIBORG_REMOTE_RETRIES`, `OXIBORG_CONNECTIONS`,
    /// `OXIBORG_SSH_KNOWN_HOSTS` and `OXIBORG_SSH_IDENTITY` (empty or unparsable values count as
    /// unset).
    pub fn from_env() -> RemoteOptions {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let d = RemoteOptions::default();
        RemoteOptions {
            rsh: var("BORG_RSH"),
            rsh_origin: Origin::Env("BORG_RSH"),
            remote_path: var("BORG_REMOTE_PATH"),
            timeout: var("OXIBORG_REMOTE_TIMEOUT")
                .and_then(|v| v.parse().ok())
                .map_or(d.timeout, Duration::from_secs),
            known_hosts: var("OXIBORG_SSH_KNOWN_HOSTS").map(Into::into),
            identity: var("OXIBORG_SSH_IDENTITY").map(Into::into),
            identity_origin: Origin::Env("OXIBORG_SSH_IDENTITY"),
            connections: var("OXIBORG_CONNECTIONS")
                .and_then(|v| v.parse().ok())
                .unwrap_or(d.connections),
            retries: var("OXIBORG_REMOTE_RETRIES")
                .and_then(|v| v.parse().ok())
                .unwrap_or(d.retries),
            ..d
        }
    }

    /// The remote command words: `<remote path> serve`.
    pub fn serve_command(&self) -> Vec<String> {
        let mut v = vec![self.remote_path.clone().unwrap_or_else(|| "borg".into())];
        v.push("serve".into());
        v
    }
}

/// Connects to the repository at an `ssh://` or `user@host:` location: through `BORG_RSH` /
/// `--rsh` when set (or, when that is `ssh …` and no `ssh` is installed, natively with what it
/// says), else natively with libssh2; then opens the repository read-only (one session).
///
/// # Errors
///
/// [`Error::Remote`](crate::Error::Remote): `Connect` when the server cannot be reached or the
/// command not run, `Ssh` when SSH refuses (host key, authentication, configuration),
/// `Dropped` or `Protocol` when the session fails while opening, `Server` for the server's own
/// errors; [`Error::RepositoryDoesNotExist`](crate::Error::RepositoryDoesNotExist) and the
/// other repository errors the server reports; [`Error::InvalidInput`](crate::Error::InvalidInput)
/// for an `rsh` command that cannot be parsed.
pub fn connect(loc: &Location, opts: &RemoteOptions) -> Result<RemoteStore> {
    let conn = open_connection(loc, opts, &opts.serve_command())?;
    RemoteStore::open(conn, loc, opts)
}

/// Runs `command` (the remote command's words) on the host of `loc`: through `BORG_RSH` /
/// `--rsh` when set (or, when that is `ssh …` and no `ssh` is installed, natively with what it
/// says), else natively with libssh2.
///
/// # Errors
///
/// As [`connect`], before any byte is exchanged with the remote command.
pub(crate) fn open_connection(
    loc: &Location,
    opts: &RemoteOptions,
    command: &[String],
) -> Result<Connection> {
    match &opts.rsh {
        Some(rsh) => match command::builtin_options(rsh, opts)? {
            Some(builtin) => ssh::connect(loc, &builtin, command),
            None => command::spawn(rsh, loc, opts, command),
        },
        None => ssh::connect(loc, opts, command),
    }
}

/// How the error of a borg 2 `borg serve` refusing borg 1.x's RPC begins (see
/// [`is_borg2_server`]).
pub(crate) const BORG2_SERVER: &str =
    "The server runs borg 2, whose borg serve does not speak borg 1.x's RPC";

/// Whether `e` is [`connect`] failing because the remote `borg serve` is borg 2: its legacy
/// mode refuses borg 1.x's first request (stderr `Borg 2.0.0b25: Got unexpected RPC data
/// format from client.`) and exits. That failure comes back at once (it is a `Protocol`
/// error: no reconnection is tried); a borg 2 repository is then read over REST
/// ([`rest::connect`]).
pub(crate) fn is_borg2_server(e: &crate::error::Error) -> bool {
    matches!(
        e,
        crate::error::Error::Remote {
            kind: crate::error::RemoteErrorKind::Protocol,
            message,
        } if message.starts_with(BORG2_SERVER)
    )
}

/// Reads response frames from `data` and interprets each as the client would (message id,
/// result or server exception); for the fuzz target.
pub(crate) fn fuzz_frames(data: &[u8]) {
    rpc::fuzz_frames(data);
}

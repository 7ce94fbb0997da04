//! The OpenSSH client configuration (`~/.ssh/config`, then `/etc/ssh/ssh_config`; or the file
//! `ssh -F` names) as far as it decides where and how the built-in client connects, read with
//! ssh_config(5)'s rules:
//!
//! - the first value obtained for a setting wins (the location's user and port come first, as
//!   ssh's command line does); `IdentityFile` accumulates;
//! - `Host` blocks (whitespace-separated patterns, `!` negation, case-sensitive as in OpenSSH)
//!   and `Match` blocks: `all`, `host` (the `HostName` obtained so far, else the host as given),
//!   `originalhost`, `user` (the remote user obtained so far), `localuser`, `tagged` (`Tag`),
//!   `sessiontype` (always `exec`), `command` (the `borg serve` command), `canonical` and
//!   `final` (a second, final pass is made when `Match final` asks for one, as ssh does; host
//!   names are not canonicalised), with `!` negation and comma-separated pattern lists.
//!   `Match exec`, `localnetwork` and `version` cannot be evaluated here — the built-in client
//!   never runs commands — so a `Match` line holding one does not match (a debug line says so);
//! - `Include` (globs, `~`, tokens and `${VAR}`; relative paths under `~/.ssh` for the user's
//!   file and `/etc/ssh` for the system one), at the top level or inside a block (then
//!   conditionally), nested at most 16 deep; included files and `~/.ssh/config` must not be
//!   writable by others (ssh refuses them too);
//! - tokens: `%h` and `%%` in `HostName`; `%%`, `%C`, `%d`, `%h`, `%i`, `%j`, `%k`, `%L`, `%l`,
//!   `%n`, `%p`, `%r`, `%u` and `${VAR}` in `IdentityFile` and `UserKnownHostsFile`, expanded
//!   once the host's settings are known.
//!
//! The settings read are `HostName`, `User`, `Port`, `IdentityFile`, `UserKnownHostsFile`,
//! `StrictHostKeyChecking` and `BatchMode` (and `Tag`, `ProxyJump` and `HostKeyAlias` for
//! `Match tagged` and the tokens); the others are skipped.

mod matcher;
mod parser;
#[cfg(test)]
mod tests;
mod tokens;

pub(crate) use matcher::glob_match;

use crate::error::Result;
use parser::{Flags, Reader, Top, Values};
use std::path::{Path, PathBuf};

/// How deep `Include` may nest (OpenSSH's `READCONF_MAX_DEPTH`).
pub const MAX_INCLUDE_DEPTH: usize = 16;

/// The log target of the reader's debug lines.
const LOGGER: &str = "borg.remote";

/// Settings that apply to one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// Host name to connect to (`HostName`, `%h` expanded; else the host as given).
    pub hostname: String,
    /// Login user: the location's, else `User`, else the local user.
    pub user: String,
    /// Port: the location's, else `Port`, else 22.
    pub port: u16,
    /// Identity files, in order, tokens and `~` expanded.
    pub identity_files: Vec<IdentityFile>,
    /// `UserKnownHostsFile`: the files read, the first one also written (`none`: `/dev/null`).
    pub known_hosts: Option<Vec<PathBuf>>,
    /// `StrictHostKeyChecking`: what to do with a host key known_hosts does not record.
    pub strict_host_key_checking: Option<StrictHostKeyChecking>,
    /// `BatchMode`: never ask.
    pub batch_mode: Option<bool>,
}

/// An `IdentityFile`, with where it was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityFile {
    /// The key file (expanded).
    pub path: PathBuf,
    /// The configuration file that names it.
    pub file: PathBuf,
    /// Its line there (1-based).
    pub line: usize,
}

/// The connection the configuration is read for, and what is fixed before it is read.
#[derive(Debug, Clone)]
pub struct Query {
    /// The host as given (the location's host, possibly an alias).
    pub host: String,
    /// The location's user, which `User` does not override.
    pub user: Option<String>,
    /// The location's (or `ssh -p`'s) port, which `Port` does not override.
    pub port: Option<u16>,
    /// The remote command (for `Match command`).
    pub command: String,
    /// The local user name (`%u`, `Match localuser`, the default remote user).
    pub local_user: String,
    /// The local user id (`%i`).
    pub uid: u32,
    /// The home directory (`~`, `%d`, relative `Include`s).
    pub home: PathBuf,
    /// The local host name (`%l`; `%L` is its first label).
    pub local_host: String,
}

impl Query {
    /// A query for `host`, with the local user from `USER` (else the user database: ssh takes
    /// it from there only), the system's host name, and `home` as the home directory.
    pub fn new(host: &str, home: &Path) -> Query {
        let uid = rustix::process::getuid().as_raw();
        let local_user = std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .or_else(|| {
                crate::users::user_by_uid(uid)
                    .ok()
                    .flatten()
                    .map(|u| u.name_lossy())
                    .filter(|u| !u.is_empty())
            })
            .unwrap_or_else(|| uid.to_string());
        Query {
            host: host.to_string(),
            user: None,
            port: None,
            command: String::new(),
            local_user,
            uid,
            home: home.to_path_buf(),
            local_host: rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned(),
        }
    }
}

/// Which configuration files are read, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFiles {
    /// The user's file: `~/.ssh/config`, or the one `ssh -F` names.
    pub user: Option<PathBuf>,
    /// `user` was named on purpose (`-F`): it must exist, its permissions are not checked, and
    /// the system file is not read (as ssh does).
    pub explicit: bool,
    /// The system-wide file, read after the user's.
    pub system: Option<PathBuf>,
}

impl ConfigFiles {
    /// The files ssh reads: `explicit` (`-F FILE`; `none` for no file at all), else
    /// `HOME/.ssh/config` and `/etc/ssh/ssh_config`.
    pub fn openssh(home: &Path, explicit: Option<&Path>) -> ConfigFiles {
        match explicit {
            Some(f) if f == Path::new("none") => ConfigFiles {
                user: None,
                explicit: true,
                system: None,
            },
            Some(f) => ConfigFiles {
                user: Some(f.to_path_buf()),
                explicit: true,
                system: None,
            },
            None => ConfigFiles {
                user: Some(home.join(".ssh/config")),
                explicit: false,
                system: Some(PathBuf::from("/etc/ssh/ssh_config")),
            },
        }
    }
}

/// OpenSSH's `StrictHostKeyChecking`: what to do when known_hosts has no key for the server.
/// A key that differs from a recorded one of the same type is refused under every setting but
/// `No` (which connects after a warning, as OpenSSH does).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StrictHostKeyChecking {
    /// `yes`: refuse.
    Yes,
    /// `ask` (the default): ask on the terminal, refuse without one.
    #[default]
    Ask,
    /// `accept-new`: record the key and connect.
    AcceptNew,
    /// `no` / `off`: record the key and connect; connect even when the key changed.
    No,
}

impl StrictHostKeyChecking {
    /// Parses an OpenSSH value (`yes`, `ask`, `accept-new`, `no`, `off`; case-insensitive).
    pub fn parse(v: &str) -> Option<StrictHostKeyChecking> {
        Some(match v.to_ascii_lowercase().as_str() {
            "yes" | "true" => StrictHostKeyChecking::Yes,
            "ask" => StrictHostKeyChecking::Ask,
            "accept-new" => StrictHostKeyChecking::AcceptNew,
            "no" | "off" | "false" => StrictHostKeyChecking::No,
            _ => return None,
        })
    }
}

/// An OpenSSH yes/no value.
pub fn yes_no(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" => Some(true),
        "no" | "false" => Some(false),
        _ => None,
    }
}

/// Reads `tops` for `q` (twice when a `Match final` asks for a final pass).
fn resolve_tops(tops: &[Top], q: &Query) -> Result<HostConfig> {
    let mut r = Reader {
        q,
        v: Values {
            user: q.user.clone(),
            port: q.port,
            ..Values::default()
        },
        final_pass: false,
        want_final: false,
        final_host: String::new(),
        canonicalize_noted: false,
    };
    r.read(tops)?;
    if r.want_final {
        log::debug!(target: LOGGER, "configuration requests final Match pass");
        r.final_host = r.current_host()?.to_ascii_lowercase();
        r.final_pass = true;
        r.read(tops)?;
    }
    r.finish()
}

/// The settings for `q` from `files`, as ssh would obtain them.
///
/// # Errors
///
/// [`Error::Remote`](crate::Error::Remote) (`Ssh`) naming the file and line of a malformed
/// setting, a `Match` criterion that cannot be evaluated, an unknown token or unset variable;
/// a file that cannot be read, or that others may write (as ssh refuses it); a missing `-F`
/// file; `Include`s nested too deep.
pub fn resolve(files: &ConfigFiles, q: &Query) -> Result<HostConfig> {
    let user_flags = Flags {
        user_conf: true,
        check_perm: !files.explicit,
        never_match: false,
    };
    let system_flags = Flags {
        user_conf: false,
        check_perm: false,
        never_match: false,
    };
    let mut tops = Vec::new();
    if let Some(u) = &files.user {
        tops.push(Top::Path(u, user_flags, files.explicit));
    }
    if let Some(s) = &files.system {
        tops.push(Top::Path(s, system_flags, false));
    }
    resolve_tops(&tops, q)
}

/// The settings for `q` from configuration text, read as the user's file `name` (relative
/// `Include`s are under `~/.ssh`).
///
/// # Errors
///
/// As [`resolve`].
#[cfg(test)]
pub fn resolve_text(text: &str, name: &Path, q: &Query) -> Result<HostConfig> {
    let flags = Flags {
        user_conf: true,
        check_perm: false,
        never_match: false,
    };
    resolve_tops(&[Top::Text(text, name, flags)], q)
}

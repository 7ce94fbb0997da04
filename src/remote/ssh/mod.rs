//! The native transport: libssh2 (the `ssh2` crate), configured like OpenSSH from the location
//! and the OpenSSH client configuration ([`super::sshconfig`]: `~/.ssh/config`, then
//! `/etc/ssh/ssh_config`, or the `-F` file), with the server's host key checked against
//! `known_hosts`.
//!
//! Host keys: the host key algorithms of the key types `known_hosts` records for the host are
//! asked for first (as OpenSSH does), so a host known by its RSA key is checked against that key
//! even when the server also has an ed25519 one. A key that differs from a recorded key of the
//! same type is refused as a possible man-in-the-middle (with `ssh-keygen -R` for a server that
//! was rebuilt); an unknown host is refused, recorded (`StrictHostKeyChecking accept-new` or
//! `no`), or asked about on the terminal ([`HostKeyPrompt::terminal`]) as OpenSSH asks.
//!
//! Authentication tries the SSH agent, then the identity files (`--ssh-identity` /
//! `OXIBORG_SSH_IDENTITY`, the config's `IdentityFile`s, then `~/.ssh/id_ed25519`, `id_ecdsa`,
//! `id_rsa`); a passphrase-protected key takes its passphrase from `OXIBORG_SSH_KEY_PASSPHRASE`.
//! The channel is bridged to pipes by one thread that runs libssh2 non-blocking, so the RPC layer
//! reads and writes concurrently.

mod auth;
mod bridge;
mod hostkey;

pub(crate) use auth::unreadable_key;
pub use hostkey::{HostKeyPrompt, UnknownHost};

use super::knownhosts;
use super::sshconfig;
use super::{Connection, RemoteOptions};
use crate::error::{Error, RemoteErrorKind, Result};
use crate::location::Location;
use auth::authenticate;
use bridge::bridge;
use hostkey::{known_hosts_files, HostCheck};
use ssh2::{MethodType, Session};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// The user's home directory (`~/.ssh` is under it).
fn home() -> PathBuf {
    crate::key::blob::BorgDirs::home()
}

/// The TCP connection to `hostname` port `port` (its first address that answers within 10 s),
/// without Nagle's delay: a small request written while the previous packet is unacknowledged
/// would otherwise wait for the peer's delayed ACK (up to 40 ms a round trip), as OpenSSH knows.
fn connect_tcp(hostname: &str, port: u16) -> Result<(TcpStream, SocketAddr)> {
    let addrs: Vec<_> = (hostname, port)
        .to_socket_addrs()
        .map_err(|e| {
            Error::remote(
                RemoteErrorKind::Connect,
                format!("cannot resolve {hostname}: {e}"),
            )
        })?
        .collect();
    let mut last = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, Duration::from_secs(10)) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok((s, a));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(Error::remote(
        RemoteErrorKind::Connect,
        format!(
            "cannot connect to {hostname} port {port}: {}",
            last.map(|e| e.to_string())
                .unwrap_or_else(|| "no address".into())
        ),
    ))
}

/// Connects, verifies the host, authenticates and runs `command` (the remote command's words,
/// e.g. [`RemoteOptions::serve_command`], joined with spaces for the remote shell as `ssh`
/// joins its arguments).
///
/// # Errors
///
/// [`Error::Remote`]: `Connect` when the host cannot be resolved or reached, `Ssh` when the
/// SSH configuration cannot be read, the handshake fails, the host key is unknown (and not
/// accepted), changed or revoked, no identity is accepted, or the command cannot be started.
pub fn connect(loc: &Location, opts: &RemoteOptions, command: &[String]) -> Result<Connection> {
    let command = command.join(" ");
    let host = loc.host.clone().unwrap_or_default();
    let home = home();
    // The location's user and port come first, as ssh's command line does.
    let mut query = sshconfig::Query::new(&host, &home);
    query.user = loc.user.clone();
    query.port = loc.port.or(opts.port);
    query.command = command.clone();
    let files = sshconfig::ConfigFiles::openssh(&home, opts.ssh_config.as_deref());
    let cfg = sshconfig::resolve(&files, &query)?;
    let hostname = cfg.hostname.clone();
    let port = cfg.port;
    let user = cfg.user.clone();
    let target = format!("{user}@{hostname}:{port}");
    // What known_hosts records for the host decides which host key algorithms to ask for.
    let files = known_hosts_files(opts, &cfg, &home);
    let name = knownhosts::host_name(&hostname.to_ascii_lowercase(), port);
    let known = knownhosts::lookup_files(&files.read, &name).map_err(|e| {
        Error::remote(
            RemoteErrorKind::Ssh,
            format!("cannot read the known hosts file {e}"),
        )
    })?;
    let (tcp, addr) = connect_tcp(&hostname, port)?;
    let mut sess =
        Session::new().map_err(|e| Error::remote(RemoteErrorKind::Ssh, format!("ssh: {e}")))?;
    let mut known_types: Vec<String> = Vec::new();
    for k in known.iter().filter(|k| !k.revoked) {
        if !known_types.contains(&k.key_type) {
            known_types.push(k.key_type.clone());
        }
    }
    if let Ok(supported) = sess.supported_algs(MethodType::HostKey) {
        let pref = knownhosts::preference(&known_types, &supported);
        if !pref.is_empty() {
            sess.method_pref(MethodType::HostKey, &pref.join(","))
                .map_err(|e| {
                    Error::remote(
                        RemoteErrorKind::Ssh,
                        format!("ssh: host key algorithms {pref:?}: {e}"),
                    )
                })?;
        }
    }
    sess.set_tcp_stream(
        tcp.try_clone()
            .map_err(|e| Error::remote(RemoteErrorKind::Connect, e.to_string()))?,
    );
    sess.set_timeout(30_000);
    sess.handshake().map_err(|e| {
        Error::remote(
            RemoteErrorKind::Ssh,
            format!("ssh handshake with {target} failed: {e}"),
        )
    })?;
    let check = HostCheck {
        name: &name,
        hostname: &hostname,
        port,
        address: addr,
        known: &known,
        files: &files,
        policy: opts
            .strict_host_key_checking
            .or(cfg.strict_host_key_checking)
            .unwrap_or_default(),
        prompt: opts
            .host_key_prompt
            .as_ref()
            .filter(|_| cfg.batch_mode != Some(true)),
    };
    check.verify(&sess)?;
    authenticate(&sess, &user, &target, opts, &cfg, &home)?;
    let mut channel = sess.channel_session().map_err(|e| {
        Error::remote(
            RemoteErrorKind::Ssh,
            format!("ssh {target}: cannot open a channel: {e}"),
        )
    })?;
    channel.exec(&command).map_err(|e| {
        Error::remote(
            RemoteErrorKind::Ssh,
            format!("ssh {target}: cannot run {command:?}: {e}"),
        )
    })?;
    bridge(sess, channel, tcp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tcp_connection_sends_small_packets_at_once() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let (tcp, addr) = connect_tcp("127.0.0.1", port).unwrap();
        assert_eq!(addr.port(), port);
        assert!(tcp.nodelay().unwrap(), "Nagle's algorithm is on");
        drop(l);
        let e = connect_tcp("127.0.0.1", port).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot connect to 127.0.0.1 port"),
            "{e}"
        );
    }
}

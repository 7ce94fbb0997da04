//! The native transport: libssh2 (the `ssh2` crate), configured like OpenSSH from the location
//! and `~/.ssh/config`, with the server's host key checked against `known_hosts`.
//!
//! Authentication tries the SSH agent, then the identity files (`OXIBORG_SSH_IDENTITY`, the
//! config's `IdentityFile`s, then `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`); a passphrase-protected
//! key takes its passphrase from `OXIBORG_SSH_KEY_PASSPHRASE`. The channel is bridged to pipes by
//! one thread that runs libssh2 non-blocking, so the RPC layer reads and writes concurrently.

use super::{sshconfig, Connection, RemoteOptions};
use crate::error::{Error, Result};
use crate::location::Location;
use base64::Engine;
use rustix::event::{poll, PollFd, PollFlags};
use ssh2::{CheckResult, KnownHostFileKind, Session};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn home() -> PathBuf {
    crate::key::blob::BorgDirs::home()
}

fn local_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "root".into())
}

/// Connects, verifies the host, authenticates and starts `borg serve`.
pub fn connect(loc: &Location, opts: &RemoteOptions) -> Result<Connection> {
    let host = loc.host.clone().unwrap_or_default();
    let home = home();
    let cfg_text = std::fs::read_to_string(home.join(".ssh/config")).unwrap_or_default();
    let cfg = sshconfig::lookup(&cfg_text, &host, &home);
    let hostname = cfg.hostname.clone().unwrap_or_else(|| host.clone());
    let port = loc.port.or(cfg.port).unwrap_or(22);
    let user = loc
        .user
        .clone()
        .or(cfg.user.clone())
        .unwrap_or_else(local_user);
    let target = format!("{user}@{hostname}:{port}");
    let addrs: Vec<_> = (hostname.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| Error::Other(format!("cannot resolve {hostname}: {e}")))?
        .collect();
    let mut last = None;
    let mut tcp = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, Duration::from_secs(10)) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let tcp = tcp.ok_or_else(|| {
        Error::Other(format!(
            "cannot connect to {hostname} port {port}: {}",
            last.map(|e| e.to_string())
                .unwrap_or_else(|| "no address".into())
        ))
    })?;
    let mut sess = Session::new().map_err(|e| Error::Other(format!("ssh: {e}")))?;
    sess.set_tcp_stream(tcp.try_clone().map_err(|e| Error::Other(e.to_string()))?);
    sess.set_timeout(30_000);
    sess.handshake()
        .map_err(|e| Error::Other(format!("ssh handshake with {target} failed: {e}")))?;
    verify_host(&sess, &hostname, port, opts, &cfg, &home)?;
    authenticate(&sess, &user, &target, opts, &cfg, &home)?;
    let mut channel = sess
        .channel_session()
        .map_err(|e| Error::Other(format!("ssh {target}: cannot open a channel: {e}")))?;
    let command = opts.serve_command().join(" ");
    channel
        .exec(&command)
        .map_err(|e| Error::Other(format!("ssh {target}: cannot run {command:?}: {e}")))?;
    bridge(sess, channel, tcp)
}

fn fingerprint(sess: &Session) -> String {
    sess.host_key_hash(ssh2::HashType::Sha256)
        .map(|h| {
            let b = base64::engine::general_purpose::STANDARD_NO_PAD.encode(h);
            format!("SHA256:{b}")
        })
        .unwrap_or_else(|| "unknown".into())
}

fn verify_host(
    sess: &Session,
    hostname: &str,
    port: u16,
    opts: &RemoteOptions,
    cfg: &sshconfig::HostConfig,
    home: &std::path::Path,
) -> Result<()> {
    let file = opts
        .known_hosts
        .clone()
        .or(cfg.known_hosts.clone())
        .unwrap_or_else(|| home.join(".ssh/known_hosts"));
    let mut kh = sess
        .known_hosts()
        .map_err(|e| Error::Other(format!("ssh: {e}")))?;
    if file.exists() {
        kh.read_file(&file, KnownHostFileKind::OpenSSH)
            .map_err(|e| {
                Error::Other(format!(
                    "cannot read known hosts file {}: {e}",
                    file.display()
                ))
            })?;
    }
    let (key, _) = sess
        .host_key()
        .ok_or_else(|| Error::Other("ssh: the server sent no host key".into()))?;
    let shown = if port == 22 {
        hostname.to_string()
    } else {
        format!("[{hostname}]:{port}")
    };
    match kh.check_port(hostname, port, key) {
        CheckResult::Match => Ok(()),
        CheckResult::NotFound => Err(Error::Other(format!(
            "Host key verification failed: {shown} is not a known host (its host key fingerprint is {fp}). \
             If that fingerprint is right, add the key to {kf}, e.g. with `ssh-keyscan -p {port} {hostname} >> {kf}`, \
             or connect once with ssh to accept it.",
            fp = fingerprint(sess),
            kf = file.display()
        ))),
        CheckResult::Mismatch => Err(Error::Other(format!(
            "Host key verification failed: THE HOST KEY OF {shown} HAS CHANGED (now {fp}); it does not match {kf}. \
             Someone could be intercepting the connection. Refusing to connect.",
            fp = fingerprint(sess),
            kf = file.display()
        ))),
        CheckResult::Failure => Err(Error::Other(format!(
            "Host key verification failed for {shown}: cannot check it against {}",
            file.display()
        ))),
    }
}

fn authenticate(
    sess: &Session,
    user: &str,
    target: &str,
    opts: &RemoteOptions,
    cfg: &sshconfig::HostConfig,
    home: &std::path::Path,
) -> Result<()> {
    let mut tried = Vec::new();
    if std::env::var_os("SSH_AUTH_SOCK").is_some() {
        tried.push("agent".to_string());
        if sess.userauth_agent(user).is_ok() && sess.authenticated() {
            return Ok(());
        }
    }
    let mut files: Vec<PathBuf> = opts.identity.iter().cloned().collect();
    files.extend(cfg.identity_files.iter().cloned());
    if files.is_empty() {
        for f in ["id_ed25519", "id_ecdsa", "id_rsa"] {
            files.push(home.join(".ssh").join(f));
        }
    }
    let pass = std::env::var("OXIBORG_SSH_KEY_PASSPHRASE").ok();
    for f in files.iter().filter(|f| f.exists()) {
        tried.push(f.display().to_string());
        match sess.userauth_pubkey_file(user, None, f, pass.as_deref()) {
            Ok(()) if sess.authenticated() => return Ok(()),
            Ok(()) => {}
            Err(e) => {
                if std::fs::File::open(f).is_err() {
                    tried.push(format!("({}: permission denied)", f.display()));
                }
                let _ = e;
            }
        }
    }
    // A key named on purpose (OXIBORG_SSH_IDENTITY, IdentityFile) that cannot be read: that
    // is the reason to give.
    if let Some(e) = opts
        .identity
        .iter()
        .chain(cfg.identity_files.iter())
        .find_map(|f| super::unreadable_key(f, "an SSH identity file"))
    {
        return Err(e);
    }
    Err(Error::Other(format!(
        "SSH authentication to {target} failed (tried: {}). Check the key (a passphrase-protected key needs \
         OXIBORG_SSH_KEY_PASSPHRASE), or set BORG_RSH=\"ssh -i KEY\" to use OpenSSH.",
        if tried.is_empty() { "no agent, no identity files".into() } else { tried.join(", ") }
    )))
}

/// Moves bytes between the channel and three pipes on one thread, libssh2 non-blocking.
fn bridge(sess: Session, mut channel: ssh2::Channel, tcp: TcpStream) -> Result<Connection> {
    let pipe = |what: &str| {
        rustix::pipe::pipe().map_err(|e| Error::Other(format!("cannot create {what} pipe: {e}")))
    };
    let (req_r, req_w) = pipe("request")?;
    let (resp_r, resp_w) = pipe("response")?;
    let (log_r, log_w) = pipe("log")?;
    rustix::fs::fcntl_setfl(&req_r, rustix::fs::OFlags::NONBLOCK)
        .map_err(|e| Error::Other(e.to_string()))?;
    sess.set_blocking(false);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_bridge = stop.clone();
    let handle = std::thread::spawn(move || {
        let mut req_r = std::fs::File::from(req_r);
        let mut resp_w = std::fs::File::from(resp_w);
        let mut log_w = std::fs::File::from(log_w);
        let mut out: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 256 * 1024];
        let (mut req_eof, mut sent_eof) = (false, false);
        let mut eof_since: Option<Instant> = None;
        loop {
            let mut progress = false;
            if !req_eof && out.len() < (1 << 20) {
                match req_r.read(&mut buf) {
                    Ok(0) => req_eof = true,
                    Ok(n) => {
                        out.extend_from_slice(&buf[..n]);
                        progress = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => req_eof = true,
                }
            }
            if !out.is_empty() {
                match channel.write(&out) {
                    Ok(n) => {
                        out.drain(..n);
                        progress = progress || n > 0;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => break,
                }
            }
            if req_eof && out.is_empty() && !sent_eof {
                match channel.send_eof() {
                    Ok(()) => {
                        sent_eof = true;
                        eof_since = Some(Instant::now());
                    }
                    Err(e) if e.code() == ssh2::ErrorCode::Session(-37) => {}
                    Err(_) => break,
                }
            }
            match channel.read(&mut buf) {
                Ok(0) => {}
                Ok(n) => {
                    progress = true;
                    if resp_w.write_all(&buf[..n]).is_err() && sent_eof {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
            match channel.stderr().read(&mut buf) {
                Ok(0) => {}
                Ok(n) => {
                    progress = true;
                    let _ = log_w.write_all(&buf[..n]);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => {}
            }
            if channel.eof() && !progress {
                break;
            }
            if eof_since.is_some_and(|t| t.elapsed() > Duration::from_secs(10))
                || stop_bridge.load(std::sync::atomic::Ordering::SeqCst)
            {
                break;
            }
            if !progress {
                let mut sock_flags = PollFlags::IN;
                if !out.is_empty() {
                    sock_flags |= PollFlags::OUT;
                }
                let mut fds = vec![PollFd::new(&tcp, sock_flags)];
                if !req_eof && out.len() < (1 << 20) {
                    fds.push(PollFd::new(&req_r, PollFlags::IN));
                }
                let _ = poll(
                    &mut fds,
                    Some(&rustix::event::Timespec {
                        tv_sec: 0,
                        tv_nsec: 10_000_000,
                    }),
                );
            }
        }
        drop(resp_w);
        drop(log_w);
        let _ = channel.close();
        drop(sess);
        let _ = tcp.as_fd().as_raw_fd();
    });
    Ok(Connection {
        requests: Box::new(std::fs::File::from(req_w)),
        responses: Box::new(std::fs::File::from(resp_r)),
        log: Some(Box::new(std::fs::File::from(log_r))),
        finish: Box::new(move |dead| {
            if dead {
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            let _ = handle.join();
        }),
    })
}

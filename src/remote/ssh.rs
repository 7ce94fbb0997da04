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

use super::knownhosts::{self, KnownKey};
use super::sshconfig::{self, StrictHostKeyChecking};
use super::{Connection, RemoteOptions};
use crate::error::{Error, RemoteErrorKind, Result};
use crate::location::Location;
use crate::origin::Origin;
use base64::Engine;
use rustix::event::{poll, PollFd, PollFlags};
use sha2::Digest;
use ssh2::{MethodType, Session};
use std::io::{BufRead, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn home() -> PathBuf {
    crate::key::blob::BorgDirs::home()
}

/// A server whose host key `known_hosts` does not record, as the user is asked about it.
#[derive(Debug, Clone)]
pub struct UnknownHost {
    /// The name known_hosts would record: `host`, or `[host]:port`.
    pub name: String,
    /// The address connected to, in the same form.
    pub address: String,
    /// The key's type as OpenSSH names it: `ED25519`, `RSA`, `ECDSA`.
    pub key_type: String,
    /// `SHA256:…`, as `ssh-keygen -l` shows it.
    pub fingerprint: String,
    /// The file the key is recorded in when accepted.
    pub known_hosts: PathBuf,
    /// Key types known_hosts records for this host (that the server did not offer).
    pub other_types: Vec<String>,
}

/// Decides whether to trust a server whose host key is not known (`true`: record the key and
/// connect). [`HostKeyPrompt::terminal`] asks the user as OpenSSH does.
#[derive(Clone)]
pub struct HostKeyPrompt(pub Arc<dyn Fn(&UnknownHost) -> bool + Send + Sync>);

impl std::fmt::Debug for HostKeyPrompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostKeyPrompt")
    }
}

impl HostKeyPrompt {
    /// OpenSSH's first-contact question on the terminal (`/dev/tty`): the fingerprint, then
    /// "yes", "no" or the fingerprint itself as the answer. It is asked only when stdin and
    /// stderr are terminals; otherwise the answer is no (and the host is refused).
    pub fn terminal() -> HostKeyPrompt {
        HostKeyPrompt(Arc::new(ask_on_terminal))
    }
}

fn ask_on_terminal(q: &UnknownHost) -> bool {
    use std::io::IsTerminal;
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return false;
    }
    let Ok(tty) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
    else {
        return false;
    };
    let Ok(mut out) = tty.try_clone() else {
        return false;
    };
    let mut input = std::io::BufReader::new(tty);
    let mut text = format!(
        "The authenticity of host '{} ({})' can't be established",
        q.name, q.address
    );
    if !q.other_types.is_empty() {
        text.push_str(&format!(
            "\nbut keys of different type are already known for this host ({}).",
            q.other_types.join(", ")
        ));
    } else {
        text.push('.');
    }
    text.push_str(&format!(
        "\n{} key fingerprint is {}.\nAre you sure you want to continue connecting (yes/no/[fingerprint])? ",
        q.key_type, q.fingerprint
    ));
    loop {
        if out
            .write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .is_err()
        {
            return false;
        }
        let mut line = String::new();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        let answer = line.trim();
        if answer.eq_ignore_ascii_case("yes") || answer == q.fingerprint {
            return true;
        }
        if answer.eq_ignore_ascii_case("no") {
            return false;
        }
        text = "Please type 'yes', 'no' or the fingerprint: ".into();
    }
}

/// The known_hosts files: the one new keys go to (first), and all that are read.
struct KnownHostsFiles {
    user: PathBuf,
    read: Vec<PathBuf>,
}

fn known_hosts_files(
    opts: &RemoteOptions,
    cfg: &sshconfig::HostConfig,
    home: &Path,
) -> KnownHostsFiles {
    let mut read = Vec::new();
    let user = match (&opts.known_hosts, &cfg.known_hosts) {
        (Some(f), _) => {
            read.push(f.clone());
            f.clone()
        }
        // UserKnownHostsFile: all are read, new keys go to the first
        (None, Some(files)) if !files.is_empty() => {
            read.extend(files.iter().cloned());
            files[0].clone()
        }
        _ => {
            let f = home.join(".ssh/known_hosts");
            read.push(f.clone());
            read.push(home.join(".ssh/known_hosts2"));
            f
        }
    };
    read.push("/etc/ssh/ssh_known_hosts".into());
    read.push("/etc/ssh/ssh_known_hosts2".into());
    KnownHostsFiles { user, read }
}

/// Connects, verifies the host, authenticates and starts `borg serve`.
pub fn connect(loc: &Location, opts: &RemoteOptions) -> Result<Connection> {
    let host = loc.host.clone().unwrap_or_default();
    let home = home();
    // The location's user and port come first, as ssh's command line does.
    let mut query = sshconfig::Query::new(&host, &home);
    query.user = loc.user.clone();
    query.port = loc.port.or(opts.port);
    query.command = opts.serve_command().join(" ");
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
    let addrs: Vec<_> = (hostname.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| {
            Error::remote(
                RemoteErrorKind::Connect,
                format!("cannot resolve {hostname}: {e}"),
            )
        })?
        .collect();
    let mut last = None;
    let mut tcp = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, Duration::from_secs(10)) {
            Ok(s) => {
                tcp = Some((s, a));
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let (tcp, addr) = tcp.ok_or_else(|| {
        Error::remote(
            RemoteErrorKind::Connect,
            format!(
                "cannot connect to {hostname} port {port}: {}",
                last.map(|e| e.to_string())
                    .unwrap_or_else(|| "no address".into())
            ),
        )
    })?;
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
    let command = opts.serve_command().join(" ");
    channel.exec(&command).map_err(|e| {
        Error::remote(
            RemoteErrorKind::Ssh,
            format!("ssh {target}: cannot run {command:?}: {e}"),
        )
    })?;
    bridge(sess, channel, tcp)
}

/// `SHA256:…` of a key blob, as `ssh-keygen -l` shows it.
fn fingerprint(blob: &[u8]) -> String {
    let h = sha2::Sha256::digest(blob);
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(h)
    )
}

/// The server's host key against what known_hosts records for it.
struct HostCheck<'a> {
    name: &'a str,
    hostname: &'a str,
    port: u16,
    address: SocketAddr,
    known: &'a [KnownKey],
    files: &'a KnownHostsFiles,
    policy: StrictHostKeyChecking,
    prompt: Option<&'a HostKeyPrompt>,
}

impl HostCheck<'_> {
    fn verify(&self, sess: &Session) -> Result<()> {
        let (blob, _) = sess.host_key().ok_or_else(|| {
            Error::remote(RemoteErrorKind::Ssh, "ssh: the server sent no host key")
        })?;
        let key_type = knownhosts::blob_type(blob).unwrap_or("unknown");
        let label = knownhosts::type_label(key_type);
        let fp = fingerprint(blob);
        let name = self.name;
        if let Some(r) = self.known.iter().find(|k| k.revoked && k.blob == blob) {
            return Err(Error::remote(RemoteErrorKind::Ssh, format!(
                "Host key verification failed: the {label} host key of {name} ({fp}) is marked as revoked in {}:{}.",
                r.file.display(),
                r.line
            )));
        }
        let same: Vec<&KnownKey> = self
            .known
            .iter()
            .filter(|k| !k.revoked && k.key_type == key_type)
            .collect();
        if same.iter().any(|k| k.blob == blob) {
            return Ok(());
        }
        if let Some(k) = same.first() {
            let file = shell_words::quote(&k.file.to_string_lossy()).into_owned();
            let msg = format!(
                "Host key verification failed: THE HOST KEY OF {name} HAS CHANGED: the server's {label} key is now \
                 {fp}, but {}:{} records another {label} key for it. Someone could be intercepting the connection \
                 (man-in-the-middle). If the server was rebuilt (new host keys), check the new fingerprint with its \
                 administrator, then remove the old key with `ssh-keygen -f {file} -R '{name}'` and connect again.",
                k.file.display(),
                k.line
            );
            if self.policy == StrictHostKeyChecking::No {
                log::warn!(target: "borg.remote", "WARNING: {msg} Connecting anyway: StrictHostKeyChecking is no.",
                );
                return Ok(());
            }
            return Err(Error::remote(RemoteErrorKind::Ssh, msg));
        }
        // A host (or key type) known_hosts does not record.
        let mut other_types: Vec<String> = Vec::new();
        for k in self.known.iter().filter(|k| !k.revoked) {
            let l = knownhosts::type_label(&k.key_type);
            if !other_types.contains(&l) {
                other_types.push(l);
            }
        }
        let kf = &self.files.user;
        let q = UnknownHost {
            name: name.to_string(),
            address: knownhosts::host_name(&self.address.ip().to_string(), self.port),
            key_type: label.clone(),
            fingerprint: fp.clone(),
            known_hosts: kf.clone(),
            other_types: other_types.clone(),
        };
        let accept = match self.policy {
            StrictHostKeyChecking::Yes => false,
            StrictHostKeyChecking::AcceptNew | StrictHostKeyChecking::No => true,
            StrictHostKeyChecking::Ask => self.prompt.is_some_and(|p| (p.0)(&q)),
        };
        if !accept {
            let others = if other_types.is_empty() {
                String::new()
            } else {
                format!(
                    "; known_hosts records only its {} key, which it did not offer",
                    other_types.join(", ")
                )
            };
            let keyscan = format!(
                "ssh-keyscan -p {} {} >> {}",
                self.port,
                shell_words::quote(self.hostname),
                shell_words::quote(&kf.to_string_lossy())
            );
            let record = match kf.parent().filter(|d| !d.as_os_str().is_empty()) {
                Some(dir) => format!(
                    "mkdir -p {} && {keyscan}",
                    shell_words::quote(&dir.to_string_lossy())
                ),
                None => keyscan,
            };
            let or_else = if self.policy == StrictHostKeyChecking::Yes {
                " (StrictHostKeyChecking is yes, so oxiborg does not ask)"
            } else {
                ", or run oxiborg on a terminal and answer its question, or set StrictHostKeyChecking \
                 accept-new for the host in ~/.ssh/config"
            };
            return Err(Error::remote(RemoteErrorKind::Ssh, format!(
                "Host key verification failed: {name} is not a known host (its {label} host key fingerprint \
                 is {fp}{others}). If that fingerprint is right, record the key with `{record}`{or_else}."
            )));
        }
        match knownhosts::record(kf, name, blob) {
            Ok(()) => log::warn!(target: "borg.remote",
                "Warning: Permanently added '{name}' ({label}) to the list of known hosts.",
            ),
            Err(e) => log::warn!(target: "borg.remote",
                "Failed to add the host to the list of known hosts ({}): {e}.",
                kf.display(),
            ),
        }
        Ok(())
    }
}

fn authenticate(
    sess: &Session,
    user: &str,
    target: &str,
    opts: &RemoteOptions,
    cfg: &sshconfig::HostConfig,
    home: &Path,
) -> Result<()> {
    // A key named on purpose that is not there: said, and the others are tried (as OpenSSH).
    let mut tried = Vec::new();
    if let Some(f) = opts.identity.as_ref().filter(|f| !f.exists()) {
        log::warn!(target: "borg.remote",
            "Warning: identity file {} ({}) not accessible: no such file.",
            f.display(),
            opts.identity_origin,
        );
        tried.push(format!("{} (no such file)", f.display()));
    }
    if std::env::var_os("SSH_AUTH_SOCK").is_some() {
        tried.push("agent".to_string());
        if sess.userauth_agent(user).is_ok() && sess.authenticated() {
            return Ok(());
        }
    }
    let named: Vec<(PathBuf, Origin)> = opts
        .identity
        .iter()
        .map(|f| (f.clone(), opts.identity_origin.clone()))
        .chain(cfg.identity_files.iter().map(|f| {
            (
                f.path.clone(),
                Origin::SshConfig {
                    file: f.file.clone(),
                    key: "IdentityFile",
                },
            )
        }))
        .collect();
    let mut files: Vec<PathBuf> = named.iter().map(|(f, _)| f.clone()).collect();
    let defaults = files.is_empty();
    if defaults {
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
            Err(_) => {
                if std::fs::File::open(f).is_err() {
                    tried.push(format!("({}: permission denied)", f.display()));
                }
            }
        }
    }
    // A key named on purpose (--ssh-identity, IdentityFile) that cannot be read: that is the
    // reason to give.
    if let Some(e) = named
        .iter()
        .find_map(|(f, origin)| unreadable_key(f, origin, true))
    {
        return Err(e);
    }
    let tried = if tried.is_empty() {
        format!(
            "no agent, no identity files: none named, and no {} in {}",
            "id_ed25519, id_ecdsa or id_rsa",
            home.join(".ssh").display()
        )
    } else {
        tried.join(", ")
    };
    Err(Error::remote(RemoteErrorKind::Ssh, format!(
        "SSH authentication to {target} failed (tried: {tried}). Name the private key with --ssh-identity FILE \
         or OXIBORG_SSH_IDENTITY=FILE (e.g. /etc/borgmatic/key; a passphrase-protected key also needs \
         OXIBORG_SSH_KEY_PASSPHRASE), or use OpenSSH with BORG_RSH=\"ssh -i FILE\"."
    )))
}

/// Moves bytes between the channel and three pipes on one thread, libssh2 non-blocking.
fn bridge(sess: Session, mut channel: ssh2::Channel, tcp: TcpStream) -> Result<Connection> {
    let pipe = |what: &str| {
        rustix::pipe::pipe().map_err(|e| {
            Error::remote(
                RemoteErrorKind::Connect,
                format!("cannot create {what} pipe: {e}"),
            )
        })
    };
    let (req_r, req_w) = pipe("request")?;
    let (resp_r, resp_w) = pipe("response")?;
    let (log_r, log_w) = pipe("log")?;
    rustix::fs::fcntl_setfl(&req_r, rustix::fs::OFlags::NONBLOCK)
        .map_err(|e| Error::remote(RemoteErrorKind::Connect, e.to_string()))?;
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
            Some(Error::remote(RemoteErrorKind::Ssh, format!(
                "The SSH key {k} ({origin}) cannot be read by {user}: permission denied. It is usually \
                 root's (mode 0400). Run oxiborg as root (sudo -E), or copy the key to a file you can \
                 read: sudo cp {k} {copy} && sudo chown {user} {copy} && chmod 400 {copy}, {then}.",
                k = key.display()
            )))
        }
        _ => None,
    }
}

//! The server's host key: checked against `known_hosts` as OpenSSH checks it, and — for a host
//! it does not record — refused, recorded, or asked about ([`HostKeyPrompt`]).

use super::super::knownhosts::{self, KnownKey};
use super::super::sshconfig::{self, StrictHostKeyChecking};
use super::super::RemoteOptions;
use crate::error::{Error, RemoteErrorKind, Result};
use base64::Engine;
use sha2::Digest;
use ssh2::Session;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// OpenSSH's first-contact question on `/dev/tty` (see [`HostKeyPrompt::terminal`]).
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
pub(super) struct KnownHostsFiles {
    /// The file new keys are recorded in.
    pub(super) user: PathBuf,
    /// The files read.
    pub(super) read: Vec<PathBuf>,
}

/// The known_hosts files for a connection: `opts`' file, else the configuration's
/// `UserKnownHostsFile`s, else `~/.ssh/known_hosts` (and `known_hosts2`); the system's files too.
pub(super) fn known_hosts_files(
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

/// `SHA256:…` of a key blob, as `ssh-keygen -l` shows it.
fn fingerprint(blob: &[u8]) -> String {
    let h = sha2::Sha256::digest(blob);
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(h)
    )
}

/// The server's host key against what known_hosts records for it.
pub(super) struct HostCheck<'a> {
    /// The name known_hosts records: `host`, or `[host]:port`.
    pub(super) name: &'a str,
    /// The host name connected to (for the `ssh-keyscan` command offered).
    pub(super) hostname: &'a str,
    /// The port connected to.
    pub(super) port: u16,
    /// The address connected to.
    pub(super) address: SocketAddr,
    /// What known_hosts records for `name`.
    pub(super) known: &'a [KnownKey],
    /// The known_hosts files (a new key goes to `files.user`).
    pub(super) files: &'a KnownHostsFiles,
    /// `StrictHostKeyChecking`.
    pub(super) policy: StrictHostKeyChecking,
    /// Who to ask about an unknown host (`None`: nobody).
    pub(super) prompt: Option<&'a HostKeyPrompt>,
}

impl HostCheck<'_> {
    /// Checks the server's host key; records it when the policy or the user accepts it.
    pub(super) fn verify(&self, sess: &Session) -> Result<()> {
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

//! Authentication: the SSH agent, then the identity files; and the message for a key file this
//! user cannot read.

use super::super::sshconfig;
use super::super::RemoteOptions;
use crate::error::{Error, RemoteErrorKind, Result};
use crate::origin::Origin;
use ssh2::Session;
use std::path::{Path, PathBuf};

/// Authenticates as `user`: the agent, then the identity files (`--ssh-identity`, the
/// configuration's `IdentityFile`s, else `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`).
pub(super) fn authenticate(
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

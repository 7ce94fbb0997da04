//! The command transport: `BORG_RSH` / `--rsh` spawned exactly as borg spawns it,
//! `<rsh words> [-p PORT] [USER@]HOST <remote command>` (the remote command being
//! `<remote-path> serve` for borg 1.x, `<remote-path> serve --rest --backend FILE:<path>` for
//! borg 2; the port is kept in both, where borg 2.0.0b25 drops it).
//!
//! When the command is `ssh …` but no `ssh` is installed (a freshly installed machine whose
//! borgmatic configuration says `ssh_command: ssh -i /etc/borgmatic/key`), the built-in client
//! connects instead, with the options of the command it understands: see [`builtin_options`].

use super::sshconfig::{yes_no, StrictHostKeyChecking};
use super::{Connection, RemoteOptions};
use crate::error::{Error, RemoteErrorKind, Result};
use crate::location::Location;
use crate::origin::Origin;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Whether `program` can be run: a path that exists, or a name found on `PATH`.
fn installed(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|d| d.join(program).is_file())
}

/// `ssh` options the built-in client has no use for (they change nothing it does).
const HARMLESS_FLAGS: &[&str] = &[
    "-q", "-v", "-vv", "-vvv", "-T", "-x", "-a", "-C", "-4", "-6", "-n", "-k",
];

/// `-o` settings the built-in client has no use for.
const HARMLESS_SETTINGS: &[&str] = &[
    "identitiesonly",
    "globalknownhostsfile",
    "connecttimeout",
    "loglevel",
    "serveraliveinterval",
    "serveralivecountmax",
    "tcpkeepalive",
    "compression",
    "passwordauthentication",
    "kbdinteractiveauthentication",
    "challengeresponseauthentication",
    "preferredauthentications",
    "pubkeyauthentication",
    "forwardagent",
    "forwardx11",
    "requesttty",
    "checkhostip",
    "hashknownhosts",
    "updatehostkeys",
    "addkeystoagent",
    "controlmaster",
    "controlpath",
    "controlpersist",
];

/// The options for the built-in client when `rsh` is `ssh …` and no `ssh` is installed: its
/// `-i FILE`, `-p PORT`, `-F FILE` and `-o` settings `IdentityFile`, `Port`,
/// `UserKnownHostsFile`, `StrictHostKeyChecking` and `BatchMode` (options that change nothing
/// for it, such as `-o IdentitiesOnly=yes`, are skipped). `None` when `ssh` is installed or the
/// command is not `ssh` (it is then run as it is); an error for an option it cannot honour
/// (`-J`, `-o ProxyCommand=…`: install OpenSSH). `--ssh-identity` / `OXIBORG_SSH_IDENTITY`
/// still come first.
///
/// # Errors
///
/// [`Error::Remote`] (`Connect`) naming an option the built-in client cannot honour, or a
/// `-p`/`-o` value it cannot read.
pub fn builtin_options(rsh: &str, opts: &RemoteOptions) -> Result<Option<RemoteOptions>> {
    let words = shell_words::split(rsh).unwrap_or_default();
    let Some(program) = words.first() else {
        return Ok(None);
    };
    if Path::new(program).file_name().is_none_or(|n| n != "ssh") || installed(program) {
        return Ok(None);
    }
    let origin = &opts.rsh_origin;
    let cannot = |what: &str| {
        Error::remote(
            RemoteErrorKind::Connect,
            format!(
            "{program} is not installed, and the built-in SSH client cannot do {what} of {origin} \
             ({rsh:?}): install OpenSSH (e.g. apt install openssh-client), or remove that option."
        ),
        )
    };
    let mut o = opts.clone();
    o.rsh = None;
    let within = |opt: &'static str| Origin::Within(opt, Box::new(origin.clone()));
    let set_identity = |o: &mut RemoteOptions, v: &str| {
        if o.identity.is_none() {
            o.identity = Some(PathBuf::from(v));
            o.identity_origin = within("-i");
        }
    };
    let mut args = words[1..].iter();
    while let Some(w) = args.next() {
        let (flag, attached) = match w.as_str() {
            f if f.len() > 2 && ["-i", "-p", "-o", "-F"].contains(&&f[..2]) => {
                (&f[..2], Some(&f[2..]))
            }
            f => (f, None),
        };
        match flag {
            "-i" | "-p" | "-o" | "-F" => {
                let Some(value) = attached.or_else(|| args.next().map(String::as_str)) else {
                    return Err(cannot(&format!("a {flag} without a value")));
                };
                match flag {
                    "-i" => set_identity(&mut o, value),
                    "-p" => {
                        o.port = Some(value.parse().map_err(|_| cannot(&format!("-p {value}")))?)
                    }
                    "-F" => o.ssh_config = Some(PathBuf::from(value)),
                    _ => {
                        let (k, v) = value
                            .split_once(['=', ' ', '\t'])
                            .map(|(k, v)| (k, v.trim_start_matches(['=', ' ', '\t'])))
                            .unwrap_or((value, ""));
                        match k.to_ascii_lowercase().as_str() {
                            "identityfile" => set_identity(&mut o, v),
                            "port" => {
                                o.port =
                                    Some(v.parse().map_err(|_| cannot(&format!("-o {value}")))?)
                            }
                            "userknownhostsfile" => {
                                o.known_hosts = v.split_whitespace().next().map(PathBuf::from)
                            }
                            "stricthostkeychecking" => {
                                o.strict_host_key_checking = Some(
                                    StrictHostKeyChecking::parse(v)
                                        .ok_or_else(|| cannot(&format!("-o {value}")))?,
                                )
                            }
                            "batchmode" => {
                                if yes_no(v).ok_or_else(|| cannot(&format!("-o {value}")))? {
                                    o.host_key_prompt = None;
                                }
                            }
                            s if HARMLESS_SETTINGS.contains(&s) => {}
                            _ => return Err(cannot(&format!("-o {value}"))),
                        }
                    }
                }
            }
            f if HARMLESS_FLAGS.contains(&f) => {}
            other => return Err(cannot(other)),
        }
    }
    log::info!(
        target: "borg.remote",
        "{program} is not installed: the built-in SSH client connects, with the options of {origin}"
    );
    Ok(Some(o))
}

/// The argument vector borg would run for `loc`, with `command` (the remote command's words)
/// after the host.
///
/// # Errors
///
/// [`Error::InvalidInput`] when `rsh` cannot be split into words (an unclosed quote) or is
/// empty.
pub fn argv(rsh: &str, loc: &Location, command: &[String]) -> Result<Vec<String>> {
    let mut args = shell_words::split(rsh)
        .map_err(|e| Error::InvalidInput(format!("cannot parse BORG_RSH / --rsh {rsh:?}: {e}")))?;
    if args.is_empty() {
        return Err(Error::InvalidInput("BORG_RSH / --rsh is empty".into()));
    }
    if let Some(p) = loc.port {
        args.push("-p".into());
        args.push(p.to_string());
    }
    let host = loc.host.clone().unwrap_or_default();
    args.push(match &loc.user {
        Some(u) => format!("{u}@{host}"),
        None => host,
    });
    args.extend(command.iter().cloned());
    Ok(args)
}

/// Spawns the command (`rsh`, then what [`argv`] adds, `command` last) and connects its pipes.
///
/// # Errors
///
/// As [`argv`]; [`Error::Remote`] (`Ssh`) when the `-i` key file cannot be read by this user
/// (with what to do about it), (`Connect`) when the command cannot be run.
pub fn spawn(
    rsh: &str,
    loc: &Location,
    opts: &RemoteOptions,
    command: &[String],
) -> Result<Connection> {
    let args = argv(rsh, loc, command)?;
    // `ssh -i KEY` with a key this user cannot read fails with a cryptic "Permission denied
    // (publickey)" from the server: say what is wrong before trying.
    if let Some(key) = args.windows(2).find(|w| w[0] == "-i").map(|w| &w[1]) {
        let origin = Origin::Within("-i", Box::new(opts.rsh_origin.clone()));
        if let Some(e) = super::ssh::unreadable_key(Path::new(key), &origin, false) {
            return Err(e);
        }
    }
    let mut child = Command::new(&args[0])
        .args(&args[1..])
        .env_remove("BORG_PASSPHRASE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Error::remote(
                RemoteErrorKind::Connect,
                format!("cannot run {:?}: {e}", args[0]),
            )
        })?;
    let requests = child.stdin.take().expect("piped stdin");
    let responses = child.stdout.take().expect("piped stdout");
    let log = child.stderr.take().expect("piped stderr");
    Ok(Connection {
        requests: Box::new(requests),
        responses: Box::new(responses),
        log: Some(Box::new(log)),
        finish: Box::new(move |dead| {
            // The server exits once it sees EOF on stdin; do not wait forever for it, and not at
            // all for one that was declared dead.
            if dead {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            let start = Instant::now();
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => return,
                    Ok(None) if start.elapsed() > Duration::from_secs(10) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        return;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_like_borg() {
        let loc = Location::parse("ssh://borgwarehouse@host:22222/./repo").unwrap();
        let opts = RemoteOptions::default();
        assert_eq!(
            argv("ssh -i /etc/borgmatic/key", &loc, &opts.serve_command()).unwrap(),
            [
                "ssh",
                "-i",
                "/etc/borgmatic/key",
                "-p",
                "22222",
                "borgwarehouse@host",
                "borg",
                "serve"
            ]
        );
        let loc = Location::parse("[::1]:/srv/r").unwrap();
        let opts = RemoteOptions {
            remote_path: Some("/usr/local/bin/borg".into()),
            ..Default::default()
        };
        assert_eq!(
            argv("ssh", &loc, &opts.serve_command()).unwrap(),
            ["ssh", "::1", "/usr/local/bin/borg", "serve"]
        );
    }

    #[test]
    fn builtin_takes_what_it_understands() {
        let opts = RemoteOptions {
            rsh_origin: Origin::Env("BORG_RSH"),
            ..Default::default()
        };
        let missing = "/nonexistent/bin/ssh";
        let o = builtin_options(
            &format!("{missing} -i /etc/borgmatic/key -p2222 -o UserKnownHostsFile=/kh -o 'StrictHostKeyChecking accept-new' -oIdentitiesOnly=yes -q"),
            &opts,
        )
        .unwrap()
        .unwrap();
        assert_eq!(o.identity.as_deref(), Some(Path::new("/etc/borgmatic/key")));
        assert_eq!(o.identity_origin.to_string(), "the -i of BORG_RSH");
        assert_eq!(o.port, Some(2222));
        assert_eq!(o.known_hosts.as_deref(), Some(Path::new("/kh")));
        assert_eq!(
            o.strict_host_key_checking,
            Some(StrictHostKeyChecking::AcceptNew)
        );
        assert!(o.rsh.is_none());
        let e = builtin_options(&format!("{missing} -J jump"), &opts).unwrap_err();
        assert!(e.to_string().contains("cannot do -J of BORG_RSH"), "{e}");
        // an explicit identity stays first
        let given = RemoteOptions {
            identity: Some("/mine".into()),
            ..opts.clone()
        };
        let o = builtin_options(&format!("{missing} -i /other"), &given)
            .unwrap()
            .unwrap();
        assert_eq!(o.identity.as_deref(), Some(Path::new("/mine")));
        // not ssh, or ssh that exists: run as it is
        assert!(builtin_options("/nonexistent/bin/plink -i k", &opts)
            .unwrap()
            .is_none());
        assert!(builtin_options("/bin/sh -c x", &opts).unwrap().is_none());
    }
}

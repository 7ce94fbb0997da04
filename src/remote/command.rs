//! The command transport: `BORG_RSH` / `--rsh` spawned exactly as borg spawns it,
//! `<rsh words> [-p PORT] [USER@]HOST <remote-path> serve`.

use super::{Connection, RemoteOptions};
use crate::error::{Error, Result};
use crate::location::Location;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The argument vector borg would run for `loc`.
pub fn argv(rsh: &str, loc: &Location, opts: &RemoteOptions) -> Result<Vec<String>> {
    let mut args = shell_words::split(rsh)
        .map_err(|e| Error::Usage(format!("cannot parse BORG_RSH / --rsh {rsh:?}: {e}")))?;
    if args.is_empty() {
        return Err(Error::Usage("BORG_RSH / --rsh is empty".into()));
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
    args.extend(opts.serve_command());
    Ok(args)
}

/// Spawns the command and connects its pipes.
pub fn spawn(rsh: &str, loc: &Location, opts: &RemoteOptions) -> Result<Connection> {
    let args = argv(rsh, loc, opts)?;
    // `ssh -i KEY` with a key this user cannot read fails with a cryptic "Permission denied
    // (publickey)" from the server: say what is wrong before trying.
    if let Some(key) = args.windows(2).find(|w| w[0] == "-i").map(|w| &w[1]) {
        if let Some(e) = super::unreadable_key(std::path::Path::new(key), "the -i of BORG_RSH") {
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
        .map_err(|e| Error::Other(format!("cannot run {:?}: {e}", args[0])))?;
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
            argv("ssh -i /etc/borgmatic/key", &loc, &opts).unwrap(),
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
            argv("ssh", &loc, &opts).unwrap(),
            ["ssh", "::1", "/usr/local/bin/borg", "serve"]
        );
    }
}

//! borg 2 repositories over SSH: HTTP/1.1 on the pipe to `borg serve --rest` ([`RestFiles`],
//! a [`Files`]), the transport borg 2.0.0b25 uses for `ssh://` (its `borg serve` without
//! `--rest` speaks only the legacy RPC, for borg 1.x repositories).
//!
//! The remote command is `<remote path or borg> serve --rest --backend FILE:<path>`, `<path>`
//! by borg 2's rules ([`Location::borg2_path`]: `ssh://h/repo` is relative to the login
//! directory, `ssh://h//srv/repo` absolute), started by the same transports as `borg serve`
//! (`BORG_RSH` keeps the URL's port, where borg 2.0.0b25 drops it).
//!
//! The parts, one concern each: `http` (requests; responses read strictly, every length
//! checked before anything is allocated for it), `session` (one pipe: pipelined requests, the
//! reader thread, the silence limit, the server's last words), `ops` (list, load, range, kind,
//! and what each status means), `gather` (many ranges in few pipelined `POST /?cmd=gather`).
//! Sessions are reopened when they drop, within [`RemoteOptions::retries`] (reads are
//! idempotent: the request that was outstanding is sent again), and
//! [`RemoteOptions::connections`] of them share the ranges of one `load_ranges`.

mod gather;
mod http;
mod ops;
mod session;
#[cfg(test)]
mod tests;

use super::fanout::fan_out;
use super::reconnect::{open_sessions, Session, Sink};
use super::{default_connections, RemoteOptions};
use crate::error::Result;
use crate::location::Location;
use crate::store::files::{DirEntry, Files, Range};
use session::RestSession;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The remote command's words: `<remote path> serve --rest --backend FILE:<path>` (the last
/// word quoted for the remote shell when it needs to be).
pub(crate) fn command_words(loc: &Location, opts: &RemoteOptions) -> Vec<String> {
    let mut words = opts.serve_command();
    words.extend(["--rest", "--backend"].map(String::from));
    let backend = format!("FILE:{}", loc.borg2_path());
    words.push(shell_words::quote(&backend).into_owned());
    words
}

/// A borg 2 repository's files behind `borg serve --rest`, over one or more SSH sessions.
pub(crate) struct RestFiles {
    sessions: Vec<Session<RestSession>>,
    next: AtomicUsize,
    location: String,
}

/// Opens [`RemoteOptions::connections`] sessions (0: [`default_connections`]) to
/// `borg serve --rest` for the repository at `loc`, checking that it is served.
///
/// # Errors
///
/// [`Error::RepositoryDoesNotExist`](crate::Error::RepositoryDoesNotExist) when the server
/// has no repository at the path; [`Error::Remote`](crate::Error::Remote): `Connect` and
/// `Ssh` as for `borg serve`, `Protocol` when the server does not speak `borg serve --rest`
/// (a borg 1.x there, with the server's words), `Server` for its refusals (a path outside
/// `--restrict-to-path`, no permission), `Dropped` when it goes away or stays silent.
pub(crate) fn connect(loc: &Location, opts: &RemoteOptions) -> Result<RestFiles> {
    let n = match opts.connections {
        0 => default_connections(),
        n => n,
    };
    Ok(RestFiles {
        sessions: open_sessions::<RestSession>(loc, opts, n)?,
        next: AtomicUsize::new(0),
        location: loc.canonical(),
    })
}

impl RestFiles {
    /// The next session, round robin.
    fn pick(&self) -> &Session<RestSession> {
        &self.sessions[self.next.fetch_add(1, Ordering::Relaxed) % self.sessions.len()]
    }
}

/// `load_ranges` of `ranges` on `session`, resumed on a new session when it drops.
fn gather_on(session: &Session<RestSession>, ranges: &[Range], sink: &mut Sink<'_>) -> Result<()> {
    session.resume(ranges.len(), sink, |s, remaining, sink| {
        let want: Vec<&Range> = remaining.iter().map(|&i| &ranges[i]).collect();
        gather::load_ranges(s, &want, sink)
    })
}

impl Files for RestFiles {
    fn location(&self) -> &str {
        &self.location
    }

    fn list(&self, dir: &str) -> Result<Option<Vec<DirEntry>>> {
        self.pick().with(|s| ops::list(s, dir))
    }

    fn load(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.pick().with(|s| ops::load(s, name))
    }

    fn load_range(&self, range: &Range) -> Result<Vec<u8>> {
        self.pick().with(|s| ops::load_range(s, range))
    }

    fn load_ranges(
        &self,
        ranges: &[Range],
        sink: &mut dyn FnMut(usize, Result<Vec<u8>>) -> Result<()>,
    ) -> Result<()> {
        let bytes: u64 = ranges.iter().map(|r| r.len).fold(0, u64::saturating_add);
        if self.sessions.len() == 1 || bytes <= gather::GATHER_BYTES {
            return gather_on(self.pick(), ranges, sink);
        }
        // Contiguous shares of nearly equal bytes keep each server reading its packs in order.
        fan_out(
            &self.sessions,
            &gather::byte_shares(ranges, self.sessions.len()),
            sink,
            |session, share, sink| gather_on(session, &ranges[share], sink),
        )
    }

    fn kind(&self, name: &str) -> Result<Option<bool>> {
        self.pick().with(|s| ops::kind(s, name))
    }
}

/// Reads HTTP responses from `data` as the client does (the fuzz target).
pub(crate) fn fuzz_responses(data: &[u8]) {
    http::fuzz_responses(data);
}

#[cfg(test)]
mod command_tests {
    use super::*;

    #[test]
    fn the_remote_command_by_borg_2s_path_rules() {
        let opts = RemoteOptions::default();
        let words = |url: &str| command_words(&Location::parse(url).unwrap(), &opts).join(" ");
        assert_eq!(
            words("ssh://u@h:2222/repo"),
            "borg serve --rest --backend FILE:repo"
        );
        assert_eq!(
            words("ssh://h//srv/repo"),
            "borg serve --rest --backend FILE:/srv/repo"
        );
        assert_eq!(
            words("ssh://h/~/my repo"),
            "borg serve --rest --backend 'FILE:~/my repo'"
        );
        let opts = RemoteOptions {
            remote_path: Some("/opt/borg2/bin/borg".into()),
            ..Default::default()
        };
        let loc = Location::parse("ssh://u@h:2222/./r").unwrap();
        assert_eq!(
            crate::remote::command::argv("ssh -i k", &loc, &command_words(&loc, &opts)).unwrap(),
            [
                "ssh",
                "-i",
                "k",
                "-p",
                "2222",
                "u@h",
                "/opt/borg2/bin/borg",
                "serve",
                "--rest",
                "--backend",
                "FILE:r"
            ]
        );
    }
}

//! Repository locations: every form borg 1.x accepts, borg 2's `sftp://`, `BORG_REPO`, and the
//! `::archive` suffix.
//!
//! Parsing only; nothing here touches the file system or the network.
//!
//! ```
//! use oxiborg::location::{Location, Protocol};
//! let loc = Location::parse("ssh://borgwarehouse@host:22222/./repo-id::host-2025").unwrap();
//! assert_eq!(loc.proto, Protocol::Ssh);
//! assert_eq!(loc.user.as_deref(), Some("borgwarehouse"));
//! assert_eq!(loc.port, Some(22222));
//! assert_eq!(loc.path, "/./repo-id");
//! assert_eq!(loc.archive.as_deref(), Some(&b"host-2025"[..]));
//! ```

use crate::error::{Error, Result};
use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;

/// Expands borg's placeholders in a location given as bytes: all of it when it is UTF-8, else
/// the (UTF-8) repository part before `::`, with the archive name taken as it is.
fn expand(text: &[u8]) -> Result<Vec<u8>> {
    if let Ok(t) = std::str::from_utf8(text) {
        return crate::placeholders::replace(t).map(String::into_bytes);
    }
    match text.windows(2).position(|w| w == b"::") {
        Some(i) => match std::str::from_utf8(&text[..i]) {
            Ok(repo) => Ok([crate::placeholders::replace(repo)?.as_bytes(), &text[i..]].concat()),
            Err(_) => Ok(text.to_vec()),
        },
        None => Ok(text.to_vec()),
    }
}

/// How a repository is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// A directory on this machine.
    File,
    /// `borg serve` behind SSH.
    Ssh,
    /// Plain SFTP (`sftp://`): the repository's files read through any SFTP server, no borg
    /// on it. [`Location::path`] is the path the server is asked for (borg 2's rules).
    Sftp,
}

/// A parsed repository location, optionally naming an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Local file system or SSH.
    pub proto: Protocol,
    /// SSH user, if given.
    pub user: Option<String>,
    /// SSH host (IPv6 addresses without brackets).
    pub host: Option<String>,
    /// SSH port, if given.
    pub port: Option<u16>,
    /// The path: local path, or the path sent to `borg serve` in `open`.
    pub path: String,
    /// The archive after `::`, if any (bytes: archive names need not be UTF-8).
    pub archive: Option<Vec<u8>>,
    /// The text this location was parsed from (without the archive).
    pub original: String,
}

impl Location {
    /// Parses a location the way borg does (see the module docs for the forms).
    ///
    /// # Errors
    /// [`Error::InvalidLocation`] for text that is no location borg accepts.
    pub fn parse(text: &str) -> Result<Location> {
        Self::parse_bytes(text.as_bytes())
    }

    /// [`Location::parse`] on bytes, as command-line arguments are on Unix: the archive name
    /// after `::` may be any bytes (borg's archive names need not be UTF-8); the repository
    /// part must be UTF-8.
    ///
    /// # Errors
    /// [`Error::InvalidLocation`] for text that is no location borg accepts, or a repository
    /// part that is not UTF-8.
    pub fn parse_bytes(text: &[u8]) -> Result<Location> {
        let shown = crate::text::display_bytes(text);
        let bad = || Error::InvalidLocation(shown.clone());
        // The archive is split off at the first "::" after the host part (IPv6 hosts in
        // brackets contain "::" themselves).
        let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
        let search_from = match find(text, b"[") {
            Some(open)
                if text.starts_with(b"ssh://")
                    || text.starts_with(b"sftp://")
                    || !text[..open].iter().any(|b| matches!(b, b'/' | b':')) =>
            {
                find(&text[open..], b"]").map_or(0, |c| open + c + 1)
            }
            _ => 0,
        };
        let (repo, archive) = match find(&text[search_from..], b"::") {
            Some(i) => (&text[..search_from + i], Some(&text[search_from + i + 2..])),
            None => (text, None),
        };
        let archive = match archive {
            Some(a) if a.contains(&b'/') => return Err(bad()),
            Some([]) | None => None,
            Some(a) => Some(a.to_vec()),
        };
        let repo = std::str::from_utf8(repo).map_err(|_| bad())?;
        if repo.is_empty() {
            return Err(bad());
        }
        let mut loc = if let Some(rest) = repo.strip_prefix("ssh://") {
            parse_ssh_url(rest).ok_or_else(bad)?
        } else if let Some(rest) = repo.strip_prefix("sftp://") {
            parse_sftp_url(rest).ok_or_else(bad)?
        } else if let Some(rest) = repo.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(bad());
            }
            Location::local(normalize(rest))
        } else {
            parse_scp_or_local(repo).ok_or_else(bad)?
        };
        loc.archive = archive;
        loc.original = repo.to_string();
        Ok(loc)
    }

    /// Parses `text`, taking the repository from `BORG_REPO` when `text` is empty or starts
    /// with `::` (borg's `::ARCHIVE` shorthand).
    ///
    /// # Errors
    /// As [`Location::parse_with_default`].
    pub fn parse_with_env(text: Option<&OsStr>) -> Result<Location> {
        let env_repo = std::env::var("BORG_REPO").ok();
        Self::parse_with_default(text, env_repo.as_deref())
    }

    /// Like [`Location::parse_with_env`] with an explicit default repository. borg's
    /// placeholders (`{hostname}`, `{now}`, …) are expanded first (in an archive name that is
    /// not UTF-8 there are none: it is taken as it is).
    ///
    /// # Errors
    /// A bad placeholder, no repository at all, or a location borg would not accept.
    pub fn parse_with_default(
        text: Option<&OsStr>,
        default_repo: Option<&str>,
    ) -> Result<Location> {
        // borg expands placeholders in locations ("::{hostname}-{now:%Y-%m-%d}").
        let text: Option<Vec<u8>> = text.map(|t| expand(t.as_bytes())).transpose()?;
        let default_repo = default_repo.map(crate::placeholders::replace).transpose()?;
        let (text, default_repo) = (text.as_deref(), default_repo.as_deref());
        match text {
            Some(t) if !t.is_empty() && !t.starts_with(b"::") => Location::parse_bytes(t),
            other => {
                let repo = default_repo.filter(|r| !r.is_empty()).ok_or_else(|| {
                    Error::InvalidInput(
                        "No repository given: pass a location or set BORG_REPO.".to_string(),
                    )
                })?;
                let mut loc = Location::parse(repo)?;
                if let Some(t) = other {
                    if let Some(a) = t.strip_prefix(b"::") {
                        if a.contains(&b'/') {
                            return Err(Error::InvalidLocation(crate::text::display_bytes(t)));
                        }
                        loc.archive = (!a.is_empty()).then(|| a.to_vec());
                    }
                }
                Ok(loc)
            }
        }
    }

    /// The archive name for messages.
    pub fn archive_display(&self) -> Option<String> {
        self.archive.as_deref().map(crate::text::display_bytes)
    }

    fn local(path: String) -> Location {
        Location {
            proto: Protocol::File,
            user: None,
            host: None,
            port: None,
            path,
            archive: None,
            original: String::new(),
        }
    }

    /// Is this a repository on this machine?
    pub fn is_local(&self) -> bool {
        self.proto == Protocol::File
    }

    /// The path a borg 2 server is asked for (`borg serve --rest --backend FILE:<path>`), by
    /// borg 2's rules: an `ssh://` path is relative to the login directory, `//` makes it
    /// absolute (`ssh://host/repo` → `repo`, `ssh://host//srv/repo` → `/srv/repo`,
    /// `ssh://host/~/repo` → `~/repo`); an scp-style path is taken as it is.
    pub fn borg2_path(&self) -> String {
        let url_path = self
            .original
            .strip_prefix("ssh://")
            .and_then(|rest| find_path_start(rest).map(|i| rest[i..].to_string()));
        match url_path {
            Some(p) => {
                let rel = p.strip_prefix('/').unwrap_or(&p);
                let n = normalize(rel);
                if rel.starts_with('/') && !n.starts_with('/') {
                    format!("/{n}")
                } else {
                    n
                }
            }
            None => self.path.clone(),
        }
    }

    /// `[user@]host[:port]` as borg writes it in a URL (IPv6 hosts in brackets).
    fn authority(&self) -> String {
        let mut s = String::new();
        if let Some(u) = &self.user {
            s.push_str(u);
            s.push('@');
        }
        let host = self.host.as_deref().unwrap_or("");
        if host.contains(':') {
            s.push('[');
            s.push_str(host);
            s.push(']');
        } else {
            s.push_str(host);
        }
        if let Some(p) = self.port {
            s.push_str(&format!(":{p}"));
        }
        s
    }

    /// The location as borg prints it in messages (without the archive).
    pub fn canonical(&self) -> String {
        match self.proto {
            Protocol::File => self.path.clone(),
            // sftp://host/rel is relative to the server's start directory, sftp://host//abs
            // absolute.
            Protocol::Sftp => format!("sftp://{}/{}", self.authority(), self.path),
            Protocol::Ssh => {
                let mut s = format!("ssh://{}", self.authority());
                if self.path.starts_with('~') {
                    s.push('/'); // /~/x: x in the home directory
                } else if !self.path.starts_with('/') {
                    s.push_str("/./");
                }
                s.push_str(&self.path);
                s
            }
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

/// Splits `[user@]host[:port]` off an `ssh://` URL's rest; the path must be absolute.
fn parse_ssh_url(rest: &str) -> Option<Location> {
    let slash = find_path_start(rest)?;
    let (authority, path) = rest.split_at(slash);
    let (user, hostport) = split_user(authority)?;
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        let end = h.find(']')?;
        let host = &h[..end];
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return None;
        }
        let after = &h[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse::<u16>().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        (host.to_string(), port)
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p.parse::<u16>().ok()?)),
            None => (hostport.to_string(), None),
        }
    };
    if host.is_empty() {
        return None;
    }
    Some(Location {
        proto: Protocol::Ssh,
        user,
        host: Some(host),
        port,
        path: normalize(path),
        archive: None,
        original: String::new(),
    })
}

/// An `sftp://` URL's rest: `[user@]host[:port]` as for `ssh://`, the path by borg 2's rules
/// (`/rel` relative to the SFTP server's start directory, `//abs` absolute; a leading `~/` is
/// the start directory too, which is the home directory on OpenSSH).
fn parse_sftp_url(rest: &str) -> Option<Location> {
    let mut loc = parse_ssh_url(rest)?;
    let url_path = &rest[find_path_start(rest)?..];
    let rel = url_path.strip_prefix('/').unwrap_or(url_path);
    let mut path = normalize(rel);
    if rel.starts_with('/') && !path.starts_with('/') {
        path = format!("/{path}");
    }
    if path == "~" {
        path = ".".into();
    } else if let Some(r) = path.strip_prefix("~/") {
        path = r.to_string();
    }
    loc.proto = Protocol::Sftp;
    loc.path = path;
    Some(loc)
}

/// Index of the '/' that starts the path in `host/path`, skipping an IPv6 `[...]`.
fn find_path_start(rest: &str) -> Option<usize> {
    let from = if rest.contains('[') {
        rest.find(']')?
    } else {
        0
    };
    rest[from..].find('/').map(|i| i + from)
}

fn split_user(authority: &str) -> Option<(Option<String>, &str)> {
    match authority.split_once('@') {
        Some((u, rest)) => {
            if u.is_empty() || u.contains([':', '/']) {
                return None;
            }
            Some((Some(u.to_string()), rest))
        }
        None => Some((None, authority)),
    }
}

/// `[user@]host:path` (scp style) or a local path.
fn parse_scp_or_local(repo: &str) -> Option<Location> {
    // borg: host is `[^:/]+` or a bracketed IPv6 address, followed by ':'.
    let scp = if let Some(h) = repo
        .split_once('@')
        .filter(|(u, _)| !u.is_empty() && !u.contains([':', '/']))
        .map(|(u, r)| (Some(u.to_string()), r))
        .or(Some((None, repo)))
    {
        let (user, rest) = h;
        if let Some(inner) = rest.strip_prefix('[') {
            inner
                .find("]:")
                .map(|end| (user, inner[..end].to_string(), inner[end + 2..].to_string()))
        } else {
            match rest.find([':', '/']) {
                Some(i) if rest.as_bytes()[i] == b':' && i > 0 => {
                    Some((user, rest[..i].to_string(), rest[i + 1..].to_string()))
                }
                _ => None,
            }
        }
    } else {
        None
    };
    match scp {
        Some((user, host, path)) if !path.is_empty() => Some(Location {
            proto: Protocol::Ssh,
            user,
            host: Some(host),
            port: None,
            path: normalize(&path),
            archive: None,
            original: String::new(),
        }),
        Some(_) => None,
        None => {
            if repo.contains('@') && !repo.contains('/') {
                // "user@host" without ':path' is not a location.
                return None;
            }
            Some(Location::local(normalize(repo)))
        }
    }
}

/// Collapses `a//b` and `a/./b` and resolves `..` like `os.path.normpath`, but keeps a leading
/// `/./` (relative-to-server-cwd marker) and a leading `~`.
fn normalize(path: &str) -> String {
    let (prefix, rest) = if let Some(r) = path.strip_prefix("/./") {
        ("/./", r)
    } else if let Some(r) = path.strip_prefix('/') {
        ("/", r)
    } else {
        ("", path)
    };
    let mut parts: Vec<&str> = Vec::new();
    for comp in rest.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if prefix.is_empty() {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (prefix, joined.is_empty()) {
        ("", true) => ".".to_string(),
        ("/./", true) => "/.".to_string(),
        _ => format!("{prefix}{joined}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sftp_forms() {
        for (url, path, canonical) in [
            ("sftp://h/repo", "repo", "sftp://h/repo"),
            ("sftp://u@h:2222/./repo-id", "repo-id", "sftp://u@h:2222/repo-id"),
            ("sftp://h//srv/repo", "/srv/repo", "sftp://h//srv/repo"),
            ("sftp://h/~/repo", "repo", "sftp://h/repo"),
            ("sftp://u@[::1]:22//srv/r", "/srv/r", "sftp://u@[::1]:22//srv/r"),
            ("sftp://h/a/../b/", "b", "sftp://h/b"),
        ] {
            let l = p(url);
            assert_eq!(l.proto, Protocol::Sftp, "{url}");
            assert_eq!(l.path, path, "{url}");
            assert_eq!(l.borg2_path(), path, "{url}");
            assert_eq!(l.canonical(), canonical, "{url}");
            assert!(!l.is_local());
            assert_eq!(p(&canonical).path, path, "{canonical} round trip");
        }
        let l = p("sftp://u@[::1]:22//srv/r::arch");
        assert_eq!(l.host.as_deref(), Some("::1"));
        assert_eq!(l.archive.as_deref(), Some(&b"arch"[..]));
        assert!(Location::parse("sftp://host").is_err());
        assert_eq!(p("sftp://host/").path, "."); // the start directory itself
        assert!(Location::parse("sftp://host:x/r").is_err());
    }

    #[test]
    fn borg2_paths() {
        for (url, want) in [
            ("ssh://h/repo", "repo"),
            ("ssh://u@h:2222/./repo-id", "repo-id"),
            ("ssh://h//srv/repo", "/srv/repo"),
            ("ssh://h/~/repo", "~/repo"),
            ("ssh://[::1]:22//srv/r", "/srv/r"),
            ("h:/srv/r", "/srv/r"),
        ] {
            assert_eq!(Location::parse(url).unwrap().borg2_path(), want, "{url}");
        }
    }

    fn p(s: &str) -> Location {
        Location::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn local_forms() {
        let l = p("/srv/repo");
        assert_eq!((l.proto, l.path.as_str()), (Protocol::File, "/srv/repo"));
        assert_eq!(p("file:///srv//repo/").path, "/srv/repo");
        assert_eq!(p("rel/./repo").path, "rel/repo");
        assert_eq!(p("/tmp/a:b").proto, Protocol::File);
        let l = p("/srv/repo::host::2024");
        assert_eq!(l.archive.as_deref(), Some(&b"host::2024"[..]));
    }

    #[test]
    fn ssh_url_forms() {
        let l = p("ssh://user@host:2222/abs/path");
        assert_eq!(l.user.as_deref(), Some("user"));
        assert_eq!(l.host.as_deref(), Some("host"));
        assert_eq!(l.port, Some(2222));
        assert_eq!(l.path, "/abs/path");
        assert_eq!(p("ssh://host/./rel/path").path, "/./rel/path");
        assert_eq!(p("ssh://host/~/path").path, "/~/path");
        assert_eq!(p("ssh://host/~other/path").path, "/~other/path");
        let l = p("ssh://user@[::1]:22/p::arch");
        assert_eq!(l.host.as_deref(), Some("::1"));
        assert_eq!(l.port, Some(22));
        assert_eq!(l.archive.as_deref(), Some(&b"arch"[..]));
        assert_eq!(l.canonical(), "ssh://user@[::1]:22/p");
        let l = p("ssh://borgwarehouse@voile.example:22222/./abc123");
        assert_eq!(
            l.canonical(),
            "ssh://borgwarehouse@voile.example:22222/./abc123"
        );
    }

    #[test]
    fn scp_forms() {
        let l = p("user@host:rel/path");
        assert_eq!(l.proto, Protocol::Ssh);
        assert_eq!(l.user.as_deref(), Some("user"));
        assert_eq!(l.path, "rel/path");
        assert_eq!(p("host:/abs/path").path, "/abs/path");
        assert_eq!(p("host:~/path").path, "~/path");
        assert_eq!(p("host:~/path").canonical(), "ssh://host/~/path");
        let l = p("user@[fe80::1]:/p");
        assert_eq!(l.host.as_deref(), Some("fe80::1"));
        assert_eq!(l.path, "/p");
    }

    #[test]
    fn bad_forms() {
        assert!(Location::parse("").is_err());
        assert!(Location::parse("ssh://host").is_err());
        assert!(Location::parse("ssh://host:port/x").is_err());
        assert!(Location::parse("/repo::a/b").is_err());
        assert!(Location::parse("file://rel").is_err());
    }

    #[test]
    fn env_shorthand() {
        let os = |s: &'static str| Some(OsStr::new(s));
        let l = Location::parse_with_default(os("::arch"), Some("/srv/r")).unwrap();
        assert_eq!(l.path, "/srv/r");
        assert_eq!(l.archive.as_deref(), Some(&b"arch"[..]));
        let l = Location::parse_with_default(None, Some("ssh://h/./r")).unwrap();
        assert_eq!(l.archive, None);
        assert!(Location::parse_with_default(os("::a"), None).is_err());
        // archive names are bytes
        let l = Location::parse_with_default(Some(OsStr::from_bytes(b"::a\xff{x")), Some("/r"))
            .unwrap();
        assert_eq!(l.archive.as_deref(), Some(&b"a\xff{x"[..]));
        let l = Location::parse_bytes(b"/srv/r::b\xfe").unwrap();
        assert_eq!(l.archive.as_deref(), Some(&b"b\xfe"[..]));
        assert!(Location::parse_bytes(b"/srv/\xff::b").is_err());
    }
}

//! The parts of `~/.ssh/config` that choose where and how to connect: `Host` blocks with
//! `HostName`, `User`, `Port`, `IdentityFile`, `UserKnownHostsFile`, `StrictHostKeyChecking` and
//! `BatchMode` (first value wins, as in OpenSSH; `IdentityFile` accumulates). `Match` blocks are
//! skipped.

use std::path::{Path, PathBuf};

/// Settings that apply to one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostConfig {
    /// Real host name.
    pub hostname: Option<String>,
    /// Login user.
    pub user: Option<String>,
    /// Port.
    pub port: Option<u16>,
    /// Identity files, in order.
    pub identity_files: Vec<PathBuf>,
    /// known_hosts file.
    pub known_hosts: Option<PathBuf>,
    /// `StrictHostKeyChecking`: what to do with a host key known_hosts does not record.
    pub strict_host_key_checking: Option<StrictHostKeyChecking>,
    /// `BatchMode`: never ask.
    pub batch_mode: Option<bool>,
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

pub(crate) fn glob_match(pat: &[u8], s: &[u8]) -> bool {
    match (pat.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob_match(&pat[1..], s) || (!s.is_empty() && glob_match(pat, &s[1..])),
        (Some(b'?'), Some(_)) => glob_match(&pat[1..], &s[1..]),
        (Some(p), Some(c)) if p.eq_ignore_ascii_case(c) => glob_match(&pat[1..], &s[1..]),
        _ => false,
    }
}

fn host_matches(patterns: &str, host: &str) -> bool {
    let mut matched = false;
    for p in patterns.split([' ', ',']).filter(|p| !p.is_empty()) {
        if let Some(neg) = p.strip_prefix('!') {
            if glob_match(neg.as_bytes(), host.as_bytes()) {
                return false;
            }
        } else if glob_match(p.as_bytes(), host.as_bytes()) {
            matched = true;
        }
    }
    matched
}

fn expand(v: &str, home: &Path) -> PathBuf {
    match v.strip_prefix("~/") {
        Some(rest) => home.join(rest),
        None => PathBuf::from(v),
    }
}

/// Reads the settings for `host` from config text.
pub fn lookup(text: &str, host: &str, home: &Path) -> HostConfig {
    let mut c = HostConfig::default();
    let mut active = true;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.find(|c: char| c == '=' || c.is_whitespace()) {
            Some(i) => (
                &line[..i],
                line[i + 1..].trim_start_matches(['=', ' ', '\t']).trim(),
            ),
            None => continue,
        };
        let value = value.trim_matches('"');
        match key.to_ascii_lowercase().as_str() {
            "host" => active = host_matches(value, host),
            "match" => active = false,
            _ if !active => {}
            "hostname" => {
                c.hostname.get_or_insert_with(|| value.replace("%h", host));
            }
            "user" => {
                c.user.get_or_insert_with(|| value.to_string());
            }
            "port" if c.port.is_none() => c.port = value.parse().ok(),
            "identityfile" => c.identity_files.push(expand(value, home)),
            "userknownhostsfile" if c.known_hosts.is_none() => {
                c.known_hosts = value.split_whitespace().next().map(|v| expand(v, home));
            }
            "stricthostkeychecking" if c.strict_host_key_checking.is_none() => {
                c.strict_host_key_checking = StrictHostKeyChecking::parse(value);
            }
            "batchmode" if c.batch_mode.is_none() => c.batch_mode = yes_no(value),
            _ => {}
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_value_wins_and_globs() {
        let text = "Host voile*\n  HostName voile.example\n  Port 22222\n  IdentityFile ~/.ssh/borg\n  StrictHostKeyChecking accept-new\nHost *\n  User me\n  Port 22\n  IdentityFile ~/.ssh/id_ed25519\n  StrictHostKeyChecking=yes\n  BatchMode yes\n";
        let c = lookup(text, "voile", Path::new("/home/me"));
        assert_eq!(c.hostname.as_deref(), Some("voile.example"));
        assert_eq!(c.port, Some(22222));
        assert_eq!(c.user.as_deref(), Some("me"));
        assert_eq!(c.identity_files.len(), 2);
        assert_eq!(
            c.strict_host_key_checking,
            Some(StrictHostKeyChecking::AcceptNew)
        );
        let c = lookup(text, "other", Path::new("/home/me"));
        assert_eq!((c.hostname, c.port), (None, Some(22)));
        assert_eq!(
            (c.strict_host_key_checking, c.batch_mode),
            (Some(StrictHostKeyChecking::Yes), Some(true))
        );
        assert!(host_matches("* !bad", "good") && !host_matches("* !bad", "bad"));
    }
}

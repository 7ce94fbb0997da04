//! The OpenSSH client configuration (`~/.ssh/config`, then `/etc/ssh/ssh_config`; or the file
//! `ssh -F` names) as far as it decides where and how the built-in client connects, read with
//! ssh_config(5)'s rules:
//!
//! - the first value obtained for a setting wins (the location's user and port come first, as
//!   ssh's command line does); `IdentityFile` accumulates;
//! - `Host` blocks (whitespace-separated patterns, `!` negation, case-sensitive as in OpenSSH)
//!   and `Match` blocks: `all`, `host` (the `HostName` obtained so far, else the host as given),
//!   `originalhost`, `user` (the remote user obtained so far), `localuser`, `tagged` (`Tag`),
//!   `sessiontype` (always `exec`), `command` (the `borg serve` command), `canonical` and
//!   `final` (a second, final pass is made when `Match final` asks for one, as ssh does; host
//!   names are not canonicalised), with `!` negation and comma-separated pattern lists.
//!   `Match exec`, `localnetwork` and `version` cannot be evaluated here — the built-in client
//!   never runs commands — so a `Match` line holding one does not match (a debug line says so);
//! - `Include` (globs, `~`, tokens and `${VAR}`; relative paths under `~/.ssh` for the user's
//!   file and `/etc/ssh` for the system one), at the top level or inside a block (then
//!   conditionally), nested at most 16 deep; included files and `~/.ssh/config` must not be
//!   writable by others (ssh refuses them too);
//! - tokens: `%h` and `%%` in `HostName`; `%%`, `%C`, `%d`, `%h`, `%i`, `%j`, `%k`, `%L`, `%l`,
//!   `%n`, `%p`, `%r`, `%u` and `${VAR}` in `IdentityFile` and `UserKnownHostsFile`, expanded
//!   once the host's settings are known.
//!
//! The settings read are `HostName`, `User`, `Port`, `IdentityFile`, `UserKnownHostsFile`,
//! `StrictHostKeyChecking` and `BatchMode` (and `Tag`, `ProxyJump` and `HostKeyAlias` for
//! `Match tagged` and the tokens); the others are skipped.

use crate::error::{Error, RemoteErrorKind, Result};
use sha1::Digest;
use std::path::{Path, PathBuf};

/// How deep `Include` may nest (OpenSSH's `READCONF_MAX_DEPTH`).
pub const MAX_INCLUDE_DEPTH: usize = 16;

const LOGGER: &str = "borg.remote";

/// Settings that apply to one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// Host name to connect to (`HostName`, `%h` expanded; else the host as given).
    pub hostname: String,
    /// Login user: the location's, else `User`, else the local user.
    pub user: String,
    /// Port: the location's, else `Port`, else 22.
    pub port: u16,
    /// Identity files, in order, tokens and `~` expanded.
    pub identity_files: Vec<IdentityFile>,
    /// `UserKnownHostsFile`: the files read, the first one also written (`none`: `/dev/null`).
    pub known_hosts: Option<Vec<PathBuf>>,
    /// `StrictHostKeyChecking`: what to do with a host key known_hosts does not record.
    pub strict_host_key_checking: Option<StrictHostKeyChecking>,
    /// `BatchMode`: never ask.
    pub batch_mode: Option<bool>,
}

/// An `IdentityFile`, with where it was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityFile {
    /// The key file (expanded).
    pub path: PathBuf,
    /// The configuration file that names it.
    pub file: PathBuf,
    /// Its line there (1-based).
    pub line: usize,
}

/// The connection the configuration is read for, and what is fixed before it is read.
#[derive(Debug, Clone)]
pub struct Query {
    /// The host as given (the location's host, possibly an alias).
    pub host: String,
    /// The location's user, which `User` does not override.
    pub user: Option<String>,
    /// The location's (or `ssh -p`'s) port, which `Port` does not override.
    pub port: Option<u16>,
    /// The remote command (for `Match command`).
    pub command: String,
    /// The local user name (`%u`, `Match localuser`, the default remote user).
    pub local_user: String,
    /// The local user id (`%i`).
    pub uid: u32,
    /// The home directory (`~`, `%d`, relative `Include`s).
    pub home: PathBuf,
    /// The local host name (`%l`; `%L` is its first label).
    pub local_host: String,
}

impl Query {
    /// A query for `host`, with the local user from `USER` (else the user database: ssh takes
    /// it from there only), the system's host name, and `home` as the home directory.
    pub fn new(host: &str, home: &Path) -> Query {
        let uid = rustix::process::getuid().as_raw();
        let local_user = std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .or_else(|| {
                crate::users::user_by_uid(uid)
                    .ok()
                    .flatten()
                    .map(|u| u.name_lossy())
                    .filter(|u| !u.is_empty())
            })
            .unwrap_or_else(|| uid.to_string());
        Query {
            host: host.to_string(),
            user: None,
            port: None,
            command: String::new(),
            local_user,
            uid,
            home: home.to_path_buf(),
            local_host: rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned(),
        }
    }
}

/// Which configuration files are read, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFiles {
    /// The user's file: `~/.ssh/config`, or the one `ssh -F` names.
    pub user: Option<PathBuf>,
    /// `user` was named on purpose (`-F`): it must exist, its permissions are not checked, and
    /// the system file is not read (as ssh does).
    pub explicit: bool,
    /// The system-wide file, read after the user's.
    pub system: Option<PathBuf>,
}

impl ConfigFiles {
    /// The files ssh reads: `explicit` (`-F FILE`; `none` for no file at all), else
    /// `HOME/.ssh/config` and `/etc/ssh/ssh_config`.
    pub fn openssh(home: &Path, explicit: Option<&Path>) -> ConfigFiles {
        match explicit {
            Some(f) if f == Path::new("none") => ConfigFiles {
                user: None,
                explicit: true,
                system: None,
            },
            Some(f) => ConfigFiles {
                user: Some(f.to_path_buf()),
                explicit: true,
                system: None,
            },
            None => ConfigFiles {
                user: Some(home.join(".ssh/config")),
                explicit: false,
                system: Some(PathBuf::from("/etc/ssh/ssh_config")),
            },
        }
    }
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

// ---------------------------------------------------------------------------------------------
// Wildcards

/// The length of the pattern element at the start of `pat` if it matches `c` (a `?`, a
/// literal, or — with `classes` — a `[...]` class or a `\`-escaped character); `None` if it
/// does not match. `*` is handled by the caller.
fn element(pat: &[char], c: char, fold: bool, classes: bool) -> Option<usize> {
    let same = |a: char, b: char| {
        if fold {
            a.to_lowercase().eq(b.to_lowercase())
        } else {
            a == b
        }
    };
    match pat[0] {
        '?' => Some(1),
        '\\' if classes && pat.len() > 1 => same(pat[1], c).then_some(2),
        '[' if classes => match class(pat, c, fold) {
            Some((true, len)) => Some(len),
            Some((false, _)) => None,
            None => same('[', c).then_some(1),
        },
        p => same(p, c).then_some(1),
    }
}

/// A glob(7) bracket expression at the start of `pat` against `c`: whether it matches and its
/// length, or `None` when it is not closed (then `[` is literal).
fn class(pat: &[char], c: char, fold: bool) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pat.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let c = if fold { c.to_ascii_lowercase() } else { c };
    let norm = |x: char| if fold { x.to_ascii_lowercase() } else { x };
    let mut hit = false;
    let mut first = true;
    loop {
        let lo = *pat.get(i)?;
        if lo == ']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        if pat.get(i + 1) == Some(&'-') && pat.get(i + 2).is_some_and(|&h| h != ']') {
            let hi = pat[i + 2];
            if norm(lo) <= c && c <= norm(hi) {
                hit = true;
            }
            i += 3;
        } else {
            if norm(lo) == c {
                hit = true;
            }
            i += 1;
        }
    }
}

/// Matches `s` against a pattern of `*` (any run), `?` (one character) and literals — with
/// `classes`, also glob(7)'s `[...]` and `\` escapes — in O(len(pat) × len(s)) at worst: a
/// star remembers where it was, and a mismatch goes back only to the latest star (the usual
/// two-pointer wildcard match; no recursion). Returns whether it matched and the number of
/// steps taken.
fn wild_steps(pat: &[char], s: &[char], fold: bool, classes: bool) -> (bool, usize) {
    let (mut p, mut i, mut steps) = (0usize, 0usize, 0usize);
    // (pattern index after the latest star, string index that star's run ends at)
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        steps += 1;
        if p < pat.len() {
            if pat[p] == '*' {
                p += 1;
                star = Some((p, i));
                continue;
            }
            if let Some(n) = element(&pat[p..], s[i], fold, classes) {
                p += n;
                i += 1;
                continue;
            }
        }
        match star {
            Some((sp, si)) => {
                // the star takes one more character
                star = Some((sp, si + 1));
                p = sp;
                i = si + 1;
            }
            None => return (false, steps),
        }
    }
    while p < pat.len() && pat[p] == '*' {
        p += 1;
    }
    (p == pat.len(), steps)
}

fn wild(pat: &str, s: &str, fold: bool) -> bool {
    let pat: Vec<char> = pat.chars().collect();
    let s: Vec<char> = s.chars().collect();
    wild_steps(&pat, &s, fold, false).0
}

/// OpenSSH's `*`/`?` pattern match, case-insensitive (host names in known_hosts).
pub(crate) fn glob_match(pat: &[u8], s: &[u8]) -> bool {
    wild(
        &String::from_utf8_lossy(pat),
        &String::from_utf8_lossy(s),
        true,
    )
}

/// OpenSSH's `match_pattern_list`: a comma-separated list of patterns, `!` negating one.
/// `Some(false)` when a negated pattern matches (that decides), `Some(true)` when a plain one
/// does, `None` when none does.
fn pattern_list(s: &str, list: &str, fold: bool) -> Option<bool> {
    let mut found = None;
    for p in list.split(',') {
        let (neg, p) = match p.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, p),
        };
        if wild(p, s, fold) {
            if neg {
                return Some(false);
            }
            found = Some(true);
        }
    }
    found
}

/// The files a glob(3) pattern names (an absolute path; `*`, `?`, `[...]` in any component;
/// a leading `.` matched only by a `.`), sorted. Directories that cannot be read are skipped.
fn glob_paths(pattern: &str) -> Vec<PathBuf> {
    let meta = |c: &str| c.contains(['*', '?', '[']);
    let mut found = vec![PathBuf::from("/")];
    let parts: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
    for (n, part) in parts.iter().enumerate() {
        let last = n + 1 == parts.len();
        let mut next = Vec::new();
        for dir in &found {
            if !meta(part) {
                let p = dir.join(part.replace('\\', ""));
                if last || p.is_dir() {
                    next.push(p);
                }
                continue;
            }
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let pat: Vec<char> = part.chars().collect();
            for e in entries.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') && !part.starts_with('.') {
                    continue;
                }
                let chars: Vec<char> = name.chars().collect();
                if wild_steps(&pat, &chars, false, true).0 && (last || e.path().is_dir()) {
                    next.push(e.path());
                }
            }
        }
        found = next;
    }
    found.retain(|p| p.exists());
    found.sort();
    found
}

// ---------------------------------------------------------------------------------------------
// Lines

/// `keyword args…` of a line (`keyword=args` too); `None` for a blank line or a comment.
fn split_keyword(line: &str) -> Option<(&str, &str)> {
    let s = line
        .trim_end_matches([' ', '\t', '\r', '\n', '\x0c'])
        .trim_start_matches([' ', '\t']);
    if s.is_empty() || s.starts_with('#') {
        return None;
    }
    let end = s.find([' ', '\t', '=']).unwrap_or(s.len());
    let keyword = &s[..end];
    if keyword.is_empty() {
        return None;
    }
    let mut rest = &s[end..];
    let by_equals = rest.starts_with('=');
    if by_equals {
        rest = &rest[1..];
    }
    rest = rest.trim_start_matches([' ', '\t']);
    if !by_equals {
        if let Some(r) = rest.strip_prefix('=') {
            rest = r.trim_start_matches([' ', '\t']);
        }
    }
    Some((keyword, rest))
}

/// Whether `\` escapes `next`: a quote or a backslash, or a space outside quotes.
fn escapable(next: Option<char>, unquoted: bool) -> bool {
    matches!(next, Some('\'' | '"' | '\\')) || (unquoted && next == Some(' '))
}

/// OpenSSH's argument splitting: whitespace-separated, `"…"` and `'…'` quoting, `\` escaping
/// a quote, a backslash or (outside quotes) a space; a word starting with `#` ends the line.
fn split_args(s: &str) -> std::result::Result<Vec<String>, &'static str> {
    let c: Vec<char> = s.chars().collect();
    let mut args = Vec::new();
    let mut i = 0;
    while i < c.len() {
        if c[i] == ' ' || c[i] == '\t' {
            i += 1;
            continue;
        }
        if c[i] == '#' {
            break;
        }
        let mut arg = String::new();
        let mut quote = None;
        while i < c.len() {
            let ch = c[i];
            match quote {
                _ if ch == '\\' && escapable(c.get(i + 1).copied(), quote.is_none()) => {
                    arg.push(c[i + 1]);
                    i += 2;
                    continue;
                }
                None if ch == ' ' || ch == '\t' => break,
                None if ch == '"' || ch == '\'' => quote = Some(ch),
                Some(q) if ch == q => quote = None,
                _ => arg.push(ch),
            }
            i += 1;
        }
        if quote.is_some() {
            return Err("invalid quotes");
        }
        args.push(arg);
    }
    Ok(args)
}

/// A value with the place it was set.
#[derive(Debug, Clone)]
struct Setting<T> {
    value: T,
    file: PathBuf,
    line: usize,
}

impl<T> Setting<T> {
    fn err(&self, msg: impl std::fmt::Display) -> Error {
        at(&self.file, self.line, msg)
    }
}

fn at(file: &Path, line: usize, msg: impl std::fmt::Display) -> Error {
    Error::remote(
        RemoteErrorKind::Ssh,
        format!("ssh config {} line {line}: {msg}", file.display()),
    )
}

/// The values obtained so far (first wins), unexpanded.
#[derive(Debug, Default)]
struct Values {
    hostname: Option<Setting<String>>,
    user: Option<String>,
    port: Option<u16>,
    identity_files: Vec<Setting<String>>,
    known_hosts: Option<Setting<Vec<String>>>,
    strict: Option<StrictHostKeyChecking>,
    batch_mode: Option<bool>,
    tag: Option<String>,
    proxy_jump: Option<String>,
    host_key_alias: Option<String>,
}

/// How a file is read.
#[derive(Debug, Clone, Copy)]
struct Flags {
    /// A user configuration (relative `Include`s under `~/.ssh`, `~` allowed).
    user_conf: bool,
    /// Refuse the file when others may write it.
    check_perm: bool,
    /// Included from an inactive block: no `Host`/`Match` in it applies.
    never_match: bool,
}

/// The text of a top-level file, or the file to read.
enum Top<'a> {
    Path(&'a Path, Flags, bool),
    Text(&'a str, &'a Path, Flags),
}

struct Reader<'q> {
    q: &'q Query,
    v: Values,
    final_pass: bool,
    want_final: bool,
    /// In the final pass: the host name `Host` and `Match host` are matched against.
    final_host: String,
    canonicalize_noted: bool,
}

impl Reader<'_> {
    /// The host `Match host` sees: the `HostName` obtained so far (with `%h`), else the host
    /// as given.
    fn current_host(&self) -> Result<String> {
        if self.final_pass {
            return Ok(self.final_host.clone());
        }
        match &self.v.hostname {
            Some(h) => expand(&h.value, &[('h', &self.q.host)], false).map_err(|e| h.err(e)),
            None => Ok(self.q.host.clone()),
        }
    }

    fn tokens(&self, host: &str, ruser: &str) -> Vec<(char, String)> {
        let port = self.v.port.unwrap_or(22).to_string();
        let jump = self
            .v
            .proxy_jump
            .clone()
            .filter(|j| !j.eq_ignore_ascii_case("none"))
            .unwrap_or_default();
        let short = self.q.local_host.split('.').next().unwrap_or_default();
        let mut h = sha1::Sha1::new();
        for part in [self.q.local_host.as_str(), host, &port, ruser, &jump] {
            h.update(part.as_bytes());
        }
        vec![
            ('C', hex::encode(h.finalize())),
            ('L', short.to_string()),
            ('d', self.q.home.to_string_lossy().into_owned()),
            ('h', host.to_string()),
            (
                'k',
                self.v
                    .host_key_alias
                    .clone()
                    .unwrap_or_else(|| host.to_string()),
            ),
            ('l', self.q.local_host.clone()),
            ('n', self.q.host.clone()),
            ('p', port),
            ('r', ruser.to_string()),
            ('u', self.q.local_user.clone()),
            ('i', self.q.uid.to_string()),
            ('j', jump),
        ]
    }

    fn ruser(&self) -> String {
        self.v
            .user
            .clone()
            .unwrap_or_else(|| self.q.local_user.clone())
    }

    fn read(&mut self, tops: &[Top]) -> Result<()> {
        for t in tops {
            let mut active = true;
            match *t {
                Top::Path(p, flags, required) => {
                    if !self.read_path(p, flags, &mut active, 0)? && required {
                        return Err(Error::remote(
                            RemoteErrorKind::Ssh,
                            format!(
                                "cannot read the ssh config file {}: no such file",
                                p.display()
                            ),
                        ));
                    }
                }
                Top::Text(text, name, flags) => {
                    self.read_text(text, name, flags, &mut active, 0)?
                }
            }
        }
        Ok(())
    }

    /// Reads a file; `false` if it does not exist.
    fn read_path(
        &mut self,
        path: &Path,
        flags: Flags,
        active: &mut bool,
        depth: usize,
    ) -> Result<bool> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => {
                return Err(Error::remote(
                    RemoteErrorKind::Ssh,
                    format!("cannot read the ssh config file {}: {e}", path.display()),
                ))
            }
        };
        if flags.check_perm {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(path).map_err(|e| {
                Error::remote(
                    RemoteErrorKind::Ssh,
                    format!("cannot read the ssh config file {}: {e}", path.display()),
                )
            })?;
            let me = rustix::process::getuid().as_raw();
            if (m.uid() != 0 && m.uid() != me) || m.mode() & 0o022 != 0 {
                return Err(Error::remote(
                    RemoteErrorKind::Ssh,
                    format!(
                    "bad owner or permissions on the ssh config file {} (owner uid {}, mode {:o}): \
                     it must belong to you or root and be writable by no one else, as ssh requires \
                     (chmod go-w {})",
                    path.display(),
                    m.uid(),
                    m.mode() & 0o7777,
                    shell_words::quote(&path.to_string_lossy())
                ),
                ));
            }
        }
        log::debug!(target: LOGGER, "Reading configuration data {}", path.display(),
        );
        self.read_text(&String::from_utf8_lossy(&bytes), path, flags, active, depth)?;
        Ok(true)
    }

    fn read_text(
        &mut self,
        text: &str,
        file: &Path,
        flags: Flags,
        active: &mut bool,
        depth: usize,
    ) -> Result<()> {
        for (n, line) in text.lines().enumerate() {
            self.line(line, file, n + 1, flags, active, depth)?;
        }
        Ok(())
    }

    fn line(
        &mut self,
        line: &str,
        file: &Path,
        n: usize,
        flags: Flags,
        active: &mut bool,
        depth: usize,
    ) -> Result<()> {
        let Some((keyword, rest)) = split_keyword(line) else {
            return Ok(());
        };
        let key = keyword.to_ascii_lowercase();
        if rest.is_empty() {
            return Err(at(
                file,
                n,
                format!("no argument after keyword \"{keyword}\""),
            ));
        }
        let args = split_args(rest).map_err(|e| at(file, n, e))?;
        let first = || -> Result<&str> {
            args.first()
                .map(String::as_str)
                .filter(|a| !a.is_empty())
                .ok_or_else(|| at(file, n, format!("missing argument for {keyword}")))
        };
        let set = |slot: &mut Option<String>, v: &str| {
            if slot.is_none() {
                *slot = Some(v.to_string());
            }
        };
        match key.as_str() {
            "host" => {
                *active = false;
                if flags.never_match {
                    return Ok(());
                }
                let host = if self.final_pass {
                    self.final_host.clone()
                } else {
                    self.q.host.clone()
                };
                for a in &args {
                    if a.is_empty() {
                        return Err(at(file, n, "empty argument for Host"));
                    }
                    let (neg, pat) = match a.strip_prefix('!') {
                        Some(p) => (true, p),
                        None => (false, a.as_str()),
                    };
                    if wild(pat, &host, false) {
                        if neg {
                            log::debug!(target: LOGGER,
                                "{} line {n}: Skipping Host block because of negated match for {pat}",
                                file.display(),
                            );
                            *active = false;
                            break;
                        }
                        *active = true;
                    }
                }
            }
            "match" => {
                let m = self.match_line(&args, file, n)?;
                *active = m && !flags.never_match;
            }
            "include" => self.include(&args, file, n, flags, active, depth)?,
            "hostname" => {
                let v = first()?;
                if *active && self.v.hostname.is_none() {
                    self.v.hostname = Some(Setting {
                        value: v.to_string(),
                        file: file.to_path_buf(),
                        line: n,
                    });
                }
            }
            "user" => {
                let v = first()?;
                if *active {
                    set(&mut self.v.user, v);
                }
            }
            "port" => {
                let v = first()?;
                let port = v
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| at(file, n, format!("bad port '{v}'")))?;
                if *active && self.v.port.is_none() {
                    self.v.port = Some(port);
                }
            }
            "identityfile" => {
                let v = first()?;
                if *active && !self.v.identity_files.iter().any(|f| f.value == v) {
                    self.v.identity_files.push(Setting {
                        value: v.to_string(),
                        file: file.to_path_buf(),
                        line: n,
                    });
                }
            }
            "userknownhostsfile" => {
                first()?;
                if args.len() > 1 && args.iter().any(|a| a.eq_ignore_ascii_case("none")) {
                    return Err(at(file, n, "UserKnownHostsFile \"none\" must appear alone"));
                }
                if *active && self.v.known_hosts.is_none() {
                    self.v.known_hosts = Some(Setting {
                        value: args.clone(),
                        file: file.to_path_buf(),
                        line: n,
                    });
                }
            }
            "stricthostkeychecking" => {
                let v = first()?;
                let s = StrictHostKeyChecking::parse(v).ok_or_else(|| {
                    at(
                        file,
                        n,
                        format!("unsupported StrictHostKeyChecking value '{v}' (yes, ask, accept-new, no)"),
                    )
                })?;
                if *active && self.v.strict.is_none() {
                    self.v.strict = Some(s);
                }
            }
            "batchmode" => {
                let v = first()?;
                let b = yes_no(v).ok_or_else(|| {
                    at(
                        file,
                        n,
                        format!("unsupported BatchMode value '{v}' (yes, no)"),
                    )
                })?;
                if *active && self.v.batch_mode.is_none() {
                    self.v.batch_mode = Some(b);
                }
            }
            "tag" => {
                let v = first()?;
                if *active {
                    set(&mut self.v.tag, v);
                }
            }
            "proxyjump" => {
                let v = first()?;
                if *active {
                    set(&mut self.v.proxy_jump, v);
                }
            }
            "hostkeyalias" => {
                let v = first()?;
                if *active {
                    set(&mut self.v.host_key_alias, v);
                }
            }
            "canonicalizehostname" => {
                let v = first()?;
                if *active && !v.eq_ignore_ascii_case("no") && !self.canonicalize_noted {
                    self.canonicalize_noted = true;
                    log::debug!(target: LOGGER,
                        "{} line {n}: CanonicalizeHostname {v}: the built-in SSH client does not \
                         canonicalise host names",
                        file.display(),
                    );
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Evaluates a `Match` line.
    fn match_line(&mut self, args: &[String], file: &Path, n: usize) -> Result<bool> {
        let host = self.current_host()?;
        let ruser = self.ruser();
        let mut result = true;
        let mut attributes = 0;
        let mut unevaluated: Vec<String> = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let whole = &args[i];
            i += 1;
            let (negate, attrib) = match whole.strip_prefix('!') {
                Some(a) => (true, a),
                None => (false, whole.as_str()),
            };
            if attrib.eq_ignore_ascii_case("all") {
                if attributes > 1 || args.get(i).is_some_and(|a| !a.is_empty()) {
                    return Err(at(
                        file,
                        n,
                        format!("'{whole}' cannot be combined with other Match attributes"),
                    ));
                }
                if negate {
                    result = false;
                }
                attributes += 1;
                break;
            }
            attributes += 1;
            if attrib.eq_ignore_ascii_case("canonical") || attrib.eq_ignore_ascii_case("final") {
                if attrib.eq_ignore_ascii_case("final") && !negate && !self.final_pass {
                    self.want_final = true;
                }
                if self.final_pass == negate {
                    result = false;
                }
                continue;
            }
            const WITH_EQUALS: [&str; 9] = [
                "host",
                "originalhost",
                "user",
                "localuser",
                "localnetwork",
                "version",
                "tagged",
                "command",
                "exec",
            ];
            let (name, arg) = match attrib.split_once('=') {
                Some((k, v)) if WITH_EQUALS.iter().any(|w| w.eq_ignore_ascii_case(k)) => {
                    (k.to_string(), v.to_string())
                }
                _ => {
                    let Some(a) = args.get(i) else {
                        return Err(at(file, n, format!("missing argument for Match '{whole}'")));
                    };
                    i += 1;
                    (attrib.to_string(), a.clone())
                }
            };
            let name = name.to_ascii_lowercase();
            if arg.is_empty() && name != "tagged" && name != "command" {
                return Err(at(file, n, format!("missing Match criteria for {name}")));
            }
            let empty_or = |criteria: &str| {
                if criteria.is_empty() {
                    arg.is_empty()
                } else {
                    pattern_list(criteria, &arg, false) == Some(true)
                }
            };
            let r = match name.as_str() {
                "host" => pattern_list(&host, &arg, true) == Some(true),
                "originalhost" => pattern_list(&self.q.host, &arg, true) == Some(true),
                "user" => pattern_list(&ruser, &arg, false) == Some(true),
                "localuser" => pattern_list(&self.q.local_user, &arg, false) == Some(true),
                "tagged" => empty_or(self.v.tag.as_deref().unwrap_or_default()),
                "command" => empty_or(&self.q.command),
                "sessiontype" => pattern_list("exec", &arg, false) == Some(true),
                "exec" | "localnetwork" | "version" => {
                    unevaluated.push(format!("{whole} {arg}"));
                    result = false;
                    continue;
                }
                _ => {
                    return Err(at(file, n, format!("unsupported Match attribute {name}")));
                }
            };
            if r == negate {
                result = false;
            }
        }
        if attributes == 0 {
            return Err(at(file, n, "one or more attributes required for Match"));
        }
        if !unevaluated.is_empty() {
            log::debug!(target: LOGGER,
                "{} line {n}: Match {} cannot be evaluated by the built-in SSH client (it runs no \
                 commands): the block does not apply",
                file.display(),
                unevaluated.join(", "),
            );
        }
        Ok(result)
    }

    fn include(
        &mut self,
        args: &[String],
        file: &Path,
        n: usize,
        flags: Flags,
        active: &mut bool,
        depth: usize,
    ) -> Result<()> {
        let host = self.current_host()?;
        let tokens = self.tokens(&host, &self.ruser());
        let tokens: Vec<(char, &str)> = tokens.iter().map(|(c, v)| (*c, v.as_str())).collect();
        for a in args {
            if a.is_empty() {
                return Err(at(file, n, "empty argument for Include"));
            }
            let p = expand(a, &tokens, true).map_err(|e| at(file, n, e))?;
            if p.starts_with('~') && !flags.user_conf {
                return Err(at(file, n, format!("bad include path {p}")));
            }
            let p = if p.starts_with('/') || p.starts_with('~') {
                p
            } else if flags.user_conf {
                format!("~/.ssh/{p}")
            } else {
                format!("/etc/ssh/{p}")
            };
            let p = tilde(&p, &self.q.home).map_err(|e| at(file, n, e))?;
            let p = p.to_string_lossy().into_owned();
            let files = glob_paths(&p);
            if files.is_empty() {
                log::debug!(target: LOGGER, "{} line {n}: include {p} matched no files", file.display(),
                );
                continue;
            }
            let was_active = *active;
            for f in files.into_iter().filter(|f| !f.is_dir()) {
                if depth + 1 > MAX_INCLUDE_DEPTH {
                    return Err(at(
                        file,
                        n,
                        format!(
                            "too many nested Includes (more than {MAX_INCLUDE_DEPTH}) at {}",
                            f.display()
                        ),
                    ));
                }
                let sub = Flags {
                    user_conf: flags.user_conf,
                    check_perm: true,
                    never_match: flags.never_match || !was_active,
                };
                self.read_path(&f, sub, active, depth + 1)?;
                // a block opened in the included file does not reach back into this one
                *active = was_active;
            }
        }
        Ok(())
    }

    /// The settings, expanded.
    fn finish(self) -> Result<HostConfig> {
        let q = self.q;
        let hostname = match &self.v.hostname {
            Some(h) => expand(&h.value, &[('h', &q.host)], false).map_err(|e| h.err(e))?,
            None => q.host.clone(),
        };
        let user = self.ruser();
        let remote_host = hostname.to_ascii_lowercase();
        // `%k` at connection time: HostKeyAlias, else the host as given
        let alias = self
            .v
            .host_key_alias
            .clone()
            .unwrap_or_else(|| q.host.clone());
        let tokens = self.tokens(&remote_host, &user);
        let mut tokens: Vec<(char, &str)> = tokens.iter().map(|(c, v)| (*c, v.as_str())).collect();
        for t in tokens.iter_mut().filter(|t| t.0 == 'k') {
            t.1 = &alias;
        }
        let path = |file: &Path, line: usize, v: &str| -> Result<PathBuf> {
            let p = tilde(v, &q.home).map_err(|e| at(file, line, e))?;
            let p = expand(&p.to_string_lossy(), &tokens, true).map_err(|e| at(file, line, e))?;
            Ok(PathBuf::from(p))
        };
        let mut identity_files = Vec::new();
        for f in &self.v.identity_files {
            identity_files.push(IdentityFile {
                path: path(&f.file, f.line, &f.value)?,
                file: f.file.clone(),
                line: f.line,
            });
        }
        let known_hosts = match &self.v.known_hosts {
            None => None,
            Some(s) if s.value[0].eq_ignore_ascii_case("none") => {
                Some(vec![PathBuf::from("/dev/null")])
            }
            Some(s) => Some(
                s.value
                    .iter()
                    .map(|v| path(&s.file, s.line, v))
                    .collect::<Result<Vec<_>>>()?,
            ),
        };
        Ok(HostConfig {
            hostname,
            user,
            port: self.v.port.unwrap_or(22),
            identity_files,
            known_hosts,
            strict_host_key_checking: self.v.strict,
            batch_mode: self.v.batch_mode,
        })
    }
}

/// `~` and `~user` at the start of a path.
fn tilde(p: &str, home: &Path) -> std::result::Result<PathBuf, String> {
    let Some(rest) = p.strip_prefix('~') else {
        return Ok(PathBuf::from(p));
    };
    let (user, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_start_matches('/')),
        None => (rest, ""),
    };
    let dir = if user.is_empty() {
        home.to_path_buf()
    } else {
        match crate::users::user_by_name(user.as_bytes()) {
            Ok(Some(u)) => u.home,
            Ok(None) => return Err(format!("no such user {user} (in {p})")),
            Err(e) => return Err(format!("cannot look up user {user} (in {p}): {e}")),
        }
    };
    Ok(if path.is_empty() { dir } else { dir.join(path) })
}

/// OpenSSH's `percent_expand` (and, with `dollar`, `${VAR}` from the environment): `%%` is `%`,
/// `%X` a token from `tokens`; an unknown token, a lone `%` or an unset variable is an error.
fn expand(s: &str, tokens: &[(char, &str)], dollar: bool) -> std::result::Result<String, String> {
    let mut out = String::new();
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        if dollar && c == '$' && s[i + 1..].starts_with('{') {
            let rest = &s[i + 2..];
            let end = rest.find('}').ok_or_else(|| {
                format!("environment variable in '{s}' is missing its closing '}}'")
            })?;
            let name = &rest[..end];
            if name.is_empty() {
                return Err(format!("empty environment variable name in '{s}'"));
            }
            let v = std::env::var(name)
                .map_err(|_| format!("environment variable ${{{name}}} in '{s}' has no value"))?;
            out.push_str(&v);
            // skip "{name}"
            for _ in 0..name.chars().count() + 2 {
                it.next();
            }
            continue;
        }
        if c != '%' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some((_, '%')) => out.push('%'),
            Some((_, t)) => match tokens.iter().find(|(k, _)| *k == t) {
                Some((_, v)) => out.push_str(v),
                None => return Err(format!("unknown token %{t} in '{s}'")),
            },
            None => return Err(format!("'{s}' ends with a lone %")),
        }
    }
    Ok(out)
}

fn resolve_tops(tops: &[Top], q: &Query) -> Result<HostConfig> {
    let mut r = Reader {
        q,
        v: Values {
            user: q.user.clone(),
            port: q.port,
            ..Values::default()
        },
        final_pass: false,
        want_final: false,
        final_host: String::new(),
        canonicalize_noted: false,
    };
    r.read(tops)?;
    if r.want_final {
        log::debug!(target: LOGGER, "configuration requests final Match pass");
        r.final_host = r.current_host()?.to_ascii_lowercase();
        r.final_pass = true;
        r.read(tops)?;
    }
    r.finish()
}

/// The settings for `q` from `files`, as ssh would obtain them.
pub fn resolve(files: &ConfigFiles, q: &Query) -> Result<HostConfig> {
    let user_flags = Flags {
        user_conf: true,
        check_perm: !files.explicit,
        never_match: false,
    };
    let system_flags = Flags {
        user_conf: false,
        check_perm: false,
        never_match: false,
    };
    let mut tops = Vec::new();
    if let Some(u) = &files.user {
        tops.push(Top::Path(u, user_flags, files.explicit));
    }
    if let Some(s) = &files.system {
        tops.push(Top::Path(s, system_flags, false));
    }
    resolve_tops(&tops, q)
}

/// The settings for `q` from configuration text, read as the user's file `name` (relative
/// `Include`s are under `~/.ssh`).
pub fn resolve_text(text: &str, name: &Path, q: &Query) -> Result<HostConfig> {
    let flags = Flags {
        user_conf: true,
        check_perm: false,
        never_match: false,
    };
    resolve_tops(&[Top::Text(text, name, flags)], q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn query(host: &str, home: &Path) -> Query {
        Query {
            host: host.into(),
            user: None,
            port: None,
            command: "borg serve --umask=077".into(),
            local_user: "me".into(),
            uid: 1000,
            home: home.into(),
            local_host: "box.example.org".into(),
        }
    }

    fn get(text: &str, host: &str) -> HostConfig {
        resolve_text(
            text,
            Path::new("config"),
            &query(host, Path::new("/home/me")),
        )
        .unwrap()
    }

    fn ids(c: &HostConfig) -> Vec<String> {
        c.identity_files
            .iter()
            .map(|f| f.path.to_string_lossy().into_owned())
            .collect()
    }

    fn write(p: &Path, text: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    #[test]
    fn first_value_wins_and_globs() {
        let text = "Host voile*\n  HostName voile.example\n  Port 22222\n  IdentityFile ~/.ssh/borg\n  StrictHostKeyChecking accept-new\nHost *\n  User me2\n  Port 22\n  IdentityFile ~/.ssh/id_ed25519\n  StrictHostKeyChecking=yes\n  BatchMode yes\n";
        let c = get(text, "voile");
        assert_eq!(c.hostname, "voile.example");
        assert_eq!(c.port, 22222);
        assert_eq!(c.user, "me2");
        assert_eq!(ids(&c), ["/home/me/.ssh/borg", "/home/me/.ssh/id_ed25519"]);
        assert_eq!(
            c.strict_host_key_checking,
            Some(StrictHostKeyChecking::AcceptNew)
        );
        let c = get(text, "other");
        assert_eq!((c.hostname.as_str(), c.port), ("other", 22));
        assert_eq!(
            (c.strict_host_key_checking, c.batch_mode),
            (Some(StrictHostKeyChecking::Yes), Some(true))
        );
        // nothing set: the host as given, port 22, the local user
        let c = get("", "plain");
        assert_eq!(
            (c.hostname.as_str(), c.port, c.user.as_str()),
            ("plain", 22, "me")
        );
    }

    #[test]
    fn the_location_wins_over_the_config() {
        let mut q = query("h", Path::new("/home/me"));
        q.user = Some("loc".into());
        q.port = Some(2200);
        let c = resolve_text(
            "Host h\n User cfg\n Port 1\n IdentityFile /k/%r-%p\nMatch user loc\n HostName matched\n",
            Path::new("config"),
            &q,
        )
        .unwrap();
        assert_eq!((c.user.as_str(), c.port), ("loc", 2200));
        assert_eq!(ids(&c), ["/k/loc-2200"]);
        assert_eq!(c.hostname, "matched");
    }

    #[test]
    fn host_patterns_negation_and_lists() {
        let text = "Host *.example.org !bad.example.org other\n  Port 1\nHost *\n  Port 2\n";
        assert_eq!(get(text, "good.example.org").port, 1);
        assert_eq!(get(text, "bad.example.org").port, 2);
        assert_eq!(get(text, "other").port, 1);
        // only negated patterns never match
        assert_eq!(get("Host !x\n Port 3\n", "y").port, 22);
        // `?` is one character; Host patterns are case-sensitive, as in OpenSSH
        assert_eq!(get("Host h?st\n Port 4\n", "host").port, 4);
        assert_eq!(get("Host h?st\n Port 4\n", "hoost").port, 22);
        assert_eq!(get("Host HOST\n Port 4\n", "host").port, 22);
        // a comma is not a separator on a Host line (ssh matches the host against "a,b")
        assert_eq!(get("Host a,b\n Port 5\n", "a").port, 22);
        // quoted patterns, `=` and comments
        assert_eq!(get("Host=\"x y\" z # c\n Port 6\n", "z").port, 6);
        assert_eq!(get("Host=\"x y\" z # c\n Port 6\n", "y").port, 22);
    }

    #[test]
    fn match_criteria() {
        let text = "Match host real.example.org\n  Port 1\n\
                    Host alias\n  HostName real.example.org\n\
                    Match host real.example.org\n  User r\n\
                    Match originalhost ALIAS,other !localuser root\n  IdentityFile /k/orig\n\
                    Match user r localuser me\n  IdentityFile /k/user\n\
                    Match !host *.org\n  IdentityFile /k/not-org\n\
                    Match host=*.org user=x\n  IdentityFile /k/x\n\
                    Match sessiontype exec tagged \"\" command \"borg serve*\"\n  IdentityFile /k/exec\n\
                    Match all\n  Port 2\n";
        let c = get(text, "alias");
        // the first Match host saw "alias" (no HostName yet); the second the HostName
        assert_eq!((c.port, c.user.as_str()), (2, "r"));
        assert_eq!(ids(&c), ["/k/orig", "/k/user", "/k/exec"]);
        let c = get(text, "other");
        assert_eq!(ids(&c), ["/k/orig", "/k/not-org", "/k/exec"]);
        assert_eq!(c.user, "me");
        // Match host is case-insensitive; a negated pattern decides
        assert_eq!(get("Match host REAL\n Port 7\n", "real").port, 7);
        assert_eq!(get("Match host *,!real\n Port 7\n", "real").port, 22);
        // Tag
        assert_eq!(get("Tag t1\nMatch tagged t?\n Port 8\n", "h").port, 8);
        assert_eq!(get("Match tagged t1\n Port 8\n", "h").port, 22);
        // `!all` never matches
        assert_eq!(get("Match !all\n Port 9\n", "h").port, 22);
    }

    #[test]
    fn match_exec_and_friends_do_not_match_and_run_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let text = format!(
            "Match exec \"touch {m}\"\n  Port 1\nMatch host h !exec \"touch {m}\"\n  Port 2\n\
             Match localnetwork 10.0.0.0/8\n  Port 3\nMatch version OpenSSH_*\n  Port 4\n\
             Match host h\n  Port 5\n",
            m = marker.display()
        );
        assert_eq!(get(&text, "h").port, 5);
        assert!(!marker.exists(), "a Match exec command was run");
    }

    #[test]
    fn match_final_makes_a_second_pass() {
        // in the final pass Host and Match host see the HostName
        let text = "Host a\n  HostName Real.Example\nMatch final host real.example\n  Port 3\n\
                    Host real.example\n  User fin\nMatch canonical\n  IdentityFile /k/c\n\
                    Match !final\n  IdentityFile /k/first\n";
        let c = get(text, "a");
        assert_eq!((c.port, c.user.as_str()), (3, "fin"));
        assert_eq!(ids(&c), ["/k/first", "/k/c"]);
        // without a positive `final`, no second pass: `canonical` never matches
        let c = get("Match canonical\n Port 4\n", "a");
        assert_eq!(c.port, 22);
    }

    #[test]
    fn bad_match_lines_are_errors_naming_the_line() {
        for (text, needle) in [
            ("\n\nMatch\n", "line 3: no argument"),
            ("Match host\n", "line 1: missing argument for Match 'host'"),
            ("Match all host x\n", "cannot be combined"),
            (
                "Match frobnicate x\n",
                "unsupported Match attribute frobnicate",
            ),
            ("Port 0\n", "bad port '0'"),
            ("Port http\n", "bad port"),
            ("BatchMode maybe\n", "BatchMode value 'maybe'"),
            (
                "StrictHostKeyChecking perhaps\n",
                "StrictHostKeyChecking value",
            ),
            ("HostName \"unterminated\n", "invalid quotes"),
            ("UserKnownHostsFile none /x\n", "must appear alone"),
        ] {
            let e = resolve_text(text, Path::new("cfg"), &query("h", Path::new("/h")))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("ssh config cfg") && e.contains(needle),
                "{text:?}: {e}"
            );
        }
    }

    #[test]
    fn tokens_are_expanded_once_the_settings_are_known() {
        let text = "Host alias\n  HostName %h.Example.ORG\n  IdentityFile ~/.ssh/%h_%p_%r\n\
                    IdentityFile %d/k/%u-%l-%L-%n-%i-%%-%k\n  IdentityFile ${OXIBORG_TEST_SSHCFG_VAR}/k\n\
                    UserKnownHostsFile ~/.ssh/kh_%h %d/kh2\n  Port 2022\n  User bob\n";
        std::env::set_var("OXIBORG_TEST_SSHCFG_VAR", "/from/env");
        let c = get(text, "alias");
        assert_eq!(c.hostname, "alias.Example.ORG");
        assert_eq!(
            ids(&c),
            [
                "/home/me/.ssh/alias.example.org_2022_bob",
                "/home/me/k/me-box.example.org-box-alias-1000-%-alias",
                "/from/env/k",
            ]
        );
        assert_eq!(
            c.known_hosts,
            Some(vec![
                PathBuf::from("/home/me/.ssh/kh_alias.example.org"),
                PathBuf::from("/home/me/kh2")
            ])
        );
        // %C: sha1 of %l%h%p%r%j, as ssh computes it
        let c = get("IdentityFile /k/%C\n", "h");
        let mut h = sha1::Sha1::new();
        h.update(b"box.example.orgh22me");
        assert_eq!(ids(&c), [format!("/k/{}", hex::encode(h.finalize()))]);
        // ~user
        let c = get("IdentityFile ~root/k\n", "h");
        let root = crate::users::user_by_uid(0).unwrap().unwrap().home;
        assert_eq!(ids(&c), [root.join("k").to_string_lossy().into_owned()]);
        // HostName takes only %h; errors name the line
        for (text, needle) in [
            ("HostName %p\n", "line 1: unknown token %p"),
            ("IdentityFile /k/%z\n", "unknown token %z"),
            ("IdentityFile /k/%\n", "lone %"),
            (
                "\nIdentityFile ${OXIBORG_TEST_SSHCFG_UNSET_VAR}\n",
                "line 2: environment variable ${OXIBORG_TEST_SSHCFG_UNSET_VAR}",
            ),
            (
                "IdentityFile ~oxiborg-no-such-user-9f3a/k\n",
                "no such user",
            ),
        ] {
            let e = resolve_text(text, Path::new("cfg"), &query("h", Path::new("/h")))
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
        assert_eq!(
            get("UserKnownHostsFile none\n", "h").known_hosts,
            Some(vec![PathBuf::from("/dev/null")])
        );
    }

    #[test]
    fn include_relative_globbed_conditional_and_nested() {
        let home = tempfile::tempdir().unwrap();
        let ssh = home.path().join(".ssh");
        write(
            &ssh.join("config"),
            "Include conf.d/*.conf\n\
             Host cond\n  Include cond.conf\n  User after-include\n\
             Host *\n  Port 9\n  User default\n",
        );
        // sorted: 10 before 20; a Host block in one file does not leak into the next
        write(
            &ssh.join("conf.d/10-a.conf"),
            "Host a\n  HostName a.example\nMatch host a.example\n  Port 1\n",
        );
        write(&ssh.join("conf.d/20-b.conf"), "Port 2\nHost b\n  Port 3\n");
        write(&ssh.join("conf.d/.hidden.conf"), "Port 77\n");
        write(&ssh.join("conf.d/not-matching.txt"), "Port 78\n");
        write(
            &ssh.join("cond.conf"),
            "IdentityFile /k/cond\nHost *\n  IdentityFile /k/cond-any\n",
        );
        let files = ConfigFiles {
            user: Some(ssh.join("config")),
            explicit: false,
            system: None,
        };
        let r = |host: &str| resolve(&files, &query(host, home.path())).unwrap();
        assert_eq!((r("a").hostname.as_str(), r("a").port), ("a.example", 1));
        assert_eq!(r("b").port, 2);
        let c = r("cond");
        assert_eq!(ids(&c), ["/k/cond", "/k/cond-any"]);
        // the includer's block is active again after the include
        assert_eq!(c.user, "after-include");
        // inside an inactive block the included file does not apply, even its Host *
        let c = r("x");
        assert!(ids(&c).is_empty(), "{c:?}");
        assert_eq!((c.port, c.user.as_str()), (2, "default"));

        // nesting: 16 deep is read, a 17th is an error; a file including itself too
        let deep = home.path().join("deep");
        for i in 0..=17 {
            write(
                &deep.join(format!("{i}")),
                &format!("Include {}/{}\n", deep.display(), i + 1),
            );
        }
        write(&deep.join("16"), "Port 16\n");
        let one = |f: &Path| {
            resolve(
                &ConfigFiles {
                    user: Some(f.to_path_buf()),
                    explicit: true,
                    system: None,
                },
                &query("h", home.path()),
            )
        };
        assert_eq!(one(&deep.join("0")).unwrap().port, 16);
        write(
            &deep.join("16"),
            &format!("Include {}/17\n", deep.display()),
        );
        write(&deep.join("17"), "Port 17\n");
        let e = one(&deep.join("0")).unwrap_err().to_string();
        assert!(e.contains("too many nested Includes"), "{e}");
        let selfish = home.path().join("self");
        write(&selfish, &format!("Include {}\n", selfish.display()));
        assert!(one(&selfish)
            .unwrap_err()
            .to_string()
            .contains("too many nested"));

        // an explicit file (-F) must exist; ~/.ssh/config need not
        assert!(one(&home.path().join("missing"))
            .unwrap_err()
            .to_string()
            .contains("no such file"));
        let none = ConfigFiles::openssh(home.path(), Some(Path::new("none")));
        assert_eq!(resolve(&none, &query("h", home.path())).unwrap().port, 22);
    }

    #[test]
    fn included_files_writable_by_others_are_refused() {
        let home = tempfile::tempdir().unwrap();
        let ssh = home.path().join(".ssh");
        write(&ssh.join("config"), "Include extra\n");
        write(&ssh.join("extra"), "Port 5\n");
        let files = ConfigFiles::openssh(home.path(), None);
        let files = ConfigFiles {
            system: None,
            ..files
        };
        assert_eq!(resolve(&files, &query("h", home.path())).unwrap().port, 5);
        std::fs::set_permissions(ssh.join("extra"), std::fs::Permissions::from_mode(0o666))
            .unwrap();
        let e = resolve(&files, &query("h", home.path()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("bad owner or permissions") && e.contains("extra"),
            "{e}"
        );
    }

    #[test]
    fn wildcards_take_polynomial_time() {
        // The recursive matcher took exponential time here (it tries every way of splitting
        // the a's among the stars: C(60, 9) ≈ 1.5e10 ways before failing on the missing b).
        let pat: Vec<char> = "*a*a*a*a*a*a*a*a*a*b".chars().collect();
        let s: Vec<char> = "a".repeat(60).chars().collect();
        let (m, steps) = wild_steps(&pat, &s, true, false);
        assert!(!m);
        assert!(
            steps <= (pat.len() + 1) * (s.len() + 1),
            "{steps} steps for a {}-character pattern and a {}-character string",
            pat.len(),
            s.len()
        );
        assert!(!glob_match(
            b"*a*a*a*a*a*a*a*a*a*b",
            "a".repeat(60).as_bytes()
        ));
        // and still right
        for (p, s, want) in [
            ("*", "", true),
            ("", "", true),
            ("", "a", false),
            ("a*", "a", true),
            ("*a", "ba", true),
            ("*a", "ab", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("?", "", false),
            ("??", "ab", true),
            ("*.example.org", "x.EXAMPLE.org", true),
            (
                "*a*a*a*a*a*a*a*a*a*b",
                &format!("{}b", "a".repeat(60)),
                true,
            ),
        ] {
            assert_eq!(glob_match(p.as_bytes(), s.as_bytes()), want, "{p:?} {s:?}");
        }
        let cls = |p: &str, s: &str| {
            let p: Vec<char> = p.chars().collect();
            let s: Vec<char> = s.chars().collect();
            wild_steps(&p, &s, false, true).0
        };
        assert!(cls("[0-9]*.conf", "10-a.conf"));
        assert!(!cls("[!0-9]*.conf", "10-a.conf"));
        assert!(cls("[]x]", "]"));
        assert!(cls("a\\*", "a*") && !cls("a\\*", "ab"));
        assert!(cls("[ab", "[ab"));
    }

    #[test]
    fn arguments_split_as_openssh_does() {
        assert_eq!(
            split_args(r#"a "b c" 'd e' f\ g h\"i # comment"#).unwrap(),
            ["a", "b c", "d e", "f g", "h\"i"]
        );
        assert_eq!(split_keyword("  Port=22"), Some(("Port", "22")));
        assert_eq!(split_keyword("Port = 22"), Some(("Port", "22")));
        assert_eq!(split_keyword("# Port 22"), None);
        assert!(split_args("\"open").is_err());
    }
}

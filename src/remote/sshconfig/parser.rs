//! Reading configuration text: lines split into keyword and arguments as OpenSSH splits them,
//! `Host` and `Match` blocks, `Include`s, and the first value of each setting kept.

use super::matcher::{glob_paths, wild};
use super::tokens::{expand, tilde};
use super::{yes_no, Query, StrictHostKeyChecking, LOGGER, MAX_INCLUDE_DEPTH};
use crate::error::{Error, RemoteErrorKind, Result};
use std::path::{Path, PathBuf};

/// `keyword args…` of a line (`keyword=args` too); `None` for a blank line or a comment.
pub(super) fn split_keyword(line: &str) -> Option<(&str, &str)> {
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
pub(super) fn escapable(next: Option<char>, unquoted: bool) -> bool {
    matches!(next, Some('\'' | '"' | '\\')) || (unquoted && next == Some(' '))
}

/// OpenSSH's argument splitting: whitespace-separated, `"…"` and `'…'` quoting, `\` escaping
/// a quote, a backslash or (outside quotes) a space; a word starting with `#` ends the line.
pub(super) fn split_args(s: &str) -> std::result::Result<Vec<String>, &'static str> {
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
pub(super) struct Setting<T> {
    pub(super) value: T,
    pub(super) file: PathBuf,
    pub(super) line: usize,
}

impl<T> Setting<T> {
    /// An error at the place the value was set.
    pub(super) fn err(&self, msg: impl std::fmt::Display) -> Error {
        at(&self.file, self.line, msg)
    }
}

/// An error naming the configuration file and line.
pub(super) fn at(file: &Path, line: usize, msg: impl std::fmt::Display) -> Error {
    Error::remote(
        RemoteErrorKind::Ssh,
        format!("ssh config {} line {line}: {msg}", file.display()),
    )
}

/// The values obtained so far (first wins), unexpanded.
#[derive(Debug, Default)]
pub(super) struct Values {
    pub(super) hostname: Option<Setting<String>>,
    pub(super) user: Option<String>,
    pub(super) port: Option<u16>,
    pub(super) identity_files: Vec<Setting<String>>,
    pub(super) known_hosts: Option<Setting<Vec<String>>>,
    pub(super) strict: Option<StrictHostKeyChecking>,
    pub(super) batch_mode: Option<bool>,
    pub(super) tag: Option<String>,
    pub(super) proxy_jump: Option<String>,
    pub(super) host_key_alias: Option<String>,
}

/// How a file is read.
#[derive(Debug, Clone, Copy)]
pub(super) struct Flags {
    /// A user configuration (relative `Include`s under `~/.ssh`, `~` allowed).
    pub(super) user_conf: bool,
    /// Refuse the file when others may write it.
    pub(super) check_perm: bool,
    /// Included from an inactive block: no `Host`/`Match` in it applies.
    pub(super) never_match: bool,
}

/// The text of a top-level file, or the file to read.
pub(super) enum Top<'a> {
    Path(&'a Path, Flags, bool),
    #[cfg(test)]
    Text(&'a str, &'a Path, Flags),
}

/// The reader: the query, the values obtained so far and the pass.
pub(super) struct Reader<'q> {
    pub(super) q: &'q Query,
    pub(super) v: Values,
    pub(super) final_pass: bool,
    pub(super) want_final: bool,
    /// In the final pass: the host name `Host` and `Match host` are matched against.
    pub(super) final_host: String,
    pub(super) canonicalize_noted: bool,
}

impl Reader<'_> {
    /// The host `Match host` sees: the `HostName` obtained so far (with `%h`), else the host
    /// as given.
    pub(super) fn current_host(&self) -> Result<String> {
        if self.final_pass {
            return Ok(self.final_host.clone());
        }
        match &self.v.hostname {
            Some(h) => expand(&h.value, &[('h', &self.q.host)], false).map_err(|e| h.err(e)),
            None => Ok(self.q.host.clone()),
        }
    }

    /// The remote user: `User` obtained so far (or the location's), else the local user.
    pub(super) fn ruser(&self) -> String {
        self.v
            .user
            .clone()
            .unwrap_or_else(|| self.q.local_user.clone())
    }

    /// Reads the top-level files (or text) in order.
    pub(super) fn read(&mut self, tops: &[Top]) -> Result<()> {
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
                #[cfg(test)]
                Top::Text(text, name, flags) => {
                    self.read_text(text, name, flags, &mut active, 0)?
                }
            }
        }
        Ok(())
    }

    /// Reads a file; `false` if it does not exist.
    pub(super) fn read_path(
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

    /// Reads configuration text, line by line.
    pub(super) fn read_text(
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

    /// Reads one line: a block (`Host`, `Match`), an `Include`, or a setting.
    pub(super) fn line(
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

    /// Reads the files an `Include` line names (in a block that does not apply: matching
    /// nothing).
    pub(super) fn include(
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
}

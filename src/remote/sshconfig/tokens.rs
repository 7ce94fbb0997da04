//! Expansion: `~` and `~user`, `%` tokens and `${VAR}`, and the settings obtained turned into
//! the [`HostConfig`] of the connection.

use super::parser::{at, Reader};
use super::{HostConfig, IdentityFile};
use crate::error::Result;
use sha1::Digest;
use std::path::{Path, PathBuf};

impl Reader<'_> {
    /// The `%` tokens for `host` and the remote user `ruser`.
    pub(super) fn tokens(&self, host: &str, ruser: &str) -> Vec<(char, String)> {
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

    /// The settings, expanded.
    pub(super) fn finish(self) -> Result<HostConfig> {
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
pub(super) fn tilde(p: &str, home: &Path) -> std::result::Result<PathBuf, String> {
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
pub(super) fn expand(
    s: &str,
    tokens: &[(char, &str)],
    dollar: bool,
) -> std::result::Result<String, String> {
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

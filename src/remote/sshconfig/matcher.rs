//! Matching: OpenSSH's wildcards (`*`, `?`; glob(7) classes for `Include` paths), pattern
//! lists with `!` negation, and the evaluation of `Match` lines.

use super::parser::{at, Reader};
use super::LOGGER;
use crate::error::Result;
use std::path::{Path, PathBuf};

/// The length of the pattern element at the start of `pat` if it matches `c` (a `?`, a
/// literal, or — with `classes` — a `[...]` class or a `\`-escaped character); `None` if it
/// does not match. `*` is handled by the caller.
pub(super) fn element(pat: &[char], c: char, fold: bool, classes: bool) -> Option<usize> {
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
pub(super) fn class(pat: &[char], c: char, fold: bool) -> Option<(bool, usize)> {
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
pub(super) fn wild_steps(pat: &[char], s: &[char], fold: bool, classes: bool) -> (bool, usize) {
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

/// [`wild_steps`] without classes, on text.
pub(super) fn wild(pat: &str, s: &str, fold: bool) -> bool {
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
pub(super) fn pattern_list(s: &str, list: &str, fold: bool) -> Option<bool> {
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
pub(super) fn glob_paths(pattern: &str) -> Vec<PathBuf> {
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

impl Reader<'_> {
    /// Evaluates a `Match` line.
    pub(super) fn match_line(&mut self, args: &[String], file: &Path, n: usize) -> Result<bool> {
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
}

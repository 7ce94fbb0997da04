//! borg's path selection: pattern styles `pp:`, `fm:`, `sh:`, `re:`, `pf:` and the ordered
//! include/exclude matcher used by `list` and `extract`.
//!
//! ```
//! use oxiborg::patterns::{Matcher, Pattern, Style, Action};
//! let mut m = Matcher::new();
//! m.add(Pattern::parse("*.tmp", Style::FnMatch).unwrap(), Action::Exclude);
//! m.add_paths(&["home".to_string()]).unwrap();
//! assert!(m.matches(b"home/me/notes.txt"));
//! assert!(!m.matches(b"home/me/x.tmp"));
//! assert!(!m.matches(b"etc/passwd"));
//! ```

use crate::error::{Error, Result};
use regex::bytes::Regex;
use std::collections::HashMap;

/// A pattern style, selected by a `xx:` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `pp:` path prefix (default for PATH arguments).
    PathPrefix,
    /// `fm:` fnmatch (default for `--exclude`).
    FnMatch,
    /// `sh:` shell-style with `**` (default for `--pattern`).
    Shell,
    /// `re:` regular expression, searched anywhere in the path.
    Regex,
    /// `pf:` exact full path.
    PathFull,
}

impl Style {
    fn from_prefix(p: &str) -> Option<Style> {
        Some(match p {
            "pp" => Style::PathPrefix,
            "fm" => Style::FnMatch,
            "sh" => Style::Shell,
            "re" => Style::Regex,
            "pf" => Style::PathFull,
            _ => return None,
        })
    }
}

/// What a matching pattern does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `+`: select.
    Include,
    /// `-`: deselect.
    Exclude,
    /// `!`: deselect and do not descend (borg's exclude-norecurse).
    ExcludeNoRecurse,
}

/// One compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The text as given (with its style prefix, if any).
    pub original: String,
    /// The style.
    pub style: Style,
    prefix: Vec<u8>,
    regex: Option<Regex>,
}

/// `os.path.normpath` on a `/`-separated string.
fn normpath(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let abs = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !abs {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let j = parts.join("/");
    match (abs, j.is_empty()) {
        (true, _) => format!("/{j}"),
        (false, true) => ".".into(),
        (false, false) => j,
    }
}

/// One character other than `/`: a UTF-8 character, or one undecodable byte (borg matches
/// surrogate-escaped strings, where each such byte is one character).
const NOT_SEP: &str = r"(?:[^/]|(?-u:[\x80-\xff]))";
/// Any one character, likewise.
const ANY: &str = r"(?:(?s:.)|(?-u:[\x80-\xff]))";

/// borg's shell-pattern translation (`*` within a component, `**/` across components).
pub(crate) fn translate_shell(pat: &str) -> String {
    let chars: Vec<char> = pat.chars().collect();
    let n = chars.len();
    let mut i = 0;
    let mut res = String::new();
    while i < n {
        let c = chars[i];
        i += 1;
        match c {
            '*' => {
                if i + 1 < n && chars[i] == '*' && chars[i + 1] == '/' {
                    res.push_str(&format!("(?:{NOT_SEP}*/)*"));
                    i += 2;
                } else {
                    res.push_str(&format!("{NOT_SEP}*"));
                }
            }
            '?' => res.push_str(NOT_SEP),
            '[' => i = translate_class(&chars, i, &mut res),
            c => res.push_str(&regex::escape(&c.to_string())),
        }
    }
    res
}

/// Python's `fnmatch.translate` (`*` crosses `/`).
fn translate_fnmatch(pat: &str) -> String {
    let chars: Vec<char> = pat.chars().collect();
    let mut i = 0;
    let mut res = String::new();
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' => {
                while i < chars.len() && chars[i] == '*' {
                    i += 1;
                }
                res.push_str(&format!("{ANY}*"));
            }
            '?' => res.push_str(ANY),
            '[' => i = translate_class(&chars, i, &mut res),
            c => res.push_str(&regex::escape(&c.to_string())),
        }
    }
    res
}

/// Translates a `[...]` class starting after `[` at `i`; returns the new index.
fn translate_class(chars: &[char], i: usize, res: &mut String) -> usize {
    let n = chars.len();
    let mut j = i;
    if j < n && chars[j] == '!' {
        j += 1;
    }
    if j < n && chars[j] == ']' {
        j += 1;
    }
    while j < n && chars[j] != ']' {
        j += 1;
    }
    if j >= n {
        res.push_str("\\[");
        return i;
    }
    let mut stuff: String = chars[i..j].iter().collect::<String>().replace('\\', "\\\\");
    if let Some(rest) = stuff.strip_prefix('!') {
        stuff = format!("^{rest}");
    } else if stuff.starts_with('^') {
        stuff = format!("\\{stuff}");
    }
    // Rust's regex treats '[' inside a class as nesting; escape it.
    let stuff = stuff.replace('[', "\\[");
    res.push('[');
    res.push_str(&stuff);
    res.push(']');
    j + 1
}

impl Pattern {
    /// Parses `text`, honouring a `xx:` style prefix, else using `default`.
    pub fn parse(text: &str, default: Style) -> Result<Pattern> {
        let b = text.as_bytes();
        let (style, body) = if b.len() > 2
            && b[2] == b':'
            && b[0].is_ascii_alphanumeric()
            && b[1].is_ascii_alphanumeric()
        {
            let style = Style::from_prefix(&text[..2]).ok_or_else(|| {
                Error::Usage(format!(
                    "Unknown pattern style: {} (in {text:?})",
                    &text[..2]
                ))
            })?;
            (style, &text[3..])
        } else {
            (default, text)
        };
        Self::with_style(text, style, body)
    }

    fn with_style(original: &str, style: Style, body: &str) -> Result<Pattern> {
        let compile = |re: String| {
            Regex::new(&re).map_err(|e| Error::Usage(format!("Invalid pattern {original:?}: {e}")))
        };
        let mut p = Pattern {
            original: original.to_string(),
            style,
            prefix: Vec::new(),
            regex: None,
        };
        match style {
            Style::PathPrefix => {
                let s = format!("{}/", normpath(body).trim_end_matches('/'));
                p.prefix = s.trim_start_matches('/').as_bytes().to_vec();
            }
            Style::PathFull => {
                p.prefix = normpath(body).trim_start_matches('/').as_bytes().to_vec();
            }
            Style::FnMatch | Style::Shell => {
                let np = normpath(body);
                let np = np.trim_end_matches('/');
                let full = match (style, body.ends_with('/')) {
                    (Style::FnMatch, true) => format!("{np}/*/"),
                    (Style::FnMatch, false) => format!("{np}/*"),
                    (_, true) => format!("{np}/**/*/"),
                    (_, false) => format!("{np}/**/*"),
                };
                let full = full.trim_start_matches('/');
                let re = if style == Style::FnMatch {
                    translate_fnmatch(full)
                } else {
                    translate_shell(full)
                };
                p.regex = Some(compile(format!("(?s)\\A(?:{re})\\z"))?);
            }
            Style::Regex => p.regex = Some(compile(body.to_string())?),
        }
        Ok(p)
    }

    /// Does the pattern match an archive path (no leading `/`)?
    pub fn matches(&self, path: &[u8]) -> bool {
        match self.style {
            Style::PathPrefix => {
                path.len() + 1 >= self.prefix.len()
                    && (path.starts_with(&self.prefix)
                        || (path.len() + 1 == self.prefix.len() && self.prefix.starts_with(path)))
            }
            Style::PathFull => path == self.prefix.as_slice(),
            Style::Regex => self.regex.as_ref().is_some_and(|r| r.is_match(path)),
            Style::FnMatch | Style::Shell => {
                let mut p = Vec::with_capacity(path.len() + 1);
                p.extend_from_slice(path);
                p.push(b'/');
                self.regex.as_ref().is_some_and(|r| r.is_match(&p))
            }
        }
    }
}

/// An ordered list of patterns; the first match decides.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    items: Vec<(Pattern, Action)>,
    full_paths: HashMap<Vec<u8>, Action>,
    has_includes_from_paths: bool,
    /// Roots given as `R path` lines.
    pub roots: Vec<String>,
    matched: Vec<u64>,
}

impl Matcher {
    /// An empty matcher (selects everything).
    pub fn new() -> Matcher {
        Matcher::default()
    }

    /// Appends a pattern.
    pub fn add(&mut self, p: Pattern, action: Action) {
        if p.style == Style::PathFull {
            self.full_paths.entry(p.prefix.clone()).or_insert(action);
        }
        self.items.push((p, action));
        self.matched.push(0);
    }

    /// Adds PATH arguments as path-prefix includes (a style prefix is honoured); once any is
    /// added, paths matching no pattern are deselected.
    pub fn add_paths(&mut self, paths: &[String]) -> Result<()> {
        for path in paths {
            self.add(Pattern::parse(path, Style::PathPrefix)?, Action::Include);
            self.has_includes_from_paths = true;
        }
        Ok(())
    }

    /// Adds `--exclude` style patterns (default style `fm:`).
    pub fn add_exclude(&mut self, text: &str) -> Result<()> {
        self.add(Pattern::parse(text, Style::FnMatch)?, Action::Exclude);
        Ok(())
    }

    /// Adds the patterns of an `--exclude-from` file's text.
    pub fn add_exclude_lines(&mut self, text: &str) -> Result<()> {
        for line in text.lines() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            self.add_exclude(l)?;
        }
        Ok(())
    }

    /// Adds one `--pattern` line (`+ pat`, `- pat`, `! pat`, `R root`); `default` is the style
    /// for patterns without a prefix.
    pub fn add_pattern_line(&mut self, line: &str, default: Style) -> Result<()> {
        let bad = || Error::Usage(format!("Invalid pattern line: {line:?}"));
        let line = line.trim_start();
        let mut it = line.chars();
        let cmd = it.next().ok_or_else(bad)?;
        let rest = it.as_str().trim_start();
        if rest.is_empty() {
            return Err(bad());
        }
        match cmd {
            '+' => self.add(Pattern::parse(rest, default)?, Action::Include),
            '-' => self.add(Pattern::parse(rest, default)?, Action::Exclude),
            '!' => self.add(Pattern::parse(rest, default)?, Action::ExcludeNoRecurse),
            'R' | 'r' => {
                self.roots.push(rest.to_string());
                self.add_paths(&[rest.to_string()])?;
            }
            _ => return Err(bad()),
        }
        Ok(())
    }

    /// Adds the lines of a `--patterns-from` file (with `P style` lines changing the default).
    pub fn add_pattern_lines(&mut self, text: &str) -> Result<()> {
        let mut default = Style::Shell;
        for line in text.lines() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            if let Some(s) = l.strip_prefix('P').or_else(|| l.strip_prefix('p')) {
                let s = s.trim();
                default = Style::from_prefix(s)
                    .ok_or_else(|| Error::Usage(format!("Unknown pattern style: {s}")))?;
                continue;
            }
            self.add_pattern_line(l, default)?;
        }
        Ok(())
    }

    /// The first matching pattern's action, if any pattern matches.
    pub fn action(&mut self, path: &[u8]) -> Option<Action> {
        let path = trim_leading_slashes(path);
        if let Some(a) = self.full_paths.get(path) {
            return Some(*a);
        }
        for (i, (p, a)) in self.items.iter().enumerate() {
            if p.style != Style::PathFull && p.matches(path) {
                self.matched[i] += 1;
                return Some(*a);
            }
        }
        None
    }

    /// Is the path selected? (No match: selected unless PATHs were given.)
    pub fn matches(&mut self, path: &[u8]) -> bool {
        match self.action(path) {
            Some(a) => a == Action::Include,
            None => !self.has_includes_from_paths,
        }
    }

    /// Include patterns that never matched (for borg's "never matched" warnings).
    pub fn unmatched_includes(&self) -> Vec<&str> {
        self.items
            .iter()
            .zip(&self.matched)
            .filter(|((p, a), n)| *a == Action::Include && **n == 0 && p.style != Style::PathFull)
            .map(|((p, _), _)| p.original.as_str())
            .collect()
    }

    /// No patterns and no PATHs: everything is selected.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Were PATH includes given?
    pub fn has_paths(&self) -> bool {
        self.has_includes_from_paths
    }
}

fn trim_leading_slashes(mut p: &[u8]) -> &[u8] {
    while let [b'/', rest @ ..] = p {
        p = rest;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pat: &str, style: Style, path: &str) -> bool {
        Pattern::parse(pat, style).unwrap().matches(path.as_bytes())
    }

    #[test]
    fn styles() {
        assert!(m("src/dir", Style::PathPrefix, "src/dir"));
        assert!(m("src/dir/", Style::PathPrefix, "src/dir/sub/x"));
        assert!(m("/src/dir", Style::PathPrefix, "src/dir/x"));
        assert!(!m("src/di", Style::PathPrefix, "src/dir"));
        assert!(m("*.tmp", Style::FnMatch, "a/b/c.tmp"));
        assert!(m("home/*", Style::FnMatch, "home/a/b"));
        assert!(m("sh:home/*/x", Style::PathPrefix, "home/a/x"));
        assert!(!m("sh:home/*/x", Style::PathPrefix, "home/a/b/x"));
        assert!(m("sh:home/**/x", Style::PathPrefix, "home/a/b/x"));
        assert!(m("re:\\.txt$", Style::PathPrefix, "a/b.txt"));
        assert!(m("pf:a/b", Style::PathPrefix, "a/b"));
        assert!(!m("pf:a/b", Style::PathPrefix, "a/b/c"));
        assert!(m("fm:a/[!x]", Style::PathPrefix, "a/b"));
        assert!(!m("fm:a/[!x]", Style::PathPrefix, "a/x"));
        assert!(Pattern::parse("zz:x", Style::Shell).is_err());
    }

    #[test]
    fn first_match_decides() {
        let mut mt = Matcher::new();
        mt.add_pattern_line("- home/*/junk", Style::Shell).unwrap();
        mt.add_pattern_line("+ home", Style::PathPrefix).unwrap();
        assert!(!mt.matches(b"home/u/junk/file"));
        assert!(mt.matches(b"home/u/doc"));
        assert!(
            mt.matches(b"etc"),
            "no PATHs given: unmatched paths are selected"
        );
        mt.add_paths(&["var".into()]).unwrap();
        assert!(!mt.matches(b"etc"));
        assert_eq!(mt.unmatched_includes(), vec!["var"]);
    }
}

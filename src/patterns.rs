//! borg's path selection: pattern styles `pp:`, `fm:`, `sh:`, `re:`, `pf:` and the ordered
//! include/exclude matcher used by `list` and `extract`.
//!
//! ```
//! use oxiborg::patterns::{Matcher, Pattern, Style, Action};
//! let mut m = Matcher::new();
//! m.add(Pattern::parse("*.tmp", Style::FnMatch).unwrap(), Action::Exclude);
//! m.add_paths(&["home"]).unwrap();
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
    /// The text as given (with its style prefix, if any); bytes, as paths are (a pattern from
    /// the command line need not be UTF-8).
    pub original: Vec<u8>,
    /// The style.
    pub style: Style,
    prefix: Vec<u8>,
    regex: Option<Regex>,
}

/// `os.path.normpath` on a `/`-separated path.
fn normpath(p: &[u8]) -> Vec<u8> {
    if p.is_empty() {
        return b".".to_vec();
    }
    let abs = p.starts_with(b"/");
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in p.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|l| *l != b"..") {
                    parts.pop();
                } else if !abs {
                    parts.push(b"..");
                }
            }
            c => parts.push(c),
        }
    }
    let j = parts.join(&b'/');
    match (abs, j.is_empty()) {
        (true, _) => [b"/".as_slice(), &j].concat(),
        (false, true) => b".".to_vec(),
        (false, false) => j,
    }
}

/// One character other than `/`: a UTF-8 character, or one undecodable byte (borg matches
/// surrogate-escaped strings, where each such byte is one character).
const NOT_SEP: &str = r"(?:[^/]|(?-u:[\x80-\xff]))";
/// Any one character, likewise.
const ANY: &str = r"(?:(?s:.)|(?-u:[\x80-\xff]))";

/// A pattern's text as characters, with every byte that is not UTF-8 as a character of its
/// own (what Python's surrogateescape makes of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ch {
    C(char),
    Byte(u8),
}

fn chars_of(text: &[u8]) -> Vec<Ch> {
    let mut out = Vec::with_capacity(text.len());
    for chunk in text.utf8_chunks() {
        out.extend(chunk.valid().chars().map(Ch::C));
        out.extend(chunk.invalid().iter().map(|b| Ch::Byte(*b)));
    }
    out
}

/// A literal character in a regex (an undecodable byte matches exactly that byte).
fn push_literal(res: &mut String, c: Ch) {
    match c {
        Ch::C(c) => res.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
        Ch::Byte(b) => res.push_str(&format!("(?-u:\\x{b:02x})")),
    }
}

/// borg's shell-pattern translation (`*` within a component, `**/` across components).
pub(crate) fn translate_shell(pat: &[u8]) -> String {
    let chars = chars_of(pat);
    let n = chars.len();
    let mut i = 0;
    let mut res = String::new();
    while i < n {
        let c = chars[i];
        i += 1;
        match c {
            Ch::C('*') => {
                if i + 1 < n && chars[i] == Ch::C('*') && chars[i + 1] == Ch::C('/') {
                    res.push_str(&format!("(?:{NOT_SEP}*/)*"));
                    i += 2;
                } else {
                    res.push_str(&format!("{NOT_SEP}*"));
                }
            }
            Ch::C('?') => res.push_str(NOT_SEP),
            Ch::C('[') => i = translate_class(&chars, i, &mut res),
            c => push_literal(&mut res, c),
        }
    }
    res
}

/// Python's `fnmatch.translate` (`*` crosses `/`).
fn translate_fnmatch(pat: &[u8]) -> String {
    let chars = chars_of(pat);
    let mut i = 0;
    let mut res = String::new();
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            Ch::C('*') => {
                while i < chars.len() && chars[i] == Ch::C('*') {
                    i += 1;
                }
                res.push_str(&format!("{ANY}*"));
            }
            Ch::C('?') => res.push_str(ANY),
            Ch::C('[') => i = translate_class(&chars, i, &mut res),
            c => push_literal(&mut res, c),
        }
    }
    res
}

/// Translates a `[...]` class starting after `[` at `i`; returns the new index.
fn translate_class(chars: &[Ch], i: usize, res: &mut String) -> usize {
    let n = chars.len();
    let mut j = i;
    if j < n && chars[j] == Ch::C('!') {
        j += 1;
    }
    if j < n && chars[j] == Ch::C(']') {
        j += 1;
    }
    while j < n && chars[j] != Ch::C(']') {
        j += 1;
    }
    if j >= n {
        res.push_str("\\[");
        return i;
    }
    let mut body = &chars[i..j];
    let negated = body.first() == Some(&Ch::C('!'));
    if negated {
        body = &body[1..];
    }
    let mut class = String::new();
    let mut bytes = String::new();
    for (k, c) in body.iter().enumerate() {
        match c {
            Ch::C('\\') => class.push_str("\\\\"),
            // '^' first would negate; '[' would nest; '&&' and '~~' are set operations in
            // Rust's classes: all literal in Python's.
            Ch::C('^') if k == 0 => class.push_str("\\^"),
            Ch::C(c @ ('[' | '&' | '~')) => {
                class.push('\\');
                class.push(*c);
            }
            Ch::C(c) => class.push(*c),
            // an undecodable byte: that byte (in a class of raw bytes)
            Ch::Byte(b) => bytes.push_str(&format!("\\x{b:02x}")),
        }
    }
    // A byte that is not UTF-8 is one character: a negated class matches it unless listed.
    match (negated, class.is_empty(), bytes.is_empty()) {
        (false, _, true) => res.push_str(&format!("[{class}]")),
        (false, true, false) => res.push_str(&format!("(?-u:[{bytes}])")),
        (false, false, false) => res.push_str(&format!("(?:[{class}]|(?-u:[{bytes}]))")),
        (true, _, _) => {
            let bytes = if bytes.is_empty() {
                r"\x80-\xff".to_string()
            } else {
                format!(r"\x80-\xff&&[^{bytes}]")
            };
            let chars = if class.is_empty() {
                // "[!]" cannot happen (']' first is literal); a class of bytes only
                "(?s:.)".to_string()
            } else {
                format!("[^{class}]")
            };
            res.push_str(&format!("(?:{chars}|(?-u:[{bytes}]))"));
        }
    }
    j + 1
}

/// A `re:` pattern's text as a regex on bytes: UTF-8 as written, each undecodable byte as a
/// byte literal.
fn regex_text(body: &[u8]) -> String {
    let mut res = String::with_capacity(body.len());
    for chunk in body.utf8_chunks() {
        res.push_str(chunk.valid());
        for b in chunk.invalid() {
            res.push_str(&format!("(?-u:\\x{b:02x})"));
        }
    }
    res
}

impl Pattern {
    /// Parses `text`, honouring a `xx:` style prefix, else using `default`. Patterns are
    /// bytes, as archive paths are: a pattern that is not UTF-8 matches the same bytes.
    ///
    /// # Errors
    /// An unknown style prefix, or a regular expression that does not compile.
    pub fn parse(text: impl AsRef<[u8]>, default: Style) -> Result<Pattern> {
        let b = text.as_ref();
        let (style, body) = if b.len() > 2
            && b[2] == b':'
            && b[0].is_ascii_alphanumeric()
            && b[1].is_ascii_alphanumeric()
        {
            let prefix = std::str::from_utf8(&b[..2]).unwrap_or_default();
            let style = Style::from_prefix(prefix).ok_or_else(|| {
                Error::InvalidInput(format!(
                    "Unknown pattern style: {prefix} (in {:?})",
                    show(b)
                ))
            })?;
            (style, &b[3..])
        } else {
            (default, b)
        };
        Self::with_style(b, style, body)
    }

    fn with_style(original: &[u8], style: Style, body: &[u8]) -> Result<Pattern> {
        let compile = |re: String| {
            Regex::new(&re).map_err(|e| {
                Error::InvalidInput(format!("Invalid pattern {:?}: {e}", show(original)))
            })
        };
        let mut p = Pattern {
            original: original.to_vec(),
            style,
            prefix: Vec::new(),
            regex: None,
        };
        let trim_end = |mut s: &[u8]| {
            while let [rest @ .., b'/'] = s {
                s = rest;
            }
            s.to_vec()
        };
        match style {
            Style::PathPrefix => {
                let mut s = trim_end(&normpath(body));
                s.push(b'/');
                p.prefix = trim_leading_slashes(&s).to_vec();
            }
            Style::PathFull => {
                p.prefix = trim_leading_slashes(&normpath(body)).to_vec();
            }
            Style::FnMatch | Style::Shell => {
                let np = trim_end(&normpath(body));
                let tail: &[u8] = match (style, body.ends_with(b"/")) {
                    (Style::FnMatch, true) => b"/*/",
                    (Style::FnMatch, false) => b"/*",
                    (_, true) => b"/**/*/",
                    (_, false) => b"/**/*",
                };
                let full = [np.as_slice(), tail].concat();
                let full = trim_leading_slashes(&full);
                let re = if style == Style::FnMatch {
                    translate_fnmatch(full)
                } else {
                    translate_shell(full)
                };
                p.regex = Some(compile(format!("(?s)\\A(?:{re})\\z"))?);
            }
            Style::Regex => p.regex = Some(compile(regex_text(body))?),
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

/// A pattern for messages.
fn show(b: &[u8]) -> String {
    crate::text::display_bytes(b)
}

/// An ordered list of patterns; the first match decides.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    items: Vec<(Pattern, Action)>,
    full_paths: HashMap<Vec<u8>, Action>,
    has_includes_from_paths: bool,
    /// Roots given as `R path` lines.
    pub roots: Vec<Vec<u8>>,
    matched: Vec<u64>,
}

/// The lines of a pattern file (or text), trimmed, without blank lines and comments.
fn pattern_lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split(|b| *b == b'\n')
        .map(|l| l.trim_ascii())
        .filter(|l| !l.is_empty() && !l.starts_with(b"#"))
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

    /// A matcher that selects `paths` (PATH arguments, as [`Matcher::add_paths`] takes them), or
    /// everything when there are none.
    ///
    /// # Errors
    /// A path with an unknown style prefix or a bad regular expression.
    pub fn from_paths<P: AsRef<[u8]>>(paths: &[P]) -> Result<Matcher> {
        let mut m = Matcher::new();
        m.add_paths(paths)?;
        Ok(m)
    }

    /// Adds PATH arguments as path-prefix includes (a style prefix is honoured); once any is
    /// added, paths matching no pattern are deselected.
    ///
    /// # Errors
    /// A path with an unknown style prefix or a bad regular expression.
    pub fn add_paths<P: AsRef<[u8]>>(&mut self, paths: &[P]) -> Result<()> {
        for path in paths {
            self.add(Pattern::parse(path, Style::PathPrefix)?, Action::Include);
            self.has_includes_from_paths = true;
        }
        Ok(())
    }

    /// Adds `--exclude` style patterns (default style `fm:`).
    ///
    /// # Errors
    /// As [`Pattern::parse`].
    pub fn add_exclude(&mut self, text: impl AsRef<[u8]>) -> Result<()> {
        self.add(Pattern::parse(text, Style::FnMatch)?, Action::Exclude);
        Ok(())
    }

    /// Adds the patterns of an `--exclude-from` file's text.
    ///
    /// # Errors
    /// As [`Pattern::parse`], for the first bad line.
    pub fn add_exclude_lines(&mut self, text: impl AsRef<[u8]>) -> Result<()> {
        for l in pattern_lines(text.as_ref()) {
            self.add_exclude(l)?;
        }
        Ok(())
    }

    /// Adds one `--pattern` line (`+ pat`, `- pat`, `! pat`, `R root`); `default` is the style
    /// for patterns without a prefix.
    ///
    /// # Errors
    /// A line that is not one of these, or a bad pattern in it.
    pub fn add_pattern_line(&mut self, line: impl AsRef<[u8]>, default: Style) -> Result<()> {
        let line = line.as_ref();
        let bad = || Error::InvalidInput(format!("Invalid pattern line: {:?}", show(line)));
        let line = line.trim_ascii_start();
        let (cmd, rest) = line.split_first().ok_or_else(bad)?;
        let rest = rest.trim_ascii_start();
        if rest.is_empty() {
            return Err(bad());
        }
        match cmd {
            b'+' => self.add(Pattern::parse(rest, default)?, Action::Include),
            b'-' => self.add(Pattern::parse(rest, default)?, Action::Exclude),
            b'!' => self.add(Pattern::parse(rest, default)?, Action::ExcludeNoRecurse),
            b'R' | b'r' => {
                self.roots.push(rest.to_vec());
                self.add_paths(&[rest])?;
            }
            _ => return Err(bad()),
        }
        Ok(())
    }

    /// Adds the lines of a `--patterns-from` file (with `P style` lines changing the default).
    ///
    /// # Errors
    /// As [`Matcher::add_pattern_line`], for the first bad line, or an unknown `P` style.
    pub fn add_pattern_lines(&mut self, text: impl AsRef<[u8]>) -> Result<()> {
        let mut default = Style::Shell;
        for l in pattern_lines(text.as_ref()) {
            if let Some(s) = l.strip_prefix(b"P").or_else(|| l.strip_prefix(b"p")) {
                let s = show(s.trim_ascii());
                default = Style::from_prefix(&s)
                    .ok_or_else(|| Error::InvalidInput(format!("Unknown pattern style: {s}")))?;
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

    /// Include patterns that never matched (for borg's "never matched" warnings), for display.
    pub fn unmatched_includes(&self) -> Vec<String> {
        self.items
            .iter()
            .zip(&self.matched)
            .filter(|((p, a), n)| *a == Action::Include && **n == 0 && p.style != Style::PathFull)
            .map(|((p, _), _)| show(&p.original))
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
        mt.add_paths(&["var"]).unwrap();
        assert!(!mt.matches(b"etc"));
        assert_eq!(mt.unmatched_includes(), vec!["var"]);
    }

    #[test]
    fn patterns_are_bytes() {
        let path = b"bad\xff\xfeutf8/file";
        for (pat, style) in [
            (&b"bad\xff\xfeutf8"[..], Style::PathPrefix),
            (b"sh:bad\xff*", Style::PathPrefix),
            (b"bad?\xfe*", Style::FnMatch),
            (b"bad[\xff]\xfe*", Style::FnMatch),
            (b"re:^bad\xff", Style::PathPrefix),
            (b"pf:bad\xff\xfeutf8/file", Style::PathPrefix),
        ] {
            let p = Pattern::parse(pat, style).unwrap();
            assert!(p.matches(path), "{pat:?}");
            assert!(!p.matches(b"bad\xfe\xffutf8/file"), "{pat:?}");
        }
        // an undecodable byte is one character, as in borg's surrogate-escaped strings
        assert!(m("fm:a?b", Style::PathPrefix, "a\u{e9}b"));
        assert!(Pattern::parse(b"fm:a?b", Style::PathPrefix)
            .unwrap()
            .matches(b"a\xe9b"));
    }
}

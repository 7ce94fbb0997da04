//! borg's `--format` strings: Python `str.format` syntax over named placeholders.
//!
//! `{name}` and `{name:spec}` with a format spec `[[fill]align][0][width][,][.precision]` (numbers
//! right-aligned and strings left-aligned by default, as in Python); time placeholders take a
//! `strftime` spec (`{mtime:%Y-%m-%d}`). `{{` and `}}` are literal braces.

use chrono::{DateTime, Local};
use std::fmt::Write;

/// A placeholder's value.
#[derive(Debug, Clone)]
pub enum Value {
    /// Text.
    Str(String),
    /// An integer.
    Int(i64),
    /// A local time (borg's default rendering `%a, %Y-%m-%d %H:%M:%S`).
    Time(DateTime<Local>),
    /// A local time as borg 2 renders it by default, with the UTC offset
    /// (`%a, %Y-%m-%d %H:%M:%S %z`).
    TimeTz(DateTime<Local>),
}

/// borg's default time rendering.
pub const DEFAULT_TIME: &str = "%a, %Y-%m-%d %H:%M:%S";

/// borg 2's default time rendering.
pub const DEFAULT_TIME_TZ: &str = "%a, %Y-%m-%d %H:%M:%S %z";

/// One piece of a parsed format string.
#[derive(Debug, Clone)]
enum Piece {
    Lit(String),
    Field { name: String, spec: String },
}

/// A parsed format string.
#[derive(Debug, Clone)]
pub struct Format {
    pieces: Vec<Piece>,
}

impl Format {
    /// Parses a format string; errors name the problem.
    pub fn parse(fmt: &str) -> Result<Format, String> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut chars = fmt.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut field = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        field.push(c);
                    }
                    if !closed {
                        return Err(format!("unclosed '{{' in format {fmt:?}"));
                    }
                    if !lit.is_empty() {
                        pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                    }
                    let (name, spec) = match field.split_once(':') {
                        Some((n, s)) => (n.to_string(), s.to_string()),
                        None => (field, String::new()),
                    };
                    pieces.push(Piece::Field { name, spec });
                }
                '}' => return Err(format!("single '}}' in format {fmt:?}")),
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Lit(lit));
        }
        Ok(Format { pieces })
    }

    /// The placeholder names used, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Field { name, .. } => Some(name.as_str()),
            Piece::Lit(_) => None,
        })
    }

    /// Does the format use placeholder `name`?
    pub fn uses(&self, name: &str) -> bool {
        self.names().any(|n| n == name)
    }

    /// Renders with `lookup` giving each placeholder's value (`None`: unknown placeholder).
    pub fn render(
        &self,
        out: &mut String,
        mut lookup: impl FnMut(&str) -> Option<Value>,
    ) -> Result<(), String> {
        for p in &self.pieces {
            match p {
                Piece::Lit(s) => out.push_str(s),
                Piece::Field { name, spec } => {
                    let v = constant(name)
                        .or_else(|| lookup(name))
                        .ok_or_else(|| format!("unknown placeholder {{{name}}} in format"))?;
                    apply_spec(out, &v, spec)?;
                }
            }
        }
        Ok(())
    }
}

fn constant(name: &str) -> Option<Value> {
    let s = match name {
        "NEWLINE" | "NL" | "LF" => "\n",
        "CR" => "\r",
        "NUL" => "\0",
        "SPACE" => " ",
        "TAB" => "\t",
        _ => return None,
    };
    Some(Value::Str(s.to_string()))
}

/// Formats one value with a Python format spec.
fn apply_spec(out: &mut String, v: &Value, spec: &str) -> Result<(), String> {
    if let Value::Time(t) | Value::TimeTz(t) = v {
        let f = match (spec.is_empty(), v) {
            (false, _) => spec,
            (true, Value::TimeTz(_)) => DEFAULT_TIME_TZ,
            (true, _) => DEFAULT_TIME,
        };
        let mut s = String::new();
        write!(s, "{}", t.format(f)).map_err(|_| format!("bad time format {spec:?}"))?;
        out.push_str(&s);
        return Ok(());
    }
    let mut chars: Vec<char> = spec.chars().collect();
    let mut fill = ' ';
    let mut align: Option<char> = None;
    if chars.len() >= 2 && matches!(chars[1], '<' | '>' | '^' | '=') {
        fill = chars[0];
        align = Some(chars[1]);
        chars.drain(..2);
    } else if !chars.is_empty() && matches!(chars[0], '<' | '>' | '^' | '=') {
        align = Some(chars[0]);
        chars.remove(0);
    }
    let rest: String = chars.into_iter().collect();
    let mut rest = rest.as_str();
    if let Some(r) = rest.strip_prefix('0') {
        if align.is_none() {
            fill = '0';
            align = Some('=');
        }
        rest = r;
    }
    let (width_str, after) = split_digits(rest);
    let width: usize = if width_str.is_empty() {
        0
    } else {
        width_str.parse().map_err(|_| "bad width")?
    };
    let mut grouping = false;
    let mut rest = after;
    if let Some(r) = rest.strip_prefix(',') {
        grouping = true;
        rest = r;
    }
    let mut precision: Option<usize> = None;
    if let Some(r) = rest.strip_prefix('.') {
        let (p, after) = split_digits(r);
        precision = Some(
            p.parse()
                .map_err(|_| format!("bad precision in {spec:?}"))?,
        );
        rest = after;
    }
    let kind = rest;
    let (text, numeric) = match v {
        Value::Str(s) => {
            let s = match precision {
                Some(p) => s.chars().take(p).collect(),
                None => s.clone(),
            };
            (s, false)
        }
        Value::Int(i) => {
            let s = match kind {
                "x" => format!("{i:x}"),
                "X" => format!("{i:X}"),
                "o" => format!("{i:o}"),
                "b" => format!("{i:b}"),
                _ if grouping => group_thousands(*i),
                _ => i.to_string(),
            };
            (s, true)
        }
        Value::Time(_) | Value::TimeTz(_) => unreachable!("handled above"),
    };
    let len = text.chars().count();
    if len >= width {
        out.push_str(&text);
        return Ok(());
    }
    let pad = width - len;
    let align = align.unwrap_or(if numeric { '>' } else { '<' });
    let fills = |n: usize| std::iter::repeat_n(fill, n).collect::<String>();
    match align {
        '<' => {
            out.push_str(&text);
            out.push_str(&fills(pad));
        }
        '^' => {
            out.push_str(&fills(pad / 2));
            out.push_str(&text);
            out.push_str(&fills(pad - pad / 2));
        }
        '=' if text.starts_with('-') => {
            out.push('-');
            out.push_str(&fills(pad));
            out.push_str(&text[1..]);
        }
        _ => {
            out.push_str(&fills(pad));
            out.push_str(&text);
        }
    }
    Ok(())
}

fn split_digits(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s.split_at(end)
}

fn group_thousands(i: i64) -> String {
    let digits = i.unsigned_abs().to_string();
    let mut out = String::new();
    for (n, c) in digits.chars().enumerate() {
        if n > 0 && (digits.len() - n) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if i < 0 {
        format!("-{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(f: &str, v: Value) -> String {
        let mut s = String::new();
        Format::parse(f)
            .unwrap()
            .render(&mut s, |_| Some(v.clone()))
            .unwrap();
        s
    }

    #[test]
    fn python_alignment_rules() {
        assert_eq!(r("{x:6}", Value::Str("root".into())), "root  ");
        assert_eq!(r("{x:6}", Value::Int(12345)), " 12345");
        assert_eq!(r("{x:<36}|", Value::Str("a".into())).len(), 37);
        assert_eq!(r("{x:>8}", Value::Str("ab".into())), "      ab");
        assert_eq!(r("{x:^5}", Value::Str("ab".into())), " ab  ");
        assert_eq!(r("{x:08}", Value::Int(-42)), "-0000042");
        assert_eq!(r("{x:,}", Value::Int(1234567)), "1,234,567");
        assert_eq!(r("{{{x}}}{NL}", Value::Int(7)), "{7}\n");
        assert_eq!(r("{x:.2}", Value::Str("abcdef".into())), "ab");
    }

    #[test]
    fn bad_formats() {
        assert!(Format::parse("{x").is_err());
        assert!(Format::parse("x}").is_err());
        let f = Format::parse("{nope}").unwrap();
        assert!(f.render(&mut String::new(), |_| None).is_err());
    }
}

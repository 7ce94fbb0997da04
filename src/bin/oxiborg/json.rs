//! JSON exactly as borg (Python's `json.dumps`) writes it: `ensure_ascii`, `sort_keys` with
//! `indent=4` for `--json`, `", "`/`": "` separators on one line for `--json-lines`, and Python's
//! float `repr`.

use std::fmt::Write;

/// A JSON value with insertion-ordered objects.
#[derive(Debug, Clone, PartialEq)]
pub enum J {
    /// `null`.
    Null,
    /// `true`/`false`.
    Bool(bool),
    /// An integer.
    Int(i128),
    /// A float, written like Python's `repr`.
    Float(f64),
    /// A string (escaped with `ensure_ascii`).
    Str(String),
    /// A string given as raw bytes; undecodable bytes are written `\udcXX` (surrogateescape).
    Bytes(Vec<u8>),
    /// An array.
    Arr(Vec<J>),
    /// An object, keys in insertion order (sorted on output where asked).
    Obj(Vec<(String, J)>),
}

impl J {
    /// Builds an object from pairs.
    pub fn obj<K: Into<String>>(pairs: impl IntoIterator<Item = (K, J)>) -> J {
        J::Obj(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
    /// A string value.
    pub fn s(s: impl Into<String>) -> J {
        J::Str(s.into())
    }
}

/// `json.dumps(v, sort_keys=True, indent=4)` (borg's `--json`).
pub fn pretty(v: &J) -> String {
    let mut out = String::new();
    write_value(&mut out, v, Some(4), 0, true);
    out
}

/// `json.dumps(v)` (borg's `--json-lines`): one line, keys in insertion order.
pub fn line(v: &J) -> String {
    let mut out = String::new();
    write_value(&mut out, v, None, 0, false);
    out
}

fn newline(out: &mut String, indent: Option<usize>, level: usize) {
    if let Some(n) = indent {
        out.push('\n');
        for _ in 0..n * level {
            out.push(' ');
        }
    }
}

fn write_value(out: &mut String, v: &J, indent: Option<usize>, level: usize, sort: bool) {
    match v {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Int(i) => {
            let _ = write!(out, "{i}");
        }
        J::Float(f) => out.push_str(&py_float_repr(*f)),
        J::Str(s) => write_str(out, s),
        J::Bytes(b) => write_bytes(out, b),
        J::Arr(a) => {
            if a.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                    if indent.is_none() {
                        out.push(' ');
                    }
                }
                newline(out, indent, level + 1);
                write_value(out, x, indent, level + 1, sort);
            }
            newline(out, indent, level);
            out.push(']');
        }
        J::Obj(o) => {
            if o.is_empty() {
                out.push_str("{}");
                return;
            }
            let mut items: Vec<&(String, J)> = o.iter().collect();
            if sort {
                items.sort_by(|a, b| a.0.cmp(&b.0));
            }
            out.push('{');
            for (i, (k, x)) in items.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                    if indent.is_none() {
                        out.push(' ');
                    }
                }
                newline(out, indent, level + 1);
                write_str(out, k);
                out.push_str(": ");
                write_value(out, x, indent, level + 1, sort);
            }
            newline(out, indent, level);
            out.push('}');
        }
    }
}

fn write_char(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        c if (c as u32) < 0x20 || (c as u32) > 0x7e && (c as u32) != 0x7f => {
            let mut buf = [0u16; 2];
            for u in c.encode_utf16(&mut buf) {
                let _ = write!(out, "\\u{u:04x}");
            }
        }
        c => out.push(c),
    }
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        write_char(out, c);
    }
    out.push('"');
}

fn write_bytes(out: &mut String, b: &[u8]) {
    out.push('"');
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            write_char(out, c);
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\udc{byte:02x}");
        }
    }
    out.push('"');
}

/// Python's `repr(float)`: shortest round-trip digits, fixed notation for exponents in
/// [-4, 16), else `d.ddde-05` style.
pub fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let sci = format!("{f:e}"); // e.g. "-2.54631540293367e-5"
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if neg { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let body = if exp >= 0 {
            let e = exp as usize;
            let int_part: String = if digits.len() > e {
                digits[..=e].to_string()
            } else {
                format!("{digits}{}", "0".repeat(e + 1 - digits.len()))
            };
            let frac = if digits.len() > e + 1 {
                &digits[e + 1..]
            } else {
                "0"
            };
            format!("{int_part}.{frac}")
        } else {
            format!("0.{}{}", "0".repeat((-exp - 1) as usize), digits)
        };
        format!("{sign}{body}")
    } else {
        let m = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits.clone()
        };
        let es = if exp < 0 { '-' } else { '+' };
        format!("{sign}{m}e{es}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_like_python() {
        assert_eq!(py_float_repr(2.54631540293367e-05), "2.54631540293367e-05");
        assert_eq!(py_float_repr(0.039154), "0.039154");
        assert_eq!(py_float_repr(2.0), "2.0");
        assert_eq!(py_float_repr(1e16), "1e+16");
        assert_eq!(py_float_repr(123456.5), "123456.5");
        assert_eq!(py_float_repr(0.0001), "0.0001");
    }

    #[test]
    fn dumps_like_python() {
        let v = J::obj([("b", J::Int(1)), ("a", J::Arr(vec![J::s("ü"), J::Null]))]);
        assert_eq!(line(&v), "{\"b\": 1, \"a\": [\"\\u00fc\", null]}");
        assert_eq!(
            pretty(&v),
            "{\n    \"a\": [\n        \"\\u00fc\",\n        null\n    ],\n    \"b\": 1\n}"
        );
        assert_eq!(line(&J::Bytes(b"a\xff".to_vec())), "\"a\\udcff\"");
        assert_eq!(line(&J::s("名")), "\"\\u540d\"");
    }
}

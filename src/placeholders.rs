//! borg's placeholders (`borg help placeholders`): `{hostname}`, `{now:%Y-%m-%d}`, `{user}` …
//! in repository locations, archive names, `--prefix` and `--glob-archives`, so that the
//! arguments a borg user (or borgmatic, which passes `--glob-archives {hostname}-*`) writes
//! mean the same here: `replace("{hostname}-*")` is `myhost-*`, `replace("{{literal}}")` is
//! `{literal}`.

use crate::error::{Error, Result};
use chrono::{Local, Utc};

/// The short host name (what `hostname --short` prints), or `BORG_HOSTNAME`.
fn hostname() -> String {
    std::env::var("BORG_HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| fqdn().split('.').next().unwrap_or_default().to_string())
}

/// The host name as the system has it (no DNS lookup is made).
fn fqdn() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// The user's login name, or `BORG_USERNAME`.
fn user() -> String {
    if let Some(u) = std::env::var("BORG_USERNAME")
        .ok()
        .filter(|u| !u.is_empty())
    {
        return u;
    }
    let uid = rustix::process::geteuid().as_raw();
    match crate::users::user_by_uid(uid) {
        Ok(Some(u)) if !u.name.is_empty() => u.name_lossy(),
        _ => uid.to_string(),
    }
}

fn uuid4() -> String {
    let mut b = [0u8; 16];
    let _ = rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty());
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The value of one placeholder with its format spec (only the times take one: strftime).
fn value(key: &str, spec: Option<&str>, text: &str) -> Result<String> {
    let time_spec = spec.unwrap_or("%Y-%m-%dT%H:%M:%S");
    let plain = |v: String| match spec {
        None => Ok(v),
        Some(s) => Err(Error::InvalidInput(format!(
            "Formatting Error: \"{text}\": the format spec \"{s}\" of {{{key}}} is not supported"
        ))),
    };
    let version = env!("CARGO_PKG_VERSION");
    let mut parts = version.split('.');
    let (major, minor, patch) = (
        parts.next().unwrap_or("0"),
        parts.next().unwrap_or("0"),
        parts.next().unwrap_or("0"),
    );
    // chrono's Display fails (and `to_string` would panic) on a bad spec
    let strftime = |t: &dyn Fn(&mut String) -> std::fmt::Result| {
        let mut out = String::new();
        t(&mut out).map(|()| out).map_err(|_| {
            Error::InvalidInput(format!(
                "Formatting Error: \"{text}\": invalid time format \"{time_spec}\" in {{{key}}}"
            ))
        })
    };
    use std::fmt::Write;
    match key {
        "now" => strftime(&|o| write!(o, "{}", Local::now().format(time_spec))),
        "utcnow" => strftime(&|o| write!(o, "{}", Utc::now().format(time_spec))),
        "hostname" => plain(hostname()),
        "fqdn" => plain(fqdn()),
        "reverse-fqdn" => plain(fqdn().split('.').rev().collect::<Vec<_>>().join(".")),
        "user" => plain(user()),
        "pid" => plain(std::process::id().to_string()),
        "unixtime" => plain(Utc::now().timestamp().to_string()),
        "uuid4" => plain(uuid4()),
        "borgversion" => plain(version.to_string()),
        "borgmajor" => plain(major.to_string()),
        "borgminor" => plain(format!("{major}.{minor}")),
        "borgpatch" => plain(format!("{major}.{minor}.{patch}")),
        _ => Err(Error::InvalidInput(format!(
            "Invalid placeholder \"{key}\" in string: {text}"
        ))),
    }
}

/// Replaces every `{placeholder}` / `{placeholder:spec}` in `text`; `{{` and `}}` are literal
/// braces. An unknown placeholder or a lone brace is an error, as in borg.
pub fn replace(text: &str) -> Result<String> {
    if !text.contains(['{', '}']) {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let brace = rest.as_bytes()[i];
        let after = &rest[i + 1..];
        if after.as_bytes().first() == Some(&brace) {
            out.push(brace as char);
            rest = &after[1..];
            continue;
        }
        if brace == b'}' {
            return Err(Error::InvalidInput(format!(
                "Formatting Error: \"{text}\": Single '}}' encountered in format string"
            )));
        }
        let Some(end) = after.find('}') else {
            return Err(Error::InvalidInput(format!(
                "Formatting Error: \"{text}\": expected '}}' before end of string"
            )));
        };
        let field = &after[..end];
        let (key, spec) = match field.split_once(':') {
            Some((k, s)) => (k, Some(s)),
            None => (field, None),
        };
        out.push_str(&value(key, spec, text)?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_escapes() {
        std::env::set_var("BORG_HOSTNAME", "voile");
        assert_eq!(replace("{hostname}-*").unwrap(), "voile-*");
        assert_eq!(replace("a{{b}}c").unwrap(), "a{b}c");
        let y = replace("{now:%Y}").unwrap();
        assert_eq!(y.len(), 4, "{y}");
        assert!(replace("{utcnow}").unwrap().contains('T'));
        assert_eq!(
            replace("{borgmajor}").unwrap(),
            env!("CARGO_PKG_VERSION").split('.').next().unwrap()
        );
        assert_eq!(replace("{uuid4}").unwrap().len(), 36);
        for bad in [
            "{nope}",
            "{",
            "}",
            "x{hostname",
            "{hostname:>9}",
            "{now:%Q}",
            "{now:%}",
        ] {
            assert!(replace(bad).is_err(), "{bad}");
        }
    }
}

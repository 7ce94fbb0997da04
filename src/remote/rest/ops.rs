//! The read operations on one session, as the REST endpoints give them: `GET /<dir>/` (a
//! listing), `GET /<name>` (a file), `GET` with `Range` (a byte range), `HEAD /<name>` (what is
//! there); and what each status means. Names go into request lines only when they are names
//! borg writes (no blanks, no control characters, no `..`).

use super::http::{request, Expect, Method, Response};
use super::session::RestSession;
use crate::error::{Error, RemoteErrorKind, Result};
use crate::store::files::{DirEntry, Range};

/// Largest listing accepted (a directory of some 300 000 entries).
pub(super) const MAX_LISTING: u64 = 64 << 20;
/// Largest whole file accepted (index fragments, keys, config: far smaller).
pub(super) const MAX_FILE: u64 = 1 << 30;

/// Whether `name` (one component) has only characters borg's store names have.
fn plain_component(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c))
}

/// The request path for `name` (`/` + name; a listing ends in `/`).
pub(super) fn target(name: &str, listing: bool) -> Result<String> {
    if name.is_empty() {
        return Ok("/".into());
    }
    if !name.split('/').all(plain_component) {
        return Err(Error::InvalidInput(format!(
            "{name:?}: not a name that borg serve --rest serves"
        )));
    }
    Ok(if listing {
        format!("/{name}/")
    } else {
        format!("/{name}")
    })
}

/// The reason phrase as shown in messages (the server's error message), at most 300
/// characters.
fn said(resp: &Response) -> String {
    let mut s: String = resp
        .reason
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(300)
        .collect();
    if s.is_empty() {
        s.push_str("(no reason given)");
    }
    s
}

/// The error for a response that is none of the answers the request expects: `what` names
/// what was asked for.
pub(super) fn refused(s: &RestSession, resp: &Response, what: &str) -> Error {
    let loc = &s.location;
    let said = said(resp);
    match resp.status {
        410 => Error::RepositoryDoesNotExist(loc.clone()),
        403 => Error::remote(
            RemoteErrorKind::Server,
            format!(
                "Permission denied: the server does not let this client read {what} of {loc} \
                 (403 {said}); see borg serve's --permissions / BORG_REPO_PERMISSIONS there"
            ),
        ),
        406 => Error::remote(
            RemoteErrorKind::Protocol,
            format!(
                "The server at {loc} does not serve the borgstore REST v1 protocol that oxiborg \
                 speaks (406 {said})"
            ),
        ),
        st => Error::remote(
            RemoteErrorKind::Server,
            format!("{loc}: {what}: the server answered {st} {said}"),
        ),
    }
}

/// The first request of a session: `HEAD /`, the repository's top directory.
pub(super) fn probe(s: &RestSession) -> Result<()> {
    let resp = s.call(
        &request(Method::Head, "/", None, None),
        Expect {
            head: true,
            limit: 0,
        },
        "HEAD /",
    )?;
    match resp.status {
        200 => Ok(()),
        _ => Err(refused(s, &resp, "the repository")),
    }
}

/// One entry of a listing as the server sends it (other fields: `atime`, `mtime`).
#[derive(serde::Deserialize)]
struct Listed {
    name: String,
    size: u64,
    directory: bool,
}

/// One level of the directory `dir`; `None` when there is no such directory.
pub(super) fn list(s: &RestSession, dir: &str) -> Result<Option<Vec<DirEntry>>> {
    let what = if dir.is_empty() { "/" } else { dir };
    let resp = s.call(
        &request(Method::Get, &target(dir, true)?, None, None),
        Expect {
            head: false,
            limit: MAX_LISTING,
        },
        &format!("the listing of {what}"),
    )?;
    match resp.status {
        200 => {}
        404 => return Ok(None),
        _ => return Err(refused(s, &resp, &format!("the listing of {what}"))),
    }
    let listed: Vec<Listed> = serde_json::from_slice(&resp.body).map_err(|e| {
        s.violation(format!(
            "The server's listing of {what} is not borg serve --rest's JSON: {e}"
        ))
    })?;
    let mut out = Vec::with_capacity(listed.len());
    for e in listed {
        if !plain_component(&e.name) {
            return Err(s.violation(format!(
                "The server's listing of {what} has an entry named {:?}, not a name borg writes",
                e.name.chars().take(100).collect::<String>()
            )));
        }
        out.push(DirEntry {
            name: e.name,
            size: if e.directory { 0 } else { e.size },
            is_dir: e.directory,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    Ok(Some(out))
}

/// A whole file; `None` when there is no such file.
pub(super) fn load(s: &RestSession, name: &str) -> Result<Option<Vec<u8>>> {
    let resp = s.call(
        &request(Method::Get, &target(name, false)?, None, None),
        Expect {
            head: false,
            limit: MAX_FILE,
        },
        name,
    )?;
    match resp.status {
        200 => Ok(Some(resp.body)),
        404 => Ok(None),
        _ => Err(refused(s, &resp, name)),
    }
}

/// The error for a file that ends before `range` does (`got` of its bytes are there).
pub(super) fn ends_early(range: &Range, got: u64) -> Error {
    Error::Integrity(format!(
        "{}: ends at {} bytes, before the {} bytes at offset {} that the index points at",
        range.name,
        range.offset + got,
        range.len,
        range.offset
    ))
}

/// The error for a file that is not there although the index points into it.
pub(super) fn missing(range: &Range) -> Error {
    Error::Integrity(format!(
        "{}: no such file in the repository, but the index points at {} bytes at offset {} in it",
        range.name, range.len, range.offset
    ))
}

/// Exactly `range.len` bytes at `range.offset`: a `206` with just those bytes. A file that
/// ends sooner is an integrity error (as locally); any other answer a protocol error.
pub(super) fn load_range(s: &RestSession, range: &Range) -> Result<Vec<u8>> {
    if range.len == 0 {
        return Ok(Vec::new());
    }
    let last = range
        .offset
        .checked_add(range.len - 1)
        .ok_or_else(|| Error::InvalidInput(format!("{}: a range past 2^64", range.name)))?;
    let resp = s.call(
        &request(
            Method::Get,
            &target(&range.name, false)?,
            Some((range.offset, last)),
            None,
        ),
        Expect {
            head: false,
            limit: range.len,
        },
        &range.name,
    )?;
    match resp.status {
        206 if resp.body.len() as u64 == range.len => Ok(resp.body),
        // (a body longer than asked for was refused while it was read)
        206 => Err(ends_early(range, resp.body.len() as u64)),
        404 => Err(missing(range)),
        416 => Err(ends_early(range, 0)),
        200 => Err(s.violation(format!(
            "The server answered a request for {} bytes of {} with the whole file (200, not 206)",
            range.len, range.name
        ))),
        _ => Err(refused(s, &resp, &range.name)),
    }
}

/// What is at `name`: `Some(true)` a directory, `Some(false)` a file, `None` nothing.
pub(super) fn kind(s: &RestSession, name: &str) -> Result<Option<bool>> {
    let resp = s.call(
        &request(Method::Head, &target(name, false)?, None, None),
        Expect {
            head: true,
            limit: 0,
        },
        name,
    )?;
    match resp.status {
        200 => match resp.header("X-BorgStore-Is-Directory") {
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            other => Err(s.violation(format!(
                "The server's answer to HEAD {name} has X-BorgStore-Is-Directory {other:?}, \
                 not true or false"
            ))),
        },
        404 => Ok(None),
        _ => Err(refused(s, &resp, name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_borg_writes_go_into_requests() {
        assert_eq!(target("", true).unwrap(), "/");
        assert_eq!(target("packs", true).unwrap(), "/packs/");
        assert_eq!(target("packs/ab/ab01", false).unwrap(), "/packs/ab/ab01");
        assert_eq!(
            target("cache/chunkindex-invalid", false).unwrap(),
            "/cache/chunkindex-invalid"
        );
        for bad in [
            "a b",
            "../x",
            "a/../b",
            "/abs",
            "a//b",
            "x/",
            "a\r\nHost: x",
            "a?cmd=x",
            "a%2f",
            "é",
        ] {
            let e = target(bad, false).unwrap_err();
            assert!(e.to_string().contains("not a name"), "{bad:?}: {e}");
        }
    }
}

//! HTTP/1.1 as `borg serve --rest` speaks it on the pipe: requests written whole
//! ([`request`]), responses read strictly ([`read_response`]): a status line, at most
//! [`MAX_HEADERS`] header lines of at most [`MAX_LINE`] bytes, then exactly `Content-Length`
//! body bytes — a length checked against what the request can get *before* anything is
//! allocated for it, and the body read as it arrives (a server that announces much and sends
//! little makes this client allocate little). No chunked encoding, no continuation lines, no
//! bare line feeds: borg's server sends none of them.

use std::io::{BufRead, ErrorKind, Read};

/// The media type every request accepts (without it the server answers `406`).
pub(super) const MEDIA_TYPE: &str = "application/vnd.x.borgstore.rest.v1";
/// Longest status or header line, CRLF included.
pub(super) const MAX_LINE: usize = 8 << 10;
/// Most header lines in one response.
pub(super) const MAX_HEADERS: usize = 64;
/// Largest body of an error response (the server's error pages are under 1 KiB).
pub(super) const MAX_ERROR_BODY: u64 = 64 << 10;
/// How much more room a body gets each time it grows (doubling up to its length).
const GROW: usize = 4 << 20;

/// A request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    /// `GET`: a file, a range of it, or a listing.
    Get,
    /// `HEAD`: what is at a name.
    Head,
    /// `POST`: a command (`?cmd=gather`).
    Post,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
        }
    }
}

/// The bytes of a request: `target` is the path (and query) as sent, `range` an inclusive
/// byte range (`Range: bytes=A-B`), `body` what a `POST` carries.
pub(super) fn request(
    method: Method,
    target: &str,
    range: Option<(u64, u64)>,
    body: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + target.len() + body.map_or(0, <[u8]>::len));
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nAccept: ");
    out.extend_from_slice(MEDIA_TYPE.as_bytes());
    out.extend_from_slice(b"\r\nConnection: keep-alive\r\n");
    if let Some((first, last)) = range {
        out.extend_from_slice(format!("Range: bytes={first}-{last}\r\n").as_bytes());
    }
    if let Some(b) = body {
        out.extend_from_slice(format!("Content-Length: {}\r\n", b.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    if let Some(b) = body {
        out.extend_from_slice(b);
    }
    out
}

/// What a request can get back: `HEAD` responses have no body; a success (2xx) body may have
/// up to `limit` bytes, an error page up to [`MAX_ERROR_BODY`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Expect {
    /// The request was a `HEAD`.
    pub(super) head: bool,
    /// The largest success body the request can get.
    pub(super) limit: u64,
}

/// A response.
#[derive(Debug)]
pub(super) struct Response {
    /// The status code.
    pub(super) status: u16,
    /// The reason phrase (borg's server puts its error message there), as sent.
    pub(super) reason: String,
    /// The header fields, names as sent.
    pub(super) headers: Vec<(String, String)>,
    /// The body (empty for a `HEAD`).
    pub(super) body: Vec<u8>,
}

impl Response {
    /// The value of the header `name` (case-insensitive), if it was sent.
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why no response could be read.
#[derive(Debug)]
pub(super) enum HttpError {
    /// The stream ended: before a response began (`false`) or in the middle of one (`true`).
    Eof(bool),
    /// Reading failed.
    Io(std::io::Error),
    /// Bytes that are not an acceptable response.
    Malformed(String),
    /// No memory for a body of this many bytes.
    NoMemory(u64),
}

type Res<T> = std::result::Result<T, HttpError>;

/// Reads one line ending in CRLF (returned without it), of at most [`MAX_LINE`] bytes.
/// `started` says whether this response already began (for the EOF it may meet).
fn read_line(r: &mut impl BufRead, started: bool) -> Res<Vec<u8>> {
    let mut line = Vec::new();
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(HttpError::Io(e)),
        };
        if buf.is_empty() {
            return Err(HttpError::Eof(started || !line.is_empty()));
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if line.len() + take > MAX_LINE {
            return Err(HttpError::Malformed(format!(
                "a status or header line longer than {MAX_LINE} bytes"
            )));
        }
        line.extend_from_slice(&buf[..take]);
        r.consume(take);
        // A status line that cannot become one is refused at once (without waiting for more).
        let n = line.len().min(7);
        if !started && line[..n] != b"HTTP/1."[..n] {
            return Err(HttpError::Malformed(format!(
                "not an HTTP status line: {}",
                shown(&line)
            )));
        }
        if done {
            break;
        }
    }
    if !line.ends_with(b"\r\n") {
        return Err(HttpError::Malformed(format!(
            "a line that ends in a bare line feed: {}",
            shown(&line)
        )));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

/// Bytes shown in a message: printable ASCII as it is, the rest escaped, at most 120 bytes.
pub(super) fn shown(b: &[u8]) -> String {
    let mut s = String::new();
    for &c in b.iter().take(120) {
        match c {
            b' '..=b'~' => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    if b.len() > 120 {
        s.push('…');
    }
    format!("\"{s}\"")
}

/// A header field name's characters (RFC 9110 `token`).
fn is_token(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// A field value's or reason phrase's characters: visible ASCII, space, tab and `obs-text`.
fn is_text(c: u8) -> bool {
    c == b'\t' || c == b' ' || (0x21..=0x7e).contains(&c) || c >= 0x80
}

/// Parses the status line: `HTTP/1.1 200 OK` (or `HTTP/1.0`).
fn status_line(line: &[u8]) -> Res<(u16, String)> {
    let bad = || HttpError::Malformed(format!("not an HTTP status line: {}", shown(line)));
    let rest = line
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| line.strip_prefix(b"HTTP/1.0 "))
        .ok_or_else(bad)?;
    if rest.len() < 3 || !rest[..3].iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let status = rest[..3]
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    let reason = match &rest[3..] {
        [] => &[][..],
        [b' ', reason @ ..] => reason,
        _ => return Err(bad()),
    };
    if !(200..=599).contains(&status) {
        return Err(HttpError::Malformed(format!(
            "status {status}: borg serve --rest answers with 2xx, 4xx or 5xx"
        )));
    }
    if !reason.iter().all(|&c| is_text(c)) {
        return Err(bad());
    }
    Ok((status, String::from_utf8_lossy(reason).into_owned()))
}

/// Parses a header line: `Name: value` (the value without surrounding blanks).
fn header_line(line: &[u8]) -> Res<(String, String)> {
    let bad = || HttpError::Malformed(format!("not an HTTP header line: {}", shown(line)));
    let colon = line.iter().position(|&c| c == b':').ok_or_else(bad)?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if name.is_empty() || !name.iter().all(|&c| is_token(c)) || !value.iter().all(|&c| is_text(c)) {
        return Err(bad());
    }
    let value = value.trim_ascii();
    Ok((
        String::from_utf8_lossy(name).into_owned(),
        String::from_utf8_lossy(value).into_owned(),
    ))
}

/// Parses a `Content-Length` value: decimal digits only.
fn content_length(v: &str) -> Res<u64> {
    if v.is_empty() || v.len() > 19 || !v.bytes().all(|c| c.is_ascii_digit()) {
        return Err(HttpError::Malformed(format!(
            "Content-Length {}: not a length",
            shown(v.as_bytes())
        )));
    }
    v.parse()
        .map_err(|_| HttpError::Malformed(format!("Content-Length {v}: not a length")))
}

/// Reads exactly `len` body bytes, growing the buffer as they arrive.
fn read_body(r: &mut impl Read, len: u64) -> Res<Vec<u8>> {
    let len_usize = usize::try_from(len).map_err(|_| HttpError::NoMemory(len))?;
    let mut body: Vec<u8> = Vec::new();
    while body.len() < len_usize {
        let have = body.len();
        let more = (len_usize - have).min(have.max(GROW));
        body.try_reserve_exact(more)
            .map_err(|_| HttpError::NoMemory(len))?;
        body.resize(have + more, 0);
        let mut got = have;
        while got < have + more {
            match r.read(&mut body[got..have + more]) {
                Ok(0) => return Err(HttpError::Eof(true)),
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(HttpError::Io(e)),
            }
        }
    }
    Ok(body)
}

/// Reads one response to a request that expects `expect`.
///
/// # Errors
///
/// [`HttpError::Eof`] when the stream ends, [`HttpError::Malformed`] for anything that is not
/// a well-formed response within the limits (a body longer than the request can get
/// included: refused before it is read), [`HttpError::NoMemory`], [`HttpError::Io`].
pub(super) fn read_response(r: &mut impl BufRead, expect: Expect) -> Res<Response> {
    let (status, reason) = status_line(&read_line(r, false)?)?;
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut length = None;
    loop {
        let line = read_line(r, true)?;
        if line.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(HttpError::Malformed(format!(
                "more than {MAX_HEADERS} header lines"
            )));
        }
        let (name, value) = header_line(&line)?;
        if name.eq_ignore_ascii_case("content-length") {
            if length.is_some() {
                return Err(HttpError::Malformed("two Content-Length headers".into()));
            }
            length = Some(content_length(&value)?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HttpError::Malformed(format!(
                "Transfer-Encoding {}: borg serve --rest frames bodies by Content-Length",
                shown(value.as_bytes())
            )));
        }
        headers.push((name, value));
    }
    let length = length.ok_or_else(|| {
        HttpError::Malformed(format!("a {status} response without Content-Length"))
    })?;
    let body = if expect.head {
        Vec::new()
    } else {
        let limit = if (200..300).contains(&status) {
            expect.limit
        } else {
            MAX_ERROR_BODY
        };
        if length > limit {
            return Err(HttpError::Malformed(format!(
                "a {status} response of {length} bytes, more than the {limit} this request can \
                 get"
            )));
        }
        read_body(r, length)?
    };
    Ok(Response {
        status,
        reason,
        headers,
        body,
    })
}

/// Reads responses from `data` one after another, as `expect` alternates between a `GET` of
/// up to 64 KiB and a `HEAD` (the fuzz target).
pub(crate) fn fuzz_responses(data: &[u8]) {
    let mut r = std::io::BufReader::new(data);
    for n in 0.. {
        let expect = Expect {
            head: n % 3 == 2,
            limit: 64 << 10,
        };
        match read_response(&mut r, expect) {
            Ok(resp) => {
                let length = resp.header("Content-Length").and_then(|v| v.parse().ok());
                assert!(expect.head || length == Some(resp.body.len() as u64));
                let _ = resp.header("content-type");
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8], head: bool, limit: u64) -> Res<Response> {
        read_response(&mut std::io::BufReader::new(bytes), Expect { head, limit })
    }

    fn malformed(bytes: &[u8]) -> String {
        match read(bytes, false, 100) {
            Err(HttpError::Malformed(m)) => m,
            other => panic!("{:?}: {other:?}", shown(bytes)),
        }
    }

    #[test]
    fn requests_as_borgs_client_sends_them() {
        assert_eq!(
            request(Method::Get, "/packs/ab/abc", Some((5, 9)), None),
            b"GET /packs/ab/abc HTTP/1.1\r\nAccept: application/vnd.x.borgstore.rest.v1\r\n\
              Connection: keep-alive\r\nRange: bytes=5-9\r\n\r\n"
        );
        let r = request(Method::Post, "/?cmd=gather", None, Some(b"[]"));
        assert!(r.ends_with(b"Content-Length: 2\r\n\r\n[]"), "{}", shown(&r));
    }

    #[test]
    fn responses_framed_by_content_length() {
        let two = b"HTTP/1.1 206 Partial Content\r\nServer: x\r\nContent-Length: 3\r\n\r\nabc\
                    HTTP/1.1 404 nope\r\nConnection: close\r\nContent-Length: 2\r\n\r\n<>";
        let mut r = std::io::BufReader::new(&two[..]);
        let e = Expect {
            head: false,
            limit: 3,
        };
        let a = read_response(&mut r, e).unwrap();
        assert_eq!((a.status, a.body.as_slice()), (206, &b"abc"[..]));
        assert_eq!(a.header("SERVER"), Some("x"));
        let b = read_response(&mut r, e).unwrap();
        assert_eq!(
            (b.status, b.reason.as_str(), b.body.len()),
            (404, "nope", 2)
        );
        assert!(matches!(
            read_response(&mut r, e),
            Err(HttpError::Eof(false))
        ));
        // HEAD: the length is the size of what is there, no body follows
        let h = read(
            b"HTTP/1.1 200 OK\r\nContent-Length: 4096\r\nX-BorgStore-Is-Directory: true\r\n\r\n",
            true,
            0,
        )
        .unwrap();
        assert_eq!(
            (h.header("content-length"), h.body.len()),
            (Some("4096"), 0)
        );
        assert_eq!(h.header("x-borgstore-is-directory"), Some("true"));
    }

    #[test]
    fn anything_else_is_refused() {
        for (bytes, want) in [
            (&b"HTTP/1.1 200 OK\r\n\r\n"[..], "without Content-Length"),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n",
                "more than the 100",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
                "two",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                "not a length",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
                "not a length",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                "Transfer-Encoding",
            ),
            (b"HTTP/1.1 200 OK\nContent-Length: 0\n\n", "bare line feed"),
            (b"HTTP/1.1 100 Continue\r\n\r\n", "status 100"),
            (b"HTTP/2 200\r\n\r\n", "not an HTTP status line"),
            (b"\x93\x01\x02\x03", "not an HTTP status line"),
            (
                b"HTTP/1.1 200 OK\r\n folded\r\n\r\n",
                "not an HTTP header line",
            ),
            (
                b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
                "not an HTTP header line",
            ),
            (b"HTTP/1.1 200 O\x01K\r\n\r\n", "not an HTTP status line"),
        ] {
            let m = malformed(bytes);
            assert!(m.contains(want), "{}: {m}", shown(bytes));
        }
        let mut long = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        long.resize(MAX_LINE + 100, b'a');
        assert!(malformed(&long).contains("longer than"));
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for _ in 0..=MAX_HEADERS {
            many.extend_from_slice(b"X: y\r\n");
        }
        assert!(malformed(&many).contains("more than 64 header lines"));
        // an error page is bounded however much a success may have
        let page = format!(
            "HTTP/1.1 500 x\r\nContent-Length: {}\r\n\r\n",
            MAX_ERROR_BODY + 1
        );
        assert!(matches!(
            read(page.as_bytes(), false, u64::MAX),
            Err(HttpError::Malformed(_))
        ));
        // a body that stops short, a stream that stops inside the headers
        assert!(matches!(
            read(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", false, 9),
            Err(HttpError::Eof(true))
        ));
        assert!(matches!(
            read(b"HTTP/1.1 200 OK\r\nContent-Le", false, 9),
            Err(HttpError::Eof(true))
        ));
    }

    #[test]
    fn a_huge_announced_body_that_never_comes_ends_in_eof() {
        // 1 GiB announced and allowed, 3 bytes sent: the read fails at the end of the data
        // (having grown its buffer by one step of 4 MiB, not by 1 GiB).
        let r = read(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\nabc",
            false,
            1 << 30,
        );
        assert!(matches!(r, Err(HttpError::Eof(true))));
    }
}

//! The operations over a scripted server: its responses are fixed bytes, its requests are
//! recorded.

use super::gather;
use super::ops;
use super::session::RestSession;
use crate::error::{Error, ErrorKind, RemoteErrorKind};
use crate::remote::{Connection, RemoteOptions};
use crate::store::files::Range;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the client wrote.
#[derive(Clone, Default)]
struct Recorded(Arc<Mutex<Vec<u8>>>);

impl Write for Recorded {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A session whose server answers with `responses` (then closes its stdout).
fn session(responses: Vec<u8>) -> (RestSession, Recorded) {
    let rec = Recorded::default();
    let conn = Connection {
        requests: Box::new(rec.clone()),
        responses: Box::new(std::io::Cursor::new(responses)),
        log: None,
        finish: Box::new(|_| {}),
    };
    let opts = RemoteOptions {
        timeout: Duration::from_secs(30),
        ..RemoteOptions::default()
    };
    (RestSession::start(conn, "ssh://h/repo", &opts), rec)
}

/// A response with `status` and `body`.
fn resp(status: &str, body: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "HTTP/1.1 {status}\r\nServer: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    v.extend_from_slice(body);
    v
}

fn range(name: &str, offset: u64, len: u64) -> Range {
    Range {
        name: name.into(),
        offset,
        len,
    }
}

#[test]
fn each_operation_and_what_its_statuses_mean() {
    let listing = br#"[{"name": "b", "size": 4096, "directory": true, "atime": 1.5, "mtime": 2},
                       {"name": "a", "size": 7, "directory": false, "atime": 1, "mtime": 2}]"#;
    let script = [
        resp("200 OK", listing),
        resp("404 nope", b"<html/>"),
        resp("200 OK", b"whole"),
        resp("404 nope", b""),
        resp("206 Partial Content", b"cd"),
        resp("206 Partial Content", b"c"),
        b"HTTP/1.1 200 OK\r\nContent-Length: 4096\r\nX-BorgStore-Is-Directory: true\r\n\r\n"
            .to_vec(),
        resp("404 gone", b""),
        resp("403 permission denied", b""),
        resp("410 posixfs storage base path does not exist", b""),
    ]
    .concat();
    let (s, rec) = session(script);
    let l = ops::list(&s, "packs").unwrap().unwrap();
    assert_eq!(
        l.iter()
            .map(|e| (e.name.as_str(), e.size, e.is_dir))
            .collect::<Vec<_>>(),
        [("a", 7, false), ("b", 0, true)]
    );
    assert_eq!(ops::list(&s, "nope").unwrap(), None);
    assert_eq!(ops::load(&s, "config/config").unwrap().unwrap(), b"whole");
    assert_eq!(ops::load(&s, "keys/x").unwrap(), None);
    assert_eq!(ops::load_range(&s, &range("p/a", 2, 2)).unwrap(), b"cd");
    let e = ops::load_range(&s, &range("p/a", 2, 2)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    assert!(e.to_string().contains("p/a: ends at 3 bytes"), "{e}");
    assert_eq!(ops::kind(&s, "packs").unwrap(), Some(true));
    assert_eq!(ops::kind(&s, "nope").unwrap(), None);
    let e = ops::load(&s, "archives/x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Remote(RemoteErrorKind::Server));
    assert!(e.to_string().starts_with("Permission denied"), "{e}");
    let e = ops::kind(&s, "config").unwrap_err();
    assert!(
        matches!(e, Error::RepositoryDoesNotExist(ref l) if l == "ssh://h/repo"),
        "{e}"
    );
    let sent = String::from_utf8(rec.0.lock().unwrap().clone()).unwrap();
    assert!(sent.starts_with(
        "GET /packs/ HTTP/1.1\r\nAccept: application/vnd.x.borgstore.rest.v1\r\n\
         Connection: keep-alive\r\n\r\nGET /nope/ HTTP/1.1\r\n"
    ));
    assert!(sent.contains("GET /p/a HTTP/1.1\r\nAccept: application/vnd.x.borgstore.rest.v1\r\nConnection: keep-alive\r\nRange: bytes=2-3\r\n"));
    assert!(sent.contains("HEAD /packs HTTP/1.1\r\n"));
}

#[test]
fn gather_splits_its_answer_and_falls_back_range_by_range() {
    let script = [
        resp("200 OK", b"aaabbbbcc"),
        // a batch with a missing pack: read again range by range
        resp("404 packs/zz", b""),
        resp("206 Partial Content", b"dd"),
        resp("404 packs/zz", b""),
    ]
    .concat();
    let (s, rec) = session(script);
    let rs = [range("p/1", 0, 3), range("p/1", 3, 4), range("p/2", 9, 2)];
    let mut got = Vec::new();
    gather::load_ranges(&s, &rs.iter().collect::<Vec<_>>(), &mut |i, r| {
        got.push((i, r.unwrap()));
        Ok(())
    })
    .unwrap();
    assert_eq!(
        got,
        [
            (0, b"aaa".to_vec()),
            (1, b"bbbb".to_vec()),
            (2, b"cc".to_vec())
        ]
    );
    let sent = String::from_utf8(rec.0.lock().unwrap().clone()).unwrap();
    assert!(
        sent.contains("Content-Length: 37\r\n\r\n[[\"p/1\",0,3],[\"p/1\",3,4],[\"p/2\",9,2]]"),
        "{sent}"
    );
    let rs = [range("p/3", 0, 2), range("zz/x", 0, 5)];
    let mut got = Vec::new();
    gather::load_ranges(&s, &rs.iter().collect::<Vec<_>>(), &mut |i, r| {
        got.push((i, r.map_err(|e| e.to_string())));
        Ok(())
    })
    .unwrap();
    assert_eq!(got[0], (0, Ok(b"dd".to_vec())));
    assert!(
        matches!(&got[1], (1, Err(m)) if m.contains("zz/x: no such file")),
        "{got:?}"
    );
}

#[test]
fn a_lying_server_ends_its_session() {
    // More than asked for: refused before it is read, and the session is over.
    let (s, _) = session(resp("206 Partial Content", b"abcdef"));
    let e = ops::load_range(&s, &range("p/a", 0, 4)).unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::Remote(RemoteErrorKind::Protocol),
        "{e}"
    );
    assert!(e.to_string().contains("more than the 4"), "{e}");
    let again = ops::load(&s, "config/config").unwrap_err();
    assert_eq!(again.to_string(), e.to_string());
    // A gather answered short.
    let (s, _) = session(resp("200 OK", b"abc"));
    let rs = [range("p/1", 0, 2), range("p/1", 2, 2)];
    let e =
        gather::load_ranges(&s, &rs.iter().collect::<Vec<_>>(), &mut |_, _| Ok(())).unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::Remote(RemoteErrorKind::Protocol),
        "{e}"
    );
    assert!(e.to_string().contains("with 3 bytes"), "{e}");
    // The whole file where a range was asked for.
    let (s, _) = session(resp("200 OK", b"ab"));
    let e = ops::load_range(&s, &range("p/a", 0, 2)).unwrap_err();
    assert!(e.to_string().contains("whole file (200, not 206)"), "{e}");
    // A listing that is not JSON, or names what borg does not write.
    let (s, _) = session(resp("200 OK", b"<html>"));
    let e = ops::list(&s, "keys").unwrap_err();
    assert!(
        e.to_string().contains("not borg serve --rest's JSON"),
        "{e}"
    );
    let (s, _) = session(resp(
        "200 OK",
        br#"[{"name": "../etc", "size": 1, "directory": false}]"#,
    ));
    let e = ops::list(&s, "keys").unwrap_err();
    assert!(e.to_string().contains("named \"../etc\""), "{e}");
    // A server that goes away in the middle of a response: a dropped session.
    let (s, _) = session(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec());
    let e = ops::load(&s, "config/config").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Remote(RemoteErrorKind::Dropped), "{e}");
}

#[test]
fn a_silent_server_is_given_up_on() {
    let (r, w) = rustix::pipe::pipe().unwrap();
    let conn = Connection {
        requests: Box::new(std::io::sink()),
        responses: Box::new(std::fs::File::from(r)),
        log: None,
        finish: Box::new(move |_| drop(w)),
    };
    let opts = RemoteOptions {
        timeout: Duration::from_millis(300),
        ..RemoteOptions::default()
    };
    let s = RestSession::start(conn, "ssh://h/repo", &opts);
    let e = ops::kind(&s, "config").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Remote(RemoteErrorKind::Dropped), "{e}");
    assert!(e.to_string().contains("did not answer config"), "{e}");
}

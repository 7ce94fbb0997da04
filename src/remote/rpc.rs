//! The RPC messages: requests encoded as borg's client encodes them, response frames split into
//! message id and result, and server exceptions turned into the client's errors (borg's words).

use super::framing::read_frame;
use crate::error::{Error, RemoteErrorKind, Result};
use rmpv::Value;

/// The client version sent in `negotiate`.
const CLIENT_VERSION: [i64; 4] = [1, 2, 4, -1];

/// How every complaint about what a server sent begins (borg's wording).
pub(super) const PROTOCOL_VIOLATION: &str = "Got unexpected RPC data format from server";

/// Packs bytes as msgpack str (never bin).
pub(super) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    let _ = rmp::encode::write_str_len(out, b.len() as u32);
    out.extend_from_slice(b);
}

/// A request argument.
pub(super) enum Arg<'a> {
    /// Bytes (packed as msgpack str).
    Bytes(&'a [u8]),
    /// A boolean.
    Bool(bool),
    /// A non-negative integer.
    Int(u64),
    /// None.
    Nil,
}

/// A request in the dict form of borg 1.1+: `{"i": msgid, "m": method, "a": {args}}`.
pub(super) fn request(msgid: u64, method: &str, args: &[(&str, Arg<'_>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    let _ = rmp::encode::write_map_len(&mut out, 3);
    put_bytes(&mut out, b"i");
    let _ = rmp::encode::write_uint(&mut out, msgid);
    put_bytes(&mut out, b"m");
    put_bytes(&mut out, method.as_bytes());
    put_bytes(&mut out, b"a");
    let _ = rmp::encode::write_map_len(&mut out, args.len() as u32);
    for (k, v) in args {
        put_bytes(&mut out, k.as_bytes());
        match v {
            Arg::Bytes(b) => put_bytes(&mut out, b),
            Arg::Bool(b) => {
                let _ = rmp::encode::write_bool(&mut out, *b);
            }
            Arg::Int(n) => {
                let _ = rmp::encode::write_uint(&mut out, *n);
            }
            Arg::Nil => {
                let _ = rmp::encode::write_nil(&mut out);
            }
        }
    }
    out
}

/// The value of `key` in a msgpack map (str or bin keys).
pub(super) fn map_get<'a>(m: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    m.iter()
        .find(|(k, _)| value_bytes(k) == Some(key.as_bytes()))
        .map(|(_, v)| v)
}

/// The bytes of a str or bin value.
pub(super) fn value_bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::String(s) => Some(s.as_bytes()),
        Value::Binary(b) => Some(b),
        _ => None,
    }
}

/// A value as text for messages (arrays one element a line).
fn value_text(v: &Value) -> String {
    match v {
        Value::Array(a) => a.iter().map(value_text).collect::<Vec<_>>().join("\n"),
        v => value_bytes(v)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_else(|| v.to_string()),
    }
}

/// Turns a server exception into the client's error, as borg shows it.
pub(super) fn server_error(m: &[(Value, Value)], location: &str) -> Error {
    let class = map_get(m, "exception_class")
        .map(value_text)
        .unwrap_or_default();
    let args: Vec<String> = match map_get(m, "exception_args") {
        Some(Value::Array(a)) => a.iter().map(value_text).collect(),
        _ => Vec::new(),
    };
    let short = map_get(m, "exception_short")
        .map(value_text)
        .unwrap_or_default();
    let arg0 = args.first().cloned().unwrap_or_default();
    match class.as_str() {
        "DoesNotExist" => Error::RepositoryDoesNotExist(location.to_string()),
        "InvalidRepository" => Error::InvalidRepository {
            location: location.to_string(),
            reason: "remote".into(),
        },
        "PathNotAllowed" => Error::remote(
            RemoteErrorKind::Server,
            format!("Repository path not allowed: {arg0}"),
        ),
        "LockTimeout" => Error::LockTimeout(arg0),
        "ObjectNotFound" => Error::ObjectNotFound {
            id: arg0,
            location: location.to_string(),
        },
        "IntegrityError" => Error::Integrity(format!("{arg0} (reported by the server)")),
        _ if !short.is_empty() => Error::remote(
            RemoteErrorKind::Server,
            format!("Remote: {}", short.trim_end()),
        ),
        _ => Error::remote(
            RemoteErrorKind::Server,
            format!("Remote exception {class}: {}", args.join(", ")),
        ),
    }
}

/// A response frame's message id and its result (`Err`: the server's exception map).
pub(super) type Classified = (Option<u64>, std::result::Result<Value, Vec<(Value, Value)>>);

/// Splits a response frame into its message id and result: the dict form of borg 1.1+, or
/// the legacy tuple `[1, msgid, error, result]`.
pub(super) fn classify(v: &Value) -> Classified {
    match v {
        Value::Map(m) => {
            let id = map_get(m, "i").and_then(Value::as_u64);
            let r = if let Some(r) = map_get(m, "r") {
                Ok(r.clone())
            } else if map_get(m, "exception_class").is_some() {
                Err(m.clone())
            } else {
                Ok(Value::Nil)
            };
            (id, r)
        }
        Value::Array(a) if a.len() == 4 => {
            let id = a[1].as_u64();
            let r = if a[2].is_nil() {
                Ok(a[3].clone())
            } else {
                Err(vec![(Value::from("exception_class"), a[2].clone())])
            };
            (id, r)
        }
        _ => (None, Ok(Value::Nil)),
    }
}

/// Reads response frames from `data` and interprets each as the client would (message id,
/// result or server exception); for the fuzz target.
pub(super) fn fuzz_frames(mut data: &[u8]) {
    while let Ok(v) = read_frame(&mut data) {
        if let (_, Err(m)) = classify(&v) {
            let _ = server_error(&m, "fuzz").to_string();
        }
    }
}

/// `negotiate` in the tuple form `[1, msgid, "negotiate", [{client_version}]]`, sent alone, as
/// borg does: the answer says which format the server speaks.
pub(super) fn negotiate_request(msgid: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = rmp::encode::write_array_len(&mut out, 4);
    let _ = rmp::encode::write_uint(&mut out, 1);
    let _ = rmp::encode::write_uint(&mut out, msgid);
    put_bytes(&mut out, b"negotiate");
    let _ = rmp::encode::write_array_len(&mut out, 1);
    let _ = rmp::encode::write_map_len(&mut out, 1);
    put_bytes(&mut out, b"client_version");
    let _ = rmp::encode::write_array_len(&mut out, 4);
    for v in CLIENT_VERSION {
        let _ = rmp::encode::write_sint(&mut out, v);
    }
    out
}

/// The bytes a `what` call returned (str or bin), or a protocol violation.
pub(super) fn bytes_result(v: Value, what: &str) -> Result<Vec<u8>> {
    match v {
        Value::String(s) => Ok(s.into_bytes()),
        Value::Binary(b) => Ok(b),
        _ => Err(protocol_error(&format!("{what} did not return bytes"))),
    }
}

/// A protocol violation: `Got unexpected RPC data format from server: <what>`.
pub(super) fn protocol_error(what: &str) -> Error {
    Error::remote(
        RemoteErrorKind::Protocol,
        format!("{PROTOCOL_VIOLATION}: {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn exception(class: &str, args: &[&str], short: &str) -> Vec<(Value, Value)> {
        vec![
            (Value::from("exception_class"), Value::from(class)),
            (
                Value::from("exception_args"),
                Value::Array(args.iter().map(|a| Value::from(*a)).collect()),
            ),
            (Value::from("exception_short"), Value::from(short)),
        ]
    }

    #[test]
    fn server_exceptions_keep_borgs_words_and_say_whose_error() {
        let e = server_error(&exception("PathNotAllowed", &["/etc"], ""), "ssh://h/etc");
        assert_eq!(e.kind(), ErrorKind::Remote(RemoteErrorKind::Server));
        assert_eq!(e.to_string(), "Repository path not allowed: /etc");
        let e = server_error(&exception("Weird", &["a", "b"], "Weird: a\n"), "x");
        assert_eq!(e.kind(), ErrorKind::Remote(RemoteErrorKind::Server));
        assert_eq!(e.to_string(), "Remote: Weird: a");
        let e = server_error(&exception("Weird", &["a", "b"], ""), "x");
        assert_eq!(e.to_string(), "Remote exception Weird: a, b");
        let e = server_error(&exception("DoesNotExist", &["r"], ""), "ssh://h/r");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = bytes_result(Value::from(1), "get").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Remote(RemoteErrorKind::Protocol));
        assert_eq!(
            e.to_string(),
            "Got unexpected RPC data format from server: get did not return bytes"
        );
    }
}

//! Response frames: one msgpack value read from the server's stdout, every declared length
//! checked against what is left of [`MAX_FRAME`] *before* its bytes are read, so a lying header
//! is refused at once. The marker layouts are msgpack's ([`msgpack::layout`]).

use crate::format::msgpack;
use rmpv::Value;
use std::io::Read;

/// Largest response frame accepted.
const MAX_FRAME: usize = 64 << 20;

/// Why no frame could be read.
pub(super) enum FrameError {
    /// The stream ended (possibly in the middle of a frame).
    Eof,
    /// Bytes that are not a msgpack frame.
    Garbage(String),
}

/// Reads one msgpack frame, checking every declared length against what is left of
/// [`MAX_FRAME`] *before* reading the bytes, so a lying header is refused at once.
pub(super) fn read_frame(r: &mut impl Read) -> std::result::Result<Value, FrameError> {
    let mut buf = Vec::new();
    copy_value(r, &mut buf, 0)?;
    rmpv::decode::read_value(&mut buf.as_slice()).map_err(|e| FrameError::Garbage(e.to_string()))
}

/// Appends `n` bytes of `r` to `buf`, refusing first what would make the frame too large.
fn take_exact(
    r: &mut impl Read,
    buf: &mut Vec<u8>,
    n: usize,
) -> std::result::Result<(), FrameError> {
    if buf.len() + n > MAX_FRAME {
        return Err(too_large());
    }
    let start = buf.len();
    buf.resize(start + n, 0);
    r.read_exact(&mut buf[start..]).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => FrameError::Eof,
        _ => FrameError::Garbage(e.to_string()),
    })
}

/// A big-endian length field's value.
fn be_len(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |n, x| (n << 8) | u64::from(*x))
}

/// The error for a frame that announces more than [`MAX_FRAME`].
fn too_large() -> FrameError {
    FrameError::Garbage(format!(
        "a frame larger than {} MiB was announced",
        MAX_FRAME >> 20
    ))
}

/// Copies one msgpack value from `r` to `buf`, validating lengths and nesting.
fn copy_value(
    r: &mut impl Read,
    buf: &mut Vec<u8>,
    depth: u32,
) -> std::result::Result<(), FrameError> {
    if depth > 64 {
        return Err(FrameError::Garbage("msgpack nested too deeply".into()));
    }
    take_exact(r, buf, 1)?;
    let m = buf[buf.len() - 1];
    let Some(layout) = msgpack::layout(m) else {
        return Err(FrameError::Garbage("invalid msgpack marker 0xc1".into()));
    };
    let len_bytes = usize::from(layout.len_bytes);
    let len = if len_bytes > 0 {
        take_exact(r, buf, len_bytes)?;
        be_len(&buf[buf.len() - len_bytes..])
    } else {
        0
    };
    let (payload, children) = layout.sizes(len);
    // Every child takes at least one byte: refuse counts the frame cannot hold.
    if (buf.len() as u64)
        .saturating_add(payload)
        .saturating_add(children)
        > MAX_FRAME as u64
    {
        return Err(too_large());
    }
    take_exact(r, buf, payload as usize)?;
    for _ in 0..children {
        copy_value(r, buf, depth + 1)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::rpc::{request, Arg};

    #[test]
    fn frames_are_checked_before_reading() {
        let ok = request(7, "get", &[("id", Arg::Bytes(&[1u8; 32]))]);
        let v = read_frame(&mut ok.as_slice()).unwrap_or_else(|_| panic!("valid frame"));
        assert!(matches!(v, Value::Map(_)));
        // str32 announcing 4 GiB: refused without waiting for the bytes.
        let huge = [0xdbu8, 0xff, 0xff, 0xff, 0xf0, b'x'];
        assert!(matches!(
            read_frame(&mut &huge[..]),
            Err(FrameError::Garbage(_))
        ));
        let huge_array = [0xddu8, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert!(matches!(
            read_frame(&mut &huge_array[..]),
            Err(FrameError::Garbage(_))
        ));
        assert!(matches!(
            read_frame(&mut &ok[..ok.len() - 3]),
            Err(FrameError::Eof)
        ));
        assert!(matches!(
            read_frame(&mut &[0xc1u8][..]),
            Err(FrameError::Garbage(_))
        ));
        let mut deep = vec![0x91u8; 100];
        deep.push(0x01);
        assert!(matches!(
            read_frame(&mut deep.as_slice()),
            Err(FrameError::Garbage(_))
        ));
    }
}

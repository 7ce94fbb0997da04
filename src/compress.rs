//! Decompression of borg 1.x payloads: header dispatch and every 1.x compressor.
//!
//! A decrypted payload starts with a two-byte header naming its compressor, except legacy zlib,
//! which is recognised by the zlib stream header itself. `auto` has no header of its own.
//!
//! ```
//! let payload = b"\x00\x00hello";
//! assert_eq!(oxiborg::compress::decompress(payload, None).unwrap(), b"hello");
//! ```

use crate::error::{Error, Result};
use std::io::Read;

/// The largest plaintext this client accepts for one object (borg's lz4 buffer limit).
pub const MAX_PLAINTEXT: usize = 128 * 1024 * 1024;

/// A compressor as named by borg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `none` (`00 00`).
    None,
    /// `lz4` (`01 00`): a raw LZ4 block.
    Lz4,
    /// `lzma` (`02 00`): an xz container.
    Lzma,
    /// `zstd` (`03 00`): one zstd frame.
    Zstd,
    /// `zlib`: headerless RFC 1950 stream.
    Zlib,
    /// `obfuscate` (`04 00`): size-obfuscating wrapper around another payload.
    Obfuscate,
}

impl Compression {
    /// Recognises the compressor of a payload, in borg's detection order.
    pub fn detect(payload: &[u8]) -> Option<Compression> {
        let (b0, b1) = match payload {
            [a, b, ..] => (*a, *b),
            _ => return None,
        };
        match (b0, b1) {
            (0x01, 0x00) => Some(Compression::Lz4),
            (0x03, 0x00) => Some(Compression::Zstd),
            (0x00, 0x00) => Some(Compression::None),
            _ if b0 & 0x0f == 8 && (u16::from(b0) * 256 + u16::from(b1)) % 31 == 0 => {
                Some(Compression::Zlib)
            }
            (0x02, 0x00) => Some(Compression::Lzma),
            (0x04, 0x00) => Some(Compression::Obfuscate),
            _ => None,
        }
    }

    /// borg's name for the compressor.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
            Compression::Lzma => "lzma",
            Compression::Zstd => "zstd",
            Compression::Zlib => "zlib",
            Compression::Obfuscate => "obfuscate",
        }
    }
}

/// Decompresses a payload. `size_hint` is the expected plaintext size where known (the `size` of a
/// file's chunk entry); it only sizes buffers and is never trusted for the result.
pub fn decompress(payload: &[u8], size_hint: Option<usize>) -> Result<Vec<u8>> {
    decompress_depth(payload, size_hint, 0)
}

/// [`decompress`] of `buf[start..]`, reusing `buf` for the plaintext when the payload is stored
/// uncompressed (`none`), so that case costs a move instead of a second buffer.
pub fn decompress_owned(
    mut buf: Vec<u8>,
    start: usize,
    size_hint: Option<usize>,
) -> Result<Vec<u8>> {
    let payload = buf.get(start..).unwrap_or_default();
    if Compression::detect(payload) == Some(Compression::None) {
        buf.drain(..start + 2);
        return Ok(buf);
    }
    decompress(payload, size_hint)
}

fn decompress_depth(payload: &[u8], size_hint: Option<usize>, depth: u8) -> Result<Vec<u8>> {
    let kind = Compression::detect(payload).ok_or_else(|| {
        Error::Decompression(format!(
            "unknown compression header {:02x?}",
            &payload[..payload.len().min(2)]
        ))
    })?;
    let fail = |e: &dyn std::fmt::Display| Error::Decompression(format!("{}: {e}", kind.name()));
    match kind {
        Compression::None => Ok(payload[2..].to_vec()),
        Compression::Lz4 => lz4(&payload[2..], size_hint),
        Compression::Zstd => {
            let body = &payload[2..];
            match zstd::zstd_safe::get_frame_content_size(body) {
                Ok(Some(n)) if n > MAX_PLAINTEXT as u64 => {
                    Err(fail(&"frame larger than the object size limit"))
                }
                Ok(Some(n)) => zstd::bulk::decompress(body, n as usize).map_err(|e| fail(&e)),
                _ => read_limited(
                    zstd::stream::read::Decoder::with_buffer(body).map_err(|e| fail(&e))?,
                    size_hint.unwrap_or(body.len() * 4),
                )
                .map_err(|e| fail(&e)),
            }
        }
        Compression::Zlib => read_limited(
            flate2::read::ZlibDecoder::new(payload),
            size_hint.unwrap_or(payload.len() * 4),
        )
        .map_err(|e| fail(&e)),
        Compression::Lzma => read_limited(
            xz2::read::XzDecoder::new(&payload[2..]),
            size_hint.unwrap_or(payload.len() * 4),
        )
        .map_err(|e| fail(&e)),
        Compression::Obfuscate => {
            if depth > 0 {
                return Err(fail(&"nested obfuscation"));
            }
            let len = payload
                .get(2..6)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
                .ok_or_else(|| fail(&"truncated header"))?;
            let inner = payload
                .get(6..6usize.saturating_add(len))
                .ok_or_else(|| fail(&format!("inner length {len} exceeds payload")))?;
            decompress_depth(inner, size_hint, depth + 1)
        }
    }
}

/// Reads a decoder to its end, refusing more than [`MAX_PLAINTEXT`] bytes.
fn read_limited(reader: impl Read, capacity: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(capacity.min(MAX_PLAINTEXT));
    let n = reader
        .take(MAX_PLAINTEXT as u64 + 1)
        .read_to_end(&mut out)?;
    if n > MAX_PLAINTEXT {
        return Err(std::io::Error::other("plaintext larger than the limit"));
    }
    Ok(out)
}

fn lz4(body: &[u8], size_hint: Option<usize>) -> Result<Vec<u8>> {
    // With the exact size the first attempt succeeds. Otherwise start from a typical ratio and
    // double: borg's fixed 9 MB first buffer costs a 9 MB memset for every 500 KB item chunk.
    let mut cap = match size_hint {
        Some(n) => n.max(1),
        None => (body.len() * 4).max(64 * 1024),
    }
    .min(MAX_PLAINTEXT);
    loop {
        let mut out = vec![0u8; cap];
        match lz4_flex::block::decompress_into(body, &mut out) {
            Ok(n) => {
                out.truncate(n);
                return Ok(out);
            }
            Err(lz4_flex::block::DecompressError::OutputTooSmall { .. }) if cap < MAX_PLAINTEXT => {
                cap = cap.saturating_mul(2).min(MAX_PLAINTEXT);
            }
            Err(e) => return Err(Error::Decompression(format!("lz4: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn with_header(h: [u8; 2], body: &[u8]) -> Vec<u8> {
        let mut v = h.to_vec();
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn all_compressors_roundtrip() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let lz = with_header([1, 0], &lz4_flex::block::compress(&data));
        assert_eq!(decompress(&lz, Some(data.len())).unwrap(), data);
        assert_eq!(decompress(&lz, None).unwrap(), data);
        assert_eq!(
            decompress(&lz, Some(10)).unwrap(),
            data,
            "a wrong hint only costs time"
        );
        let zs = with_header([3, 0], &zstd::bulk::compress(&data, 3).unwrap());
        assert_eq!(decompress(&zs, None).unwrap(), data);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
        z.write_all(&data).unwrap();
        let zl = z.finish().unwrap();
        assert_eq!(Compression::detect(&zl), Some(Compression::Zlib));
        assert_eq!(decompress(&zl, None).unwrap(), data);
        let mut x = xz2::write::XzEncoder::new(Vec::new(), 1);
        x.write_all(&data).unwrap();
        let xz = with_header([2, 0], &x.finish().unwrap());
        assert_eq!(decompress(&xz, None).unwrap(), data);
        let mut ob = vec![4, 0];
        ob.extend_from_slice(&(zs.len() as u32).to_be_bytes());
        ob.extend_from_slice(&zs);
        ob.extend_from_slice(&[0u8; 77]);
        assert_eq!(decompress(&ob, None).unwrap(), data);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"\x01",
            b"\x01\x00\xff\xff\xff",
            b"\x03\x00\x28\xb5\x2f\xfd\xff",
            b"\x02\x00garbage",
            b"\x04\x00\xff\xff\xff\xff",
            b"\x04\x00\x00\x00\x00\x06\x04\x00\x00\x00\x00\x00",
            b"\x78\x9c\x00",
            b"\x09\x09",
        ] {
            assert!(decompress(bad, None).is_err(), "{bad:02x?}");
        }
    }
}

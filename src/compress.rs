//! Decompression of borg 1.x payloads (header dispatch and every 1.x compressor) and of borg 2
//! object data ([`decompress_ctype`]).
//!
//! A decrypted 1.x payload starts with a two-byte header naming its compressor, except legacy
//! zlib, which is recognised by the zlib stream header itself. `auto` has no header of its own
//! (`decompress(b"\x00\x00hello", None)` is `b"hello"`: `none`'s header, then the data). borg 2
//! data has no header at all: the compressor is named by the object's metadata.

use crate::error::{Error, Result};
use std::io::Read;

/// The largest plaintext this client accepts for an object whose size is not known in advance
/// (borg's lz4 buffer limit): item-stream chunks, archive metadata, `check --verify-data`. An
/// object whose size is known — a file's chunk, whose size the archive records, or a zstd frame
/// that declares its size in an authenticated payload, up to [`MAX_DECLARED`] — may be larger:
/// its buffer is allocated at that size, and an allocation that cannot be made is an [`Error::NoMemory`] for that object
/// only.
pub const MAX_PLAINTEXT: usize = 128 * 1024 * 1024;

/// The most plaintext an object of unknown size may decompress to when it is a zstd frame that
/// declares its size in an authenticated payload (`check --verify-data` of a big chunk); a
/// file's chunk, whose size is known, is not bounded by this.
pub const MAX_DECLARED: usize = 1 << 30;

/// The most plaintext one object may decompress to: [`MAX_PLAINTEXT`], or the expected size when
/// that is larger.
fn limit(size_hint: Option<usize>) -> usize {
    size_hint.map_or(MAX_PLAINTEXT, |h| h.max(MAX_PLAINTEXT))
}

/// An empty buffer with room for `n` bytes, or [`Error::NoMemory`].
fn buffer(n: usize) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| no_memory(n))?;
    Ok(v)
}

/// `n` zero bytes, or [`Error::NoMemory`] (what `vec![0; n]` does, but fallible: the allocator
/// hands out fresh pages already zeroed, so this costs no pass over the memory).
fn zeroed(n: usize) -> Result<Vec<u8>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let layout = std::alloc::Layout::array::<u8>(n).map_err(|_| no_memory(n))?;
    // SAFETY: the layout's size is not zero; the memory comes from the global allocator with
    // the layout of a `Vec<u8>` of capacity `n`, and all `n` bytes are initialized (zero).
    unsafe {
        let p = std::alloc::alloc_zeroed(layout);
        if p.is_null() {
            return Err(no_memory(n));
        }
        Ok(Vec::from_raw_parts(p, n, n))
    }
}

fn no_memory(n: usize) -> Error {
    Error::NoMemory(format!("cannot allocate {n} bytes for a plaintext"))
}

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
/// file's chunk entry): it sizes buffers and raises the limit of `MAX_PLAINTEXT` (borg's 128 MiB) to itself,
/// but is never trusted for the result (the caller compares the length).
///
/// # Errors
///
/// An unknown compression header, a damaged stream, or more plaintext than allowed.
pub fn decompress(payload: &[u8], size_hint: Option<usize>) -> Result<Vec<u8>> {
    decompress_depth(payload, size_hint, false, 0)
}

/// [`decompress`] of `buf[start..]`, reusing `buf` for the plaintext when the payload is stored
/// uncompressed (`none`), so that case costs a move instead of a second buffer. `authenticated`
/// says the payload's MAC was verified: a zstd frame's declared size then counts as known up to
/// [`MAX_DECLARED`] (it sizes the buffer, as borg allocates it).
pub fn decompress_owned(
    mut buf: Vec<u8>,
    start: usize,
    size_hint: Option<usize>,
    authenticated: bool,
) -> Result<Vec<u8>> {
    let payload = buf.get(start..).unwrap_or_default();
    if Compression::detect(payload) == Some(Compression::None) {
        buf.drain(..start + 2);
        return Ok(buf);
    }
    decompress_depth(payload, size_hint, authenticated, 0)
}

fn decompress_depth(
    payload: &[u8],
    size_hint: Option<usize>,
    authenticated: bool,
    depth: u8,
) -> Result<Vec<u8>> {
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
        Compression::Zstd => zstd_frame(&payload[2..], size_hint, authenticated),
        Compression::Zlib => zlib(payload, size_hint),
        Compression::Lzma => xz(&payload[2..], size_hint),
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
            decompress_depth(inner, size_hint, authenticated, depth + 1)
        }
    }
}

/// One zstd frame. A frame that declares its size gets a buffer of that size (up to the limit,
/// or up to [`MAX_DECLARED`] in an `authenticated` payload); one that does not is read in steps.
fn zstd_frame(body: &[u8], size_hint: Option<usize>, authenticated: bool) -> Result<Vec<u8>> {
    let fail = |e: &dyn std::fmt::Display| Error::Decompression(format!("zstd: {e}"));
    match zstd::zstd_safe::get_frame_content_size(body) {
        Ok(Some(n)) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if n > limit(size_hint) && !(authenticated && n <= MAX_DECLARED) {
                return Err(fail(&"frame larger than the object size limit"));
            }
            // Only what the frame really holds is written (and so touched).
            let mut out = buffer(n)?;
            zstd::bulk::Decompressor::new()
                .and_then(|mut d| d.decompress_to_buffer(body, &mut out))
                .map_err(|e| fail(&e))?;
            Ok(out)
        }
        _ => read_limited(
            zstd::stream::read::Decoder::with_buffer(body).map_err(|e| fail(&e))?,
            size_hint.unwrap_or(body.len() * 4),
            limit(size_hint),
        )
        .map_err(|e| e.or_fail(fail)),
    }
}

/// An RFC 1950 zlib stream.
fn zlib(body: &[u8], size_hint: Option<usize>) -> Result<Vec<u8>> {
    read_limited(
        flate2::read::ZlibDecoder::new(body),
        size_hint.unwrap_or(body.len() * 4),
        limit(size_hint),
    )
    .map_err(|e| e.or_fail(|e| Error::Decompression(format!("zlib: {e}"))))
}

/// An xz container.
fn xz(body: &[u8], size_hint: Option<usize>) -> Result<Vec<u8>> {
    read_limited(
        xz2::read::XzDecoder::new(body),
        size_hint.unwrap_or(body.len() * 4),
        limit(size_hint),
    )
    .map_err(|e| e.or_fail(|e| Error::Decompression(format!("lzma: {e}"))))
}

/// Decompresses the data of a borg 2 object, which has no compression header: its compressor
/// is the `ctype` of the object's (authenticated) metadata — 0 none, 1 a raw LZ4 block, 2 xz,
/// 3 zstd, 5 zlib. `size` is the metadata's plaintext size (absent for objects written with
/// `auto,X` compression): exact, so it sizes the buffer, raises the limit up to
/// [`MAX_DECLARED`], and the plaintext must have that length. `size_hint` is the caller's
/// expectation (a file's chunk size): it only sizes buffers, as for [`decompress`]. Without
/// either, LZ4 grows its buffer up to [`MAX_PLAINTEXT`] (borg gives up above 128 MiB too).
///
/// # Errors
///
/// [`Error::Decompression`] for an unknown `ctype`, a damaged stream, too much plaintext, or a
/// plaintext whose length is not `size`; [`Error::NoMemory`] when a buffer cannot be had.
pub(crate) fn decompress_ctype(
    ctype: u8,
    data: Vec<u8>,
    size: Option<usize>,
    size_hint: Option<usize>,
) -> Result<Vec<u8>> {
    // A size the metadata declares counts as known, as a zstd frame's does in an authenticated
    // payload: up to MAX_DECLARED. Beyond that only the caller's hint sizes buffers (and the
    // length check below fails).
    let hint = size.filter(|n| *n <= MAX_DECLARED).or(size_hint);
    let plain = match ctype {
        0 => data,
        1 => lz4(&data, hint)?,
        2 => xz(&data, hint)?,
        3 => zstd_frame(&data, hint, true)?,
        5 => zlib(&data, hint)?,
        other => {
            return Err(Error::Decompression(format!(
                "unknown compression type {other} (borg 2 knows 0 none, 1 lz4, 2 lzma, 3 zstd, \
                 5 zlib)"
            )))
        }
    };
    match size {
        Some(n) if n != plain.len() => Err(Error::Decompression(format!(
            "the plaintext is {} bytes, its metadata says {n}",
            plain.len()
        ))),
        _ => Ok(plain),
    }
}

/// Why [`read_limited`] failed.
enum ReadFailure {
    Io(std::io::Error),
    TooLarge,
    Memory(usize),
}

impl ReadFailure {
    fn or_fail(self, fail: impl Fn(&dyn std::fmt::Display) -> Error) -> Error {
        match self {
            ReadFailure::Io(e) => fail(&e),
            ReadFailure::TooLarge => fail(&"plaintext larger than the limit"),
            ReadFailure::Memory(n) => no_memory(n),
        }
    }
}

/// Reads a decoder to its end, refusing more than `limit` bytes. The buffer starts with room
/// for `capacity` (the expected size; less if that much cannot be had) and grows as the
/// plaintext comes, every allocation fallible.
fn read_limited(
    mut reader: impl Read,
    capacity: usize,
    limit: usize,
) -> std::result::Result<Vec<u8>, ReadFailure> {
    const STEP: usize = 1 << 20;
    let first = capacity.min(limit.saturating_add(1));
    let mut out = buffer(first)
        .or_else(|_| buffer(first.min(STEP)))
        .map_err(|_| ReadFailure::Memory(first))?;
    loop {
        if out.len() == out.capacity() {
            if out.len() > limit {
                return Err(ReadFailure::TooLarge);
            }
            let more = out.len().clamp(64 << 10, 64 << 20);
            out.try_reserve(more)
                .map_err(|_| ReadFailure::Memory(out.len() + more))?;
        }
        // Zero only a bounded window of the spare room per read, so the cost stays linear.
        let start = out.len();
        let end = out.capacity().min(start + STEP);
        out.resize(end, 0);
        let n = loop {
            match reader.read(&mut out[start..end]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => break r,
            }
        };
        match n {
            Ok(0) => {
                out.truncate(start);
                break;
            }
            Ok(n) => out.truncate(start + n),
            Err(e) => return Err(ReadFailure::Io(e)),
        }
        if out.len() > limit {
            return Err(ReadFailure::TooLarge);
        }
    }
    Ok(out)
}

fn lz4(body: &[u8], size_hint: Option<usize>) -> Result<Vec<u8>> {
    // With the exact size the first attempt succeeds. Otherwise start from a typical ratio and
    // double: borg's fixed 9 MB first buffer costs a 9 MB memset for every 500 KB item chunk.
    // An LZ4 block expands at most 255-fold, which bounds every attempt by the input as well.
    let most = limit(size_hint).min(body.len().saturating_mul(255).saturating_add(255));
    let mut cap = match size_hint {
        Some(n) => n.max(1),
        None => (body.len() * 4).max(64 * 1024),
    }
    .min(most);
    loop {
        let mut out = zeroed(cap)?;
        match lz4_flex::block::decompress_into(body, &mut out) {
            Ok(n) => {
                out.truncate(n);
                return Ok(out);
            }
            Err(lz4_flex::block::DecompressError::OutputTooSmall { .. }) if cap < most => {
                cap = cap.saturating_mul(2).min(most);
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

    /// More than MAX_PLAINTEXT only with a known size: the caller's (a file's chunk), or a
    /// zstd frame's own in an authenticated payload; a hint never has to be right.
    #[test]
    fn sizes_beyond_the_default_limit_need_a_known_size() {
        let n = MAX_PLAINTEXT + 4096;
        let zeros = vec![0u8; n];
        let zs = with_header([3, 0], &zstd::bulk::compress(&zeros, 3).unwrap());
        assert!(decompress(&zs, None).is_err(), "unknown size: bounded");
        assert_eq!(decompress(&zs, Some(n)).unwrap().len(), n);
        assert_eq!(
            decompress_owned(zs.clone(), 0, None, true).unwrap().len(),
            n
        );
        assert!(decompress_owned(zs, 0, None, false).is_err());
        let lz = with_header([1, 0], &lz4_flex::block::compress(&zeros));
        assert!(decompress(&lz, None).is_err(), "unknown size: bounded");
        assert_eq!(decompress(&lz, Some(n)).unwrap(), zeros);
        assert!(
            decompress(&lz, Some(n / 3)).is_err(),
            "a hint that is too small does not raise the limit"
        );
        // A hint beyond any memory: not allocated (lz4 expands at most 255-fold).
        assert_eq!(decompress(&lz, Some(usize::MAX / 2)).unwrap().len(), n);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(1));
        z.write_all(&zeros).unwrap();
        let zl = z.finish().unwrap();
        assert!(decompress(&zl, None).is_err(), "unknown size: bounded");
        assert_eq!(decompress(&zl, Some(n)).unwrap().len(), n);
    }

    /// borg 2 data: no header, the compressor from the metadata, its size exact when given.
    #[test]
    fn borg2_ctypes() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let n = data.len();
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
        z.write_all(&data).unwrap();
        let mut x = xz2::write::XzEncoder::new(Vec::new(), 1);
        x.write_all(&data).unwrap();
        for (ctype, body) in [
            (0u8, data.clone()),
            (1, lz4_flex::block::compress(&data)),
            (2, x.finish().unwrap()),
            (3, zstd::bulk::compress(&data, 3).unwrap()),
            (5, z.finish().unwrap()),
        ] {
            for (size, hint) in [
                (Some(n), None),
                (None, None),
                (None, Some(7)),
                (None, Some(n)),
            ] {
                let got = decompress_ctype(ctype, body.clone(), size, hint).unwrap();
                assert!(got == data, "ctype {ctype} size {size:?} hint {hint:?}");
            }
            let e = decompress_ctype(ctype, body.clone(), Some(n + 1), None).unwrap_err();
            assert!(
                e.to_string().contains("metadata says"),
                "ctype {ctype}: {e}"
            );
            // A size beyond any memory is not allocated (and is not the plaintext's).
            assert!(decompress_ctype(ctype, body.clone(), Some(1 << 50), None).is_err());
            // The 1.x headers mean nothing here.
            if ctype != 0 {
                assert!(
                    decompress_ctype(ctype, with_header([ctype, 0], &body), None, None)
                        .map_or(true, |p| p != data)
                );
            }
        }
        for bad in [4u8, 6, 8, 0xff] {
            let e = decompress_ctype(bad, data.clone(), None, None).unwrap_err();
            assert!(e
                .to_string()
                .contains(&format!("unknown compression type {bad}")));
        }
        for (ctype, garbage) in [
            (1u8, &b"\xff\xff\xff"[..]),
            (2, b"junk"),
            (3, b"\x28\xb5\x2f\xfd\xff"),
            (5, b"\x78\x9c\x00"),
        ] {
            assert!(decompress_ctype(ctype, garbage.to_vec(), None, None).is_err());
        }
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

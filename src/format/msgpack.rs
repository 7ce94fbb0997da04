//! A small msgpack reader over a byte slice, for the hot item-stream decoder.
//!
//! It reads exactly the values borg 1.x writes (maps with str or bin keys, ints, bools, nil,
//! str/bin bytes, arrays) and can skip any value, iteratively (no recursion, so no depth limit
//! to trip over). Running out of input is [`Short`] — the caller then waits for more bytes —
//! while malformed input is an error naming what was expected.

/// A value ended before its last byte: more input is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Short;

/// Why a value could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The input ends inside the value.
    Short,
    /// The value is not what was expected.
    Invalid(String),
}

impl From<Short> for ReadError {
    fn from(_: Short) -> ReadError {
        ReadError::Short
    }
}

/// What a marker byte announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Nil,
    Bool(bool),
    /// A non-negative int (fixint or uint8..64); the value follows in `n` bytes (0: in marker).
    Uint(u8),
    /// A signed int (negative fixint or int8..64).
    Int(u8),
    Float(u8),
    /// str or bin, with a length field of `n` bytes (0: in the marker).
    Bytes(u8),
    Array(u8),
    Map(u8),
    /// ext types: length field bytes (0 for fixext, whose data size is the second field).
    Ext(u8, u8),
    Reserved,
}

fn kind(m: u8) -> Kind {
    match m {
        0x00..=0x7f => Kind::Uint(0),
        0x80..=0x8f => Kind::Map(0),
        0x90..=0x9f => Kind::Array(0),
        0xa0..=0xbf => Kind::Bytes(0),
        0xc0 => Kind::Nil,
        0xc1 => Kind::Reserved,
        0xc2 => Kind::Bool(false),
        0xc3 => Kind::Bool(true),
        0xc4 => Kind::Bytes(1),
        0xc5 => Kind::Bytes(2),
        0xc6 => Kind::Bytes(4),
        0xc7 => Kind::Ext(1, 0),
        0xc8 => Kind::Ext(2, 0),
        0xc9 => Kind::Ext(4, 0),
        0xca => Kind::Float(4),
        0xcb => Kind::Float(8),
        0xcc => Kind::Uint(1),
        0xcd => Kind::Uint(2),
        0xce => Kind::Uint(4),
        0xcf => Kind::Uint(8),
        0xd0 => Kind::Int(1),
        0xd1 => Kind::Int(2),
        0xd2 => Kind::Int(4),
        0xd3 => Kind::Int(8),
        0xd4 => Kind::Ext(0, 1),
        0xd5 => Kind::Ext(0, 2),
        0xd6 => Kind::Ext(0, 4),
        0xd7 => Kind::Ext(0, 8),
        0xd8 => Kind::Ext(0, 16),
        0xd9 => Kind::Bytes(1),
        0xda => Kind::Bytes(2),
        0xdb => Kind::Bytes(4),
        0xdc => Kind::Array(2),
        0xdd => Kind::Array(4),
        0xde => Kind::Map(2),
        0xdf => Kind::Map(4),
        0xe0..=0xff => Kind::Int(0),
    }
}

/// How a value is laid out after its marker byte: a big-endian length field of `len_bytes`
/// bytes (none for most markers), then payload bytes, then child values. The one marker table
/// both the slice reader ([`Reader::skip`]) and the streaming RPC frame reader use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Bytes of the length field after the marker: 0, 1, 2 or 4.
    pub len_bytes: u8,
    /// Payload bytes whatever the length says (an int's or float's bytes, a fixstr's length, an
    /// ext's type byte and a fixext's data).
    pub fixed: u8,
    /// Child values the marker itself announces (a fixarray's count, twice a fixmap's).
    pub children: u8,
    /// What the length field counts: 0 payload bytes, 1 child values (array), 2 pairs of child
    /// values (map).
    pub per_len: u8,
}

impl Layout {
    /// Payload bytes and child values, given the length field's value (0 when there is none).
    #[inline]
    pub(crate) fn sizes(self, len: u64) -> (u64, u64) {
        let (fixed, children) = (u64::from(self.fixed), u64::from(self.children));
        match self.per_len {
            0 => (fixed + len, children),
            k => (fixed, children + len * u64::from(k)),
        }
    }
}

/// The layout of the value marker `m` announces; `None` for the reserved marker 0xc1.
#[inline]
pub(crate) fn layout(m: u8) -> Option<Layout> {
    let l = |len_bytes: u8, fixed: u8, children: u8, per_len: u8| Layout {
        len_bytes,
        fixed,
        children,
        per_len,
    };
    Some(match kind(m) {
        Kind::Nil | Kind::Bool(_) => l(0, 0, 0, 0),
        Kind::Uint(n) | Kind::Int(n) | Kind::Float(n) => l(0, n, 0, 0),
        Kind::Bytes(0) => l(0, m & 0x1f, 0, 0),
        Kind::Bytes(n) => l(n, 0, 0, 0),
        Kind::Array(0) => l(0, 0, m & 0x0f, 0),
        Kind::Array(n) => l(n, 0, 0, 1),
        Kind::Map(0) => l(0, 0, 2 * (m & 0x0f), 0),
        Kind::Map(n) => l(n, 0, 0, 2),
        Kind::Ext(0, fixed) => l(0, 1 + fixed, 0, 0),
        Kind::Ext(n, _) => l(n, 1, 0, 0),
        Kind::Reserved => return None,
    })
}

/// An integer as msgpack carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Int {
    /// Non-negative.
    U(u64),
    /// Negative, or a signed encoding.
    I(i64),
}

/// A cursor over msgpack bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Short> {
        let end = self.pos.checked_add(n).ok_or(Short)?;
        let s = self.buf.get(self.pos..end).ok_or(Short)?;
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, Short> {
        let b = *self.buf.get(self.pos).ok_or(Short)?;
        self.pos += 1;
        Ok(b)
    }

    fn be(&mut self, n: u8) -> Result<u64, Short> {
        let mut v = 0u64;
        for b in self.take(n as usize)? {
            v = v << 8 | u64::from(*b);
        }
        Ok(v)
    }

    /// The next marker byte, without consuming it.
    pub fn peek(&self) -> Result<u8, Short> {
        self.buf.get(self.pos).copied().ok_or(Short)
    }

    /// Whether the next value is nil (consumed if so).
    pub fn nil(&mut self) -> Result<bool, Short> {
        if self.peek()? == 0xc0 {
            self.pos += 1;
            return Ok(true);
        }
        Ok(false)
    }

    /// A value's type for error messages.
    fn describe(m: u8) -> &'static str {
        match kind(m) {
            Kind::Nil => "nil",
            Kind::Bool(_) => "a boolean",
            Kind::Uint(_) | Kind::Int(_) => "an integer",
            Kind::Float(_) => "a float",
            Kind::Bytes(_) => "a string",
            Kind::Array(_) => "an array",
            Kind::Map(_) => "a map",
            Kind::Ext(..) => "an ext value",
            Kind::Reserved => "the reserved marker 0xc1",
        }
    }

    fn unexpected(m: u8, want: &str) -> ReadError {
        ReadError::Invalid(format!("expected {want}, found {}", Self::describe(m)))
    }

    /// A map header: the number of entries.
    pub fn map_len(&mut self) -> Result<usize, ReadError> {
        let m = self.byte()?;
        match kind(m) {
            Kind::Map(0) => Ok(usize::from(m & 0x0f)),
            Kind::Map(n) => Ok(self.be(n)? as usize),
            _ => Err(Self::unexpected(m, "a map")),
        }
    }

    /// An array header: the number of elements.
    pub fn array_len(&mut self) -> Result<usize, ReadError> {
        let m = self.byte()?;
        match kind(m) {
            Kind::Array(0) => Ok(usize::from(m & 0x0f)),
            Kind::Array(n) => Ok(self.be(n)? as usize),
            _ => Err(Self::unexpected(m, "an array")),
        }
    }

    /// A str or bin value, borrowed.
    pub fn bytes(&mut self) -> Result<&'a [u8], ReadError> {
        let m = self.byte()?;
        let len = match kind(m) {
            Kind::Bytes(0) => usize::from(m & 0x1f),
            Kind::Bytes(n) => self.be(n)? as usize,
            _ => return Err(Self::unexpected(m, "a string")),
        };
        Ok(self.take(len)?)
    }

    /// An integer.
    pub fn int(&mut self) -> Result<Int, ReadError> {
        let m = self.byte()?;
        match kind(m) {
            Kind::Uint(0) => Ok(Int::U(u64::from(m))),
            Kind::Uint(n) => Ok(Int::U(self.be(n)?)),
            Kind::Int(0) => Ok(Int::I(i64::from(m as i8))),
            Kind::Int(n) => {
                let raw = self.be(n)?;
                let bits = u32::from(n) * 8;
                // sign-extend from `bits`
                let v = ((raw << (64 - bits)) as i64) >> (64 - bits);
                Ok(if v >= 0 { Int::U(v as u64) } else { Int::I(v) })
            }
            _ => Err(Self::unexpected(m, "an integer")),
        }
    }

    /// A non-negative integer that fits `max`.
    pub fn uint(&mut self, max: u64, what: &str) -> Result<u64, ReadError> {
        match self.int()? {
            Int::U(v) if v <= max => Ok(v),
            Int::U(v) => Err(ReadError::Invalid(format!("{what} {v} is out of range"))),
            Int::I(v) => Err(ReadError::Invalid(format!("{what} {v} is negative"))),
        }
    }

    /// A boolean.
    pub fn bool(&mut self) -> Result<bool, ReadError> {
        let m = self.byte()?;
        match kind(m) {
            Kind::Bool(b) => Ok(b),
            _ => Err(Self::unexpected(m, "a boolean")),
        }
    }

    /// A msgpack timestamp (ext type −1 in its 32-, 64- or 96-bit form), in nanoseconds since
    /// the epoch (saturating at the ends of `i64`).
    pub fn timestamp(&mut self) -> Result<i64, ReadError> {
        let m = self.byte()?;
        let len = match m {
            0xd6 => 4,
            0xd7 => 8,
            0xc7 => usize::from(self.byte()?),
            _ => return Err(Self::unexpected(m, "a timestamp")),
        };
        let ty = self.byte()? as i8;
        let d = self.take(len)?;
        if ty != -1 {
            return Err(ReadError::Invalid(format!(
                "ext type {ty} is not a timestamp"
            )));
        }
        let be = |b: &[u8]| b.iter().fold(0u64, |v, x| v << 8 | u64::from(*x));
        let (secs, nanos): (i64, u64) = match len {
            4 => (be(d) as i64, 0),
            8 => {
                let v = be(d);
                ((v & ((1 << 34) - 1)) as i64, v >> 34)
            }
            12 => (be(&d[4..]) as i64, be(&d[..4])),
            n => return Err(ReadError::Invalid(format!("a timestamp of {n} bytes"))),
        };
        if nanos >= 1_000_000_000 {
            return Err(ReadError::Invalid(format!(
                "timestamp nanoseconds {nanos} out of range"
            )));
        }
        let ns = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
        Ok(ns.clamp(i64::MIN.into(), i64::MAX.into()) as i64)
    }

    /// Skips one complete value of any type (nested ones included).
    pub fn skip(&mut self) -> Result<(), ReadError> {
        let mut pending: u64 = 1;
        while pending > 0 {
            pending -= 1;
            let m = self.byte()?;
            let Some(l) = layout(m) else {
                return Err(ReadError::Invalid("the reserved marker 0xc1".into()));
            };
            let len = match l.len_bytes {
                0 => 0,
                n => self.be(n)?,
            };
            let (payload, children) = l.sizes(len);
            self.take(usize::try_from(payload).map_err(|_| Short)?)?;
            pending += children;
            // Every element takes at least one byte: a count beyond the input is short input.
            if pending > (self.buf.len() - self.pos) as u64 {
                return Err(ReadError::Short);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_of_every_width() {
        let mut buf = Vec::new();
        for v in [
            0i64,
            1,
            127,
            128,
            255,
            256,
            65535,
            65536,
            1 << 40,
            -1,
            -32,
            -33,
            -200,
            i64::MIN,
        ] {
            rmp::encode::write_sint(&mut buf, v).unwrap();
        }
        rmp::encode::write_uint(&mut buf, u64::MAX).unwrap();
        let mut r = Reader::new(&buf);
        for v in [0i64, 1, 127, 128, 255, 256, 65535, 65536, 1 << 40] {
            assert_eq!(r.int().unwrap(), Int::U(v as u64));
        }
        for v in [-1i64, -32, -33, -200, i64::MIN] {
            assert_eq!(r.int().unwrap(), Int::I(v));
        }
        assert_eq!(r.int().unwrap(), Int::U(u64::MAX));
        assert_eq!(r.int(), Err(ReadError::Short));
    }

    #[test]
    fn skips_nested_values_and_reports_short_input() {
        let mut buf = Vec::new();
        rmp::encode::write_map_len(&mut buf, 2).unwrap();
        rmp::encode::write_str(&mut buf, "a").unwrap();
        rmp::encode::write_array_len(&mut buf, 3).unwrap();
        rmp::encode::write_f64(&mut buf, 1.5).unwrap();
        rmp::encode::write_bin(&mut buf, &[1, 2, 3]).unwrap();
        rmp::encode::write_nil(&mut buf).unwrap();
        rmp::encode::write_bin(&mut buf, b"k").unwrap();
        rmp::encode::write_ext_meta(&mut buf, 4, 7).unwrap();
        buf.extend_from_slice(&[9; 4]);
        let mut r = Reader::new(&buf);
        r.skip().unwrap();
        assert_eq!(r.position(), buf.len());
        for cut in 0..buf.len() {
            assert_eq!(
                Reader::new(&buf[..cut]).skip(),
                Err(ReadError::Short),
                "{cut}"
            );
        }
        // A huge declared count is short input, not a long loop.
        let huge = [0xdd, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(Reader::new(&huge).skip(), Err(ReadError::Short));
        assert!(matches!(
            Reader::new(&[0xc1]).skip(),
            Err(ReadError::Invalid(_))
        ));
    }

    #[test]
    fn timestamps_of_every_form() {
        // 32-bit: seconds only; 64-bit: 30 bits of ns and 34 of seconds; 96-bit: negative.
        let cases: Vec<(Vec<u8>, i64)> = vec![
            (vec![0xd6, 0xff, 0, 0, 0, 5], 5_000_000_000),
            (
                {
                    let v: u64 = (7u64 << 34) | 86_400;
                    let mut b = vec![0xd7, 0xff];
                    b.extend_from_slice(&v.to_be_bytes());
                    b
                },
                86_400_000_000_007,
            ),
            (
                {
                    let mut b = vec![0xc7, 12, 0xff];
                    b.extend_from_slice(&500u32.to_be_bytes());
                    b.extend_from_slice(&(-2i64).to_be_bytes());
                    b
                },
                -1_999_999_500,
            ),
        ];
        for (buf, want) in cases {
            let mut r = Reader::new(&buf);
            assert_eq!(r.timestamp().unwrap(), want, "{buf:02x?}");
            assert_eq!(r.position(), buf.len());
            for cut in 0..buf.len() {
                assert_eq!(Reader::new(&buf[..cut]).timestamp(), Err(ReadError::Short));
            }
        }
        // another ext type, a bad length, nanoseconds out of range, not an ext at all
        for bad in [
            vec![0xd6, 0x01, 0, 0, 0, 5],
            vec![0xc7, 3, 0xff, 0, 0, 0],
            vec![0xd7, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0],
            vec![0x05],
        ] {
            assert!(matches!(
                Reader::new(&bad).timestamp(),
                Err(ReadError::Invalid(_))
            ));
        }
    }

    #[test]
    fn layout_of_every_marker() {
        // (marker, length field bytes, payload bytes and child values when a length field
        // holds 3)
        let cases: &[(u8, u8, u64, u64)] = &[
            (0x05, 0, 0, 0),
            (0x83, 0, 0, 6),
            (0x92, 0, 0, 2),
            (0xa4, 0, 4, 0),
            (0xc0, 0, 0, 0),
            (0xc3, 0, 0, 0),
            (0xc4, 1, 3, 0),
            (0xc6, 4, 3, 0),
            (0xc7, 1, 1 + 3, 0),
            (0xc9, 4, 1 + 3, 0),
            (0xca, 0, 4, 0),
            (0xcb, 0, 8, 0),
            (0xcd, 0, 2, 0),
            (0xd3, 0, 8, 0),
            (0xd4, 0, 2, 0),
            (0xd8, 0, 17, 0),
            (0xd9, 1, 3, 0),
            (0xda, 2, 3, 0),
            (0xdc, 2, 0, 3),
            (0xde, 2, 0, 6),
            (0xdf, 4, 0, 6),
            (0xff, 0, 0, 0),
        ];
        for &(m, len_bytes, payload, children) in cases {
            let l = layout(m).unwrap();
            let len = if l.len_bytes == 0 { 0 } else { 3 };
            let (p, c) = l.sizes(len);
            assert_eq!(
                (l.len_bytes, p, c),
                (len_bytes, payload, children),
                "{m:#x}"
            );
        }
        assert_eq!(layout(0xc1), None);
    }
}

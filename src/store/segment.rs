//! Segment files: `BORG_SEG` magic, then entries `crc32 size tag [id] [data]`.

use crate::error::{Error, Result};
use crate::id::ObjectId;
use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The magic that starts every segment file.
pub const MAGIC: &[u8; 8] = b"BORG_SEG";
/// The header of every entry: crc32, size, tag.
pub const HEADER_LEN: usize = 9;
/// A PUT or DELETE header including the id.
pub const ID_HEADER_LEN: usize = HEADER_LEN + 32;
/// The largest entry borg writes.
pub const MAX_ENTRY: u32 = 20 * 1024 * 1024;
/// The complete COMMIT entry.
pub const COMMIT: [u8; 9] = [0x40, 0xf4, 0x3c, 0x25, 0x09, 0x00, 0x00, 0x00, 0x02];

/// An entry's tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// Store an object.
    Put,
    /// Remove an object.
    Delete,
    /// End of a transaction.
    Commit,
}

impl Tag {
    fn from_byte(b: u8) -> Option<Tag> {
        match b {
            0 => Some(Tag::Put),
            1 => Some(Tag::Delete),
            2 => Some(Tag::Commit),
            _ => None,
        }
    }
}

/// A parsed entry header.
#[derive(Debug, Clone, Copy)]
pub struct EntryHeader {
    /// Stored CRC-32 over bytes 4.. of the entry.
    pub crc: u32,
    /// Entry length including the header.
    pub size: u32,
    /// The tag.
    pub tag: Tag,
}

/// Parses the 9-byte header of the entry at `offset` of `segment` (for messages).
pub fn parse_header(buf: &[u8; HEADER_LEN], segment: u32, offset: u64) -> Result<EntryHeader> {
    let crc = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let size = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let tag = Tag::from_byte(buf[8]).ok_or_else(|| {
        Error::Integrity(format!(
            "Invalid segment entry header [segment {segment}, offset {offset}]: unknown tag {}",
            buf[8]
        ))
    })?;
    let min = if tag == Tag::Commit {
        HEADER_LEN
    } else {
        ID_HEADER_LEN
    } as u32;
    if size < min || size > MAX_ENTRY || (tag != Tag::Put && size != min) {
        return Err(Error::Integrity(format!(
            "Invalid segment entry size {size} [segment {segment}, offset {offset}]"
        )));
    }
    Ok(EntryHeader { crc, size, tag })
}

/// Checks the CRC of a whole entry (`entry` = bytes 0..size).
pub fn check_crc(entry: &[u8], segment: u32, offset: u64) -> Result<()> {
    let stored = u32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]);
    if crc32fast::hash(&entry[4..]) != stored {
        return Err(Error::Integrity(format!(
            "Segment entry checksum mismatch [segment {segment}, offset {offset}]"
        )));
    }
    Ok(())
}

/// Entries at most this long are read with one system call when their length is known ahead
/// (see [`read_put_sized`]).
pub const SMALL_ENTRY: u32 = 64 * 1024;

/// Reads the PUT entry of `id` at `offset` of an open segment, checking tag, id, size and CRC,
/// with a guess of the entry's length (the distance to the next entry wanted from
/// the same segment). A guess up to [`SMALL_ENTRY`] reads header and data with one `preadv`;
/// a wrong guess only costs a second read.
pub fn read_put_sized(
    file: &File,
    segment: u32,
    offset: u32,
    id: &ObjectId,
    guess: Option<u32>,
) -> Result<Vec<u8>> {
    let off = u64::from(offset);
    let io_err = |e: std::io::Error| {
        Error::Integrity(format!(
            "Cannot read segment entry [segment {segment}, offset {offset}]: {e}"
        ))
    };
    let mut head = [0u8; ID_HEADER_LEN];
    let mut data = Vec::new();
    let mut have = 0usize; // data bytes already read
    match guess.filter(|g| (ID_HEADER_LEN as u32..=SMALL_ENTRY).contains(g)) {
        Some(g) => {
            data.resize(g as usize - ID_HEADER_LEN, 0);
            let n = loop {
                let mut bufs = [
                    std::io::IoSliceMut::new(&mut head),
                    std::io::IoSliceMut::new(&mut data),
                ];
                match rustix::io::preadv(file, &mut bufs, off) {
                    Ok(n) => break n,
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => return Err(io_err(e.into())),
                }
            };
            if n < ID_HEADER_LEN {
                file.read_exact_at(&mut head[n..], off + n as u64)
                    .map_err(io_err)?;
            } else {
                have = n - ID_HEADER_LEN;
            }
        }
        None => file.read_exact_at(&mut head, off).map_err(io_err)?,
    }
    let h = parse_header(
        head[..HEADER_LEN].try_into().expect("9 bytes"),
        segment,
        off,
    )?;
    if h.tag != Tag::Put {
        return Err(Error::Integrity(format!(
            "Segment entry is not a PUT [segment {segment}, offset {offset}]"
        )));
    }
    if &head[HEADER_LEN..] != id {
        return Err(Error::Integrity(format!(
            "Segment entry has id {} where {} was expected [segment {segment}, offset {offset}]",
            hex::encode(&head[HEADER_LEN..]),
            hex::encode(id)
        )));
    }
    // The data goes straight into its own buffer (no copy to drop the header afterwards).
    let len = h.size as usize - ID_HEADER_LEN;
    if have >= len {
        data.truncate(len);
    } else {
        data.truncate(have);
        data.resize(len, 0);
        file.read_exact_at(&mut data[have..], off + (ID_HEADER_LEN + have) as u64)
            .map_err(io_err)?;
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head[4..]);
    crc.update(&data);
    if crc.finalize() != h.crc {
        return Err(Error::Integrity(format!(
            "Segment entry checksum mismatch [segment {segment}, offset {offset}]"
        )));
    }
    Ok(data)
}

/// One entry met while scanning a segment.
#[derive(Debug)]
pub struct ScannedEntry {
    /// The tag.
    pub tag: Tag,
    /// The id (PUT and DELETE).
    pub id: Option<ObjectId>,
    /// Offset of the entry in the segment.
    pub offset: u32,
    /// Entry size.
    pub size: u32,
}

/// Reads a whole segment in order, verifying every CRC, and calls `f` for each entry.
/// Returns `Err` describing the first damaged entry; entries before it were already delivered.
pub fn scan(path: &Path, segment: u32, f: impl FnMut(ScannedEntry)) -> Result<()> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    scan_reader(BufReader::with_capacity(1 << 20, file), path, segment, f)
}

/// [`scan`] over any reader; `path` only names the segment in messages.
pub fn scan_reader(
    mut r: impl Read,
    path: &Path,
    segment: u32,
    mut f: impl FnMut(ScannedEntry),
) -> Result<()> {
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic).map_err(|e| {
        Error::Integrity(format!(
            "Segment {segment} ({}): cannot read magic: {e}",
            path.display()
        ))
    })?;
    if &magic != MAGIC {
        return Err(Error::Integrity(format!(
            "Segment {segment} ({}): invalid magic {:02x?}",
            path.display(),
            magic
        )));
    }
    let mut offset: u64 = 8;
    let mut buf = Vec::new();
    loop {
        let mut head = [0u8; HEADER_LEN];
        match read_full(&mut r, &mut head) {
            Ok(0) => return Ok(()),
            Ok(n) if n < HEADER_LEN => {
                return Err(Error::Integrity(format!(
                    "Segment {segment}: truncated entry header at offset {offset}"
                )))
            }
            Ok(_) => {}
            Err(e) => return Err(Error::io(path, e)),
        }
        let h = parse_header(&head, segment, offset)?;
        buf.clear();
        buf.extend_from_slice(&head);
        buf.resize(h.size as usize, 0);
        let got = read_full(&mut r, &mut buf[HEADER_LEN..]).map_err(|e| Error::io(path, e))?;
        if got < h.size as usize - HEADER_LEN {
            return Err(Error::Integrity(format!(
                "Segment entry data short read [segment {segment}, offset {offset}]: expected {}, got {got} bytes",
                h.size as usize - HEADER_LEN
            )));
        }
        check_crc(&buf, segment, offset)?;
        let id = (h.tag != Tag::Commit).then(|| {
            let mut id = [0u8; 32];
            id.copy_from_slice(&buf[HEADER_LEN..ID_HEADER_LEN]);
            id
        });
        f(ScannedEntry {
            tag: h.tag,
            id,
            offset: offset as u32,
            size: h.size,
        });
        offset += u64::from(h.size);
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Is the segment committed: does it end with a COMMIT and hold no entry after a COMMIT?
/// Walks the entry headers only (no CRC), like borg.
pub fn is_committed(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    let Ok(len) = file.metadata().map(|m| m.len()) else {
        return false;
    };
    if len < (MAGIC.len() + HEADER_LEN) as u64 {
        return false;
    }
    let mut tail = [0u8; HEADER_LEN];
    if file
        .read_exact_at(&mut tail, len - HEADER_LEN as u64)
        .is_err()
        || tail != COMMIT
    {
        return false;
    }
    let mut magic = [0u8; 8];
    if file.read_exact_at(&mut magic, 0).is_err() || &magic != MAGIC {
        return false;
    }
    let mut offset = 8u64;
    let mut seen_commit = false;
    while offset < len {
        let mut head = [0u8; HEADER_LEN];
        if file.read_exact_at(&mut head, offset).is_err() {
            return false;
        }
        let Ok(h) = parse_header(&head, 0, offset) else {
            return false;
        };
        if h.tag == Tag::Commit {
            seen_commit = true;
        } else if seen_commit {
            return false;
        }
        offset += u64::from(h.size);
    }
    offset == len && seen_commit
}

//! Reading one file's content back, verified: sequentially ([`Read`]), anywhere ([`Seek`],
//! [`FileReader::read_at`]), with the next chunks fetched and decoded ahead in parallel.

use super::Repository;
use crate::error::{Error, Result};
use crate::fetch::Opened;
use crate::format::ChunkRef;
use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex};

/// How many content bytes a read fetches ahead (in one parallel batch) by default.
const READ_AHEAD: u64 = 32 << 20;

/// Reads one regular file's content from the repository: `Read`, `Seek` and
/// [`FileReader::read_at`].
///
/// Every chunk is MAC- and id-verified; a damaged or missing chunk is an `io::Error` of kind
/// `InvalidData` naming the file and chunk. Chunks are fetched in batches of up to
/// [`FileReader::read_ahead`] bytes (32 MiB by default), decoded in parallel, and kept until
/// the reading moves past them.
///
/// ```no_run
/// use oxiborg::{Location, OpenOptions, Repository};
/// use std::io::Read;
/// # fn main() -> oxiborg::Result<()> {
/// let repo = Repository::open(&Location::parse("/srv/repo")?, &OpenOptions::from_env())?;
/// let archive = repo.archive("host-2025-01-15")?;
/// let item = archive.find("etc/hostname")?.expect("in the archive");
/// let mut text = String::new();
/// archive.open_file(&item)?.read_to_string(&mut text)?;
/// # Ok(()) }
/// ```
pub struct FileReader<'r> {
    repo: &'r Repository,
    chunks: Vec<ChunkRef>,
    /// `starts[i]`: the offset of chunk `i`; `starts[len]`: the file's size.
    starts: Vec<u64>,
    pos: u64,
    read_ahead: u64,
    /// Decoded chunks kept for the reads to come: `(index, plaintext)`.
    cache: Mutex<Vec<(usize, Arc<Vec<u8>>)>>,
    path: String,
}

impl std::fmt::Debug for FileReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileReader")
            .field("path", &self.path)
            .field("size", &self.size())
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl<'r> FileReader<'r> {
    pub(super) fn new(repo: &'r Repository, chunks: Vec<ChunkRef>, path: String) -> Self {
        let mut starts = Vec::with_capacity(chunks.len() + 1);
        let mut off = 0u64;
        for c in &chunks {
            starts.push(off);
            off = off.saturating_add(c.size);
        }
        starts.push(off);
        FileReader {
            repo,
            chunks,
            starts,
            pos: 0,
            read_ahead: READ_AHEAD,
            cache: Mutex::new(Vec::new()),
            path,
        }
    }

    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        *self.starts.last().unwrap_or(&0)
    }

    /// Fetches up to `bytes` of content ahead in one parallel batch (at least one chunk).
    pub fn read_ahead(mut self, bytes: u64) -> Self {
        self.read_ahead = bytes;
        self
    }

    /// Reads up to `buf.len()` bytes at `offset`, without moving the position `Read` uses;
    /// returns how many were read (0 at or past the end).
    ///
    /// # Errors
    /// A chunk that is missing or damaged ([`Error::Integrity`] and the like, naming the file
    /// and the chunk).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let at = offset.saturating_add(done as u64);
            if at >= self.size() {
                break;
            }
            // the chunk holding `at` (empty chunks are skipped: `starts` is non-decreasing)
            let i = self.starts.partition_point(|s| *s <= at) - 1;
            let data = self.chunk(i)?;
            let from = (at - self.starts[i]) as usize;
            let n = (buf.len() - done).min(data.len() - from);
            buf[done..done + n].copy_from_slice(&data[from..from + n]);
            done += n;
        }
        Ok(done)
    }

    /// Chunk `i`'s plaintext: from the cache, or fetched with the chunks after it.
    fn chunk(&self, i: usize) -> Result<Arc<Vec<u8>>> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, d)) = cache.iter().find(|(k, _)| *k == i) {
            return Ok(d.clone());
        }
        // The batch: chunk i and those after it, up to the read-ahead (and at most 256).
        let mut end = i + 1;
        let mut bytes = self.chunks[i].size;
        while end < self.chunks.len()
            && end - i < 256
            && bytes.saturating_add(self.chunks[end].size) <= self.read_ahead
        {
            bytes += self.chunks[end].size;
            end += 1;
        }
        let batch = &self.chunks[i..end];
        let got: Vec<Mutex<Option<Opened>>> = batch.iter().map(|_| Mutex::new(None)).collect();
        self.repo
            .open_chunks(batch, self.read_ahead.max(1 << 20), None, &|k, r| {
                *got[k].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            })?;
        // What was read before is not needed again by a reader moving forward.
        cache.clear();
        let mut first = None;
        for (k, (slot, c)) in got.into_iter().zip(batch).enumerate() {
            let data = match slot.into_inner().unwrap_or_else(|e| e.into_inner()) {
                Some(Opened::Plain(d)) if d.len() as u64 == c.size => d,
                Some(Opened::Plain(d)) => {
                    return Err(Error::Integrity(format!(
                        "{}: chunk {} has {} bytes, the archive says {}",
                        self.path,
                        hex::encode(c.id),
                        d.len(),
                        c.size
                    )))
                }
                Some(Opened::Unreadable(e) | Opened::Damaged(e)) if k == 0 => {
                    return Err(e.in_context(&format!(
                        "({}: chunk {})",
                        self.path,
                        hex::encode(c.id)
                    )))
                }
                // a later chunk's trouble is reported when the reading gets there
                Some(Opened::Unreadable(_) | Opened::Damaged(_)) | None => continue,
            };
            let data = Arc::new(data);
            if k == 0 {
                first = Some(data.clone());
            }
            cache.push((i + k, data));
        }
        first.ok_or_else(|| {
            Error::Integrity(format!(
                "{}: chunk {} was not delivered",
                self.path,
                hex::encode(self.chunks[i].id)
            ))
        })
    }
}

fn io_error(e: Error) -> std::io::Error {
    match e {
        Error::Io { source, .. } => source,
        e => std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
    }
}

impl Read for FileReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.read_at(self.pos, buf).map_err(io_error)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for FileReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.size().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(t) => {
                self.pos = t;
                Ok(t)
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek to a negative or overflowing position",
            )),
        }
    }
}

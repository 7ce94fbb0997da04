//! Reading one file's content back, verified.

use super::Repository;
use std::io::Read;

/// Reads one file's content from the repository (`std::io::Read`).
///
/// Every chunk is MAC- and id-verified; a damaged or missing chunk is an `io::Error` of kind
/// `InvalidData` naming the file and chunk.
pub struct FileReader<'r> {
    pub(super) repo: &'r Repository,
    pub(super) chunks: Vec<crate::format::item::ChunkRef>,
    pub(super) next: usize,
    pub(super) current: Vec<u8>,
    pub(super) pos: usize,
    pub(super) path: String,
}

impl Read for FileReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.current.len() {
            let Some(c) = self.chunks.get(self.next) else {
                return Ok(0);
            };
            self.next += 1;
            let size = usize::try_from(c.size).ok();
            let data = self.repo.get_object(&c.id, size).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: chunk {}: {e}", self.path, hex::encode(c.id)),
                )
            })?;
            if data.len() as u64 != c.size {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "{}: chunk {} has {} bytes, the archive says {}",
                        self.path,
                        hex::encode(c.id),
                        data.len(),
                        c.size
                    ),
                ));
            }
            self.current = data;
            self.pos = 0;
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

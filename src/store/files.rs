//! Named files of a store, read by name and byte range: the access seam under borg 2's store.
//!
//! A borg 2 repository is a tree of files (`config/config`, `keys/…`, `archives/…`,
//! `index/…`, `packs/XX/…`). [`Files`] is everything the store needs of such a tree;
//! [`LocalFiles`] reads a directory, the REST transport (`borg serve --rest` over SSH) reads
//! the same names remotely.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DirEntry {
    /// The entry's name within its directory.
    pub name: String,
    /// Its size in bytes (0 for directories).
    pub size: u64,
    /// Is it a directory?
    pub is_dir: bool,
}

/// A byte range of a named file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Range {
    /// The file's name, `/`-separated, relative to the store's root.
    pub name: String,
    /// Where the range starts.
    pub offset: u64,
    /// How many bytes it has.
    pub len: u64,
}

/// Read access to a tree of named files. Names are relative and `/`-separated
/// (`packs/6c/6cee…`).
pub(crate) trait Files: Send + Sync {
    /// The store's location, for messages.
    fn location(&self) -> &str;

    /// One level of the directory `dir`; `None` when there is no such directory.
    fn list(&self, dir: &str) -> Result<Option<Vec<DirEntry>>>;

    /// A whole file; `None` when there is no such file.
    fn load(&self, name: &str) -> Result<Option<Vec<u8>>>;

    /// Exactly `range.len` bytes at `range.offset` (a file that ends sooner is an error).
    fn load_range(&self, range: &Range) -> Result<Vec<u8>>;

    /// Many ranges, each handed to `sink` with its index in `ranges` (in any order); stops at
    /// the first error `sink` returns. A transport that can batch requests overrides this.
    fn load_ranges(
        &self,
        ranges: &[Range],
        sink: &mut dyn FnMut(usize, Result<Vec<u8>>) -> Result<()>,
    ) -> Result<()> {
        for (i, r) in ranges.iter().enumerate() {
            sink(i, self.load_range(r))?;
        }
        Ok(())
    }

    /// What is at `name`: `Some(true)` a directory, `Some(false)` a file, `None` nothing.
    fn kind(&self, name: &str) -> Result<Option<bool>>;

    /// Does every request cost a round trip (a network transport)? Readers then ask for few,
    /// large ranges through [`Files::load_ranges`] (coalescing neighbours, reading slack)
    /// rather than many exact small ones.
    fn prefers_large_reads(&self) -> bool {
        false
    }
}

/// The files of a local directory.
pub(crate) struct LocalFiles {
    root: PathBuf,
    location: String,
    /// Open files, by name (bounded).
    open: Mutex<HashMap<String, Arc<File>>>,
}

/// How many files [`LocalFiles`] keeps open.
const MAX_OPEN: usize = 128;

impl LocalFiles {
    /// The files under `root` (`location` names it in messages).
    pub(crate) fn new(root: &Path, location: &str) -> LocalFiles {
        LocalFiles {
            root: root.to_path_buf(),
            location: location.to_string(),
            open: Mutex::new(HashMap::new()),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn file(&self, name: &str) -> Result<Arc<File>> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = open.get(name) {
            return Ok(f.clone());
        }
        let path = self.path(name);
        let f = Arc::new(File::open(&path).map_err(|e| Error::io(path, e))?);
        if open.len() >= MAX_OPEN {
            open.clear();
        }
        open.insert(name.to_string(), f.clone());
        Ok(f)
    }
}

impl Files for LocalFiles {
    fn location(&self) -> &str {
        &self.location
    }

    fn list(&self, dir: &str) -> Result<Option<Vec<DirEntry>>> {
        let path = self.path(dir);
        let rd = match std::fs::read_dir(&path) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| Error::io(path.clone(), e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue; // not a name borg writes
            };
            let meta = entry.metadata().map_err(|e| Error::io(entry.path(), e))?;
            out.push(DirEntry {
                name,
                size: if meta.is_dir() { 0 } else { meta.len() },
                is_dir: meta.is_dir(),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Some(out))
    }

    fn load(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path(name);
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    fn load_range(&self, range: &Range) -> Result<Vec<u8>> {
        let f = self.file(&range.name)?;
        let len = usize::try_from(range.len)
            .map_err(|_| Error::Integrity(format!("{}: range too long", range.name)))?;
        let mut buf = Vec::new();
        buf.try_reserve_exact(len)
            .map_err(|_| Error::Other(format!("{}: not enough memory", range.name)))?;
        buf.resize(len, 0);
        let mut done = 0;
        while done < len {
            match f.read_at(&mut buf[done..], range.offset + done as u64) {
                Ok(0) => {
                    return Err(Error::Integrity(format!(
                        "{}: ends at {} bytes, before the {} bytes at offset {} that the \
                         index points at",
                        range.name,
                        range.offset + done as u64,
                        range.len,
                        range.offset
                    )))
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(self.path(&range.name), e)),
            }
        }
        Ok(buf)
    }

    fn kind(&self, name: &str) -> Result<Option<bool>> {
        let path = self.path(name);
        match std::fs::metadata(&path) {
            Ok(m) => Ok(Some(m.is_dir())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_files_list_load_and_ranges() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("packs/ab")).unwrap();
        std::fs::write(dir.path().join("packs/ab/abc"), b"0123456789").unwrap();
        let f = LocalFiles::new(dir.path(), "here");
        let top = f.list("packs").unwrap().unwrap();
        assert_eq!(top.len(), 1);
        assert!(top[0].is_dir);
        assert_eq!(f.list("nothing").unwrap(), None);
        assert_eq!(f.load("packs/ab/abc").unwrap().unwrap(), b"0123456789");
        assert_eq!(f.load("packs/ab/x").unwrap(), None);
        let r = |offset, len| Range {
            name: "packs/ab/abc".into(),
            offset,
            len,
        };
        assert_eq!(f.load_range(&r(2, 3)).unwrap(), b"234");
        let err = f.load_range(&r(8, 5)).unwrap_err().to_string();
        assert!(err.contains("ends at 10 bytes"), "{err}");
        assert_eq!(f.kind("packs").unwrap(), Some(true));
        assert_eq!(f.kind("packs/ab/abc").unwrap(), Some(false));
        assert_eq!(f.kind("config").unwrap(), None);
    }
}

//! The free-space check before a restore: does the selection fit the destination?

use super::{Extractor, Totals};
use crate::error::Result;
use crate::patterns::Matcher;

/// What a destination lacks for a selection ([`Extractor::space_check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortfall {
    /// Disk space the selection takes (estimated, see [`Totals::disk_bytes`]).
    pub need_bytes: u64,
    /// Disk space available to this user.
    pub free_bytes: u64,
    /// Inodes the selection takes.
    pub need_inodes: u64,
    /// Inodes available, where the file system has a fixed number of them.
    pub free_inodes: Option<u64>,
}

impl<'r> Extractor<'r> {
    /// Whether the selection fits the destination: `None` when it does (or cannot be told),
    /// else what is lacking. Cheap in the common case: when the archive records its size and
    /// file count (borg 1.2+) and the destination has room for the whole archive, no item is
    /// read; otherwise the exact totals are counted (one pass over the item stream), unless
    /// `known` already has them.
    ///
    /// # Errors
    ///
    /// When the archive cannot be opened or its item stream read (as [`Extractor::totals`]);
    /// [`crate::Error::Interrupted`] once [`super::ExtractOptions::interrupt`] is set.
    pub fn space_check(
        &self,
        name: impl AsRef<[u8]>,
        matcher: &Matcher,
        known: Option<&Totals>,
    ) -> Result<Option<Shortfall>> {
        // The destination, or the nearest directory above it that exists.
        let mut at = self.opts.destination.as_path();
        while !at.exists() {
            match at.parent() {
                Some(p) if !p.as_os_str().is_empty() => at = p,
                _ => {
                    at = std::path::Path::new(".");
                    break;
                }
            }
        }
        let Ok(st) = rustix::fs::statvfs(at) else {
            return Ok(None);
        };
        #[allow(clippy::unnecessary_cast)] // the field widths differ between targets
        let (frsize, bavail, files, favail) = (
            st.f_frsize.max(1) as u64,
            st.f_bavail as u64,
            st.f_files as u64,
            st.f_favail as u64,
        );
        let free_bytes = bavail.saturating_mul(frsize);
        // File systems without a fixed inode table (btrfs, ZFS …) report none at all.
        let free_inodes = (files > 0).then_some(favail);
        let totals = match known {
            Some(t) => *t,
            None => {
                let archive = self.repo.archive(name.as_ref())?;
                let meta = &archive.meta;
                if let (Some(size), Some(nfiles)) = (meta.size, meta.nfiles) {
                    let parts = self.opts.consider_part_files;
                    let size = size.saturating_add(if parts {
                        meta.size_parts.unwrap_or(0)
                    } else {
                        0
                    });
                    // Room for the whole archive (content, a block of rounding per file) and
                    // plenty of inodes: the selection fits, whatever it is.
                    let bytes = size.saturating_add(nfiles.saturating_mul(4096));
                    let inodes_plenty =
                        free_inodes.is_none_or(|f| f >= nfiles.saturating_mul(4) + 100_000);
                    if bytes <= free_bytes && inodes_plenty {
                        return Ok(None);
                    }
                }
                self.totals(name.as_ref(), matcher)?
            }
        };
        let short = Shortfall {
            need_bytes: totals.disk_bytes,
            free_bytes,
            need_inodes: totals.inodes,
            free_inodes,
        };
        let fits = short.need_bytes <= free_bytes && free_inodes.is_none_or(|f| totals.inodes <= f);
        Ok((!fits).then_some(short))
    }
}

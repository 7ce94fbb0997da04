//! `export-tar`: an archive (or part of it) as a tar stream, in POSIX PAX format.
//!
//! Each member carries what `borg export-tar` stores — path, type, permission bits, uid, gid,
//! user and group names, modification time, size, link target, device numbers — with hard
//! links as tar hard links (`LNKTYPE`) to the first member of their group, exactly where borg
//! puts them. PAX extended headers carry what ustar fields cannot hold (long or non-UTF-8
//! paths and link targets, long names, big ids or sizes) and the modification time to the
//! nanosecond, which borg's GNU-format tarball rounds down to the second.
//!
//! Content is fetched and verified in parallel ahead of the writer, in file order. A chunk
//! that fails its checks stops the export with an error naming the archive, the file and the
//! chunk: the tar stream then ends without its end-of-archive blocks, so no reader takes the
//! damaged file for a complete one.
//!
//! ```no_run
//! use oxiborg::export_tar::{export_tar, TarOptions};
//! use oxiborg::patterns::Matcher;
//! use oxiborg::{Location, OpenOptions, Repository};
//! # fn main() -> oxiborg::Result<()> {
//! let repo = Repository::open(&Location::parse("/srv/repo")?, &OpenOptions::from_env())?;
//! let mut out = std::fs::File::create("/tmp/home.tar").map_err(|e| oxiborg::Error::io("/tmp/home.tar", e))?;
//! let mut m = Matcher::new();
//! m.add_paths(&["home".to_string()])?;
//! export_tar(&repo, "host-2025-01-15", m, &TarOptions::default(), &mut out, &mut |_| {})?;
//! # Ok(()) }
//! ```

use crate::error::{Error, Result};
use crate::fetch::Opened;
use crate::format::item::{self, ChunkRef, Item};
use crate::patterns::Matcher;
use crate::progress::Progress;
use crate::repository::Repository;
use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;

/// How to export.
#[derive(Debug, Clone, Default)]
pub struct TarOptions {
    /// Drop this many leading path components (items with no more are left out).
    pub strip_components: usize,
    /// Also export checkpoint part files.
    pub consider_part_files: bool,
    /// Set to stop: the export ends with [`Error::Interrupted`] at the next item or chunk
    /// window (the stream then lacks its end blocks).
    pub interrupt: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Live counters for a progress display: members written (items) and content bytes
    /// written, as the export goes; no totals.
    pub progress: Option<std::sync::Arc<Progress>>,
}

/// Something that happened during an export.
#[derive(Debug)]
pub enum TarEvent<'a> {
    /// An item was written (borg's `--list` line: the path as archived).
    Item(&'a str),
    /// An item that cannot be represented in tar was left out (exit code 1).
    Warning(String),
}

/// What an export wrote.
#[derive(Debug, Clone, Default)]
pub struct TarSummary {
    /// Members written.
    pub members: u64,
    /// Content bytes written.
    pub bytes: u64,
    /// Items left out with a warning.
    pub warnings: u64,
}

/// Decoded content ahead of the writer, per file.
const WINDOW_BYTES: u64 = 64 << 20;
const WINDOW_CHUNKS: usize = 256;

/// Writes the items of archive `name` that `matcher` selects to `out` as a PAX tar stream
/// (with its end-of-archive blocks). `events` sees each member and each item left out;
/// [`TarOptions::progress`] counts the members and bytes written.
///
/// # Errors
///
/// When the archive does not exist or its item stream cannot be read; an [`Error::Integrity`]
/// naming the archive, the file and the chunk when a chunk is damaged or missing; an
/// [`Error::Io`] on `<tar output>` when writing to `out` fails; [`Error::Interrupted`] once
/// [`TarOptions::interrupt`] is set. The stream then lacks its end-of-archive blocks, so no
/// tar reader takes it for complete.
pub fn export_tar(
    repo: &Repository,
    name: impl AsRef<[u8]>,
    mut matcher: Matcher,
    opts: &TarOptions,
    out: &mut dyn Write,
    events: &mut dyn FnMut(TarEvent<'_>),
) -> Result<TarSummary> {
    let archive = repo.archive(name)?;
    let archive_name = archive.name();
    let partial = !matcher.is_empty() || opts.strip_components > 0;
    // Hard-link groups: the chunks of masters not exported (partial exports), and where an
    // exported member of each group is in the tar.
    let mut master_chunks: HashMap<Vec<u8>, Vec<ChunkRef>> = HashMap::new();
    let mut in_tar: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    let mut summary = TarSummary::default();
    let io = |e: std::io::Error| Error::io("<tar output>", e);
    let interrupted = || {
        opts.interrupt
            .as_ref()
            .is_some_and(|f| f.load(std::sync::atomic::Ordering::Relaxed))
    };
    archive.each_item(|it| {
        if interrupted() {
            return Err(Error::Interrupted);
        }
        if it.part.is_some() && !opts.consider_part_files {
            return Ok(());
        }
        let selected = matcher.matches(&it.path);
        let hardlinkable = matches!(
            it.file_type(),
            item::S_IFREG | item::S_IFIFO | item::S_IFCHR | item::S_IFBLK
        );
        if !selected {
            if partial && hardlinkable && it.hardlink_master.unwrap_or(true) && it.source.is_none()
            {
                master_chunks.insert(it.path.clone(), it.chunks.clone().unwrap_or_default());
            }
            return Ok(());
        }
        let strip = |p: &[u8]| -> Option<Vec<u8>> {
            let parts: Vec<&[u8]> = p.split(|b| *b == b'/').collect();
            (parts.len() > opts.strip_components)
                .then(|| parts[opts.strip_components..].join(&b'/'))
        };
        let path = match strip(&it.path) {
            Some(p) if !p.is_empty() => p,
            // Stripped away entirely: not matched, as borg counts it (a hard-link master's
            // content then goes to the first member exported).
            _ => {
                if hardlinkable && it.hardlink_master.unwrap_or(true) && it.source.is_none() {
                    master_chunks.insert(it.path.clone(), it.chunks.clone().unwrap_or_default());
                }
                return Ok(());
            }
        };
        let display = it.display_path();
        let mut content: Option<Vec<ChunkRef>> = None;
        let mut link: Option<Vec<u8>> = None;
        let kind = match it.file_type() {
            item::S_IFREG => match &it.source {
                Some(src) => {
                    if let Some(target) = in_tar.get(src) {
                        link = Some(target.clone());
                        b'1'
                    } else if let Some(chunks) = master_chunks.remove(src) {
                        content = Some(chunks);
                        in_tar.insert(src.clone(), path.clone());
                        b'0'
                    } else {
                        // The master was exported under its stripped name.
                        link = strip(src);
                        b'1'
                    }
                }
                None => {
                    content = Some(it.chunks.clone().unwrap_or_default());
                    if it.hardlink_master != Some(false) {
                        in_tar.insert(it.path.clone(), path.clone());
                    }
                    b'0'
                }
            },
            item::S_IFDIR => b'5',
            item::S_IFLNK => {
                link = Some(it.source.clone().unwrap_or_default());
                b'2'
            }
            item::S_IFBLK => b'4',
            item::S_IFCHR => b'3',
            item::S_IFIFO => b'6',
            other => {
                summary.warnings += 1;
                events(TarEvent::Warning(format!(
                    "{display}: unsupported file type {other:o} for tar export"
                )));
                return Ok(());
            }
        };
        let size: u64 = content
            .as_ref()
            .map_or(0, |c| c.iter().map(|c| c.size).sum());
        let header = member_header(&it, &path, kind, link.as_deref(), size);
        events(TarEvent::Item(&display));
        out.write_all(&header).map_err(io)?;
        if let Some(chunks) = content {
            write_content(repo, &archive_name, &display, &chunks, opts, out)?;
            let pad = (512 - size % 512) % 512;
            out.write_all(&[0u8; 512][..pad as usize]).map_err(io)?;
            summary.bytes = summary.bytes.saturating_add(size);
        }
        summary.members += 1;
        Progress::count(opts.progress.as_deref(), 1, 0);
        Ok(())
    })?;
    for inc in matcher.unmatched_includes() {
        summary.warnings += 1;
        events(TarEvent::Warning(format!(
            "Include pattern '{inc}' never matched."
        )));
    }
    out.write_all(&[0u8; 1024]).map_err(io)?;
    out.flush().map_err(io)?;
    Ok(summary)
}

/// Fetches and verifies the file's chunks in parallel, a window ahead, and writes them in order.
fn write_content(
    repo: &Repository,
    archive: &str,
    display: &str,
    chunks: &[ChunkRef],
    opts: &TarOptions,
    out: &mut dyn Write,
) -> Result<()> {
    let mut start = 0;
    while start < chunks.len() {
        let mut end = start;
        let mut bytes = 0u64;
        while end < chunks.len()
            && end - start < WINDOW_CHUNKS
            && (end == start || bytes.saturating_add(chunks[end].size) <= WINDOW_BYTES)
        {
            bytes = bytes.saturating_add(chunks[end].size);
            end += 1;
        }
        let window = &chunks[start..end];
        let slots: Vec<Mutex<Option<Opened>>> = window.iter().map(|_| Mutex::new(None)).collect();
        // (each chunk's size from the archive sizes its buffer: big chunks are read too)
        repo.open_chunks(window, WINDOW_BYTES, opts.interrupt.as_deref(), &|i, r| {
            *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
        })?;
        for (c, slot) in window.iter().zip(slots) {
            let damaged = |why: String| {
                Error::Integrity(format!(
                    "{display}: chunk {}: {why} (archive {archive}); the tar stream is incomplete",
                    hex::encode(c.id)
                ))
            };
            let data = match slot.into_inner().unwrap_or_else(|e| e.into_inner()) {
                Some(Opened::Plain(d)) => d,
                Some(Opened::Unreadable(e) | Opened::Damaged(e)) => {
                    return Err(damaged(e.located()))
                }
                None => return Err(damaged("not delivered".into())),
            };
            if data.len() as u64 != c.size {
                return Err(damaged(format!(
                    "{} bytes where the archive says {}",
                    data.len(),
                    c.size
                )));
            }
            out.write_all(&data)
                .map_err(|e| Error::io("<tar output>", e))?;
            Progress::count(opts.progress.as_deref(), 0, data.len() as u64);
        }
        start = end;
    }
    Ok(())
}

/// One PAX record: `"<len> key=value\n"`, where len counts the whole record.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// The fields of a ustar header block (byte strings already cut to their field sizes).
#[derive(Default)]
struct Ustar<'a> {
    name: &'a [u8],
    prefix: &'a [u8],
    typeflag: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: u64,
    link: &'a [u8],
    uname: &'a [u8],
    gname: &'a [u8],
    dev: (u32, u32),
}

impl Ustar<'_> {
    /// The 512-byte block.
    fn block(&self) -> [u8; 512] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::new(self.typeflag));
        h.set_mode(self.mode);
        h.set_uid(self.uid);
        h.set_gid(self.gid);
        h.set_size(self.size);
        h.set_mtime(self.mtime);
        if let Some(u) = h.as_ustar_mut() {
            u.name[..self.name.len()].copy_from_slice(self.name);
            u.prefix[..self.prefix.len()].copy_from_slice(self.prefix);
            u.linkname[..self.link.len()].copy_from_slice(self.link);
            u.uname[..self.uname.len()].copy_from_slice(self.uname);
            u.gname[..self.gname.len()].copy_from_slice(self.gname);
        }
        if matches!(self.typeflag, b'3' | b'4') {
            let _ = h.set_device_major(self.dev.0);
            let _ = h.set_device_minor(self.dev.1);
        }
        h.set_cksum();
        *h.as_bytes()
    }
}

/// Splits a path into ustar's prefix (155) and name (100), if it fits.
fn ustar_split(path: &[u8]) -> Option<(&[u8], &[u8])> {
    if path.len() <= 100 {
        return Some((&[], path));
    }
    (0..path.len())
        .rev()
        .filter(|&i| path[i] == b'/')
        .map(|i| (&path[..i], &path[i + 1..]))
        .find(|(p, n)| p.len() <= 155 && !n.is_empty() && n.len() <= 100)
}

/// The header block(s) of one member: a PAX extended header first when needed.
fn member_header(it: &Item, path: &[u8], typeflag: u8, link: Option<&[u8]>, size: u64) -> Vec<u8> {
    let mut path = path.to_vec();
    if typeflag == b'5' && !path.ends_with(b"/") {
        path.push(b'/');
    }
    let mut pax = Vec::new();
    let binary = std::str::from_utf8(&path).is_err()
        || link.is_some_and(|l| std::str::from_utf8(l).is_err());
    if binary {
        pax_record(&mut pax, "hdrcharset", b"BINARY");
    }
    let (prefix, name) = match ustar_split(&path) {
        Some(split) => split,
        None => {
            pax_record(&mut pax, "path", &path);
            (&[][..], &path[path.len().saturating_sub(100)..])
        }
    };
    let link = link.unwrap_or_default();
    let link_field: &[u8] = if link.len() > 100 {
        pax_record(&mut pax, "linkpath", link);
        &link[..100]
    } else {
        link
    };
    let mut id_field = |key: &str, v: u32| -> u64 {
        if u64::from(v) > 0o7777777 {
            pax_record(&mut pax, key, v.to_string().as_bytes());
            0
        } else {
            u64::from(v)
        }
    };
    let (uid, gid) = (id_field("uid", it.uid), id_field("gid", it.gid));
    let mut name_field = |key: &str, v: Option<&[u8]>| -> Vec<u8> {
        let v = v.unwrap_or_default();
        if v.len() > 31 {
            pax_record(&mut pax, key, v);
            Vec::new()
        } else {
            v.to_vec()
        }
    };
    let uname = name_field("uname", it.user.as_deref());
    let gname = name_field("gname", it.group.as_deref());
    let size_field = if size > 0o77777777777 {
        pax_record(&mut pax, "size", size.to_string().as_bytes());
        0
    } else {
        size
    };
    let secs = it.mtime.div_euclid(1_000_000_000);
    if it.mtime % 1_000_000_000 != 0 || secs < 0 {
        // a decimal number of seconds, the sign in front ("-0.5", not "-1.5" + a fraction)
        let abs = it.mtime.unsigned_abs();
        let frac = format!("{:09}", abs % 1_000_000_000);
        let frac = frac.trim_end_matches('0');
        let sign = if it.mtime < 0 { "-" } else { "" };
        let whole = abs / 1_000_000_000;
        let v = if frac.is_empty() {
            format!("{sign}{whole}")
        } else {
            format!("{sign}{whole}.{frac}")
        };
        pax_record(&mut pax, "mtime", v.as_bytes());
    }
    let rdev = it.rdev.unwrap_or(0);
    let dev = (
        rustix::fs::major(rdev as _) as u32,
        rustix::fs::minor(rdev as _) as u32,
    );
    let mut blocks = Vec::with_capacity(1536);
    if !pax.is_empty() {
        // The extended header's own name, as GNU tar and Python write it.
        let base = path
            .rsplit(|b| *b == b'/')
            .find(|c| !c.is_empty())
            .unwrap_or(b"x");
        let mut xname = b"./PaxHeaders/".to_vec();
        xname.extend_from_slice(&base[..base.len().min(80)]);
        let mtime = secs.max(0) as u64;
        blocks.extend_from_slice(
            &Ustar {
                name: &xname,
                typeflag: b'x',
                mode: 0o644,
                size: pax.len() as u64,
                mtime,
                ..Ustar::default()
            }
            .block(),
        );
        blocks.extend_from_slice(&pax);
        blocks.resize(blocks.len() + (512 - pax.len() % 512) % 512, 0);
    }
    blocks.extend_from_slice(
        &Ustar {
            name,
            prefix,
            typeflag,
            mode: it.mode & 0o7777,
            uid,
            gid,
            size: size_field,
            mtime: secs.max(0) as u64,
            link: link_field,
            uname: &uname,
            gname: &gname,
            dev,
        }
        .block(),
    );
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths_count_themselves() {
        for (k, v) in [
            ("path", &b"a"[..]),
            ("path", &[b'x'; 95][..]),
            ("mtime", b"1.5"),
        ] {
            let mut r = Vec::new();
            pax_record(&mut r, k, v);
            let text = String::from_utf8(r.clone()).unwrap();
            let n: usize = text.split(' ').next().unwrap().parse().unwrap();
            assert_eq!(n, r.len(), "{text:?}");
        }
    }

    #[test]
    fn ustar_split_prefers_the_name_field() {
        assert_eq!(ustar_split(b"short"), Some((&b""[..], &b"short"[..])));
        let long = [b"d".repeat(120), b"f".repeat(50)].join(&b'/');
        let (p, n) = ustar_split(&long).unwrap();
        assert_eq!((p.len(), n.len()), (120, 50));
        assert_eq!(ustar_split(&b"x".repeat(300)), None);
    }
}

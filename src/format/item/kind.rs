//! What kind of file-system object an [`Item`] is: the file type bits of its mode, and what
//! `source` means for it (a symlink's target, or a hard-link member's master).

use super::Item;

/// File type bits of `st_mode`.
pub const S_IFMT: u32 = 0o170000;
/// Regular file.
pub const S_IFREG: u32 = 0o100000;
/// Directory.
pub const S_IFDIR: u32 = 0o040000;
/// Symbolic link.
pub const S_IFLNK: u32 = 0o120000;
/// FIFO.
pub const S_IFIFO: u32 = 0o010000;
/// Character device.
pub const S_IFCHR: u32 = 0o020000;
/// Block device.
pub const S_IFBLK: u32 = 0o060000;
/// Socket.
pub const S_IFSOCK: u32 = 0o140000;

/// What kind of file-system object an [`Item`] is.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// A named pipe.
    Fifo,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A socket.
    Socket,
    /// A mode borg does not archive.
    Unknown,
}

impl ItemKind {
    /// The letter `ls -l` (and `borg list`) shows: `-`, `d`, `l`, `p`, `c`, `b`, `s`, `?`.
    pub fn letter(self) -> char {
        match self {
            ItemKind::File => '-',
            ItemKind::Directory => 'd',
            ItemKind::Symlink => 'l',
            ItemKind::Fifo => 'p',
            ItemKind::CharDevice => 'c',
            ItemKind::BlockDevice => 'b',
            ItemKind::Socket => 's',
            ItemKind::Unknown => '?',
        }
    }
}

impl std::fmt::Display for ItemKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ItemKind::File => "file",
            ItemKind::Directory => "dir",
            ItemKind::Symlink => "symlink",
            ItemKind::Fifo => "fifo",
            ItemKind::CharDevice => "chardev",
            ItemKind::BlockDevice => "blockdev",
            ItemKind::Socket => "socket",
            ItemKind::Unknown => "unknown",
        })
    }
}

impl Item {
    /// The file type bits.
    pub fn file_type(&self) -> u32 {
        self.mode & S_IFMT
    }
    /// What kind of file-system object this is.
    pub fn kind(&self) -> ItemKind {
        match self.file_type() {
            S_IFREG => ItemKind::File,
            S_IFDIR => ItemKind::Directory,
            S_IFLNK => ItemKind::Symlink,
            S_IFIFO => ItemKind::Fifo,
            S_IFCHR => ItemKind::CharDevice,
            S_IFBLK => ItemKind::BlockDevice,
            S_IFSOCK => ItemKind::Socket,
            _ => ItemKind::Unknown,
        }
    }
    /// The master's path, for a hard-link member (borg 1.x: the group's first item holds the
    /// content, the others name it).
    pub fn hardlink_master_path(&self) -> Option<&[u8]> {
        if self.is_hardlink_slave() {
            self.source.as_deref()
        } else {
            None
        }
    }
    /// A regular file?
    pub fn is_regular(&self) -> bool {
        self.file_type() == S_IFREG
    }
    /// A directory?
    pub fn is_dir(&self) -> bool {
        self.file_type() == S_IFDIR
    }
    /// A symbolic link?
    pub fn is_symlink(&self) -> bool {
        self.file_type() == S_IFLNK
    }
    /// A hard-link member pointing at its master (`source` on a non-symlink).
    pub fn is_hardlink_slave(&self) -> bool {
        !self.is_symlink() && self.source.is_some()
    }
    /// The symlink target, for symlinks.
    pub fn link_target(&self) -> Option<&[u8]> {
        if self.is_symlink() {
            self.source.as_deref()
        } else {
            None
        }
    }
}

//! The crate's error type: one variant per thing borg itself tells apart (so messages are borg's
//! words), grouped into [`ErrorKind`]s a caller can match on.
//!
//! Every variant names what failed and on which repository, archive, object or path.
//! ```
//! use oxiborg::{Error, ErrorKind};
//! let e = Error::from(std::io::Error::from(std::io::ErrorKind::NotFound));
//! assert_eq!(e.kind(), ErrorKind::Io);
//! ```

use std::path::PathBuf;

/// A result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure an [`Error`] is, for callers that decide what to do next.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A repository, archive, object or key that is not there.
    NotFound,
    /// Something that is not a (usable) borg repository.
    InvalidRepository,
    /// A format or feature this client does not read.
    Unsupported,
    /// Damaged data: a CRC, MAC, id, TAM or structure check failed, or decompression did.
    Integrity,
    /// A key file that does not fit or cannot be parsed.
    Key,
    /// No passphrase, or a wrong one.
    Passphrase,
    /// borg's security checks: a replayed manifest, a changed key type.
    Security,
    /// A writer holds the repository's lock.
    Locked,
    /// An I/O error on a local path.
    Io,
    /// A remote repository failed; the [`RemoteErrorKind`] says how.
    Remote(RemoteErrorKind),
    /// A bad argument: a location, pattern, placeholder or option.
    InvalidInput,
    /// A buffer could not be allocated.
    NoMemory,
    /// Stopped by the caller's interrupt flag.
    Interrupted,
    /// Anything else.
    Other,
}

/// How a remote repository failed.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RemoteErrorKind {
    /// The connection could not be made (name resolution, TCP, a command that does not run).
    Connect,
    /// The SSH layer refused: authentication, or the server's host key.
    Ssh,
    /// The session dropped or went silent: a new session may cure it.
    Dropped,
    /// The server broke the protocol: no second chance.
    Protocol,
    /// The server answered with an error of its own (e.g. a path it does not allow).
    Server,
}

impl RemoteErrorKind {
    /// Whether a new session may succeed where this one failed.
    pub fn is_retryable(self) -> bool {
        matches!(self, RemoteErrorKind::Dropped)
    }
}

/// Everything that can go wrong while reading a borg repository.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The repository location does not exist.
    #[error("Repository {0} does not exist.")]
    RepositoryDoesNotExist(String),
    /// The location exists but is not a borg 1.x repository.
    #[error("{location} is not a valid repository. Check repo config. [{reason}]")]
    #[allow(missing_docs)]
    InvalidRepository { location: String, reason: String },
    /// The repository `config` file cannot be used.
    #[error("{location} does not have a valid configuration. Check repo config [{reason}].")]
    #[allow(missing_docs)]
    InvalidRepositoryConfig { location: String, reason: String },
    /// A repository location string that cannot be parsed.
    #[error("Invalid location format: \"{0}\"")]
    InvalidLocation(String),
    /// A named archive is missing from the manifest; `nearest` are the most similar names it
    /// has (by edit distance), for the message.
    #[error("Archive {name} does not exist{hint}", hint = nearest_hint(.nearest))]
    ArchiveDoesNotExist {
        /// The name asked for.
        name: String,
        /// The nearest existing names, nearest first.
        nearest: Vec<String>,
    },
    /// No archive is there to choose from (a new repository, or a filter that selects none).
    #[error("{0}")]
    NoArchives(String),
    /// A writer holds the repository lock.
    #[error("Failed to create/acquire the lock {0} (timeout).")]
    LockTimeout(String),
    /// An object id is not in the repository.
    #[error("Object with key {id} not found in repository {location}.")]
    #[allow(missing_docs)]
    ObjectNotFound { id: String, location: String },
    /// Damaged data: CRC, MAC, id or structure checks failed.
    #[error("Data integrity error: {0}")]
    Integrity(String),
    /// An object's MAC does not verify: borg's words, which do not name the object; the
    /// object (`Chunk <id>`, `Manifest`) is in the field, and in [`Error::located`].
    #[error("MAC Authentication failed")]
    MacFailed(String),
    /// A compressed payload could not be decompressed.
    #[error("Decompression error: {0}")]
    Decompression(String),
    /// A buffer of the size the data needs could not be allocated (a chunk larger than the
    /// memory there is): the object it concerns is not read, the rest goes on.
    #[error("Not enough memory: {0}")]
    NoMemory(String),
    /// Stopped by the caller's interrupt flag (the CLI sets it on SIGINT, SIGTERM or SIGHUP).
    #[error("Interrupted")]
    Interrupted,
    /// The key type byte is not one borg 1.x writes.
    #[error(
        "Unsupported payload type {0}. A newer version is required to access this repository."
    )]
    UnsupportedPayload(u8),
    /// The manifest plaintext is from a newer borg.
    #[error(
        "Unsupported manifest envelope. A newer version is required to access this repository."
    )]
    UnsupportedManifest,
    /// The repository demands features this client does not have.
    #[error("Unsupported repository feature(s) {0}. A newer version of Borg is required to access this repository.")]
    MandatoryFeatureUnsupported(String),
    /// No key file for a keyfile-mode repository.
    #[error("No key file for repository {location} found in {dir}.")]
    #[allow(missing_docs)]
    KeyfileNotFound { location: String, dir: String },
    /// `BORG_KEY_FILE` names a key file for another repository.
    #[error("Mismatch between repository {location} and key file {file}.")]
    #[allow(missing_docs)]
    KeyfileMismatch { location: String, file: String },
    /// A key file or key blob that cannot be parsed.
    #[error("Invalid key file for repository {location} found in {file}: {reason}")]
    #[allow(missing_docs)]
    KeyfileInvalid {
        location: String,
        file: String,
        reason: String,
    },
    /// A repokey-mode repository without a key in its config.
    #[error("No key entry found in the config of repository {0}.")]
    RepoKeyNotFound(String),
    /// No passphrase could be obtained.
    #[error("Cannot acquire a passphrase: {0}")]
    NoPassphrase(String),
    /// `BORG_PASSCOMMAND` failed.
    #[error("Failed to retrieve a passphrase from the command \"{command}\": {reason}.")]
    #[allow(missing_docs)]
    PasscommandFailure { command: String, reason: String },
    /// The passphrase given is wrong: from the environment (`None`), or from the configuration
    /// setting named.
    #[error("{}", passphrase_wrong(.0.as_ref()))]
    PassphraseWrong(Option<crate::origin::Origin>),
    /// Three interactive attempts failed.
    #[error("Exceeded the maximum password retries.")]
    PasswordRetriesExceeded,
    /// The manifest has no TAM but the key requires one.
    #[error("Manifest is unauthenticated, but it is required for this repository. Is somebody attacking you?")]
    TamRequired,
    /// The manifest TAM does not verify.
    #[error("Data integrity error: Manifest authentication did not verify")]
    TamInvalid,
    /// A TAM of an unknown suite where one is required.
    #[error("Could not verify manifest: Unsupported suite {0}; a newer version is needed.")]
    TamUnsupportedSuite(String),
    /// An archive TAM is present but wrong.
    #[error("Data integrity error: Archive authentication did not verify (archive {0}); set BORG_WORKAROUNDS=ignore_invalid_archive_tam to read it anyway")]
    ArchiveTamInvalid(String),
    /// The manifest is older than one this client saw before (borg's security directory).
    #[error("Cache, or information obtained from the security directory is newer than repository - this is either an attack or unsafe (multiple repos with same ID)")]
    RepositoryReplay,
    /// Like [`Error::RepositoryReplay`], for an unencrypted repository.
    #[error("Cache is newer than repository - do you have multiple, independently updated repos with same ID?")]
    RepositoryIdNotUnique,
    /// The repository's key type differs from the one recorded at an earlier access.
    #[error("Repository encryption method changed since last access, refusing to continue")]
    EncryptionMethodMismatch,
    /// An I/O error, on the path named (empty when it is not known).
    #[error("{}", io_message(.path, .source))]
    Io {
        /// The path concerned (empty when unknown).
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A remote repository failed (see [`RemoteErrorKind`]).
    #[error("{message}")]
    Remote {
        /// How.
        kind: RemoteErrorKind,
        /// What happened, in words.
        message: String,
    },
    /// A bad argument: a location, pattern, placeholder, option or combination of them.
    #[error("{0}")]
    InvalidInput(String),
    /// Anything else, with its full message.
    #[error("{0}")]
    Other(String),
}

impl From<std::io::Error> for Error {
    fn from(source: std::io::Error) -> Self {
        Error::Io {
            path: PathBuf::new(),
            source,
        }
    }
}

fn io_message(path: &std::path::Path, source: &std::io::Error) -> String {
    if path.as_os_str().is_empty() {
        source.to_string()
    } else {
        format!("{}: {source}", path.display())
    }
}

/// The wrong-passphrase message: borg's for the environment, else one that names the setting
/// and the file to correct (the environment would not override it).
fn passphrase_wrong(origin: Option<&crate::origin::Origin>) -> String {
    use crate::origin::Origin;
    match origin {
        None => "Passphrase supplied in BORG_PASSPHRASE, by BORG_PASSCOMMAND, or via BORG_PASSPHRASE_FD is incorrect."
            .into(),
        Some(o @ Origin::Borgmatic { key, .. }) => {
            let (what, fix) = if *key == "encryption_passcommand" {
                ("printed by", "correct what the command prints, or the command in that file")
            } else {
                ("set as", "correct it in that file")
            };
            format!(
                "The passphrase {what} {o} is incorrect: {fix}. With a borgmatic configuration its \
                 passphrase setting is used; BORG_PASSPHRASE and BORG_PASSCOMMAND are not."
            )
        }
        Some(o) => format!("Passphrase supplied by {o} is incorrect."),
    }
}

/// `"; nearest names: a, b"` for [`Error::ArchiveDoesNotExist`], or nothing.
fn nearest_hint(nearest: &[String]) -> String {
    if nearest.is_empty() {
        String::new()
    } else {
        format!(" (nearest names: {})", nearest.join(", "))
    }
}

impl Error {
    /// [`Error::ArchiveDoesNotExist`] for `name`, with the names of `existing` nearest to it.
    pub fn archive_missing<'a>(name: &str, existing: impl IntoIterator<Item = &'a str>) -> Error {
        Error::ArchiveDoesNotExist {
            name: name.to_string(),
            nearest: nearest_names(name, existing, 3),
        }
    }

    /// The message with the object it concerns, where borg's own words leave it out.
    pub fn located(&self) -> String {
        match self {
            Error::MacFailed(what) => {
                format!("Data integrity error: {what}: MAC Authentication failed")
            }
            e => e.to_string(),
        }
    }

    /// Adds where damaged data was met (` (item metadata of archive X)` …) to an integrity or
    /// decompression error; other errors are returned as they are.
    pub fn in_context(self, context: &str) -> Error {
        match self {
            Error::Integrity(m) => Error::Integrity(format!("{m} {context}")),
            Error::MacFailed(what) => {
                Error::Integrity(format!("{what}: MAC Authentication failed {context}"))
            }
            Error::Decompression(m) => Error::Decompression(format!("{m} {context}")),
            other => other,
        }
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A remote error of `kind`.
    pub fn remote(kind: RemoteErrorKind, message: impl Into<String>) -> Self {
        Error::Remote {
            kind,
            message: message.into(),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::RepositoryDoesNotExist(_)
            | Error::ArchiveDoesNotExist { .. }
            | Error::ObjectNotFound { .. }
            | Error::KeyfileNotFound { .. }
            | Error::RepoKeyNotFound(_)
            | Error::NoArchives(_) => ErrorKind::NotFound,
            Error::InvalidRepository { .. } | Error::InvalidRepositoryConfig { .. } => {
                ErrorKind::InvalidRepository
            }
            Error::UnsupportedPayload(_)
            | Error::UnsupportedManifest
            | Error::MandatoryFeatureUnsupported(_) => ErrorKind::Unsupported,
            Error::Integrity(_)
            | Error::MacFailed(_)
            | Error::Decompression(_)
            | Error::TamRequired
            | Error::TamInvalid
            | Error::TamUnsupportedSuite(_)
            | Error::ArchiveTamInvalid(_) => ErrorKind::Integrity,
            Error::KeyfileMismatch { .. } | Error::KeyfileInvalid { .. } => ErrorKind::Key,
            Error::NoPassphrase(_)
            | Error::PasscommandFailure { .. }
            | Error::PassphraseWrong(_)
            | Error::PasswordRetriesExceeded => ErrorKind::Passphrase,
            Error::RepositoryReplay
            | Error::RepositoryIdNotUnique
            | Error::EncryptionMethodMismatch => ErrorKind::Security,
            Error::LockTimeout(_) => ErrorKind::Locked,
            Error::Io { .. } => ErrorKind::Io,
            Error::Remote { kind, .. } => ErrorKind::Remote(*kind),
            Error::InvalidLocation(_) | Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::NoMemory(_) => ErrorKind::NoMemory,
            Error::Interrupted => ErrorKind::Interrupted,
            Error::Other(_) => ErrorKind::Other,
        }
    }
}

/// Up to `n` of `names` nearest to `name`: by edit distance (on characters, a swap of two
/// neighbours counting as one edit), ties
/// broken by a shared prefix, then by name; names that share nothing with `name` (a distance as
/// long as both) are left out.
pub fn nearest_names<'a>(
    name: &str,
    names: impl IntoIterator<Item = &'a str>,
    n: usize,
) -> Vec<String> {
    // (long names are compared by their first 256 characters: bounded work per name)
    let want: Vec<char> = name.chars().take(256).collect();
    let mut scored: Vec<(usize, std::cmp::Reverse<usize>, &str)> = names
        .into_iter()
        .filter_map(|cand| {
            let c: Vec<char> = cand.chars().take(256).collect();
            let d = edit_distance(&want, &c);
            let prefix = want.iter().zip(&c).take_while(|(a, b)| a == b).count();
            (d < want.len().max(c.len())).then_some((d, std::cmp::Reverse(prefix), cand))
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.2 == b.2);
    scored
        .into_iter()
        .take(n)
        .map(|(_, _, c)| c.to_string())
        .collect()
}

/// Edits (insert, delete, replace, or swap two neighbours: the usual typos) from `a` to `b`:
/// the optimal string alignment distance.
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let w = b.len() + 1;
    let mut rows = vec![vec![0usize; w]; 3];
    rows[2] = (0..w).collect();
    for i in 1..=a.len() {
        rows.rotate_left(1);
        // rows[0]: two rows up, rows[1]: the row above, rows[2]: this row
        rows[2][0] = i;
        for j in 1..w {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[1][j - 1] + cost)
                .min(rows[1][j] + 1)
                .min(rows[2][j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[0][j - 2] + 1);
            }
            rows[2][j] = d;
        }
    }
    rows[2][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_names_by_edit_distance() {
        let names = [
            "host-2025-01-14",
            "host-2025-01-15",
            "host-2025-01-16",
            "other-2024-12-31",
            "zzz",
        ];
        assert_eq!(
            nearest_names("host-2025-01-51", names, 3),
            ["host-2025-01-15", "host-2025-01-14", "host-2025-01-16"]
        );
        assert_eq!(
            nearest_names("hots-2025-01-16", names, 1),
            ["host-2025-01-16"]
        );
        assert!(
            nearest_names("x", ["abc"], 3).is_empty(),
            "nothing in common"
        );
        let e = Error::archive_missing("host-2025-1-15", names);
        assert_eq!(
            e.to_string(),
            "Archive host-2025-1-15 does not exist (nearest names: host-2025-01-15, \
             host-2025-01-14, host-2025-01-16)"
        );
        assert_eq!(
            Error::archive_missing("a", []).to_string(),
            "Archive a does not exist"
        );
    }
}

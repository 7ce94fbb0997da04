//! borg's exit codes and message ids for the library's errors (the CLI's concern, not the
//! library's): legacy mode gives 2 for every error; with `BORG_EXIT_CODES=modern` each error
//! gets the code borg 1.4 gives it.

use oxiborg::error::Error;

/// The exit code borg 1.4 uses for `e` with `BORG_EXIT_CODES=modern`.
pub(crate) fn modern_exit_code(e: &Error) -> i32 {
    match e {
        Error::RepositoryDoesNotExist(_) => 13,
        Error::InvalidRepository { .. } => 15,
        Error::InvalidRepositoryConfig { .. } => 16,
        Error::ArchiveDoesNotExist { .. } => 31,
        Error::LockTimeout(_) => 73,
        Error::ObjectNotFound { .. } => 17,
        Error::Integrity(_) | Error::MacFailed(_) => 90,
        Error::Decompression(_) => 92,
        Error::UnsupportedPayload(_) => 48,
        Error::UnsupportedManifest => 27,
        Error::MandatoryFeatureUnsupported(_) => 25,
        Error::KeyfileNotFound { .. } => 42,
        Error::KeyfileMismatch { .. } => 41,
        Error::KeyfileInvalid { .. } => 40,
        Error::RepoKeyNotFound(_) => 44,
        Error::NoPassphrase(_) => 50,
        Error::PasscommandFailure { .. } => 51,
        Error::PassphraseWrong(_) => 52,
        Error::PasswordRetriesExceeded => 53,
        Error::TamRequired => 98,
        Error::TamInvalid => 97,
        Error::TamUnsupportedSuite(_) => 99,
        Error::ArchiveTamInvalid(_) => 95,
        Error::EncryptionMethodMismatch => 61,
        Error::RepositoryIdNotUnique => 63,
        Error::RepositoryReplay => 64,
        // (the CLI exits with 128 + the signal's number instead)
        Error::Interrupted => 130,
        _ => 2,
    }
}

/// borg's name for `e` (the `msgid` of its `--log-json` message), where it has one.
pub(crate) fn msgid(e: &Error) -> Option<&'static str> {
    Some(match e {
        Error::RepositoryDoesNotExist(_) => "Repository.DoesNotExist",
        Error::InvalidRepository { .. } => "Repository.InvalidRepository",
        Error::InvalidRepositoryConfig { .. } => "Repository.InvalidRepositoryConfig",
        Error::ArchiveDoesNotExist { .. } => "Archive.DoesNotExist",
        Error::LockTimeout(_) => "LockTimeout",
        Error::ObjectNotFound { .. } => "Repository.ObjectNotFound",
        Error::Integrity(_) | Error::MacFailed(_) => "IntegrityError",
        Error::UnsupportedPayload(_) => "UnsupportedPayloadError",
        Error::UnsupportedManifest => "UnsupportedManifestError",
        Error::MandatoryFeatureUnsupported(_) => "MandatoryFeatureUnsupported",
        Error::KeyfileNotFound { .. } => "KeyfileNotFoundError",
        Error::KeyfileMismatch { .. } => "KeyfileMismatchError",
        Error::KeyfileInvalid { .. } => "KeyfileInvalidError",
        Error::RepoKeyNotFound(_) => "RepoKeyNotFoundError",
        Error::NoPassphrase(_) => "NoPassphraseFailure",
        Error::PasscommandFailure { .. } => "PasscommandFailure",
        Error::PassphraseWrong(_) => "PassphraseWrong",
        Error::PasswordRetriesExceeded => "PasswordRetriesExceeded",
        Error::TamRequired => "TAMRequiredError",
        Error::TamInvalid => "TAMInvalid",
        Error::TamUnsupportedSuite(_) => "TAMUnsupportedSuiteError",
        Error::ArchiveTamInvalid(_) => "ArchiveTAMInvalid",
        Error::EncryptionMethodMismatch => "Cache.EncryptionMethodMismatch",
        Error::RepositoryIdNotUnique => "Cache.RepositoryIDNotUnique",
        Error::RepositoryReplay => "Cache.RepositoryReplay",
        _ => return None,
    })
}

/// The exit code for `e`: 2 in borg's legacy mode, else [`modern_exit_code`].
pub(crate) fn exit_code(e: &Error, modern: bool) -> i32 {
    if modern {
        modern_exit_code(e)
    } else {
        2
    }
}

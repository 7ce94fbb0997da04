//! borg 2 key blobs: finding them, and unlocking them with the passphrase.
//!
//! A borg 2.0.0b25 key blob — a key file in the keys directory, or a `keys/*` object of the
//! repository (a "repokey"); both have the same text — is
//!
//! ```text
//! BORG_KEY <repository id, hex>\n
//! base64 (wrapped) of the msgpack map {version: 1, algorithm: "argon2 chacha20-poly1305",
//!     salt, argon2_type, argon2_time_cost, argon2_memory_cost, argon2_parallelism,
//!     data: tag(16) ‖ ciphertext, label?}
//! ```
//!
//! The key-encryption key is Argon2 (version 0x13, 32 bytes) of the passphrase with the blob's
//! salt and parameters; the ciphertext opens with ChaCha20-Poly1305 (zero nonce, no associated
//! data) to the key map `{version: 2, repository_id, crypt_key (64), id_key (32), chunk_seed}`.
//!
//! A repository may have several blobs (`borg key add`: the same key material under another
//! passphrase, key files and repokeys mixed): the passphrase is tried against every candidate in
//! order — key files first, then the repository's — and the first that opens wins, as borg does.
//! The Argon2 parameters come from the blob, which (for a repokey) comes from the repository:
//! they are honoured, within bounds that keep a hostile blob from taking hours or all memory.

use super::blob::{with_passphrase, KeyBlob};
use super::passphrase::PassphraseSources;
use super::seal::seal_key_plain;
use super::{Key, KeyType};
use crate::error::{Error, Result};
use crate::id::ObjectId;
use chacha20poly1305::aead::generic_array::GenericArray;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use serde::Deserialize;
use serde_bytes::ByteBuf;
use std::path::{Path, PathBuf};
use zeroize::{Zeroize, Zeroizing};

/// The only key-blob algorithm borg 2 writes.
pub(super) const ALGORITHM: &str = "argon2 chacha20-poly1305";
/// The most Argon2 memory a blob may ask for, in KiB (1 GiB; borg writes 64 MiB).
pub const MAX_ARGON2_MEMORY_KIB: u32 = 1 << 20;
/// The most Argon2 work a blob may ask for: memory (KiB) × passes (16 GiB; borg writes
/// 64 MiB × 3, so this is about 85 times borg's).
pub const MAX_ARGON2_WORK: u64 = 1 << 24;
/// The most Argon2 lanes a blob may ask for (borg writes 4).
pub const MAX_ARGON2_LANES: u32 = 64;

/// The armoured envelope of a borg 2 key ("EncryptedKey").
#[derive(Deserialize)]
struct EncryptedKey {
    version: i64,
    #[serde(default)]
    algorithm: Option<ByteBuf>,
    salt: ByteBuf,
    #[serde(default)]
    argon2_type: Option<ByteBuf>,
    #[serde(default)]
    argon2_time_cost: Option<u32>,
    #[serde(default)]
    argon2_memory_cost: Option<u32>,
    #[serde(default)]
    argon2_parallelism: Option<u32>,
    data: ByteBuf,
}

/// A parsed envelope, ready to try passphrases on.
struct Envelope {
    algorithm: argon2::Algorithm,
    params: argon2::Params,
    salt: Vec<u8>,
    data: Vec<u8>,
}

/// The decrypted key map (`crypt_key`, or a legacy version 1 key's `enc_key ‖ enc_hmac_key`).
#[derive(Deserialize)]
struct PlainKey {
    version: i64,
    repository_id: ByteBuf,
    #[serde(default)]
    crypt_key: Option<ByteBuf>,
    #[serde(default)]
    enc_key: Option<ByteBuf>,
    #[serde(default)]
    enc_hmac_key: Option<ByteBuf>,
    id_key: ByteBuf,
    #[serde(default)]
    chunk_seed: Option<i64>,
}

impl Drop for PlainKey {
    fn drop(&mut self) {
        for b in [
            &mut self.crypt_key,
            &mut self.enc_key,
            &mut self.enc_hmac_key,
        ]
        .into_iter()
        .flatten()
        {
            b.as_mut_slice().zeroize();
        }
        self.id_key.as_mut_slice().zeroize();
    }
}

/// The header line of a key blob of the repository `repo_id`.
pub(super) fn header(repo_id: &ObjectId) -> String {
    format!("BORG_KEY {}", hex::encode(repo_id))
}

/// The candidate key files of a borg 2 repository: `key_file` (`BORG_KEY_FILE`) alone when
/// given, else every file in `keys_dir` whose bytes start with `BORG_KEY <hex repo id>`, in the
/// order of their names. The repository's own `keys/*` blobs are the caller's to add after these
/// ([`borg2_repokey_blob`]). Unreadable or non-UTF-8 files in `keys_dir` are skipped, as borg
/// skips them; a missing `keys_dir` has no candidates.
///
/// # Errors
///
/// `key_file` unreadable ([`Error::KeyfileInvalid`]), not a key file ([`Error::KeyfileInvalid`])
/// or one of another repository ([`Error::KeyfileMismatch`]); these name the repository by its id.
pub(crate) fn borg2_key_files(
    repo_id: &ObjectId,
    key_file: Option<&Path>,
    keys_dir: Option<&Path>,
) -> Result<Vec<KeyBlob>> {
    let header = header(repo_id);
    let location = hex::encode(repo_id);
    if let Some(file) = key_file {
        let file = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
        let invalid = |reason: String| Error::KeyfileInvalid {
            location: location.clone(),
            file: file.display().to_string(),
            reason,
        };
        let bytes = std::fs::read(&file).map_err(|e| invalid(format!("cannot read it: {e}")))?;
        if !bytes.starts_with(b"BORG_KEY ") {
            return Err(invalid("it does not start with BORG_KEY".into()));
        }
        if !bytes.starts_with(header.as_bytes()) {
            return Err(Error::KeyfileMismatch {
                location,
                file: file.display().to_string(),
            });
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            drop(Zeroizing::new(e.into_bytes()));
            invalid("it is not UTF-8 text".into())
        })?;
        return Ok(vec![file_blob(text, file)]);
    }
    let Some(paths) = keys_dir.and_then(|dir| super::blob::key_files_starting_with(dir, &header))
    else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for path in paths {
        match std::fs::read(&path).map(String::from_utf8) {
            Ok(Ok(text)) => out.push(file_blob(text, path)),
            Ok(Err(e)) => {
                drop(Zeroizing::new(e.into_bytes()));
                log::warn!(target: "borg.crypto.key", "Key file {} is not UTF-8 text: skipped", path.display());
            }
            Err(e) => {
                log::warn!(target: "borg.crypto.key", "Key file {}: {e}: skipped", path.display());
            }
        }
    }
    Ok(out)
}

fn file_blob(text: String, file: PathBuf) -> KeyBlob {
    KeyBlob {
        text: Zeroizing::new(text),
        origin: file.display().to_string(),
        file: Some(file),
    }
}

/// A repository's `keys/<name>` object as a candidate for [`unlock_borg2`]; `None` when it is
/// not UTF-8 text (borg cannot read such a blob either).
pub(crate) fn borg2_repokey_blob(name: &str, data: Vec<u8>) -> Option<KeyBlob> {
    match String::from_utf8(data) {
        Ok(text) => Some(KeyBlob {
            text: Zeroizing::new(text),
            origin: format!("repository keys/{name}"),
            file: None,
        }),
        Err(e) => {
            drop(Zeroizing::new(e.into_bytes()));
            None
        }
    }
}

/// Parses a candidate: the `BORG_KEY` line (when there is one: it must name `repo_id`), the
/// base64 body and the msgpack envelope, with its Argon2 parameters checked against the bounds.
fn parse_envelope(blob: &KeyBlob, repo_id: &ObjectId, location: &str) -> Result<Envelope> {
    let invalid = |reason: String| Error::KeyfileInvalid {
        location: location.into(),
        file: blob.origin.clone(),
        reason,
    };
    let text: &str = &blob.text;
    let body = match text.trim_start().strip_prefix("BORG_KEY ") {
        Some(rest) => {
            let (id, body) = rest.split_once('\n').unwrap_or((rest, ""));
            if id.trim() != hex::encode(repo_id) {
                return Err(Error::KeyfileMismatch {
                    location: location.into(),
                    file: blob.origin.clone(),
                });
            }
            body
        }
        None => text,
    };
    let env: EncryptedKey = super::blob::decode_key_text(body, &invalid)?;
    if env.version != 1 {
        return Err(invalid(format!(
            "unsupported key envelope version {}",
            env.version
        )));
    }
    let alg = env.algorithm.as_ref().map_or(&[][..], |a| a.as_slice());
    if alg != ALGORITHM.as_bytes() {
        return Err(invalid(format!(
            "unsupported key algorithm {:?} (borg 2 keys are {ALGORITHM:?})",
            String::from_utf8_lossy(alg)
        )));
    }
    let algorithm = match env.argon2_type.as_ref().map(|t| t.as_slice()) {
        Some(b"id") => argon2::Algorithm::Argon2id,
        Some(b"i") => argon2::Algorithm::Argon2i,
        Some(b"d") => argon2::Algorithm::Argon2d,
        other => {
            return Err(invalid(format!(
                "invalid argon2 type {:?}",
                other.map(String::from_utf8_lossy)
            )))
        }
    };
    let (Some(t), Some(m), Some(p)) = (
        env.argon2_time_cost,
        env.argon2_memory_cost,
        env.argon2_parallelism,
    ) else {
        return Err(invalid("the argon2 parameters are missing".into()));
    };
    if m > MAX_ARGON2_MEMORY_KIB
        || u64::from(m) * u64::from(t) > MAX_ARGON2_WORK
        || p > MAX_ARGON2_LANES
    {
        return Err(invalid(format!(
            "key derivation asks for argon2 time cost {t}, memory {m} KiB, parallelism {p}: more \
             than oxiborg accepts ({MAX_ARGON2_MEMORY_KIB} KiB, {MAX_ARGON2_WORK} KiB × passes, \
             {MAX_ARGON2_LANES} lanes; borg writes 3, 65536 KiB, 4)"
        )));
    }
    let params = argon2::Params::new(m, t, p, Some(32))
        .map_err(|e| invalid(format!("argon2 parameters: {e}")))?;
    if env.salt.len() < argon2::MIN_SALT_LEN {
        return Err(invalid(format!("argon2 salt of {} bytes", env.salt.len())));
    }
    if env.data.len() < 16 {
        return Err(invalid("key data shorter than its tag".into()));
    }
    Ok(Envelope {
        algorithm,
        params,
        salt: env.salt.to_vec(),
        data: env.data.to_vec(),
    })
}

/// Decrypts an envelope with a passphrase; `Ok(None)` means the passphrase is wrong.
fn try_passphrase(env: &Envelope, pass: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let argon = argon2::Argon2::new(env.algorithm, argon2::Version::V0x13, env.params.clone());
    let blocks = env.params.block_count();
    let mut memory: Vec<argon2::Block> = Vec::new();
    memory.try_reserve_exact(blocks).map_err(|_| {
        Error::NoMemory(format!(
            "cannot allocate {} KiB for the key's argon2 derivation",
            blocks
        ))
    })?;
    memory.resize(blocks, argon2::Block::default());
    let mut kek = Zeroizing::new([0u8; 32]);
    let derived =
        argon.hash_password_into_with_memory(pass.as_bytes(), &env.salt, &mut *kek, &mut memory);
    memory.iter_mut().for_each(Zeroize::zeroize);
    derived.map_err(|e| Error::Other(format!("argon2: {e}")))?;
    let (tag, ct) = env.data.split_at(16);
    let mut plain = Zeroizing::new(ct.to_vec());
    let opened = chacha20poly1305::ChaCha20Poly1305::new(GenericArray::from_slice(&*kek))
        .decrypt_in_place_detached(
            GenericArray::from_slice(&[0u8; 12]),
            b"",
            &mut plain,
            GenericArray::from_slice(tag),
        );
    Ok(opened.is_ok().then_some(plain))
}

/// The key from a decrypted key map.
fn key_from_plain(
    ktype: KeyType,
    plain: &[u8],
    repo_id: &ObjectId,
    blob: &KeyBlob,
    location: &str,
) -> Result<Key> {
    let invalid = |reason: String| Error::KeyfileInvalid {
        location: location.into(),
        file: blob.origin.clone(),
        reason,
    };
    let pk: PlainKey = rmp_serde::from_slice(plain).map_err(|e| invalid(format!("key: {e}")))?;
    if pk.version != 1 && pk.version != 2 {
        return Err(invalid(format!("unsupported key version {}", pk.version)));
    }
    if pk.repository_id.as_slice() != repo_id {
        return Err(invalid(format!(
            "the key is for repository {}",
            hex::encode(&pk.repository_id)
        )));
    }
    let crypt_key = match (&pk.crypt_key, &pk.enc_key, &pk.enc_hmac_key) {
        (Some(c), _, _) => Zeroizing::new(c.to_vec()),
        (None, Some(e), Some(h)) => Zeroizing::new([e.as_slice(), h.as_slice()].concat()),
        _ => return Err(invalid("the key has no crypt_key".into())),
    };
    let seed = pk.chunk_seed.unwrap_or(0);
    let chunk_seed = i32::try_from(seed)
        .map_err(|_| invalid(format!("chunk_seed {seed} is not a 32-bit integer")))?;
    let origin = match &blob.file {
        Some(f) => f.display().to_string(),
        None => "repository".to_string(),
    };
    Key::from_borg2(ktype, &crypt_key, &pk.id_key, repo_id, chunk_seed, origin)
        .map_err(|e| invalid(e.to_string()))
}

/// Unlocks a borg 2 key: the passphrase (from `sources`, in borg's order and with its prompt
/// and retries, as [`super::blob::unlock`] does) is tried against every candidate in order, and
/// the first that opens wins. Candidates that cannot be parsed are skipped with a warning (as
/// borg skips a corrupted key); a candidate that opens but holds a bad key is an error when no
/// other opens. The key's origin is its key file, or "repository" for a repokey.
///
/// # Errors
///
/// No candidates: [`Error::KeyfileNotFound`]. None parses: the first one's error. Then as
/// [`super::blob::unlock`]: [`Error::PassphraseWrong`], [`Error::PasswordRetriesExceeded`],
/// [`Error::NoPassphrase`], and [`Error::KeyfileInvalid`] for a key that opens but is bad.
pub(crate) fn unlock_borg2(
    ktype: KeyType,
    repo_id: &ObjectId,
    candidates: &[KeyBlob],
    location: &str,
    sources: &PassphraseSources<'_>,
) -> Result<Key> {
    if !ktype.is_borg2() {
        return Err(Error::Other(format!(
            "{ktype:?} is not a borg 2 key type: its key is not a borg 2 key blob"
        )));
    }
    if candidates.is_empty() {
        return Err(Error::KeyfileNotFound {
            location: location.into(),
            dir: "the key files directory (BORG_KEYS_DIR) or the repository's keys/".into(),
        });
    }
    let mut parsed = Vec::new();
    let mut first_error = None;
    for blob in candidates {
        match parse_envelope(blob, repo_id, location) {
            Ok(env) => parsed.push((blob, env)),
            Err(e) => {
                log::warn!(target: "borg.crypto.key", "Borg key {} skipped: {e}", blob.origin);
                first_error.get_or_insert(e);
            }
        }
    }
    if parsed.is_empty() {
        return Err(first_error.unwrap_or(Error::KeyfileNotFound {
            location: location.into(),
            dir: "the key files directory (BORG_KEYS_DIR) or the repository's keys/".into(),
        }));
    }
    let for_what = candidates[0]
        .file
        .as_ref()
        .map(|f| f.display().to_string())
        .unwrap_or_else(|| location.to_string());
    with_passphrase(sources, &for_what, true, |pass| {
        let mut bad_key = None;
        for (blob, env) in &parsed {
            if let Some(plain) = try_passphrase(env, pass)? {
                match key_from_plain(ktype, &plain, repo_id, blob, location) {
                    Ok(key) => return Ok(Some(key)),
                    Err(e) => {
                        log::warn!(target: "borg.crypto.key", "Borg key {} skipped: {e}", blob.origin);
                        bad_key.get_or_insert(e);
                    }
                }
            }
        }
        bad_key.map_or(Ok(None), Err)
    })
}

/// Parses key blob text and, when its Argon2 costs are tiny, unlocks it with the passphrase
/// `fuzz`; also seals the text itself as a key map under tiny costs and unlocks that, so the
/// key-map decoder is reached: the `key_blob2` fuzz target.
pub(crate) fn fuzz_key_text(data: &[u8]) {
    let repo_id = [0x11; 32];
    let text = String::from_utf8_lossy(data).into_owned();
    let blob = KeyBlob {
        text: Zeroizing::new(text),
        origin: "fuzz".into(),
        file: None,
    };
    let pass = crate::Passphrase::new("fuzz");
    let sources = PassphraseSources {
        given: Some(&pass),
        ..Default::default()
    };
    if let Ok(env) = parse_envelope(&blob, &repo_id, "fuzz") {
        if u64::from(env.params.m_cost()) * u64::from(env.params.t_cost()) <= 64 {
            let _ = unlock_borg2(
                KeyType::ChaCha20Poly1305Blake3,
                &repo_id,
                &[blob],
                "fuzz",
                &sources,
            );
        }
    }
    let sealed = KeyBlob {
        text: Zeroizing::new(seal_key_plain(data, "fuzz", (1, 8, 1), [3; 16])),
        origin: "fuzz".into(),
        file: None,
    };
    let _ = unlock_borg2(
        KeyType::AuthenticatedSha256,
        &repo_id,
        &[sealed],
        "fuzz",
        &sources,
    );
}

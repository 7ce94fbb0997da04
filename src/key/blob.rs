//! Key blobs: finding them (repository config or key file), decrypting them with the
//! passphrase (PBKDF2-HMAC-SHA256 → AES-256-CTR → HMAC-SHA256 check), and borg's directories.

use super::passphrase::{self, PassphraseSources};
use super::{aes_ctr_zero_iv, hmac_sha256, Key, KeyType, Secrets};
use crate::error::{Error, Result};
use base64::Engine;
use serde::Deserialize;
use serde_bytes::ByteBuf;
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// borg's configuration directories (`BORG_BASE_DIR`, `XDG_CONFIG_HOME`, … as borg reads them).
#[derive(Debug, Clone)]
pub struct BorgDirs {
    /// `BORG_CONFIG_DIR` or `<config home>/borg`.
    pub config: PathBuf,
    /// `BORG_KEYS_DIR` or `<config>/keys`.
    pub keys: PathBuf,
    /// `BORG_SECURITY_DIR` or `<config>/security`.
    pub security: PathBuf,
    /// borg 2's security directory: `BORG_SECURITY_DIR`, else `<data dir>/security` with the
    /// data dir `BORG_DATA_DIR`, else `<data home>/borg` (`BORG_BASE_DIR/.local/share`,
    /// `XDG_DATA_HOME` or `~/.local/share`).
    pub borg2_security: PathBuf,
}

impl BorgDirs {
    /// The directories from the environment.
    pub fn from_env() -> BorgDirs {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let base_dir = var("BORG_BASE_DIR");
        let base = base_dir.clone().unwrap_or_else(BorgDirs::home);
        let config = var("BORG_CONFIG_DIR").unwrap_or_else(|| {
            let home = match (&base_dir, var("XDG_CONFIG_HOME")) {
                (None, Some(x)) => x,
                _ => base.join(".config"),
            };
            home.join("borg")
        });
        let data = var("BORG_DATA_DIR").unwrap_or_else(|| {
            let home = match (&base_dir, var("XDG_DATA_HOME")) {
                (None, Some(x)) => x,
                _ => base.join(".local").join("share"),
            };
            home.join("borg")
        });
        BorgDirs {
            keys: var("BORG_KEYS_DIR").unwrap_or_else(|| config.join("keys")),
            security: var("BORG_SECURITY_DIR").unwrap_or_else(|| config.join("security")),
            borg2_security: var("BORG_SECURITY_DIR").unwrap_or_else(|| data.join("security")),
            config,
        }
    }
}

impl BorgDirs {
    /// The user's home: `HOME`, else the passwd entry.
    pub fn home() -> PathBuf {
        std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(home_from_passwd)
    }
}

fn home_from_passwd() -> PathBuf {
    crate::users::current_user()
        .map(|u| u.home)
        .filter(|h| !h.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// The armoured envelope of a key (borg's "encrypted key").
#[derive(Deserialize)]
struct EncryptedKey {
    version: i64,
    #[serde(default)]
    algorithm: Option<ByteBuf>,
    salt: ByteBuf,
    iterations: u32,
    hash: ByteBuf,
    data: ByteBuf,
}

/// The decrypted key map.
#[derive(Deserialize)]
struct PlainKey {
    version: i64,
    #[serde(default)]
    repository_id: Option<ByteBuf>,
    enc_key: ByteBuf,
    enc_hmac_key: ByteBuf,
    id_key: ByteBuf,
    #[serde(default)]
    tam_required: Option<bool>,
}

impl Drop for PlainKey {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.enc_key.as_mut_slice().zeroize();
        self.enc_hmac_key.as_mut_slice().zeroize();
        self.id_key.as_mut_slice().zeroize();
    }
}

/// A key blob (base64 text) and where it was found.
pub struct KeyBlob {
    /// The base64 text (whitespace allowed).
    pub text: Zeroizing<String>,
    /// "repository config" or the key file path, for messages.
    pub origin: String,
    /// The key file, if the blob came from one.
    pub file: Option<PathBuf>,
}

/// Finds the key file of a keyfile-mode repository: `key_file` (`BORG_KEY_FILE`) or the file in
/// `keys_dir` whose header names `repo_id`.
pub fn find_key_file(
    repo_id: &[u8; 32],
    location: &str,
    key_file: Option<&Path>,
    keys_dir: Option<&Path>,
) -> Result<KeyBlob> {
    let header = format!("BORG_KEY {}", hex::encode(repo_id));
    if let Some(file) = key_file {
        let file = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
        let text = std::fs::read_to_string(&file).map_err(|e| Error::KeyfileInvalid {
            location: location.into(),
            file: file.display().to_string(),
            reason: format!("cannot read it: {e}"),
        })?;
        if !text.starts_with("BORG_KEY ") {
            return Err(Error::KeyfileInvalid {
                location: location.into(),
                file: file.display().to_string(),
                reason: "it does not start with BORG_KEY".into(),
            });
        }
        if !text.starts_with(&header) {
            return Err(Error::KeyfileMismatch {
                location: location.into(),
                file: file.display().to_string(),
            });
        }
        return Ok(blob_from_file_text(text, &header, &file));
    }
    let not_found = || Error::KeyfileNotFound {
        location: location.into(),
        dir: keys_dir.map_or_else(
            || "no keys directory (OpenOptions::keys_dir or key_file)".into(),
            |d| d.display().to_string(),
        ),
    };
    let keys_dir = keys_dir.ok_or_else(not_found)?;
    let paths = key_files_starting_with(keys_dir, &header).ok_or_else(not_found)?;
    let path = paths.into_iter().next().ok_or_else(not_found)?;
    let text = std::fs::read_to_string(&path).map_err(|e| Error::KeyfileInvalid {
        location: location.into(),
        file: path.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(blob_from_file_text(text, &header, &path))
}

/// The files in `dir` whose bytes start with `header` (`BORG_KEY <hex repository id>`), in
/// name order; `None` when `dir` cannot be read. Both borg 1.x and borg 2 find key files so.
pub(super) fn key_files_starting_with(dir: &Path, header: &str) -> Option<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    paths.retain(|path| {
        let mut head = vec![0u8; header.len()];
        path.is_file()
            && std::fs::File::open(path)
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
                .is_ok()
            && head == header.as_bytes()
    });
    Some(paths)
}

impl std::fmt::Debug for KeyBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyBlob")
            .field("origin", &self.origin)
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

fn blob_from_file_text(text: String, header: &str, file: &Path) -> KeyBlob {
    let body = text[header.len()..].to_string();
    drop(Zeroizing::new(text));
    KeyBlob {
        text: Zeroizing::new(body),
        origin: file.display().to_string(),
        file: Some(file.to_path_buf()),
    }
}

/// A key blob's body: base64 (whitespace ignored) of a msgpack envelope, decoded into `T`
/// (borg 1.x's and borg 2's envelopes alike); `invalid` makes the error naming the blob.
pub(super) fn decode_key_text<T: serde::de::DeserializeOwned>(
    text: &str,
    invalid: &dyn Fn(String) -> Error,
) -> Result<T> {
    let compact: Zeroizing<String> =
        Zeroizing::new(text.chars().filter(|c| !c.is_whitespace()).collect());
    let raw = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|e| invalid(format!("key is not valid base64: {e}")))?,
    );
    rmp_serde::from_slice(&raw).map_err(|e| invalid(format!("key envelope: {e}")))
}

fn parse_envelope(blob: &KeyBlob, location: &str) -> Result<EncryptedKey> {
    let invalid = |reason: String| Error::KeyfileInvalid {
        location: location.into(),
        file: blob.origin.clone(),
        reason,
    };
    let env: EncryptedKey = decode_key_text(&blob.text, &invalid)?;
    if env.version != 1 {
        return Err(invalid(format!(
            "unsupported key envelope version {}",
            env.version
        )));
    }
    if let Some(alg) = &env.algorithm {
        if alg.as_slice() != b"sha256" {
            return Err(invalid(format!(
                "unsupported key algorithm {:?} (borg 2 key?)",
                String::from_utf8_lossy(alg)
            )));
        }
    }
    if env.hash.len() != 32 || env.iterations == 0 {
        return Err(invalid("malformed key envelope".into()));
    }
    // borg uses 100,000; a key (the repokey comes from the repository, which is not trusted)
    // asking for billions would keep the client busy for hours.
    if env.iterations > MAX_ITERATIONS {
        return Err(invalid(format!(
            "key derivation asks for {} PBKDF2 iterations, more than the {MAX_ITERATIONS} oxiborg accepts",
            env.iterations
        )));
    }
    Ok(env)
}

/// The most PBKDF2 iterations a key may ask for (borg writes 100,000).
pub const MAX_ITERATIONS: u32 = 10_000_000;

/// Parses key file text (`BORG_KEY <id>` header optional) and, when it asks for few PBKDF2
/// iterations, unlocks it with the passphrase `fuzz`: the key-blob fuzz target.
pub(crate) fn fuzz_key_text(text: &str) {
    let body = match text.split_once('\n') {
        Some((first, rest)) if first.starts_with("BORG_KEY ") => rest,
        _ => text,
    };
    let blob = KeyBlob {
        text: Zeroizing::new(body.to_string()),
        origin: "fuzz".into(),
        file: None,
    };
    let Ok(env) = parse_envelope(&blob, "fuzz") else {
        return;
    };
    if env.iterations > 16 {
        return;
    }
    if let Some(plain) = try_passphrase(&env, "fuzz") {
        for kt in [KeyType::Repokey, KeyType::Blake2Keyfile] {
            let _ = key_from_plain(kt, &plain, &blob, "fuzz", false);
        }
    }
}

/// Decrypts an envelope with a passphrase; `Ok(None)` means the passphrase is wrong.
fn try_passphrase(env: &EncryptedKey, pass: &str) -> Option<Zeroizing<Vec<u8>>> {
    let mut kek = Zeroizing::new([0u8; 32]);
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(pass.as_bytes(), &env.salt, env.iterations, &mut *kek);
    let mut plain = Zeroizing::new(env.data.to_vec());
    aes_ctr_zero_iv(&kek, &mut plain);
    let mac = hmac_sha256(&*kek, &plain);
    bool::from(mac.ct_eq(env.hash.as_slice())).then_some(plain)
}

fn key_from_plain(
    ktype: KeyType,
    plain: &[u8],
    blob: &KeyBlob,
    location: &str,
    tam_fallback: bool,
) -> Result<Key> {
    let invalid = |reason: String| Error::KeyfileInvalid {
        location: location.into(),
        file: blob.origin.clone(),
        reason,
    };
    let pk: PlainKey = rmp_serde::from_slice(plain).map_err(|e| invalid(format!("key: {e}")))?;
    if pk.version != 1 {
        return Err(invalid(format!("unsupported key version {}", pk.version)));
    }
    if pk.enc_key.len() != 32 {
        return Err(invalid("enc_key is not 32 bytes".into()));
    }
    let _ = &pk.repository_id;
    let mut enc_key = [0u8; 32];
    enc_key.copy_from_slice(&pk.enc_key);
    let secrets = Secrets {
        enc_key,
        enc_hmac_key: pk.enc_hmac_key.to_vec(),
        id_key: pk.id_key.to_vec(),
    };
    Key::from_secrets(
        ktype,
        secrets,
        pk.tam_required.unwrap_or(tam_fallback),
        blob.origin.clone(),
    )
    .map_err(|e| invalid(e.to_string()))
}

/// Decrypts a key blob, with the passphrase from `sources` in borg's order (the empty
/// passphrase is tried silently before the prompt); `tam_fallback` is used for old keys without
/// `tam_required` (borg then consults its security directory).
pub fn unlock(
    ktype: KeyType,
    blob: &KeyBlob,
    location: &str,
    sources: &PassphraseSources<'_>,
    tam_fallback: bool,
) -> Result<Key> {
    if ktype.is_borg2() {
        // A borg 2 type byte in a borg 1.x repository: its key is not a 1.x key blob.
        return Err(Error::UnsupportedPayload(ktype.byte()));
    }
    let env = parse_envelope(blob, location)?;
    let for_what = blob
        .file
        .as_ref()
        .map(|f| f.display().to_string())
        .unwrap_or_else(|| location.to_string());
    with_passphrase(sources, &for_what, true, |pass| {
        try_passphrase(&env, pass)
            .map(|plain| key_from_plain(ktype, &plain, blob, location, tam_fallback))
            .transpose()
    })
}

/// borg's passphrase procedure around `attempt` (which gives `Ok(None)` for a wrong
/// passphrase): a passphrase from `sources` (the caller's, a configuration's, borg's variables)
/// is the only one tried, and a wrong one is [`Error::PassphraseWrong`]; without one, the empty
/// passphrase is tried silently (when `try_empty`), then the prompt asks up to three times
/// (naming `for_what`), and then it is [`Error::PasswordRetriesExceeded`].
pub(super) fn with_passphrase<T>(
    sources: &PassphraseSources<'_>,
    for_what: &str,
    try_empty: bool,
    mut attempt: impl FnMut(&str) -> Result<Option<T>>,
) -> Result<T> {
    if let Some((secret, origin)) = passphrase::obtain(sources)? {
        return attempt(&secret)?.ok_or(Error::PassphraseWrong(origin));
    }
    if try_empty {
        if let Some(t) = attempt("")? {
            return Ok(t);
        }
    }
    for _ in 0..3 {
        let pass = sources.ask(for_what)?;
        if let Some(t) = attempt(&pass)? {
            return Ok(t);
        }
        log::warn!(target: "borg.crypto.key", "Incorrect passphrase");
    }
    Err(Error::PasswordRetriesExceeded)
}

/// The legacy `passphrase` key type (0x01, borg < 1.0): keys derived directly from the
/// passphrase with PBKDF2 (salt = repository id, 100 000 rounds, 100 bytes). `check` tells
/// whether a candidate key opens the manifest (it is how a wrong passphrase is detected).
pub fn legacy_passphrase_key(
    repo_id: &[u8; 32],
    sources: &PassphraseSources<'_>,
    location: &str,
    check: impl Fn(&Key) -> bool,
) -> Result<Key> {
    let derive = |pass: &str| -> Result<Key> {
        let mut data = Zeroizing::new([0u8; 100]);
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(pass.as_bytes(), repo_id, 100_000, &mut *data);
        let mut enc_key = [0u8; 32];
        enc_key.copy_from_slice(&data[0..32]);
        Key::from_secrets(
            KeyType::Passphrase,
            Secrets {
                enc_key,
                enc_hmac_key: data[32..64].to_vec(),
                id_key: data[64..96].to_vec(),
            },
            false,
            "passphrase".into(),
        )
    };
    with_passphrase(sources, location, false, |pass| {
        let key = derive(pass)?;
        Ok(check(&key).then_some(key))
    })
}

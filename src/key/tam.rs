//! TAM, borg's "tertiary authentication" of the manifest and of archive metadata.
//!
//! `tam_key = HKDF-SHA512(id_key ‖ enc_key ‖ enc_hmac_key, salt, "borg-metadata-authentication-"
//! ‖ context)`, and the tag is HMAC-SHA512 over the exact received plaintext with the 64 tag
//! bytes replaced by zeros. For key type `none` the TAM key is simply `salt ‖ context`.

use super::{Key, KeyType};
use hmac::Mac;
use sha2::Sha512;
use subtle::ConstantTimeEq;

/// The `tam` map of a manifest or archive.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Tam {
    /// The suite name; borg 1.x writes only `HKDF_HMAC_SHA512`.
    #[serde(rename = "type", with = "serde_bytes")]
    pub suite: Vec<u8>,
    /// 64 random bytes.
    #[serde(with = "serde_bytes")]
    pub salt: Vec<u8>,
    /// The 64-byte tag.
    #[serde(with = "serde_bytes")]
    pub hmac: Vec<u8>,
}

/// The outcome of checking a present TAM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TamCheck {
    /// The tag verified.
    Valid,
    /// The tag did not verify.
    Invalid,
    /// A suite this client does not know (named).
    UnknownSuite(String),
}

/// Checks `tam` against the exact `plaintext` it was received in.
pub fn check(key: &Key, plaintext: &[u8], tam: &Tam, context: &str) -> TamCheck {
    if tam.suite.as_slice() != b"HKDF_HMAC_SHA512" {
        return TamCheck::UnknownSuite(String::from_utf8_lossy(&tam.suite).into_owned());
    }
    if tam.hmac.len() != 64 || tam.salt.len() != 64 {
        return TamCheck::Invalid;
    }
    let Some(pos) = find(plaintext, &tam.hmac) else {
        return TamCheck::Invalid;
    };
    let tam_key: zeroize::Zeroizing<Vec<u8>> = if key.key_type() == KeyType::Plaintext {
        let mut k = tam.salt.clone();
        k.extend_from_slice(context.as_bytes());
        zeroize::Zeroizing::new(k)
    } else {
        let ikm = key.tam_ikm();
        let hk = hkdf::Hkdf::<Sha512>::new(Some(&tam.salt), &ikm);
        let mut okm = zeroize::Zeroizing::new(vec![0u8; 64]);
        let info = format!("borg-metadata-authentication-{context}");
        if hk.expand(info.as_bytes(), &mut okm).is_err() {
            return TamCheck::Invalid;
        }
        okm
    };
    let mut mac =
        <hmac::Hmac<Sha512> as Mac>::new_from_slice(&tam_key).expect("HMAC accepts any key");
    mac.update(&plaintext[..pos]);
    mac.update(&[0u8; 64]);
    mac.update(&plaintext[pos + 64..]);
    let tag = mac.finalize().into_bytes();
    if bool::from(tag.as_slice().ct_eq(&tam.hmac)) {
        TamCheck::Valid
    } else {
        TamCheck::Invalid
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

//! Object ids: the leaf module every layer may import.

/// A 32-byte object id, as the repository stores it.
pub type ObjectId = [u8; 32];

/// The manifest's fixed id: 32 zero bytes.
pub const MANIFEST_ID: ObjectId = [0u8; 32];

/// An archive's (or any object's) id, shown and parsed as 64 hex digits (`borg list`'s form).
///
/// ```
/// let id: oxiborg::Id = "00".repeat(32).parse().unwrap();
/// assert_eq!(id.to_string(), "00".repeat(32));
/// assert!("xyz".parse::<oxiborg::Id>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Id(pub ObjectId);

impl Id {
    /// The 32 bytes.
    pub fn as_bytes(&self) -> &ObjectId {
        &self.0
    }

    /// The 64 hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::fmt::Debug for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Id({})", self.to_hex())
    }
}

impl std::str::FromStr for Id {
    type Err = crate::Error;

    /// Parses 64 hex digits.
    fn from_str(s: &str) -> crate::Result<Id> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|e| {
            crate::Error::InvalidInput(format!("{s:?} is not a 64-digit hex id: {e}"))
        })?;
        Ok(Id(out))
    }
}

impl AsRef<[u8]> for Id {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<ObjectId> for Id {
    fn from(b: ObjectId) -> Id {
        Id(b)
    }
}

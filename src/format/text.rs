//! Bytes shown as text, the way borg shows them (its names and paths need not be UTF-8).

/// Decodes bytes as UTF-8 for display, replacing every undecodable byte with `?` (borg's rule).
pub fn display_bytes(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => {
            let mut out = String::with_capacity(b.len());
            for chunk in b.utf8_chunks() {
                out.push_str(chunk.valid());
                for _ in chunk.invalid() {
                    out.push('?');
                }
            }
            out
        }
    }
}

/// Decodes bytes as borg's surrogateescape text would re-encode to JSON: valid UTF-8 as is,
/// every undecodable byte `b` as the lone surrogate `U+DC00+b` (how Python's `json` writes it,
/// `\udcXX`). Returns the JSON string literal including quotes.
pub fn json_surrogateescape(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() + 2);
    out.push('"');
    for chunk in b.utf8_chunks() {
        let s = serde_json::to_string(chunk.valid()).unwrap_or_default();
        out.push_str(&s[1..s.len() - 1]);
        for byte in chunk.invalid() {
            out.push_str(&format!("\\udc{byte:02x}"));
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_replaces_undecodable() {
        assert_eq!(display_bytes(b"caf\xe9-latin1.txt"), "caf?-latin1.txt");
        assert_eq!(display_bytes("ünï".as_bytes()), "ünï");
        assert_eq!(json_surrogateescape(b"a\"\xe9"), "\"a\\\"\\udce9\"");
    }
}

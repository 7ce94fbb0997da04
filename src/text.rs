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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_replaces_undecodable() {
        assert_eq!(display_bytes(b"caf\xe9-latin1.txt"), "caf?-latin1.txt");
        assert_eq!(display_bytes("ünï".as_bytes()), "ünï");
    }
}

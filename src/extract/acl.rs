//! POSIX ACLs: borg's text form → the Linux `system.posix_acl_*` xattr value.
//!
//! borg stores ACLs as text, one entry per line, with the numeric id as a 4th field of named
//! entries (`user:alice:rw-:1000`). Linux takes them as an xattr: a version word followed by
//! `(tag: u16, perm: u16, id: u32)` entries, sorted by tag and id.

const ACL_EA_VERSION: u32 = 2;
const ACL_USER_OBJ: u16 = 0x01;
const ACL_USER: u16 = 0x02;
const ACL_GROUP_OBJ: u16 = 0x04;
const ACL_GROUP: u16 = 0x08;
const ACL_MASK: u16 = 0x10;
const ACL_OTHER: u16 = 0x20;
const ACL_UNDEFINED_ID: u32 = u32::MAX;

/// Maps a named ACL entry `(is_user, name, stored id)` to a local id.
pub type Resolver<'a> = dyn FnMut(bool, &str, Option<u32>) -> Option<u32> + 'a;

/// Converts borg's ACL text to the xattr value. `resolve` maps a named entry (is_user, name,
/// stored id) to the local id (name lookup unless `--numeric-ids`).
///
/// # Errors
///
/// A malformed entry or an unknown tag, as a message naming the entry.
pub fn text_to_xattr(text: &[u8], resolve: &mut Resolver<'_>) -> Result<Vec<u8>, String> {
    let text = String::from_utf8_lossy(text);
    let mut entries: Vec<(u16, u32, u16)> = Vec::new();
    for line in text.split(['\n', ',']) {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(':').map(str::trim).collect();
        if f.len() < 3 {
            return Err(format!("bad ACL entry {line:?}"));
        }
        let perm = parse_perm(f[2]).ok_or_else(|| format!("bad ACL permissions in {line:?}"))?;
        let stored_id = f.get(3).and_then(|s| s.parse::<u32>().ok());
        let (tag, id) = match (f[0], f[1].is_empty()) {
            ("user" | "u", true) => (ACL_USER_OBJ, ACL_UNDEFINED_ID),
            ("user" | "u", false) => (
                ACL_USER,
                resolve(true, f[1], stored_id)
                    .ok_or_else(|| format!("unknown user {:?} in ACL", f[1]))?,
            ),
            ("group" | "g", true) => (ACL_GROUP_OBJ, ACL_UNDEFINED_ID),
            ("group" | "g", false) => (
                ACL_GROUP,
                resolve(false, f[1], stored_id)
                    .ok_or_else(|| format!("unknown group {:?} in ACL", f[1]))?,
            ),
            ("mask" | "m", _) => (ACL_MASK, ACL_UNDEFINED_ID),
            ("other" | "o", _) => (ACL_OTHER, ACL_UNDEFINED_ID),
            _ => return Err(format!("bad ACL tag in {line:?}")),
        };
        entries.push((tag, id, perm));
    }
    entries.sort_by_key(|(t, id, _)| (*t, *id));
    let mut out = Vec::with_capacity(4 + entries.len() * 8);
    out.extend_from_slice(&ACL_EA_VERSION.to_le_bytes());
    for (tag, id, perm) in entries {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&perm.to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
    }
    Ok(out)
}

fn parse_perm(p: &str) -> Option<u16> {
    let mut v = 0;
    for c in p.chars() {
        v |= match c {
            'r' => 4,
            'w' => 2,
            'x' => 1,
            '-' => 0,
            _ => return None,
        };
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borg_text_to_xattr() {
        let text = b"user::rw-\nuser:nobody:r--\t:65534\ngroup::r--\ngroup:daemon:rw-:1\nmask::rw-\nother::r--";
        let mut resolve = |_u: bool, _n: &str, id: Option<u32>| id;
        let x = text_to_xattr(text, &mut resolve).unwrap();
        assert_eq!(&x[..4], &2u32.to_le_bytes());
        assert_eq!(x.len(), 4 + 6 * 8);
        // user_obj first, then the named user with id 65534
        assert_eq!(&x[4..8], &[1, 0, 6, 0]);
        assert_eq!(&x[12..16], &[2, 0, 4, 0]);
        assert_eq!(&x[16..20], &65534u32.to_le_bytes());
        assert!(text_to_xattr(b"bogus", &mut resolve).is_err());
    }
}

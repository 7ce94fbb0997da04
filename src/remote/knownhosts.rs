//! OpenSSH's `known_hosts` files: the keys recorded for a host, and recording a new one.
//!
//! A host is looked up by the name OpenSSH uses, `host` or `[host]:port` for a port other than
//! 22, against each line's comma-separated patterns (`*`, `?`, `!negation`) or its hashed name
//! (`|1|salt|HMAC-SHA1(salt, name)`, as `ssh-keygen -H` and `HashKnownHosts` write it). Lines
//! marked `@revoked` list keys that must never be accepted; `@cert-authority` lines are skipped
//! (host certificates are not used).

use base64::Engine;
use hmac::{Hmac, Mac};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One recorded key for the host looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownKey {
    /// The file that records it.
    pub file: PathBuf,
    /// Its line number (from 1).
    pub line: usize,
    /// Its type as the key blob names it (`ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`, …).
    pub key_type: String,
    /// The public key blob (SSH wire format).
    pub blob: Vec<u8>,
    /// An `@revoked` line: this key must be refused.
    pub revoked: bool,
}

/// The name OpenSSH looks `host` up by: the host itself on port 22, else `[host]:port`.
pub fn host_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// The type named at the start of a key blob (`ssh-ed25519`, …).
pub fn blob_type(blob: &[u8]) -> Option<&str> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    std::str::from_utf8(blob.get(4..4 + len)?).ok()
}

/// How OpenSSH names a key type in its messages: `ED25519`, `RSA`, `ECDSA`, `DSA`.
pub fn type_label(key_type: &str) -> String {
    match key_type {
        "ssh-ed25519" => "ED25519".into(),
        "ssh-rsa" => "RSA".into(),
        "ssh-dss" => "DSA".into(),
        t if t.starts_with("ecdsa-sha2-") => "ECDSA".into(),
        t => t.to_uppercase(),
    }
}

/// The host key algorithms that produce keys of `key_type` (an RSA key serves three).
pub fn algorithms_for(key_type: &str) -> &'static [&'static str] {
    match key_type {
        "ssh-ed25519" => &["ssh-ed25519"],
        "ssh-rsa" => &["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
        "ecdsa-sha2-nistp256" => &["ecdsa-sha2-nistp256"],
        "ecdsa-sha2-nistp384" => &["ecdsa-sha2-nistp384"],
        "ecdsa-sha2-nistp521" => &["ecdsa-sha2-nistp521"],
        "ssh-dss" => &["ssh-dss"],
        _ => &[],
    }
}

/// The host key algorithm preference for a host whose recorded key types are `known`: the
/// algorithms of those types first, then the others, each group in `supported`'s order (as
/// OpenSSH orders them). Certificate algorithms are left out: host certificates are not checked.
pub fn preference(known: &[String], supported: &[&str]) -> Vec<String> {
    let wanted = |a: &str| known.iter().any(|t| algorithms_for(t).contains(&a));
    let plain: Vec<&str> = supported
        .iter()
        .copied()
        .filter(|a| !a.contains("-cert-"))
        .collect();
    let mut out: Vec<String> = plain
        .iter()
        .filter(|a| wanted(a))
        .map(|a| a.to_string())
        .collect();
    out.extend(plain.iter().filter(|a| !wanted(a)).map(|a| a.to_string()));
    out
}

/// Whether a hashed host field `|1|salt|hash` is `name`.
fn hashed_matches(field: &str, name: &str) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut parts = field.splitn(2, '|');
    let (Some(salt), Some(hash)) = (parts.next(), parts.next()) else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (b64.decode(salt), b64.decode(hash)) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.update(name.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

/// Whether a line's host field names `name` (lower case): a hashed name, or patterns of which
/// one matches and no negated one does.
fn field_matches(field: &str, name: &str) -> bool {
    if let Some(h) = field.strip_prefix("|1|") {
        return hashed_matches(h, name);
    }
    let mut matched = false;
    for p in field.split(',').filter(|p| !p.is_empty()) {
        if let Some(neg) = p.strip_prefix('!') {
            if super::sshconfig::glob_match(neg.as_bytes(), name.as_bytes()) {
                return false;
            }
        } else if super::sshconfig::glob_match(p.as_bytes(), name.as_bytes()) {
            matched = true;
        }
    }
    matched
}

/// The keys `text` (the contents of `file`) records for `name` (see [`host_name`]).
pub fn lookup(text: &str, file: &Path, name: &str) -> Vec<KnownKey> {
    let name = name.to_ascii_lowercase();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let mut first = words.next().unwrap_or("");
        let mut revoked = false;
        if let Some(marker) = first.strip_prefix('@') {
            match marker {
                "revoked" => revoked = true,
                _ => continue,
            }
            first = words.next().unwrap_or("");
        }
        let (Some(_typ), Some(key)) = (words.next(), words.next()) else {
            continue;
        };
        if !field_matches(first, &name) {
            continue;
        }
        let Ok(blob) = base64::engine::general_purpose::STANDARD.decode(key) else {
            continue;
        };
        let Some(key_type) = blob_type(&blob).map(str::to_string) else {
            continue;
        };
        out.push(KnownKey {
            file: file.to_path_buf(),
            line: i + 1,
            key_type,
            blob,
            revoked,
        });
    }
    out
}

/// The keys recorded for `name` in each of `files` that exists. A file that exists but cannot
/// be read is an error (it may hold the key that would have matched).
///
/// # Errors
///
/// The I/O error of a file that exists but cannot be read, prefixed with its path.
pub fn lookup_files(files: &[PathBuf], name: &str) -> std::io::Result<Vec<KnownKey>> {
    let mut out = Vec::new();
    for f in files {
        match std::fs::read(f) {
            Ok(b) => out.extend(lookup(&String::from_utf8_lossy(&b), f, name)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("{}: {e}", f.display()),
                ))
            }
        }
    }
    Ok(out)
}

/// The line OpenSSH writes for a newly accepted key: `name type base64`.
pub fn line_for(name: &str, blob: &[u8]) -> String {
    format!(
        "{name} {} {}\n",
        blob_type(blob).unwrap_or("ssh-unknown"),
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}

/// Appends the key to `file`, making its directory (mode 0700, as `~/.ssh`) when missing.
///
/// # Errors
///
/// The I/O error when the directory cannot be made or the file written.
pub fn record(file: &Path, name: &str, blob: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
    }
    let needs_newline = std::fs::read(file)
        .map(|b| !b.is_empty() && !b.ends_with(b"\n"))
        .unwrap_or(false);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    let mut text = String::new();
    if needs_newline {
        text.push('\n');
    }
    text.push_str(&line_for(name, blob));
    f.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(t: &str, body: &[u8]) -> Vec<u8> {
        let mut b = (t.len() as u32).to_be_bytes().to_vec();
        b.extend_from_slice(t.as_bytes());
        b.extend_from_slice(body);
        b
    }

    #[test]
    fn plain_hashed_patterns_and_markers() {
        let b64 = base64::engine::general_purpose::STANDARD;
        let ed = blob("ssh-ed25519", b"E");
        let rsa = blob("ssh-rsa", b"R");
        // `ssh-keygen -H` of "[127.0.0.1]:2222" with this salt
        let salt = [7u8; 20];
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&salt).unwrap();
        mac.update(b"[127.0.0.1]:2222");
        let hashed = format!(
            "|1|{}|{}",
            b64.encode(salt),
            b64.encode(mac.finalize().into_bytes())
        );
        let text = format!(
            "# comment\n\
             [127.0.0.1]:2222 ssh-ed25519 {e}\n\
             {hashed} ssh-rsa {r} comment\n\
             127.0.0.1 ssh-rsa {r}\n\
             *.example,!bad.example ssh-ed25519 {e}\n\
             @revoked * ssh-rsa {r}\n\
             @cert-authority * ssh-ed25519 {e}\n\
             broken line\n",
            e = b64.encode(&ed),
            r = b64.encode(&rsa)
        );
        let f = Path::new("kh");
        let k = lookup(&text, f, "[127.0.0.1]:2222");
        let got: Vec<(usize, &str, bool)> = k
            .iter()
            .map(|k| (k.line, k.key_type.as_str(), k.revoked))
            .collect();
        // port 2222 does not match the plain `127.0.0.1` line (as OpenSSH)
        assert_eq!(
            got,
            [
                (2, "ssh-ed25519", false),
                (3, "ssh-rsa", false),
                (6, "ssh-rsa", true)
            ]
        );
        assert_eq!(
            lookup(&text, f, host_name("127.0.0.1", 22).as_str()).len(),
            2
        );
        assert_eq!(lookup(&text, f, "good.EXAMPLE").len(), 2);
        assert_eq!(lookup(&text, f, "bad.example").len(), 1);
        assert_eq!(
            line_for("[h]:2", &ed),
            format!("[h]:2 ssh-ed25519 {}\n", b64.encode(&ed))
        );
    }

    #[test]
    fn known_types_come_first() {
        let supported = [
            "ssh-ed25519-cert-v01@openssh.com",
            "ssh-ed25519",
            "ecdsa-sha2-nistp256",
            "rsa-sha2-512",
            "rsa-sha2-256",
            "ssh-rsa",
        ];
        assert_eq!(
            preference(&["ssh-rsa".into()], &supported),
            [
                "rsa-sha2-512",
                "rsa-sha2-256",
                "ssh-rsa",
                "ssh-ed25519",
                "ecdsa-sha2-nistp256"
            ]
        );
        assert_eq!(preference(&[], &supported)[0], "ssh-ed25519");
    }

    #[test]
    fn recording_makes_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("new/.ssh/known_hosts");
        let ed = blob("ssh-ed25519", b"E");
        record(&f, "[h]:2", &ed).unwrap();
        std::fs::write(&f, std::fs::read_to_string(&f).unwrap().trim_end()).unwrap();
        record(&f, "h", &ed).unwrap();
        let text = std::fs::read_to_string(&f).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert_eq!(lookup(&text, &f, "h").len(), 1);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(f.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}

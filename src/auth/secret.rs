//! Random secrets: generated tokens and the JWT signing key kept in the data directory.

use std::io::Write;
use std::path::Path;

use rand::RngCore;
use sha2::{Digest, Sha256};

/// `bytes` random bytes from the OS generator, hex-encoded.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// A random password that is easy to copy: 24 characters of an unambiguous alphabet.
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..24)
        .map(|_| {
            let i = (rng.next_u32() as usize) % ALPHABET.len();
            ALPHABET[i] as char
        })
        .collect()
}

/// SHA-256 of `value`, hex; how tokens are stored so that a leaked store does not reveal them.
pub fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// A bearer token for a webhook (integration or heartbeat monitor): what the sender is
/// shown once, what is stored, and the first characters that tell tokens apart.
#[derive(Debug, Clone)]
pub struct HookToken {
    /// The token itself, shown once.
    pub clear: String,
    /// Its SHA-256, hex: what the store keeps and looks up.
    pub hash: String,
    /// Its first four characters.
    pub hint: String,
}

impl HookToken {
    /// A new token of 128 random bits.
    pub fn generate() -> Self {
        Self::from_clear(random_hex(16))
    }

    /// The stored forms of a given token (an imported PagerDuty routing key).
    pub fn from_clear(clear: String) -> Self {
        Self {
            hash: sha256_hex(&clear),
            hint: clear.chars().take(4).collect(),
            clear,
        }
    }
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The JWT secret file inside the data directory.
pub const JWT_SECRET_FILE: &str = "jwt-secret";

/// The configured secret, or the one kept in `<data_dir>/jwt-secret`, created (mode 0600)
/// on first use.
pub fn jwt_secret(configured: Option<&str>, data_dir: &Path) -> std::io::Result<Vec<u8>> {
    if let Some(s) = configured {
        return Ok(s.as_bytes().to_vec());
    }
    let path = data_dir.join(JWT_SECRET_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 32 => return Ok(s.trim().as_bytes().to_vec()),
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} is shorter than 32 bytes", path.display()),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(data_dir)?;
    let secret = random_hex(32);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path)?;
    file.write_all(secret.as_bytes())?;
    file.sync_all()?;
    Ok(secret.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secret_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = jwt_secret(None, dir.path()).expect("create");
        assert_eq!(first.len(), 64);
        assert_eq!(jwt_secret(None, dir.path()).expect("read"), first);
        assert_eq!(
            jwt_secret(Some("x".repeat(32).as_str()), dir.path()).expect("configured"),
            "x".repeat(32).into_bytes()
        );
    }

    #[test]
    fn helpers() {
        assert_eq!(random_hex(16).len(), 32);
        assert_ne!(random_password(), random_password());
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert_eq!(sha256_hex("abc").len(), 64);
    }
}

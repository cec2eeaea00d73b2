//! FIX-layer credentials for one-way TLS sessions (Logon Username 553 / Password 554, as in
//! the stunnel guide's case 3). The password is stored only as a PBKDF2-HMAC-SHA256 hash in a
//! file referenced by path:
//!
//! ```text
//! pbkdf2-sha256:<iterations>:<salt hex>:<hash hex>
//! ```
//!
//! which `openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt pass:PASSWORD -kdfopt
//! hexsalt:SALT -kdfopt iter:600000 PBKDF2` produces (its colon-separated hex is accepted).

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Minimum work factor accepted from a hash file (OWASP 2023 recommends 600 000).
pub const MIN_ITERATIONS: u32 = 10_000;

/// What a session's configuration names.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct CredentialSettings {
    pub username: String,
    /// The hash file (never the password).
    pub password_hash_file: PathBuf,
}

/// A loaded credential. Debug never prints the hash.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    iterations: NonZeroU32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    hex::decode(s.chars().filter(|c| *c != ':').collect::<String>()).ok()
}

impl Credentials {
    pub fn load(s: &CredentialSettings) -> Result<Self, CredentialError> {
        let path = &s.password_hash_file;
        if let Err(e) = crate::keys::fsutil::check_private(path) {
            return Err(CredentialError::Format {
                path: path.clone(),
                reason: e.to_string(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|source| CredentialError::Read {
            path: path.clone(),
            source,
        })?;
        Self::parse(&s.username, text.trim(), path)
    }

    pub fn parse(username: &str, line: &str, path: &Path) -> Result<Self, CredentialError> {
        let bad = |reason: &str| CredentialError::Format {
            path: path.to_path_buf(),
            reason: reason.into(),
        };
        let mut parts = line.splitn(4, ':');
        if parts.next() != Some("pbkdf2-sha256") {
            return Err(bad(
                "expected `pbkdf2-sha256:<iterations>:<salt hex>:<hash hex>`",
            ));
        }
        let iterations: u32 = parts
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad("iterations is not a number"))?;
        if iterations < MIN_ITERATIONS {
            return Err(bad("fewer than 10000 iterations"));
        }
        let rest = parts.next().zip(parts.next());
        // The salt is hex without colons; the hash may carry openssl's colons.
        let (salt, hash) = match rest {
            Some((salt, hash)) => (unhex(salt), unhex(hash)),
            None => (None, None),
        };
        let (Some(salt), Some(hash)) = (salt, hash) else {
            return Err(bad("salt or hash is not hex"));
        };
        if salt.len() < 8 || hash.len() != 32 {
            return Err(bad("salt must be at least 8 bytes and the hash 32 bytes"));
        }
        Ok(Credentials {
            username: username.to_string(),
            iterations: NonZeroU32::new(iterations).ok_or_else(|| bad("zero iterations"))?,
            salt,
            hash,
        })
    }

    /// Constant-time check of a Logon's Username/Password.
    pub fn verify(&self, username: Option<&str>, password: Option<&str>) -> bool {
        let (Some(u), Some(p)) = (username, password) else {
            return false;
        };
        let pw_ok = ring::pbkdf2::verify(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            self.iterations,
            &self.salt,
            p.as_bytes(),
            &self.hash,
        )
        .is_ok();
        // The username is not secret; the password comparison above is constant-time.
        pw_ok && u == self.username
    }

    /// Produces a hash-file line (for tests and tooling).
    pub fn hash_line(password: &str, salt: &[u8], iterations: u32) -> String {
        let mut out = [0u8; 32];
        let n = NonZeroU32::new(iterations.max(1)).unwrap_or(NonZeroU32::MIN);
        ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            n,
            salt,
            password.as_bytes(),
            &mut out,
        );
        format!(
            "pbkdf2-sha256:{iterations}:{}:{}",
            hex::encode(salt),
            hex::encode(out)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_only_the_right_pair() {
        let line = Credentials::hash_line("s3cret", b"saltsalt", MIN_ITERATIONS);
        let c = Credentials::parse("alice", &line, Path::new("x")).unwrap();
        assert!(c.verify(Some("alice"), Some("s3cret")));
        assert!(!c.verify(Some("alice"), Some("s3cret ")));
        assert!(!c.verify(Some("bob"), Some("s3cret")));
        assert!(!c.verify(Some("alice"), None));
        assert!(!format!("{c:?}").contains(&line[40..]));
    }

    #[test]
    fn rejects_weak_or_malformed_files() {
        let p = Path::new("pw.hash");
        assert!(Credentials::parse("a", "plain", p).is_err());
        let weak = Credentials::hash_line("x", b"saltsalt", 1000);
        let e = Credentials::parse("a", &weak, p).unwrap_err().to_string();
        assert!(e.contains("pw.hash") && e.contains("iterations"), "{e}");
    }
}

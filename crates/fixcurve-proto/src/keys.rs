//! CURVE key material: Curve25519 keys and their Z85 text form.
//!
//! Secret keys zeroize on drop and have no `Debug`/`Display` that shows their bytes, so
//! that no log line can ever carry one.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// Z85 text of a 32-byte key is always 40 characters.
pub const Z85_KEY_LEN: usize = 40;

/// Why text is not a Z85 key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
// Each variant is documented by its `#[error]` text, which is what users read.
#[allow(missing_docs)]
pub enum KeyError {
    #[error("a Z85 key must be 40 characters, got {0}")]
    BadLength(usize),
    #[error("not valid Z85 text")]
    BadZ85,
}

/// A Curve25519 public key (safe to log, in Z85).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// From its 40-character Z85 text.
    pub fn from_z85(text: &str) -> Result<Self, KeyError> {
        decode_z85_key(text).map(PublicKey)
    }

    /// Its 40-character Z85 text (as in ZPL certificates and libzmq options).
    pub fn to_z85(&self) -> String {
        z85::encode(self.0)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_z85())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_z85())
    }
}

/// A Curve25519 secret key. Never printed; zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    /// From raw bytes (a file or the OS random source).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        SecretKey(bytes)
    }

    /// From its 40-character Z85 text.
    pub fn from_z85(text: &str) -> Result<Self, KeyError> {
        decode_z85_key(text).map(SecretKey)
    }

    /// Z85 text, for writing a `.key_secret` file only.
    pub fn to_z85(&self) -> String {
        z85::encode(self.0)
    }

    /// The raw 32 bytes: only for the crypto backend.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The matching public key (X25519 base-point multiplication).
    pub fn public_key(&self) -> PublicKey {
        let secret = x25519_dalek::StaticSecret::from(self.0);
        PublicKey(x25519_dalek::PublicKey::from(&secret).to_bytes())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// A long-term CURVE keypair.
#[derive(Clone, Debug)]
pub struct Keypair {
    /// The public half, safe to share and log.
    pub public: PublicKey,
    /// The secret half, never printed.
    pub secret: SecretKey,
}

impl Keypair {
    /// A fresh keypair from the OS random source.
    pub fn generate() -> Self {
        let secret = x25519_dalek::StaticSecret::random_from_rng(rand_core::OsRng);
        let public = PublicKey(x25519_dalek::PublicKey::from(&secret).to_bytes());
        Keypair {
            public,
            secret: SecretKey(secret.to_bytes()),
        }
    }

    /// The pair of a secret key (its public key derived).
    pub fn from_secret(secret: SecretKey) -> Self {
        Keypair {
            public: secret.public_key(),
            secret,
        }
    }
}

fn decode_z85_key(text: &str) -> Result<[u8; 32], KeyError> {
    let text = text.trim();
    if text.len() != Z85_KEY_LEN {
        return Err(KeyError::BadLength(text.len()));
    }
    let bytes = z85::decode(text).map_err(|_| KeyError::BadZ85)?;
    bytes.try_into().map_err(|_| KeyError::BadZ85)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ZMQ RFC 32 (Z85) test vector and the libzmq test keypair.
    #[test]
    fn z85_vectors() {
        assert_eq!(
            z85::encode([0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B]),
            "HelloWorld"
        );
        // tests/testutil_security.hpp in libzmq: a valid server keypair.
        let public = PublicKey::from_z85("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7").unwrap();
        let secret = SecretKey::from_z85("JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6").unwrap();
        assert_eq!(secret.public_key(), public);
    }

    #[test]
    fn rejects_bad_text() {
        assert_eq!(PublicKey::from_z85("short"), Err(KeyError::BadLength(5)));
        // '"' is outside the Z85 alphabet.
        assert_eq!(PublicKey::from_z85(&"\"".repeat(40)), Err(KeyError::BadZ85));
    }

    #[test]
    fn secret_debug_is_redacted() {
        let kp = Keypair::generate();
        assert!(!format!("{kp:?}").contains(&kp.secret.to_z85()));
    }
}

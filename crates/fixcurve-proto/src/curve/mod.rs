//! CurveZMQ (RFC 26) over ZMTP (RFC 25), sans-IO.
//!
//! - `crypto`: the precomputed-box seal/open seam and the cookie secretbox.
//! - `handshake`: HELLO / WELCOME / INITIATE / READY / ERROR for client and server.
//! - `message`: MESSAGE seal/open with strictly increasing nonces.
//! - `session`: greeting + frames + handshake + messages as one byte-level state machine per
//!   side, which the tokio layer drives.

// The one place unsafe code is allowed: the libsodium calls (each with a SAFETY note).
#[allow(unsafe_code)]
pub mod crypto;
pub mod handshake;
pub mod message;
pub mod session;

pub use handshake::{ClientHandshake, ServerHandshake};
pub use message::MessageCodec;
pub use session::{ClientEvent, ClientSession, ServerEvent, ServerSession, SessionError};

/// Fixed nonce prefixes from the CurveZMQ RFC.
pub mod prefix {
    pub const HELLO: &[u8; 16] = b"CurveZMQHELLO---";
    pub const WELCOME: &[u8; 8] = b"WELCOME-";
    pub const COOKIE: &[u8; 8] = b"COOKIE--";
    pub const INITIATE: &[u8; 16] = b"CurveZMQINITIATE";
    pub const VOUCH: &[u8; 8] = b"VOUCH---";
    pub const READY: &[u8; 16] = b"CurveZMQREADY---";
    pub const MESSAGE_C: &[u8; 16] = b"CurveZMQMESSAGEC";
    pub const MESSAGE_S: &[u8; 16] = b"CurveZMQMESSAGES";
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurveError {
    #[error("box failed authentication (tampered, truncated or wrong key)")]
    BadBox,
    #[error("peer key is a low-order point")]
    WeakKey,
    #[error("malformed {0} command")]
    Malformed(&'static str),
    #[error("unsupported CURVE version {0}.{1}")]
    Version(u8, u8),
    #[error("unexpected {got} command while expecting {expected}")]
    Unexpected { got: String, expected: &'static str },
    #[error("cookie does not match this connection")]
    BadCookie,
    #[error("vouch does not match the client's transient key or our server key")]
    BadVouch,
    #[error("nonce {got} not greater than last seen {last} (replay)")]
    Replay { got: u64, last: u64 },
    #[error("server refused: {0}")]
    Refused(String),
    #[error("the crypto library could not initialise (no entropy source?)")]
    CryptoUnavailable,
}

/// Where handshake randomness comes from: the OS in production, a fixed stream in tests that
/// replay captured transcripts byte for byte.
pub type Rng = Box<dyn rand_core::RngCore + Send>;

pub fn os_rng() -> Rng {
    Box::new(rand_core::OsRng)
}

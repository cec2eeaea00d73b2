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
pub mod keystream;
pub mod message;
pub mod session;

pub use handshake::{
    ClientStart, Deciding, ExpectHello, ExpectInitiate, ExpectReady, ExpectWelcome,
};
pub use message::MessageCodec;
pub use session::{ClientEvent, ClientSession, ServerEvent, ServerSession, SessionError};

/// Fixed nonce prefixes from the CurveZMQ RFC.
pub mod prefix {
    /// Nonce prefix of the HELLO box.
    pub const HELLO: &[u8; 16] = b"CurveZMQHELLO---";
    /// Nonce prefix of the WELCOME box.
    pub const WELCOME: &[u8; 8] = b"WELCOME-";
    /// Nonce prefix of the cookie box.
    pub const COOKIE: &[u8; 8] = b"COOKIE--";
    /// Nonce prefix of the INITIATE box.
    pub const INITIATE: &[u8; 16] = b"CurveZMQINITIATE";
    /// Nonce prefix of the vouch box inside INITIATE.
    pub const VOUCH: &[u8; 8] = b"VOUCH---";
    /// Nonce prefix of the READY box.
    pub const READY: &[u8; 16] = b"CurveZMQREADY---";
    /// Nonce prefix of MESSAGE boxes from the client.
    pub const MESSAGE_C: &[u8; 16] = b"CurveZMQMESSAGEC";
    /// Nonce prefix of MESSAGE boxes from the server.
    pub const MESSAGE_S: &[u8; 16] = b"CurveZMQMESSAGES";
}

/// Why a CURVE handshake or message failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
// Each variant is documented by its `#[error]` text, which is what users read.
#[allow(missing_docs)]
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

/// The operating system's randomness, for production handshakes.
pub fn os_rng() -> Rng {
    Box::new(rand_core::OsRng)
}

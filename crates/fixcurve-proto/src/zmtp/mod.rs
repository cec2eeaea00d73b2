//! ZMTP 3.x wire codec (RFC 23 / RFC 37), sans-IO: greeting, frames, commands, metadata.
//!
//! Nothing here touches a socket or a clock. The CURVE state machines in `crate::curve` build
//! on these codecs, and the tokio layer in `crate::pubsub` only moves bytes.

pub mod command;
pub mod frame;
pub mod greeting;
pub mod metadata;

pub use command::Command;
pub use frame::{Frame, FrameDecoder, FLAG_COMMAND, FLAG_LONG, FLAG_MORE};
pub use greeting::{Greeting, GREETING_LEN};
pub use metadata::Metadata;

/// Everything a peer can get wrong at the ZMTP layer. Each variant closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
// Each variant is documented by its `#[error]` text, which is what users read.
#[allow(missing_docs)]
pub enum ZmtpError {
    #[error("bad greeting signature")]
    BadSignature,
    #[error("unsupported ZMTP version {0}.{1} (need 3.x)")]
    UnsupportedVersion(u8, u8),
    #[error("mechanism mismatch: peer offers {0:?}")]
    WrongMechanism(String),
    #[error("frame of {size} bytes exceeds the {max}-byte limit")]
    FrameTooLarge { size: u64, max: usize },
    #[error("reserved frame flag bits set: {0:#04x}")]
    BadFlags(u8),
    #[error("malformed command frame")]
    MalformedCommand,
    #[error("malformed metadata")]
    MalformedMetadata,
    #[error("command frame with MORE flag")]
    CommandWithMore,
}

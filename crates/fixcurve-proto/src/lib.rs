//! fixcurve's protocol cores, sans-IO.
//!
//! Everything here is a deterministic state machine or a pure codec: bytes and time go in,
//! bytes, events and *work requests* come out. Nothing opens a socket, reads a clock or
//! touches a file; the crate does not depend on tokio, and the `fixcurve` crate's thin I/O
//! layer drives it. That is what makes each part testable with exact byte vectors and
//! fuzzable (as quinn-proto and rustls are built).
//!
//! Data flows through the modules in this order:
//! - [`zmtp`]: ZMTP 3.x greeting, frames, commands and metadata (RFC 23/37).
//! - [`curve`]: CurveZMQ (RFC 26) handshake, one state type per expected command, and MESSAGE
//!   boxes; [`keys`] holds the Curve25519 key types and their Z85 text.
//! - [`fix`]: the FIX tag=value codec, messages, repeating groups, data dictionaries and the
//!   FIX session state machine, which asks for its sequence-store writes and reads as work.
//! - [`normalize`]: FIX application messages into typed, decimal events and their topics.
//! - [`envelope`]: those events as MessagePack, the PUB/SUB payload.
//! - [`secret`]: self-redacting secret text.
//! - `testing` (feature `test-support`): FIX text helpers, a deterministic clock and the
//!   store-work driver every session test goes through.

// Peer-supplied numbers use checked or saturating arithmetic; the few functions that add
// lengths of buffers already in memory say so in an `allow` with the bound. Tests are exempt.
#![cfg_attr(test, allow(clippy::arithmetic_side_effects))]

pub mod curve;
pub mod envelope;
pub mod fix;
pub mod keys;
pub mod normalize;
pub mod secret;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
pub mod zmtp;

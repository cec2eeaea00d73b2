//! fixcurve: FIX over mTLS in, CURVE-secured ZeroMQ PUB/SUB out.
//!
//! The protocol logic (ZMTP/CURVE handshake, FIX codec, FIX session, normalizer, envelope)
//! lives in the sans-IO `fixcurve-proto` crate, re-exported here under the same paths. This
//! crate is the I/O on top: the tokio layers (`pubsub`, `fix::transport`, `bridge`) move
//! bytes between sockets and those state machines and carry out the work they ask for
//! (sequence-store writes, fsync), plus the keyring, TLS, CLI and tools.

pub use fixcurve_proto::{curve, envelope, normalize, secret, zmtp};

pub mod admission;
pub mod audit;
pub mod auth;
pub mod bridge;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod fix;
pub mod journal;
pub mod keyring;
pub mod keys;
pub mod metrics;
pub mod nats;
pub mod pubsub;
pub mod replay;
pub mod stagetrace;
pub mod tls;
pub mod tools;

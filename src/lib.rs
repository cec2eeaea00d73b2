//! fixcurve: FIX over mTLS in, CURVE-secured ZeroMQ PUB/SUB out.
//!
//! The protocol logic (ZMTP/CURVE handshake, FIX codec, FIX session, normalizer) is sans-IO:
//! deterministic state machines fed bytes and time, returning bytes and events. The tokio
//! layers (`pubsub`, `fix::transport`, `bridge`) only move bytes between sockets and them.

pub mod admission;
pub mod audit;
pub mod auth;
pub mod bridge;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod curve;
pub mod envelope;
pub mod fix;
pub mod keyring;
pub mod keys;
pub mod metrics;
pub mod normalize;
pub mod pubsub;
pub mod secret;
pub mod tls;
pub mod zmtp;

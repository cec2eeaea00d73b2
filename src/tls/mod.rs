//! TLS policy for the FIX side (rustls): verification, pinning, CRLs, identities, tooling.
//!
//! Everything here builds *policy* (rustls configs, allow-lists, identity matching); the
//! sockets live in `fix::transport`. The settings structs deserialize straight from the
//! `[[acceptor]]` / `[[initiator]]` tables of the configuration file.

pub mod client;
pub mod config;
pub mod identity;
pub mod pem;
pub mod reload;
pub mod server;
mod verifier;

pub use crate::admission::{AllowList, ConnectionLimits, HandshakePermit, PreHandshake, Refusal};
pub use client::build_client_config;
pub use config::{ClientTlsSettings, ServerTlsSettings};
pub use identity::{Fingerprint, PeerIdentity};
pub use reload::{ReloadableClient, ReloadableServer};
pub use server::build_server_config;

use std::path::PathBuf;

/// Why TLS material could not be loaded or a config built. Names the file and the reason;
/// never carries key bytes.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Material { path: PathBuf, reason: String },
    #[error("invalid TLS settings: {0}")]
    Settings(String),
    #[error("rustls: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The single crypto provider used everywhere: *ring*, restricted to AEAD cipher suites
/// (rustls offers nothing else, but listing them keeps the policy explicit and reviewable:
/// the CBC suites in the FIXS recommendation are deliberately absent).
pub fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    use rustls::crypto::ring as r;
    let mut p = r::default_provider();
    p.cipher_suites = vec![
        r::cipher_suite::TLS13_AES_256_GCM_SHA384,
        r::cipher_suite::TLS13_AES_128_GCM_SHA256,
        r::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        r::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        r::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        r::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        r::cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        r::cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        r::cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    std::sync::Arc::new(p)
}

/// Protocol versions: TLS 1.2 and 1.3, or 1.3 alone.
pub(crate) fn versions(tls13_only: bool) -> &'static [&'static rustls::SupportedProtocolVersion] {
    static ONLY13: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    static BOTH: [&rustls::SupportedProtocolVersion; 2] =
        [&rustls::version::TLS13, &rustls::version::TLS12];
    if tls13_only {
        &ONLY13
    } else {
        &BOTH
    }
}

//! The tokio layer of the FIX side: TLS acceptors and initiators that move bytes between
//! sockets and the sans-IO `fix::session::Session`, and hand validated events to the bridge
//! over a bounded channel. When that channel is full the session task stops reading its
//! socket, so back-pressure reaches the counterparty through TCP instead of growing a queue.

pub mod acceptor;
pub mod credentials;
mod drive;
pub mod from_config;
pub mod initiator;
mod refuse;
mod store_writer;

pub use acceptor::{run_acceptor, run_acceptor_with, AcceptorConfig, SessionBinding};
pub use credentials::{CredentialSettings, Credentials};
pub use drive::{Ack, FixEvent, OutboundApp, Outbox};
pub use initiator::{
    market_data_request, run_initiator, run_initiator_with, InitiatorConfig, Reconnect,
};

/// Why a transport stopped. Per-connection problems never end up here: they are logged and
/// audited, and the listener or reconnect loop carries on.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{name}: TLS material: {source}")]
    Tls {
        name: String,
        #[source]
        source: crate::tls::TlsError,
    },
    #[error("{name}: cannot listen on {addr}: {source}")]
    Bind {
        name: String,
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{name}: {reason}")]
    Config { name: String, reason: String },
}

pub(crate) use crate::clock::now_ns;

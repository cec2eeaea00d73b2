//! NATS JetStream as the distributed backbone: the bridge's sink writes every envelope into a
//! replicated stream (`sink`), edges read it and serve CURVE subscribers of their own
//! (`edge`). The local journal stays the bridge's own record; the stream is the second
//! backend that carries it beyond one machine.

pub mod connect;
pub mod edge;
pub mod sink;
pub mod stream;
pub mod subject;

/// Errors talking to JetStream, naming the server set or stream and the reason.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("nats {servers}: {reason}")]
    Connect { servers: String, reason: String },
    #[error("nats: {path}: {reason}")]
    Secret { path: String, reason: String },
    #[error("stream {stream}: {reason}")]
    Stream { stream: String, reason: String },
    /// The stream exists with settings that cannot carry our subjects: retrying will not help.
    #[error("stream {stream}: {reason}")]
    Schema { stream: String, reason: String },
}

/// Back-off between attempts: doubling from 250 ms to 10 s.
pub(crate) fn backoff(attempt: u32) -> std::time::Duration {
    let ms = 250u64.saturating_mul(1u64 << attempt.min(6));
    std::time::Duration::from_millis(ms.min(10_000))
}

//! The tokio layer over the sans-IO CURVE sessions: a `Publisher` (bind, one task per
//! connection, per-subscriber bounded queues, live re-authorization) and a `Subscriber`
//! (connect, reconnect with back-off, resubscribe, local filtering).
//!
//! Sealing happens on each connection's own task, so per-subscriber encryption spreads across
//! the runtime's worker threads; `publish` itself only matches topics and enqueues an `Arc`.

pub mod endpoint;
pub mod publisher;
pub mod subscriber;
pub mod subscriptions;

pub use endpoint::Endpoint;
pub use publisher::{
    OverflowPolicy, Publisher, PublisherConfig, PublisherCounters, SubscriberStats,
};
pub use subscriber::{SubEvent, Subscriber, SubscriberConfig};

#[derive(Debug, thiserror::Error)]
pub enum PubSubError {
    #[error("bad endpoint {0:?}: expected tcp://host:port or ipc://path")]
    BadEndpoint(String),
    #[error("cannot bind {endpoint}: {source}")]
    Bind {
        endpoint: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no endpoints to bind")]
    NoEndpoints,
}

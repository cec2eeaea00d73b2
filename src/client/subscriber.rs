//! The connected subscriber: the transport's CURVE `Subscriber` (which reconnects with
//! exponential back-off and resubscribes) plus envelope decoding and gap detection.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;

use super::decode::{FrameDecoder, Update};
use crate::keys::{Keypair, PublicKey};
use crate::pubsub::{self, PubSubError, SubEvent, SubscriberConfig};

/// Connection options with production defaults; see [`Subscriber::connect`].
#[derive(Clone, Debug)]
pub struct Options {
    /// First reconnect delay; doubles after each failed attempt up to `reconnect_max`.
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// PING interval (dead publishers are noticed after `heartbeat_timeout`).
    pub heartbeat: Option<Duration>,
    pub heartbeat_timeout: Duration,
    /// Messages buffered for the application before the socket stops being read.
    pub queue: usize,
    /// More publisher keys tried in order after the main one when a handshake fails (during
    /// a server key rotation, list both; the subscriber moves to the one still served).
    pub fallback_server_keys: Vec<PublicKey>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            heartbeat: Some(Duration::from_secs(10)),
            heartbeat_timeout: Duration::from_secs(30),
            queue: 10_000,
            fallback_server_keys: Vec::new(),
        }
    }
}

/// A CURVE subscriber yielding typed [`Update`]s.
///
/// ```no_run
/// # async fn demo(server: fixcurve::keys::PublicKey, me: fixcurve::keys::Keypair) {
/// use fixcurve::client::{Subscriber, Update};
/// let mut sub = Subscriber::connect("tcp://127.0.0.1:5556", server, me, &["md.VENUE1."]).unwrap();
/// while let Some(u) = sub.recv().await {
///     match u {
///         Update::Event(r) => println!("{} #{} {:?}", r.topic, r.envelope.seq, r.envelope.event),
///         Update::Gap { topic, missing, .. } => eprintln!("{missing} lost on {topic}"),
///         other => eprintln!("{other:?}"),
///     }
/// }
/// # }
/// ```
pub struct Subscriber {
    inner: pubsub::Subscriber,
    decoder: FrameDecoder,
    pending: VecDeque<Update>,
}

impl Subscriber {
    /// Connects in the background (needs a tokio runtime); fails only on a malformed
    /// endpoint. An empty prefix list subscribes to everything.
    pub fn connect(
        endpoint: &str,
        server_key: PublicKey,
        client: Keypair,
        prefixes: &[&str],
    ) -> Result<Subscriber, PubSubError> {
        Self::connect_with(endpoint, server_key, client, prefixes, Options::default())
    }

    pub fn connect_with(
        endpoint: &str,
        server_key: PublicKey,
        client: Keypair,
        prefixes: &[&str],
        opts: Options,
    ) -> Result<Subscriber, PubSubError> {
        let mut cfg = SubscriberConfig::new(endpoint, server_key, client);
        cfg.subscriptions = if prefixes.is_empty() {
            vec![Bytes::new()]
        } else {
            prefixes
                .iter()
                .map(|p| Bytes::copy_from_slice(p.as_bytes()))
                .collect()
        };
        cfg.reconnect_min = opts.reconnect_min;
        cfg.reconnect_max = opts.reconnect_max;
        cfg.heartbeat_ivl = opts.heartbeat;
        cfg.heartbeat_timeout = opts.heartbeat_timeout;
        cfg.queue_capacity = opts.queue;
        cfg.fallback_server_keys = opts.fallback_server_keys;
        Ok(Subscriber {
            inner: pubsub::Subscriber::connect(cfg)?,
            decoder: FrameDecoder::new(),
            pending: VecDeque::new(),
        })
    }

    /// Adds a prefix (sent now, and again after every reconnect).
    pub fn subscribe(&self, prefix: &str) {
        self.inner
            .subscribe(Bytes::copy_from_slice(prefix.as_bytes()));
    }

    pub fn unsubscribe(&self, prefix: &str) {
        self.inner
            .unsubscribe(Bytes::copy_from_slice(prefix.as_bytes()));
    }

    /// The next update; `None` only if the connection task ended. Sequence state survives
    /// reconnects, so messages lost while disconnected are reported as a `Gap`.
    pub async fn recv(&mut self) -> Option<Update> {
        loop {
            if let Some(u) = self.pending.pop_front() {
                return Some(u);
            }
            match self.inner.recv().await? {
                SubEvent::Connected => return Some(Update::Connected),
                SubEvent::Disconnected { reason } => return Some(Update::Disconnected { reason }),
                SubEvent::Message(frames) => {
                    let mut out = Vec::with_capacity(2);
                    self.decoder.push(&frames, &mut out);
                    self.pending.extend(out);
                }
            }
        }
    }
}

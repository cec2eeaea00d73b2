//! The connected subscriber: the transport's CURVE `Subscriber` (which reconnects with
//! exponential back-off and resubscribes) plus envelope decoding and gap detection, and,
//! given the publisher's replay endpoint, recovery: a gap on a journaled topic is filled from
//! the journal before the event that revealed it, so the application sees every event once
//! and in order; a `Gap` is reported only for what the journal no longer holds.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;

use super::decode::{FrameDecoder, Update};
use crate::keys::{Keypair, PublicKey};
use crate::pubsub::{self, PubSubError, SubEvent, SubscriberConfig};
use crate::replay::{ReplayClient, ReplayError};

/// With a replay endpoint, this long without a message triggers a tail check.
const TAIL_CHECK: Duration = Duration::from_secs(1);

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
    /// The publisher's replay endpoint (`[publish] replay_bind`): gaps are filled from it.
    pub replay: Option<String>,
    /// At the first connect, replay every subscribed prefix from this per-topic sequence
    /// number (1: everything the journal holds) before live events. Needs `replay`.
    pub since: Option<u64>,
    /// At the first connect, apply the market-data snapshots of the subscribed prefixes
    /// (each valid at its seq; live updates continue after it). Needs `replay`.
    pub snapshot: bool,
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
            replay: None,
            since: None,
            snapshot: false,
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
    recovery: Option<Recovery>,
    prefixes: Vec<String>,
    since: Option<u64>,
    snapshot: bool,
    started: bool,
    /// Each prefix's journal position where the `since` replay ended, read once more when the
    /// first live message shows the subscription in effect (see [`Subscriber::catch_up`]).
    catch_up: Vec<(String, u64)>,
}

/// The replay endpoint and the connection to it (opened when first needed, reopened after a
/// failure).
struct Recovery {
    endpoint: String,
    server_key: PublicKey,
    client: Keypair,
    conn: Option<ReplayClient>,
}

impl Recovery {
    async fn client(&mut self) -> Result<&mut ReplayClient, ReplayError> {
        if self.conn.is_none() {
            self.conn = Some(
                ReplayClient::connect(&self.endpoint, self.server_key, self.client.clone()).await?,
            );
        }
        match self.conn.as_mut() {
            Some(c) => Ok(c),
            None => Err(ReplayError::Timeout(self.endpoint.clone())),
        }
    }

    /// Journaled records of `topic` (exactly) with `first <= seq <= last`, in order.
    async fn range(
        &mut self,
        topic: &str,
        first: u64,
        last: u64,
    ) -> Result<Vec<(String, Bytes)>, ReplayError> {
        let mut out = Vec::new();
        let mut from = 0;
        loop {
            let r = self.client().await?.replay(topic, first, from).await;
            let batch = match r {
                Ok(b) => b,
                Err(e) => {
                    self.conn = None;
                    return Err(e);
                }
            };
            let mut done = batch.end;
            for (t, p) in batch.records {
                if t != topic {
                    continue;
                }
                match crate::envelope::Envelope::decode(&p) {
                    Ok(env) if env.seq > last => done = true,
                    Ok(env) if env.seq >= first => out.push((t, p)),
                    _ => {}
                }
            }
            if done {
                return Ok(out);
            }
            from = batch.next;
        }
    }
}

/// Replays the journal under `prefix` from per-topic seq `since`, starting at journal
/// position `from`, through `decoder` into `out` (duplicates dropped there). Returns the
/// position after the last record read. A connection that failed is dropped, to be reopened.
async fn replay_prefix(
    rec: &mut Recovery,
    decoder: &mut FrameDecoder,
    prefix: &str,
    since: u64,
    mut from: u64,
    out: &mut Vec<Update>,
) -> Result<u64, ReplayError> {
    loop {
        let r = match rec.client().await {
            Ok(c) => c.replay(prefix, since, from).await,
            Err(e) => Err(e),
        };
        let b = match r {
            Ok(b) => b,
            Err(e) => {
                if !matches!(e, ReplayError::Refused { .. }) {
                    rec.conn = None;
                }
                return Err(e);
            }
        };
        for (t, payload) in &b.records {
            let frames = [Bytes::from(t.clone().into_bytes()), payload.clone()];
            decoder.push(&frames, out);
        }
        from = b.next;
        if b.end {
            return Ok(from);
        }
    }
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
        let mut cfg = SubscriberConfig::new(endpoint, server_key, client.clone());
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
        let recovery = opts.replay.map(|endpoint| Recovery {
            endpoint,
            server_key,
            client: client.clone(),
            conn: None,
        });
        Ok(Subscriber {
            inner: pubsub::Subscriber::connect(cfg)?,
            decoder: opts.since.map(FrameDecoder::resuming).unwrap_or_default(),
            pending: VecDeque::new(),
            recovery,
            prefixes: prefixes.iter().map(|p| (*p).to_owned()).collect(),
            since: opts.since,
            snapshot: opts.snapshot,
            started: false,
            catch_up: Vec::new(),
        })
    }

    /// Fills a gap from the journal: recovered events in order, then a `Gap` for whatever it
    /// no longer holds (or for all of it, if the replay endpoint cannot be reached).
    async fn fill(&mut self, topic: String, expected: u64, missing: u64) {
        let last = expected.saturating_add(missing).saturating_sub(1);
        let Some(rec) = self.recovery.as_mut() else {
            return;
        };
        let got = match rec.range(&topic, expected, last).await {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(%topic, error = %e, "gap not recovered from the replay endpoint");
                Vec::new()
            }
        };
        let mut next = expected;
        for (t, p) in got {
            let Ok(env) = crate::envelope::Envelope::decode(&p) else {
                continue;
            };
            if env.seq < next {
                continue;
            }
            if env.seq > next {
                self.pending.push_back(Update::Gap {
                    topic: topic.clone(),
                    expected: next,
                    missing: env.seq - next,
                });
            }
            next = env.seq + 1;
            self.pending
                .push_back(Update::Event(Box::new(super::decode::Received {
                    topic: t,
                    envelope: env,
                })));
        }
        if next <= last {
            self.pending.push_back(Update::Gap {
                topic,
                expected: next,
                missing: last + 1 - next,
            });
        }
    }

    /// After an idle `TAIL_CHECK`: journaled events beyond the last one seen on each topic. A
    /// loss at the very end of a burst has no later message to reveal it as a gap.
    async fn tail(&mut self) {
        let topics = self.decoder.topics(256);
        let Some(rec) = self.recovery.as_mut() else {
            return;
        };
        let mut out = Vec::new();
        for (topic, seq) in topics {
            let got = match rec.range(&topic, seq.saturating_add(1), u64::MAX).await {
                Ok(g) => g,
                Err(ReplayError::Refused { code, .. }) if code == "unknown-topic" => continue,
                Err(e) => {
                    tracing::debug!(%topic, error = %e, "tail check failed");
                    continue;
                }
            };
            for (t, p) in got {
                let frames = [Bytes::from(t.into_bytes()), p];
                self.decoder.push(&frames, &mut out);
            }
        }
        self.pending.extend(out);
    }

    /// At the first connect: snapshots, then the journal from `since`, for every prefix.
    async fn initial_fetch(&mut self) {
        let Some(rec) = self.recovery.as_mut() else {
            return;
        };
        let prefixes = if self.prefixes.is_empty() {
            vec![String::new()]
        } else {
            self.prefixes.clone()
        };
        let mut out = Vec::new();
        for p in &prefixes {
            if self.snapshot {
                let snaps = match rec.client().await {
                    Ok(c) => c.snapshot(p).await,
                    Err(e) => Err(e),
                };
                match snaps {
                    Ok(list) => {
                        for (t, payload) in list {
                            self.decoder.push_snapshot(&t, &payload, &mut out);
                        }
                    }
                    Err(e) => {
                        rec.conn = None;
                        tracing::warn!(prefix = %p, error = %e, "snapshot not fetched");
                    }
                }
            }
            if let Some(since) = self.since {
                match replay_prefix(rec, &mut self.decoder, p, since, 0, &mut out).await {
                    Ok(next) => self.catch_up.push((p.clone(), next)),
                    // Nothing journaled under it yet: the catch-up reads it from the start.
                    Err(ReplayError::Refused { code, .. }) if code == "unknown-topic" => {
                        self.catch_up.push((p.clone(), 0))
                    }
                    Err(e @ ReplayError::Refused { .. }) => {
                        tracing::warn!(prefix = %p, error = %e, "replay from --since refused");
                    }
                    // Unreachable or cut off: the catch-up tries it again, from the start
                    // (what was read already is dropped there as duplicates).
                    Err(e) => {
                        tracing::warn!(prefix = %p, error = %e, "replay from --since failed");
                        self.catch_up.push((p.clone(), 0));
                    }
                }
            }
        }
        self.pending.extend(out);
    }

    /// What each prefix's journal gained after its `since` replay ended, read before the
    /// first live message is delivered (`again`: false) and at each idle tail check until
    /// then (`again`: true, the positions kept). The replay starts when the handshake
    /// completes, while the subscription is still on its way to the publisher (ZMTP does not
    /// acknowledge it), so an event published in between is in neither the replay nor the
    /// live stream — and on a topic not seen before, no later event would show it missing.
    /// A live message proves the subscription in effect, and everything published before it
    /// is journaled by then (the bridge journals before it publishes). Duplicates of the live
    /// stream are dropped by sequence number.
    async fn catch_up(&mut self, again: bool) {
        let prefixes = std::mem::take(&mut self.catch_up);
        let (Some(since), Some(rec)) = (self.since, self.recovery.as_mut()) else {
            return;
        };
        let mut out = Vec::new();
        for (p, from) in prefixes {
            let next = match replay_prefix(rec, &mut self.decoder, &p, since, from, &mut out).await
            {
                Ok(next) => next,
                Err(ReplayError::Refused { code, .. }) if code == "unknown-topic" => from,
                Err(e) => {
                    tracing::warn!(prefix = %p, error = %e, "catch-up after the --since replay failed");
                    from
                }
            };
            if again {
                self.catch_up.push((p, next));
            }
        }
        self.pending.extend(out);
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
            let recovering = self.recovery.is_some();
            let idle = async move {
                if recovering {
                    tokio::time::sleep(TAIL_CHECK).await
                } else {
                    std::future::pending::<()>().await
                }
            };
            let ev = tokio::select! {
                ev = self.inner.recv() => ev?,
                _ = idle => {
                    if !self.catch_up.is_empty() {
                        self.catch_up(true).await;
                    }
                    self.tail().await;
                    continue;
                }
            };
            match ev {
                SubEvent::Connected => {
                    if !self.started {
                        self.started = true;
                        self.initial_fetch().await;
                    }
                    self.pending.push_front(Update::Connected);
                }
                SubEvent::Disconnected { reason } => return Some(Update::Disconnected { reason }),
                SubEvent::Message(frames) => {
                    if !self.catch_up.is_empty() {
                        self.catch_up(false).await;
                    }
                    crate::stagetrace::mark_payload(
                        crate::stagetrace::Stage::Delivered,
                        frames.get(1).map(|p| &p[..]),
                    );
                    let mut out = Vec::with_capacity(2);
                    self.decoder.push(&frames, &mut out);
                    for u in out {
                        match u {
                            Update::Gap {
                                topic,
                                expected,
                                missing,
                            } if self.recovery.is_some() => {
                                self.fill(topic, expected, missing).await;
                            }
                            other => self.pending.push_back(other),
                        }
                    }
                }
            }
        }
    }
}

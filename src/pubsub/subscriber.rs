//! The CURVE subscriber: a background task that connects, completes the handshake, sends the
//! subscriptions, filters locally (as a libzmq SUB does, since a publisher may still deliver
//! a prefix we just cancelled) and reconnects with exponential back-off, resubscribing.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::endpoint::Endpoint;
use super::subscriptions::Subscriptions;
use super::PubSubError;
use crate::curve::{os_rng, ClientEvent, ClientSession, SessionError};
use crate::keys::{Keypair, PublicKey};

#[derive(Debug, Clone)]
pub struct SubscriberConfig {
    pub endpoint: String,
    pub server_key: PublicKey,
    /// More publisher keys, tried in order after `server_key` when a handshake fails (a
    /// server key rotation: list the new key and the old one, and the subscriber moves to
    /// whichever the publisher still serves). The key that worked is kept until it fails.
    pub fallback_server_keys: Vec<PublicKey>,
    pub client: Keypair,
    /// Topic prefixes; an empty prefix means everything.
    pub subscriptions: Vec<Bytes>,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    pub handshake_timeout: Duration,
    pub heartbeat_ivl: Option<Duration>,
    pub heartbeat_timeout: Duration,
    pub max_frame: usize,
    /// Events buffered for the application before the socket stops being read.
    pub queue_capacity: usize,
}

impl SubscriberConfig {
    pub fn new(endpoint: impl Into<String>, server_key: PublicKey, client: Keypair) -> Self {
        SubscriberConfig {
            endpoint: endpoint.into(),
            server_key,
            fallback_server_keys: Vec::new(),
            client,
            subscriptions: Vec::new(),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            heartbeat_ivl: Some(Duration::from_secs(10)),
            heartbeat_timeout: Duration::from_secs(30),
            max_frame: 16 * 1024 * 1024,
            queue_capacity: 10_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubEvent {
    Message(Vec<Bytes>),
    Connected,
    Disconnected { reason: String },
}

enum Ctl {
    Subscribe(Bytes),
    Unsubscribe(Bytes),
}

/// Events of one socket read travel to the application together, at most this many: a
/// channel hand-over per message (semaphore, waker, queue block) cost as much as opening
/// the message on 100-byte traffic.
const BATCH: usize = 64;

pub struct Subscriber {
    events: mpsc::Receiver<Vec<SubEvent>>,
    /// The rest of the last batch received.
    pending: VecDeque<SubEvent>,
    ctl: mpsc::UnboundedSender<Ctl>,
    task: tokio::task::JoinHandle<()>,
}

impl Subscriber {
    /// Starts the background task (needs a tokio runtime). Fails only on a malformed endpoint.
    pub fn connect(cfg: SubscriberConfig) -> Result<Subscriber, PubSubError> {
        let endpoint = Endpoint::parse(&cfg.endpoint)?;
        // `queue_capacity` events, counted in batches of up to BATCH.
        let (ev_tx, events) = mpsc::channel(cfg.queue_capacity.div_ceil(BATCH).max(1));
        let (ctl, ctl_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(cfg, endpoint, ev_tx, ctl_rx));
        Ok(Subscriber {
            events,
            pending: VecDeque::new(),
            ctl,
            task,
        })
    }

    /// The next event; `None` once the subscriber is dropped or its task ended.
    pub async fn recv(&mut self) -> Option<SubEvent> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Some(ev);
            }
            self.pending = self.events.recv().await?.into();
        }
    }

    pub fn subscribe(&self, prefix: impl Into<Bytes>) {
        let _ = self.ctl.send(Ctl::Subscribe(prefix.into()));
    }

    pub fn unsubscribe(&self, prefix: impl Into<Bytes>) {
        let _ = self.ctl.send(Ctl::Unsubscribe(prefix.into()));
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(
    cfg: SubscriberConfig,
    endpoint: Endpoint,
    events: mpsc::Sender<Vec<SubEvent>>,
    mut ctl: mpsc::UnboundedReceiver<Ctl>,
) {
    let mut subs = Subscriptions::default();
    for s in &cfg.subscriptions {
        subs.add(s.clone());
    }
    let mut backoff = cfg.reconnect_min;
    let server_keys: Vec<PublicKey> = std::iter::once(cfg.server_key)
        .chain(cfg.fallback_server_keys.iter().copied())
        .collect();
    let mut key_index = 0usize;
    loop {
        let server_key = server_keys
            .get(key_index)
            .copied()
            .unwrap_or(cfg.server_key);
        let mut reached = false;
        let result = match &endpoint {
            Endpoint::Tcp(..) => {
                match tokio::net::TcpStream::connect(endpoint.host_port().unwrap_or_default()).await
                {
                    Ok(s) => {
                        let _ = s.set_nodelay(true);
                        reached = true;
                        session(&cfg, server_key, s, &events, &mut ctl, &mut subs).await
                    }
                    Err(e) => Err((format!("connect {}: {e}", cfg.endpoint), false)),
                }
            }
            Endpoint::Ipc(path) => match tokio::net::UnixStream::connect(path).await {
                Ok(s) => {
                    reached = true;
                    session(&cfg, server_key, s, &events, &mut ctl, &mut subs).await
                }
                Err(e) => Err((format!("connect {}: {e}", cfg.endpoint), false)),
            },
        };
        let (reason, was_connected) = match result {
            Ok(()) => return, // the application dropped the Subscriber
            Err(x) => x,
        };
        if events.is_closed() {
            return;
        }
        tracing::debug!(endpoint = %cfg.endpoint, %reason, "subscriber disconnected");
        if events
            .send(vec![SubEvent::Disconnected { reason }])
            .await
            .is_err()
        {
            return;
        }
        if was_connected {
            backoff = cfg.reconnect_min;
        } else if reached && server_keys.len() > 1 {
            // The publisher took the connection but not the handshake: it may no longer (or
            // not yet) serve this key. Try the next one at once.
            key_index = (key_index + 1) % server_keys.len();
            tracing::info!(endpoint = %cfg.endpoint, next = %server_keys.get(key_index).copied().unwrap_or(server_key), "handshake failed; trying the next server key");
            backoff = cfg.reconnect_min;
        }
        // Apply subscription changes made while disconnected.
        while let Ok(c) = ctl.try_recv() {
            apply(&mut subs, c);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(cfg.reconnect_max);
    }
}

fn apply(subs: &mut Subscriptions, c: Ctl) -> (bool, Bytes) {
    match c {
        Ctl::Subscribe(p) => {
            subs.add(p.clone());
            (true, p)
        }
        Ctl::Unsubscribe(p) => {
            subs.remove(&p);
            (false, p)
        }
    }
}

/// One connection. `Err((reason, was_connected))` when it ends; `Ok` when the app is gone.
async fn session<S>(
    cfg: &SubscriberConfig,
    server_key: PublicKey,
    stream: S,
    events: &mpsc::Sender<Vec<SubEvent>>,
    ctl: &mut mpsc::UnboundedReceiver<Ctl>,
    subs: &mut Subscriptions,
) -> Result<(), (String, bool)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut s = ClientSession::new(cfg.client.clone(), server_key, cfg.max_frame, os_rng());
    let mut out = BytesMut::with_capacity(8192);
    out.extend_from_slice(&s.greeting());
    let deadline = Instant::now() + cfg.handshake_timeout;
    let mut connected = false;
    let hb_ivl = cfg.heartbeat_ivl.unwrap_or(Duration::from_secs(1));
    let mut hb = tokio::time::interval(hb_ivl);
    hb.tick().await;
    let mut last_rx = Instant::now();
    let ttl_ds = (cfg.heartbeat_timeout.as_millis() / 100).min(u128::from(u16::MAX)) as u16;
    loop {
        if !out.is_empty() {
            if let Err(e) = wr.write_all(&out).await {
                return Err((format!("write: {e}"), connected));
            }
            out.clear();
        }
        s.input().reserve(64 * 1024);
        tokio::select! {
            r = rd.read_buf(s.input()) => {
                match r {
                    Ok(0) => return Err(("publisher closed the connection".into(), connected)),
                    Err(e) => return Err((format!("read: {e}"), connected)),
                    Ok(_) => {}
                }
                last_rx = Instant::now();
                let read_at = crate::stagetrace::now();
                let mut batch = Vec::new();
                let ended = loop {
                    match s.poll(&mut out) {
                        Ok(None) => break None,
                        Ok(Some(ClientEvent::Ready(_))) => {
                            for p in subs.prefixes() {
                                let _ = s.subscribe(p, &mut out);
                            }
                            connected = true;
                            batch.push(SubEvent::Connected);
                        }
                        Ok(Some(ClientEvent::Message(parts))) => {
                            let traced = crate::stagetrace::received_ns(parts.get(1).map(|p| &p[..]));
                            crate::stagetrace::mark_at(crate::stagetrace::Stage::ClientRead, read_at, traced);
                            crate::stagetrace::mark(crate::stagetrace::Stage::ClientDecrypted, traced);
                            let wanted = parts.first().map(|t| subs.matches(t)).unwrap_or(false);
                            if wanted {
                                batch.push(SubEvent::Message(parts));
                                if batch.len() >= BATCH && events.send(std::mem::take(&mut batch)).await.is_err() {
                                    return Ok(());
                                }
                            }
                        }
                        Err(SessionError::Curve(crate::curve::CurveError::Refused(r))) => {
                            break Some(format!("publisher refused the handshake (ERROR {r})"));
                        }
                        Err(e) => break Some(format!("protocol: {e}")),
                    }
                };
                // What arrived before a protocol error is still delivered, then the error.
                if !batch.is_empty() && events.send(batch).await.is_err() {
                    return Ok(());
                }
                if let Some(reason) = ended {
                    return Err((reason, connected));
                }
            }
            c = ctl.recv() => {
                let Some(c) = c else { return Ok(()) };
                let (on, p) = apply(subs, c);
                if s.is_ready() {
                    let _ = if on { s.subscribe(&p, &mut out) } else { s.cancel(&p, &mut out) };
                }
            }
            _ = tokio::time::sleep_until(deadline.into()), if !connected => {
                return Err(("handshake timeout".into(), connected));
            }
            _ = hb.tick(), if connected => {
                if s.peer_ttl().is_some_and(|ttl| last_rx.elapsed() > ttl) {
                    return Err(("publisher heartbeat TTL expired".into(), connected));
                }
                if cfg.heartbeat_ivl.is_some() {
                    if last_rx.elapsed() > cfg.heartbeat_timeout {
                        return Err(("heartbeat timeout".into(), connected));
                    }
                    let _ = s.send_ping(ttl_ds, &mut out);
                }
            }
        }
    }
}

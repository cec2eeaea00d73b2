//! The CURVE publisher: binds endpoints, runs one task per connection, fans messages out to
//! per-subscriber bounded queues, and re-asks the authorizer whenever it says decisions may
//! have changed (live revocation and topic ACL changes).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch, Notify, Semaphore};

use super::endpoint::Endpoint;
use super::subscriptions::Subscriptions;
use super::PubSubError;
use crate::admission::{AllowList, ConnectionLimits, PreHandshake, Refusal};
use crate::audit::throttle::{Refused, Throttle};
use crate::audit::{AuditLog, AuditRecord, Side};
use crate::auth::{Authorizer, Decision, PeerAddr, TopicAcl};
use crate::curve::{os_rng, ServerEvent, ServerSession};
use crate::keys::{Keypair, PublicKey};

/// What to do when a subscriber's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverflowPolicy {
    /// Drop the message for that subscriber only, and count it.
    #[default]
    Drop,
    /// Close that subscriber's connection (it reconnects and resubscribes).
    Disconnect,
}

#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// `tcp://host:port` (port 0 picks one) or `ipc://path`.
    pub endpoints: Vec<String>,
    pub server: Keypair,
    /// Per subscriber, in messages.
    pub queue_capacity: usize,
    pub overflow: OverflowPolicy,
    /// A connection that has not completed the CURVE handshake by then is closed.
    pub handshake_timeout: Duration,
    /// Connections still in the handshake (not yet authenticated) at once; more are closed
    /// at accept. Apart from `max_subscribers`, so unauthenticated peers cannot lock
    /// subscribers out.
    pub max_handshakes: usize,
    /// Connections in the handshake from one IP address at once.
    pub max_handshakes_per_ip: usize,
    /// CIDR blocks allowed to connect (checked at accept); empty = any.
    pub allow_ips: AllowList,
    /// Send PING this often (None: only answer the peer's PINGs).
    pub heartbeat_ivl: Option<Duration>,
    /// With heartbeats on, close a connection silent for this long.
    pub heartbeat_timeout: Duration,
    /// Largest frame accepted from a peer (subscribers send only small frames).
    pub max_frame: usize,
    /// Authenticated subscribers at once; a key that passes the handshake beyond this is
    /// refused (CURVE ERROR) and audited.
    pub max_subscribers: usize,
    /// Flush budget per connection at shutdown.
    pub linger: Duration,
}

impl PublisherConfig {
    pub fn new(endpoints: Vec<String>, server: Keypair) -> Self {
        PublisherConfig {
            endpoints,
            server,
            queue_capacity: 10_000,
            overflow: OverflowPolicy::Drop,
            handshake_timeout: Duration::from_secs(2),
            max_handshakes: 256,
            max_handshakes_per_ip: 32,
            allow_ips: AllowList::default(),
            heartbeat_ivl: Some(Duration::from_secs(10)),
            heartbeat_timeout: Duration::from_secs(30),
            max_frame: 64 * 1024,
            max_subscribers: 1024,
            linger: Duration::from_secs(1),
        }
    }
}

impl PublisherCounters {
    /// As Prometheus samples, grouped by metric name.
    pub fn samples(&self) -> Vec<crate::metrics::CounterSample> {
        use crate::metrics::CounterSample as S;
        let one = |name, help, value| S {
            name,
            help,
            label: None,
            value,
        };
        let labelled = |name, help, key, rows: Vec<(&'static str, u64)>| {
            rows.into_iter().map(move |(v, value)| S {
                name,
                help,
                label: Some((key, v)),
                value,
            })
        };
        let mut out = vec![one(
            "fixcurve_curve_connections_total",
            "TCP/IPC connections accepted on the CURVE endpoints",
            self.connections_accepted,
        )];
        out.extend(labelled(
            "fixcurve_curve_connections_refused_total",
            "CURVE connections refused before or at authentication",
            "reason",
            vec![
                ("allow_list", self.refused_allow_list),
                ("per_ip_cap", self.refused_per_ip),
                ("handshake_cap", self.refused_handshake_cap),
                ("subscriber_cap", self.refused_subscriber_cap),
            ],
        ));
        out.extend(labelled(
            "fixcurve_curve_handshakes_total",
            "CURVE handshakes by outcome",
            "result",
            vec![
                ("allowed", self.handshakes_allowed),
                ("denied", self.handshakes_denied),
                ("failed", self.handshakes_failed),
            ],
        ));
        out.extend([
            one(
                "fixcurve_curve_handshake_timeouts_total",
                "CURVE handshakes not completed within handshake_timeout_ms (also counted as failed)",
                self.handshake_timeouts,
            ),
            one(
                "fixcurve_curve_revoked_disconnects_total",
                "live subscribers closed because their key was revoked or expired",
                self.revoked_disconnects,
            ),
            one(
                "fixcurve_curve_overflow_disconnects_total",
                "subscribers closed by the disconnect slow_policy",
                self.overflow_disconnects,
            ),
            one(
                "fixcurve_curve_protocol_errors_total",
                "connections closed for a ZMTP/CURVE protocol error",
                self.protocol_errors,
            ),
        ]);
        out
    }
}

/// Per-subscriber counters, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberStats {
    pub id: u64,
    pub peer: String,
    pub name: String,
    pub key: PublicKey,
    /// Messages written to the connection.
    pub sent: u64,
    /// Messages dropped because the queue was full.
    pub dropped: u64,
    pub bytes_sent: u64,
    pub queue_depth: usize,
    pub queue_capacity: usize,
    pub subscriptions: Vec<String>,
    pub connected_at: SystemTime,
}

/// Publisher-wide counters, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublisherCounters {
    pub connections_accepted: u64,
    /// Closed at accept: address not in `allow_ips`.
    pub refused_allow_list: u64,
    /// Closed at accept: `max_handshakes_per_ip` reached.
    pub refused_per_ip: u64,
    /// Closed at accept: `max_handshakes` reached.
    pub refused_handshake_cap: u64,
    /// Authenticated, but `max_subscribers` reached.
    pub refused_subscriber_cap: u64,
    pub handshakes_allowed: u64,
    pub handshakes_denied: u64,
    /// Garbage, protocol errors, peers that hung up, and timeouts.
    pub handshakes_failed: u64,
    /// Of which: no complete handshake within `handshake_timeout`.
    pub handshake_timeouts: u64,
    pub revoked_disconnects: u64,
    pub overflow_disconnects: u64,
    pub protocol_errors: u64,
    pub messages_published: u64,
}

#[derive(Default)]
struct Counters {
    connections_accepted: AtomicU64,
    refused_allow_list: AtomicU64,
    refused_per_ip: AtomicU64,
    refused_handshake_cap: AtomicU64,
    refused_subscriber_cap: AtomicU64,
    handshakes_allowed: AtomicU64,
    handshakes_denied: AtomicU64,
    handshakes_failed: AtomicU64,
    handshake_timeouts: AtomicU64,
    revoked_disconnects: AtomicU64,
    overflow_disconnects: AtomicU64,
    protocol_errors: AtomicU64,
    messages_published: AtomicU64,
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

type Message = Arc<Vec<Bytes>>;

struct Filter {
    subs: Subscriptions,
    acl: TopicAcl,
}

/// The publisher's view of one live subscriber.
struct SubHandle {
    id: u64,
    peer: PeerAddr,
    key: PublicKey,
    /// Which of our keys it authenticated against (rotation: closed when that key retires).
    server_key: PublicKey,
    name: Mutex<String>,
    filter: RwLock<Filter>,
    tx: mpsc::Sender<Message>,
    sent: AtomicU64,
    dropped: AtomicU64,
    bytes_sent: AtomicU64,
    kill: Notify,
    connected_at: SystemTime,
}

struct Inner {
    cfg: PublisherConfig,
    authorizer: Arc<dyn Authorizer>,
    audit: AuditLog,
    subscribers: RwLock<Vec<Arc<SubHandle>>>,
    next_id: AtomicU64,
    counters: Counters,
    /// Pre-authentication budget: allow-list, per-IP and total handshake caps.
    gate: PreHandshake,
    /// Authenticated subscribers.
    permits: Arc<Semaphore>,
    /// Refusals and failed handshakes: logged and audited one by one up to a burst, then
    /// summarised, so a flood cannot flood the logs.
    refusals: Throttle,
    shutdown: watch::Sender<bool>,
    /// Every task holds a clone; `shutdown` waits until all are gone.
    alive: Mutex<Option<mpsc::Sender<()>>>,
}

pub struct Publisher {
    inner: Arc<Inner>,
    local: Vec<String>,
    all_done: tokio::sync::Mutex<mpsc::Receiver<()>>,
}

/// Refusals of one kind logged one by one per window before they are summarised.
const REFUSAL_BURST: u32 = 20;
const REFUSAL_WINDOW: Duration = Duration::from_secs(10);

/// Largest amount of sealed output a connection buffers before it stops taking messages
/// from its queue (so a slow socket backs up into the bounded queue, where drops are counted).
/// Small on purpose: glibc keeps freed buffers resident, so this bounds idle RSS per
/// subscriber (256 KiB gave ~105 KiB idle, 16 KiB ~37 KiB; fan-out unchanged).
const OUT_HIGH_WATER: usize = 16 * 1024;

/// An output buffer that held more than this is given back once it is drained and the queue is empty:
/// a burst grows it to `OUT_HIGH_WATER` (plus one message), which idle subscribers would
/// otherwise keep for good. Below it, the buffer is kept for reuse. Under load the queue is
/// rarely empty, so the buffer stays; with 4 KiB here (and a 4 KiB input buffer) an idle
/// subscriber cost ~34 KiB, with 1 KiB (and 512 B) ~18 KiB, fan-out unchanged. Judged on
/// what the buffer held rather than on `capacity()` (which a write leaves near zero), the
/// release took 1,000 idle subscribers from 31 to 12 KiB each.
const OUT_KEEP_IDLE: usize = 1024;
/// Input buffer kept per subscriber between reads once the handshake is done.
const IN_KEEP: usize = 512;

impl Publisher {
    pub async fn bind(
        cfg: PublisherConfig,
        authorizer: Arc<dyn Authorizer>,
        audit: AuditLog,
    ) -> Result<Publisher, PubSubError> {
        if cfg.endpoints.is_empty() {
            return Err(PubSubError::NoEndpoints);
        }
        let (alive_tx, alive_rx) = mpsc::channel(1);
        let gate = PreHandshake::new(
            cfg.allow_ips.clone(),
            ConnectionLimits {
                max_connections_per_ip: cfg.max_handshakes_per_ip.max(1),
                max_concurrent_handshakes: cfg.max_handshakes.max(1),
                handshake_timeout_ms: u64::try_from(cfg.handshake_timeout.as_millis())
                    .unwrap_or(u64::MAX),
            },
        );
        let inner = Arc::new(Inner {
            permits: Arc::new(Semaphore::new(cfg.max_subscribers)),
            gate,
            refusals: Throttle::new(Side::Curve, audit.clone(), REFUSAL_WINDOW, REFUSAL_BURST),
            cfg,
            authorizer,
            audit,
            subscribers: RwLock::new(Vec::new()),
            next_id: AtomicU64::new(1),
            counters: Counters::default(),
            shutdown: watch::channel(false).0,
            alive: Mutex::new(Some(alive_tx.clone())),
        });
        let mut local = Vec::new();
        let mut listeners = Vec::new();
        for ep_text in &inner.cfg.endpoints {
            let ep = Endpoint::parse(ep_text)?;
            let bind_err = |source| PubSubError::Bind {
                endpoint: ep_text.clone(),
                source,
            };
            match &ep {
                Endpoint::Tcp(..) => {
                    let l = crate::admission::listen_tcp(ep.host_port().unwrap_or_default())
                        .await
                        .map_err(bind_err)?;
                    let addr = l.local_addr().map_err(bind_err)?;
                    local.push(format!("tcp://{addr}"));
                    listeners.push(Listener::Tcp(l));
                }
                Endpoint::Ipc(path) => {
                    // libzmq replaces a stale socket file left by a previous run.
                    if std::fs::symlink_metadata(path)
                        .map(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
                        .unwrap_or(false)
                    {
                        let _ = std::fs::remove_file(path);
                    }
                    let l = tokio::net::UnixListener::bind(path).map_err(bind_err)?;
                    local.push(ep.to_string());
                    listeners.push(Listener::Ipc(l, path.display().to_string()));
                }
            }
        }
        for l in listeners {
            tokio::spawn(accept_loop(inner.clone(), l, alive_tx.clone()));
        }
        Ok(Publisher {
            inner,
            local,
            all_done: tokio::sync::Mutex::new(alive_rx),
        })
    }

    /// The bound endpoints, with real ports after binding port 0.
    pub fn local_endpoints(&self) -> Vec<String> {
        self.local.clone()
    }

    /// Publishes `[topic, payload]`. Never blocks: a full subscriber queue drops (or
    /// disconnects, by policy) for that subscriber only.
    pub fn publish(&self, topic: Bytes, payload: Bytes) {
        self.publish_parts(vec![topic, payload]);
    }

    /// Publishes a multipart message; the first part is the topic matched against
    /// subscriptions and ACLs.
    pub fn publish_parts(&self, parts: Vec<Bytes>) {
        let Some(topic) = parts.first().cloned() else {
            return;
        };
        inc(&self.inner.counters.messages_published);
        let msg: Message = Arc::new(parts);
        let Ok(subs) = self.inner.subscribers.read() else {
            return;
        };
        for sub in subs.iter() {
            let wanted = match sub.filter.read() {
                Ok(f) => f.subs.matches(&topic) && f.acl.allows(&topic),
                Err(_) => false,
            };
            if !wanted {
                continue;
            }
            match sub.tx.try_send(msg.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    inc(&sub.dropped);
                    if self.inner.cfg.overflow == OverflowPolicy::Disconnect {
                        sub.kill.notify_one();
                    }
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
    }

    pub fn stats(&self) -> Vec<SubscriberStats> {
        let Ok(subs) = self.inner.subscribers.read() else {
            return Vec::new();
        };
        subs.iter()
            .map(|s| SubscriberStats {
                id: s.id,
                peer: s.peer.to_string(),
                name: s.name.lock().map(|n| n.clone()).unwrap_or_default(),
                key: s.key,
                sent: s.sent.load(Ordering::Relaxed),
                dropped: s.dropped.load(Ordering::Relaxed),
                bytes_sent: s.bytes_sent.load(Ordering::Relaxed),
                queue_depth: s.tx.max_capacity() - s.tx.capacity(),
                queue_capacity: s.tx.max_capacity(),
                subscriptions: s
                    .filter
                    .read()
                    .map(|f| {
                        f.subs
                            .prefixes()
                            .map(|p| String::from_utf8_lossy(p).into_owned())
                            .collect()
                    })
                    .unwrap_or_default(),
                connected_at: s.connected_at,
            })
            .collect()
    }

    /// The fullest subscriber queue right now (cheap: no allocation); lets a producer that
    /// prefers back-pressure over drops (e.g. a benchmark or a replay) pace itself.
    pub fn max_queue_depth(&self) -> usize {
        let Ok(subs) = self.inner.subscribers.read() else {
            return 0;
        };
        subs.iter()
            .map(|s| s.tx.max_capacity() - s.tx.capacity())
            .max()
            .unwrap_or(0)
    }

    pub fn counters(&self) -> PublisherCounters {
        let c = &self.inner.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PublisherCounters {
            connections_accepted: l(&c.connections_accepted),
            refused_allow_list: l(&c.refused_allow_list),
            refused_per_ip: l(&c.refused_per_ip),
            refused_handshake_cap: l(&c.refused_handshake_cap),
            refused_subscriber_cap: l(&c.refused_subscriber_cap),
            handshakes_allowed: l(&c.handshakes_allowed),
            handshakes_denied: l(&c.handshakes_denied),
            handshakes_failed: l(&c.handshakes_failed),
            handshake_timeouts: l(&c.handshake_timeouts),
            revoked_disconnects: l(&c.revoked_disconnects),
            overflow_disconnects: l(&c.overflow_disconnects),
            protocol_errors: l(&c.protocol_errors),
            messages_published: l(&c.messages_published),
        }
    }

    /// Stops accepting, gives each connection `linger` to flush its queue, then closes.
    pub async fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
        if let Ok(mut a) = self.inner.alive.lock() {
            a.take();
        }
        let mut done = self.all_done.lock().await;
        let _ = tokio::time::timeout(
            self.inner.cfg.linger + Duration::from_millis(500),
            done.recv(),
        )
        .await;
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.inner.shutdown.send(true);
    }
}

enum Listener {
    Tcp(tokio::net::TcpListener),
    Ipc(tokio::net::UnixListener, String),
}

async fn accept_loop(inner: Arc<Inner>, listener: Listener, alive: mpsc::Sender<()>) {
    let mut shutdown = inner.shutdown.subscribe();
    loop {
        let accepted = tokio::select! {
            _ = stopped(&mut shutdown) => return,
            a = accept(&listener) => a,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        inc(&inner.counters.connections_accepted);
        let admitted = match &peer {
            PeerAddr::Tcp(a) => inner
                .gate
                .admit(a.ip())
                .map(|(slot, permit)| (Some(slot), permit)),
            PeerAddr::Ipc(_) => inner.gate.admit_local().map(|permit| (None, permit)),
        };
        let pre_auth = match admitted {
            Ok(x) => x,
            Err(refusal) => {
                let c = &inner.counters;
                inc(match refusal {
                    Refusal::NotAllowListed => &c.refused_allow_list,
                    Refusal::TooManyFromIp => &c.refused_per_ip,
                    Refusal::TooManyHandshakes => &c.refused_handshake_cap,
                });
                inner.refusals.refuse(Refused {
                    event: "connection_refused",
                    peer: &peer.to_string(),
                    reason: refusal.reason(),
                    key: None,
                });
                continue; // dropping the stream closes it
            }
        };
        let inner = inner.clone();
        let alive = alive.clone();
        tokio::spawn(async move {
            match stream {
                Stream::Tcp(s) => serve(inner, s, peer, pre_auth).await,
                Stream::Ipc(s) => serve(inner, s, peer, pre_auth).await,
            }
            drop(alive);
        });
    }
}

enum Stream {
    Tcp(tokio::net::TcpStream),
    Ipc(tokio::net::UnixStream),
}

async fn accept(l: &Listener) -> std::io::Result<(Stream, PeerAddr)> {
    match l {
        Listener::Tcp(l) => {
            let (s, a) = l.accept().await?;
            let _ = s.set_nodelay(true);
            Ok((Stream::Tcp(s), PeerAddr::Tcp(a)))
        }
        Listener::Ipc(l, path) => {
            let (s, _) = l.accept().await?;
            Ok((Stream::Ipc(s), PeerAddr::Ipc(path.clone())))
        }
    }
}

/// Why a connection ended, for the log.
#[derive(Debug)]
enum Close {
    Io(std::io::Error),
    Eof,
    Session(crate::curve::SessionError),
    Timeout(&'static str),
    Denied(String),
    Revoked(String),
    Overflow,
    Shutdown,
}

impl std::fmt::Display for Close {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Close::Io(e) => write!(f, "i/o error: {e}"),
            Close::Eof => f.write_str("peer closed the connection"),
            Close::Session(e) => write!(f, "{e}"),
            Close::Timeout(what) => write!(f, "{what} timeout"),
            Close::Denied(r) => write!(f, "denied: {r}"),
            Close::Revoked(r) => write!(f, "revoked: {r}"),
            Close::Overflow => f.write_str("queue overflow (disconnect policy)"),
            Close::Shutdown => f.write_str("publisher shutting down"),
        }
    }
}

/// What an unauthenticated connection holds: its per-IP slot and its handshake permit.
type PreAuth = (
    Option<crate::admission::IpSlot>,
    crate::admission::HandshakePermit,
);

async fn serve<S>(inner: Arc<Inner>, stream: S, peer: PeerAddr, pre_auth: PreAuth)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let server_keys = inner
        .authorizer
        .server_keys()
        .unwrap_or_else(|| vec![inner.cfg.server.clone()]);
    let mut session = ServerSession::with_keys(server_keys, inner.cfg.max_frame, os_rng());
    // Grows with what is queued (up to OUT_HIGH_WATER) and shrinks when idle.
    let mut out = BytesMut::new();
    out.extend_from_slice(&session.greeting());
    let handshake = tokio::time::timeout(
        inner.cfg.handshake_timeout,
        handshake(&inner, &mut session, &mut rd, &mut wr, &mut out, &peer),
    )
    .await;
    // The pre-authentication budget is released whatever the outcome.
    drop(pre_auth);
    let failed = |reason: String| {
        inc(&inner.counters.handshakes_failed);
        inner.refusals.refuse(Refused {
            event: "handshake_failed",
            peer: &peer.to_string(),
            reason: &reason,
            key: None,
        });
    };
    let (key, server_key, grant, permit) = match handshake {
        Ok(Ok(x)) => x,
        Ok(Err(Close::Denied(_))) => return,
        Ok(Err(close)) => {
            if matches!(close, Close::Session(_)) {
                inc(&inner.counters.protocol_errors);
            }
            failed(close.to_string());
            return;
        }
        Err(_) => {
            inc(&inner.counters.handshake_timeouts);
            failed(format!(
                "no complete handshake within {} ms",
                inner.cfg.handshake_timeout.as_millis()
            ));
            return;
        }
    };
    let (tx, rx) = mpsc::channel(inner.cfg.queue_capacity.max(1));
    let handle = Arc::new(SubHandle {
        id: inner.next_id.fetch_add(1, Ordering::Relaxed),
        peer: peer.clone(),
        key,
        server_key,
        name: Mutex::new(grant.name.clone()),
        filter: RwLock::new(Filter {
            subs: Subscriptions::default(),
            acl: grant.topics,
        }),
        tx,
        sent: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
        bytes_sent: AtomicU64::new(0),
        kill: Notify::new(),
        connected_at: SystemTime::now(),
    });
    if let Ok(mut subs) = inner.subscribers.write() {
        subs.push(handle.clone());
    }
    let close = traffic(&inner, &handle, &mut session, rx, &mut rd, &mut wr, out).await;
    if let Ok(mut subs) = inner.subscribers.write() {
        subs.retain(|s| s.id != handle.id);
    }
    drop(permit);
    let name = handle.name.lock().map(|n| n.clone()).unwrap_or_default();
    match &close {
        Close::Revoked(reason) => {
            inc(&inner.counters.revoked_disconnects);
            inner.audit.record(
                AuditRecord::new(Side::Curve, "revoked_disconnect", false)
                    .peer(&peer)
                    .key(key)
                    .name(name.clone())
                    .reason(reason.clone()),
            );
        }
        Close::Overflow => inc(&inner.counters.overflow_disconnects),
        Close::Session(_) => inc(&inner.counters.protocol_errors),
        _ => {}
    }
    tracing::info!(%peer, %name, key = %key, reason = %close, "subscriber disconnected");
}

async fn write_out<W: AsyncWrite + Unpin>(wr: &mut W, out: &mut BytesMut) -> Result<(), Close> {
    if !out.is_empty() {
        wr.write_all(out).await.map_err(Close::Io)?;
        out.clear();
    }
    Ok(())
}

async fn handshake<R, W>(
    inner: &Inner,
    session: &mut ServerSession,
    rd: &mut R,
    wr: &mut W,
    out: &mut BytesMut,
    peer: &PeerAddr,
) -> Result<
    (
        PublicKey,
        PublicKey,
        crate::auth::Grant,
        tokio::sync::OwnedSemaphorePermit,
    ),
    Close,
>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // Our whole greeting goes out before we read anything: libzmq waits for it.
    write_out(wr, out).await?;
    loop {
        session.input().reserve(4096);
        if rd.read_buf(session.input()).await.map_err(Close::Io)? == 0 {
            return Err(Close::Eof);
        }
        loop {
            match session.poll(out) {
                Ok(None) => break,
                Ok(Some(ServerEvent::Authenticate {
                    client_key,
                    server_key,
                    ..
                })) => {
                    let reason = match inner.authorizer.authorize(&client_key, peer) {
                        Decision::Allow(grant) => match inner.permits.clone().try_acquire_owned() {
                            Ok(permit) => {
                                session.accept(out).map_err(Close::Session)?;
                                write_out(wr, out).await?;
                                inc(&inner.counters.handshakes_allowed);
                                inner.audit.record(
                                    AuditRecord::new(Side::Curve, "handshake_allowed", true)
                                        .peer(peer)
                                        .key(client_key)
                                        .name(grant.name.clone()),
                                );
                                tracing::info!(%peer, name = %grant.name, key = %client_key, "subscriber authenticated");
                                return Ok((client_key, server_key, grant, permit));
                            }
                            Err(_) => {
                                inc(&inner.counters.refused_subscriber_cap);
                                format!("subscriber limit reached ({})", inner.cfg.max_subscribers)
                            }
                        },
                        Decision::Deny(reason) => reason,
                    };
                    session.deny("400", out);
                    let _ = write_out(wr, out).await;
                    let _ = wr.shutdown().await;
                    inc(&inner.counters.handshakes_denied);
                    inner.refusals.refuse(Refused {
                        event: "handshake_denied",
                        peer: &peer.to_string(),
                        reason: &reason,
                        key: Some(client_key),
                    });
                    return Err(Close::Denied(reason));
                }
                Ok(Some(_)) => {}
                Err(e) => {
                    // Say nothing to a peer that failed the handshake: no oracle.
                    return Err(Close::Session(e));
                }
            }
        }
        write_out(wr, out).await?;
    }
}

#[allow(clippy::too_many_arguments)]
async fn traffic<R, W>(
    inner: &Inner,
    handle: &SubHandle,
    session: &mut ServerSession,
    mut rx: mpsc::Receiver<Message>,
    rd: &mut R,
    wr: &mut W,
    mut out: BytesMut,
) -> Close
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // The handshake's read buffer is not needed at that size any more.
    shrink_input(session.input());
    let mut changes = inner.authorizer.changes();
    // A revocation that landed between the handshake decision and this subscription to
    // changes would otherwise be missed: ask once more now.
    if let Decision::Deny(reason) = recheck(inner, handle) {
        return Close::Revoked(reason);
    }
    let mut changes_live = true;
    let mut shutdown = inner.shutdown.subscribe();
    let hb_ivl = inner.cfg.heartbeat_ivl;
    // Without our own heartbeats, still tick to enforce a TTL the peer's PINGs announce.
    let mut hb = tokio::time::interval(hb_ivl.unwrap_or(Duration::from_secs(1)));
    hb.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    hb.tick().await;
    let mut last_rx = Instant::now();
    let mut denied_audited: HashSet<Bytes> = HashSet::new();
    // The most `out` has held since it was last given back (see `release_if_idle`).
    let mut out_peak = out.len();
    // The read time of the last message sealed (stage trace only).
    let mut traced_ns = 0u64;
    let ttl_ds = (inner.cfg.heartbeat_timeout.as_millis() / 100).min(u128::from(u16::MAX)) as u16;
    loop {
        tokio::select! {
            biased;
            _ = handle.kill.notified() => return Close::Overflow,
            r = changes.changed(), if changes_live => {
                if r.is_err() {
                    changes_live = false;
                    continue;
                }
                match recheck(inner, handle) {
                    Decision::Deny(reason) => return Close::Revoked(reason),
                    Decision::Allow(grant) => {
                        if let Ok(mut n) = handle.name.lock() {
                            *n = grant.name.clone();
                        }
                        if let Ok(mut f) = handle.filter.write() {
                            f.acl = grant.topics;
                        }
                    }
                }
            }
            _ = stopped(&mut shutdown) => {
                // Flush what is queued, within the linger budget.
                while let Ok(msg) = rx.try_recv() {
                    seal_message(session, handle, &msg, &mut out);
                }
                let _ = tokio::time::timeout(inner.cfg.linger, async {
                    let _ = write_out(wr, &mut out).await;
                    let _ = wr.shutdown().await;
                }).await;
                return Close::Shutdown;
            }
            r = rd.read_buf(session.input()) => {
                match r {
                    Ok(0) => return Close::Eof,
                    Err(e) => return Close::Io(e),
                    Ok(_) => {}
                }
                last_rx = Instant::now();
                loop {
                    match session.poll(&mut out) {
                        Ok(None) => break,
                        Ok(Some(ServerEvent::Subscribe(prefix))) => {
                            let mut audit_denied = false;
                            if let Ok(mut f) = handle.filter.write() {
                                if !f.acl.may_overlap(&prefix) && denied_audited.len() < 256 && denied_audited.insert(prefix.clone()) {
                                    audit_denied = true;
                                }
                                if !f.subs.add(prefix.clone()) {
                                    tracing::warn!(peer = %handle.peer, "subscription table full; subscription ignored");
                                }
                            }
                            if audit_denied {
                                let name = handle.name.lock().map(|n| n.clone()).unwrap_or_default();
                                inner.audit.record(
                                    AuditRecord::new(Side::Curve, "subscription_denied", false)
                                        .peer(&handle.peer)
                                        .key(handle.key)
                                        .name(name)
                                        .reason(format!("subscription {:?} outside the key's topics", String::from_utf8_lossy(&prefix))),
                                );
                            }
                        }
                        Ok(Some(ServerEvent::Cancel(prefix))) => {
                            if let Ok(mut f) = handle.filter.write() {
                                f.subs.remove(&prefix);
                            }
                        }
                        Ok(Some(ServerEvent::Authenticate { .. } | ServerEvent::Message(_))) => {}
                        Err(e) => return Close::Session(e),
                    }
                }
                shrink_input(session.input());
            }
            r = wr.write_buf(&mut out), if !out.is_empty() => {
                crate::stagetrace::mark(crate::stagetrace::Stage::SocketWrite, traced_ns);
                match r {
                    Ok(0) => return Close::Eof,
                    Ok(_) => {}
                    Err(e) => return Close::Io(e),
                }
                release_if_idle(&mut out, &mut out_peak, rx.is_empty());
            }
            m = rx.recv(), if out.len() < OUT_HIGH_WATER => {
                let Some(msg) = m else { return Close::Shutdown };
                // (0, and nothing parsed, without the stage-trace feature.)
                traced_ns = crate::stagetrace::received_ns(msg.get(1).map(|p| &p[..]));
                crate::stagetrace::mark(crate::stagetrace::Stage::SubscriberTask, traced_ns);
                seal_message(session, handle, &msg, &mut out);
                // Batch: seal what else is queued, up to the buffer budget.
                while out.len() < OUT_HIGH_WATER {
                    match rx.try_recv() {
                        Ok(msg) => seal_message(session, handle, &msg, &mut out),
                        Err(_) => break,
                    }
                }
                out_peak = out_peak.max(out.len());
            }
            _ = hb.tick() => {
                if session.peer_ttl().is_some_and(|ttl| last_rx.elapsed() > ttl) {
                    return Close::Timeout("peer heartbeat TTL");
                }
                if hb_ivl.is_some() {
                    if last_rx.elapsed() > inner.cfg.heartbeat_timeout {
                        return Close::Timeout("heartbeat");
                    }
                    let _ = session.send_ping(ttl_ds, &mut out);
                }
            }
        }
    }
}

/// The authorizer's current word on a live subscriber, including whether the server key it
/// connected with is still served.
fn recheck(inner: &Inner, handle: &SubHandle) -> Decision {
    if let Some(keys) = inner.authorizer.server_keys() {
        if !keys.iter().any(|k| k.public == handle.server_key) {
            return Decision::Deny(format!("server key {} retired", handle.server_key));
        }
    }
    inner.authorizer.authorize(&handle.key, &handle.peer)
}

/// What subscribers send after the handshake is small (SUBSCRIBE, CANCEL, PING): a drained
/// input buffer is replaced by a fresh [`IN_KEEP`] one, since thousands of idle connections
/// each holding a handshake-sized (or one large frame's) buffer is memory for nothing; then
/// room for the next read. Judged on emptiness alone: once its bytes are consumed a buffer's
/// `capacity()` counts only what is left past them, not what it holds allocated. Subscribers
/// send rarely, so the allocation per drained read costs nothing measurable.
fn shrink_input(input: &mut BytesMut) {
    if input.is_empty() {
        *input = BytesMut::with_capacity(IN_KEEP);
    } else {
        input.reserve(IN_KEEP);
    }
}

/// Gives back a drained output buffer that a burst grew past [`OUT_KEEP_IDLE`] once the
/// queue is empty too. `peak` is the most the buffer held since it was last given back: its
/// allocation is at least that, whereas `capacity()` after a full write counts only what is
/// left past the written bytes (writing advances the buffer).
fn release_if_idle(out: &mut BytesMut, peak: &mut usize, queue_empty: bool) {
    if out.is_empty() && *peak > OUT_KEEP_IDLE && queue_empty {
        *out = BytesMut::new();
        *peak = 0;
    }
}

/// Resolves once shutdown is signalled (the watch guard never lives across an await).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

fn seal_message(
    session: &mut ServerSession,
    handle: &SubHandle,
    msg: &Message,
    out: &mut BytesMut,
) {
    let n = msg.len();
    let mut bytes = 0u64;
    for (i, part) in msg.iter().enumerate() {
        if session.send_part(i + 1 < n, part, out).is_err() {
            return;
        }
        bytes += part.len() as u64;
    }
    inc(&handle.sent);
    handle.bytes_sent.fetch_add(bytes, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Buf;

    /// The buffer a burst grew is given back once written out and the queue is empty, even
    /// though writing leaves it with no spare capacity to show for its allocation.
    #[test]
    fn a_written_out_burst_buffer_is_given_back_when_the_queue_is_empty() {
        let mut out = BytesMut::with_capacity(OUT_HIGH_WATER);
        out.resize(OUT_HIGH_WATER, 0);
        let mut peak = out.len();
        out.advance(OUT_HIGH_WATER);
        // What a check on `capacity()` saw: nothing left, the 16 KiB still allocated.
        assert!(out.is_empty() && out.capacity() <= OUT_KEEP_IDLE);
        release_if_idle(&mut out, &mut peak, false);
        assert_eq!(peak, OUT_HIGH_WATER, "kept while messages are queued");
        release_if_idle(&mut out, &mut peak, true);
        assert_eq!(peak, 0);
        out.reserve(1);
        assert!(
            out.capacity() < OUT_KEEP_IDLE,
            "the burst's allocation was kept: capacity {}",
            out.capacity()
        );
    }

    #[test]
    fn a_drained_input_buffer_grown_by_a_large_frame_is_replaced() {
        let mut input = BytesMut::with_capacity(64 * 1024);
        input.resize(64 * 1024, 0);
        input.advance(64 * 1024);
        assert!(input.capacity() <= IN_KEEP);
        shrink_input(&mut input);
        input.reserve(IN_KEEP);
        assert!(input.capacity() < 2 * IN_KEEP, "{}", input.capacity());
        // A partial frame stays where it is, with room for the rest.
        input.extend_from_slice(b"partial");
        shrink_input(&mut input);
        assert_eq!(&input[..], b"partial");
        assert!(input.capacity() >= IN_KEEP);
    }

    #[test]
    fn a_small_buffer_is_kept_for_reuse() {
        let mut out = BytesMut::with_capacity(OUT_KEEP_IDLE);
        out.resize(200, 0);
        let mut peak = out.len();
        out.advance(200);
        release_if_idle(&mut out, &mut peak, true);
        assert_eq!(peak, 200);
        out.reserve(1);
        assert!(out.capacity() >= OUT_KEEP_IDLE - 200);
    }
}

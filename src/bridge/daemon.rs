//! The running bridge: FIX transports → one bounded channel → the publishing task (pipeline
//! + CURVE publisher), plus the metrics endpoint. Used by `fixcurve run` and `fixcurve demo`.
//!
//! Back-pressure: every FIX session driver sends into one bounded channel and awaits room;
//! while the publishing task is behind, drivers stop reading their sockets, so the FIX peers
//! see TCP back-pressure and nothing is dropped before the per-subscriber queues.
//!
//! Shutdown order matters for "flush": the transports are told first (each session sends
//! its Logout and ends), their channel senders drop, the publishing task drains what is
//! left and ends, and only then the publisher flushes its queues and closes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::pipeline::{Outgoing, Pipeline, SessionCtx};
use crate::audit::AuditLog;
use crate::auth::Authorizer;
use crate::config::{Config, SlowPolicy};
use crate::fix::session::SessionEvent;
use crate::fix::transport::{self, FixEvent};
use crate::keys::Keypair;
use crate::metrics::{Registry, SubscriberSample};
use crate::normalize::{SessionState, SessionStatus};
use crate::pubsub::{OverflowPolicy, Publisher, PublisherConfig};

/// What the publisher authenticates with and against.
pub struct PublishKeys {
    pub server: Keypair,
    pub authorizer: Arc<dyn Authorizer>,
}

/// Totals reported at the end (and by `fixcurve demo`'s summary line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub fix_messages: u64,
    pub events_published: u64,
}

pub struct Bridge {
    publisher: Arc<Publisher>,
    registry: Arc<Registry>,
    shutdown: watch::Sender<bool>,
    transports: JoinSet<(String, Result<(), transport::TransportError>)>,
    publish_task: tokio::task::JoinHandle<Totals>,
    metrics_task: Option<tokio::task::JoinHandle<()>>,
    endpoints: Vec<String>,
}

fn publisher_config(cfg: &Config, server: Keypair) -> anyhow::Result<PublisherConfig> {
    let mut p = PublisherConfig::new(cfg.publish.bind.clone(), server);
    p.queue_capacity = cfg.publish.queue;
    p.overflow = match cfg.publish.slow_policy {
        SlowPolicy::Drop => OverflowPolicy::Drop,
        SlowPolicy::Disconnect => OverflowPolicy::Disconnect,
    };
    p.heartbeat_ivl =
        (cfg.publish.heartbeat_secs > 0).then(|| Duration::from_secs(cfg.publish.heartbeat_secs));
    p.heartbeat_timeout = Duration::from_secs(cfg.publish.heartbeat_secs.max(1) * 3);
    p.max_subscribers = cfg.publish.max_subscribers;
    p.max_handshakes = cfg.publish.max_handshakes;
    p.max_handshakes_per_ip = cfg.publish.max_handshakes_per_ip;
    p.handshake_timeout = Duration::from_millis(cfg.publish.handshake_timeout_ms);
    p.allow_ips = crate::admission::AllowList::parse(&cfg.publish.allow_ips)
        .map_err(|e| anyhow::anyhow!("publish.allow_ips: {e}"))?;
    Ok(p)
}

impl Bridge {
    /// Binds the publisher (printing `listening: publish <ep>`), the metrics endpoint and
    /// every FIX acceptor/initiator of `cfg`. Fails on anything that cannot start.
    pub async fn start(cfg: &Config, keys: PublishKeys, audit: AuditLog) -> anyhow::Result<Bridge> {
        std::fs::create_dir_all(&cfg.state.dir)
            .with_context(|| format!("state dir {}", cfg.state.dir.display()))?;
        // Load all TLS material up front, so a missing or broken file stops start-up before
        // anything listens (the transports load it again and watch it for reloads).
        for a in &cfg.acceptor {
            crate::tls::build_server_config(&a.tls())
                .with_context(|| format!("acceptor {:?}", a.name))?;
        }
        for i in &cfg.initiator {
            crate::tls::build_client_config(&i.tls())
                .with_context(|| format!("initiator {:?}", i.name))?;
        }
        let registry = Registry::new();
        let publisher = Arc::new(
            Publisher::bind(
                publisher_config(cfg, keys.server)?,
                keys.authorizer,
                audit.clone(),
            )
            .await
            .context("publisher")?,
        );
        let endpoints = publisher.local_endpoints();
        for ep in &endpoints {
            eprintln!("listening: publish {ep}");
        }
        {
            let p = publisher.clone();
            registry.set_subscriber_source(Box::new(move || {
                p.stats()
                    .into_iter()
                    .map(|s| SubscriberSample {
                        peer: s.peer,
                        name: s.name,
                        sent: s.sent,
                        dropped: s.dropped,
                        queue_depth: s.queue_depth as u64,
                    })
                    .collect()
            }));
        }
        {
            let p = publisher.clone();
            registry.set_counter_source(Box::new(move || p.counters().samples()));
        }
        let metrics_task = match &cfg.metrics {
            Some(m) => Some(
                crate::metrics::serve(m.listen, registry.clone())
                    .await
                    .with_context(|| format!("metrics listen {}", m.listen))?
                    .1,
            ),
            None => None,
        };

        let (tx, rx) = mpsc::channel::<FixEvent>(cfg.bridge.channel);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut transports = JoinSet::new();
        let state_dir: PathBuf = cfg.state.dir.clone();
        for a in &cfg.acceptor {
            let ac =
                transport::from_config::acceptor_config(cfg, a).map_err(anyhow::Error::from)?;
            let (st, au, tx, sd) = (
                state_dir.clone(),
                audit.clone(),
                tx.clone(),
                shutdown_rx.clone(),
            );
            let name = format!("acceptor:{}", a.name);
            transports
                .spawn(async move { (name, transport::run_acceptor(ac, st, au, tx, sd).await) });
        }
        for i in &cfg.initiator {
            let ic =
                transport::from_config::initiator_config(cfg, i).map_err(anyhow::Error::from)?;
            let (st, au, tx, sd) = (
                state_dir.clone(),
                audit.clone(),
                tx.clone(),
                shutdown_rx.clone(),
            );
            let name = format!("initiator:{}", i.name);
            transports
                .spawn(async move { (name, transport::run_initiator(ic, st, au, tx, sd).await) });
        }
        drop(tx);
        let epoch = super::now_ns();
        let publish_task = tokio::spawn(publish_loop(
            rx,
            Pipeline::new(epoch, registry.clone()),
            publisher.clone(),
            registry.clone(),
        ));
        Ok(Bridge {
            publisher,
            registry,
            shutdown,
            transports,
            publish_task,
            metrics_task,
            endpoints,
        })
    }

    /// The publisher's bound endpoints (real ports).
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub fn publisher(&self) -> &Arc<Publisher> {
        &self.publisher
    }

    /// Waits until a transport fails (returns its error) — a daemon whose listener died
    /// should not keep running half-blind. Never returns while all are healthy.
    pub async fn failed(&mut self) -> anyhow::Error {
        loop {
            match self.transports.join_next().await {
                // Transport errors already name their listener or connection.
                Some(Ok((_, Err(e)))) => return anyhow::Error::from(e),
                Some(Ok((_, Ok(())))) => continue,
                Some(Err(e)) => return anyhow::anyhow!("transport task: {e}"),
                None => std::future::pending::<()>().await,
            }
        }
    }

    /// Graceful stop: Logout on every FIX session, drain the channel, flush subscribers.
    pub async fn stop(mut self) -> Totals {
        let _ = self.shutdown.send(true);
        let deadline = tokio::time::sleep(Duration::from_secs(10));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                r = self.transports.join_next() => match r {
                    None => break,
                    Some(Ok((name, Err(e)))) => tracing::warn!(%name, error = %e, "transport ended with an error"),
                    Some(_) => {}
                },
                _ = &mut deadline => {
                    tracing::warn!("FIX sessions did not end within 10 s; closing them");
                    self.transports.abort_all();
                }
            }
        }
        let totals = (&mut self.publish_task).await.unwrap_or_default();
        self.publisher.shutdown().await;
        if let Some(t) = self.metrics_task.take() {
            t.abort();
        }
        totals
    }
}

fn status(ctx: &SessionCtx, state: SessionState, text: Option<String>) -> SessionStatus {
    SessionStatus {
        state,
        session: ctx.session.clone(),
        gap_from: None,
        gap_to: None,
        text,
    }
}

/// Most sessions' contexts cached (bounded by configuration in practice).
const MAX_CTX: usize = 4096;

/// Sans-IO routing of transport events: session events to counters and status events,
/// application messages through the pipeline.
pub struct Router {
    pipeline: Pipeline,
    registry: Arc<Registry>,
    ctxs: HashMap<(String, String), SessionCtx>,
    pub totals: Totals,
}

impl Router {
    pub fn new(pipeline: Pipeline, registry: Arc<Registry>) -> Self {
        Router {
            pipeline,
            registry,
            ctxs: HashMap::new(),
            totals: Totals::default(),
        }
    }

    /// Handles one transport event; frames to publish are appended to `out`.
    pub fn handle(&mut self, ev: FixEvent, out: &mut Vec<Outgoing>) {
        let before = out.len();
        let key = (ev.venue, ev.session);
        if !self.ctxs.contains_key(&key) && self.ctxs.len() >= MAX_CTX {
            self.ctxs.clear();
        }
        let registry = &self.registry;
        let ctx = self
            .ctxs
            .entry(key.clone())
            .or_insert_with(|| SessionCtx::new(&key.0, &key.1, registry));
        let c = &ctx.counters;
        let pipeline = &mut self.pipeline;
        match ev.event {
            SessionEvent::App(msg) => {
                c.messages_in.fetch_add(1, Ordering::Relaxed);
                self.totals.fix_messages += 1;
                // One short-lived field index per message (borrowing the message's buffer).
                let fields: Vec<_> = msg.fields().collect();
                pipeline.on_app(ctx, &fields, ev.received_ns, out);
            }
            SessionEvent::LoggedOn { .. } => {
                // A logon after an earlier one on this session is a reconnect.
                let state = if c.logons.fetch_add(1, Ordering::Relaxed) == 0 {
                    SessionState::Logon
                } else {
                    SessionState::Reconnect
                };
                c.logged_on.store(1, Ordering::Relaxed);
                let s = status(ctx, state, None);
                pipeline.on_status(ctx, s, ev.received_ns, out);
            }
            SessionEvent::LoggedOut { reason } => {
                c.logged_on.store(0, Ordering::Relaxed);
                let s = status(ctx, SessionState::Logout, Some(reason));
                pipeline.on_status(ctx, s, ev.received_ns, out);
            }
            SessionEvent::Disconnect { reason } => {
                // Only a connection lost while logged on is news; after a Logout it is not.
                let was_on = c.logged_on.swap(0, Ordering::Relaxed) == 1;
                if was_on {
                    let s = status(ctx, SessionState::Disconnect, Some(reason));
                    pipeline.on_status(ctx, s, ev.received_ns, out);
                }
            }
            SessionEvent::Gap { expected, received } => {
                c.gaps.fetch_add(1, Ordering::Relaxed);
                let mut s = status(ctx, SessionState::Gap, None);
                s.gap_from = Some(expected);
                s.gap_to = Some(received);
                pipeline.on_status(ctx, s, ev.received_ns, out);
            }
            SessionEvent::ResendRequested { .. } => {
                c.resends.fetch_add(1, Ordering::Relaxed);
            }
            SessionEvent::Garbled { .. } => {
                c.garbled.fetch_add(1, Ordering::Relaxed);
            }
            SessionEvent::RejectSent { .. } => {
                c.rejects_sent.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        self.totals.events_published += (out.len() - before) as u64;
    }
}

async fn publish_loop(
    mut rx: mpsc::Receiver<FixEvent>,
    pipeline: Pipeline,
    publisher: Arc<Publisher>,
    registry: Arc<Registry>,
) -> Totals {
    let mut router = Router::new(pipeline, registry);
    let mut out: Vec<Outgoing> = Vec::with_capacity(16);
    while let Some(ev) = rx.recv().await {
        router.handle(ev, &mut out);
        for o in out.drain(..) {
            publisher.publish(o.topic, o.payload);
        }
    }
    router.totals
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Envelope;
    use crate::fix::codec::{Decoder, DecoderLimits, Encoder};
    use crate::fix::Field;
    use crate::normalize::Event;

    fn fe(event: SessionEvent) -> FixEvent {
        FixEvent {
            venue: "V".into(),
            session: "B->C".into(),
            event,
            received_ns: 42,
        }
    }

    fn logon() -> SessionEvent {
        SessionEvent::LoggedOn {
            username: None,
            password: None,
            heartbeat_secs: 30,
            reset_seq_num: false,
            default_appl_ver_id: None,
        }
    }

    fn quote() -> SessionEvent {
        let body = [
            Field::new(49, b"C"),
            Field::new(56, b"B"),
            Field::new(34, b"2"),
            Field::new(52, b"20240102-10:00:00.000"),
            Field::new(55, b"EUR/USD"),
            Field::new(132, b"1.10"),
        ];
        let mut d = Decoder::new(DecoderLimits::default());
        d.feed(&Encoder::new("FIX.4.4").to_vec("S", &body));
        SessionEvent::App(d.decode_next().unwrap().unwrap())
    }

    fn decoded(out: &[Outgoing]) -> Vec<(String, u64, String)> {
        out.iter()
            .map(|o| {
                let e = Envelope::decode(&o.payload).unwrap();
                let what = match &e.event {
                    Event::Session(s) => serde_json::to_value(&s.state)
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_owned(),
                    other => other.kind().to_owned(),
                };
                (String::from_utf8(o.topic.to_vec()).unwrap(), e.seq, what)
            })
            .collect()
    }

    #[test]
    fn session_events_become_status_events_and_counters() {
        let reg = Registry::new();
        let mut r = Router::new(Pipeline::new(1, reg.clone()), reg.clone());
        let mut out = Vec::new();
        for ev in [
            logon(),
            quote(),
            SessionEvent::Gap {
                expected: 3,
                received: 7,
            },
            SessionEvent::ResendRequested { begin: 1, end: 0 },
            SessionEvent::Disconnect {
                reason: "reset".into(),
            },
            logon(),
            SessionEvent::LoggedOut {
                reason: "bye".into(),
            },
            SessionEvent::Disconnect {
                reason: "closed".into(),
            },
        ] {
            r.handle(fe(ev), &mut out);
        }
        assert_eq!(
            decoded(&out),
            [
                ("status.V".into(), 1, "logon".into()),
                ("md.V.EUR/USD".into(), 1, "quote".into()),
                ("status.V".into(), 2, "gap".into()),
                ("status.V".into(), 3, "disconnect".into()),
                ("status.V".into(), 4, "reconnect".into()),
                ("status.V".into(), 5, "logout".into()),
            ]
        );
        let gap = Envelope::decode(&out[2].payload).unwrap();
        let Event::Session(s) = gap.event else {
            panic!()
        };
        assert_eq!((s.gap_from, s.gap_to), (Some(3), Some(7)));
        let c = reg.session("V", "B->C");
        assert_eq!(c.messages_in.load(Ordering::Relaxed), 1);
        assert_eq!(c.gaps.load(Ordering::Relaxed), 1);
        assert_eq!(c.resends.load(Ordering::Relaxed), 1);
        assert_eq!(c.logons.load(Ordering::Relaxed), 2);
        assert_eq!(c.logged_on.load(Ordering::Relaxed), 0);
        assert_eq!(
            r.totals,
            Totals {
                fix_messages: 1,
                events_published: 6
            }
        );
    }
}

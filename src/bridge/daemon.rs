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

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::pipeline::{Outgoing, Pipeline};
use super::router::{Router, Totals};
use crate::audit::AuditLog;
use crate::auth::Authorizer;
use crate::config::{Config, SlowPolicy};
use crate::fix::transport::{self, FixEvent};
use crate::keys::Keypair;
use crate::metrics::{Registry, SubscriberSample};
use crate::nats::sink::{Backlog, Sink, SinkBatch, SinkMsg};
use crate::pubsub::{OverflowPolicy, Publisher, PublisherConfig};
use crate::replay::{ReplayServer, ReplaySources, Snapshots};

/// What the publisher authenticates with and against.
pub struct PublishKeys {
    pub server: Keypair,
    pub authorizer: Arc<dyn Authorizer>,
}

pub struct Bridge {
    publisher: Arc<Publisher>,
    registry: Arc<Registry>,
    shutdown: watch::Sender<bool>,
    transports: JoinSet<(String, Result<(), transport::TransportError>)>,
    publish_task: tokio::task::JoinHandle<Totals>,
    metrics_task: Option<tokio::task::JoinHandle<()>>,
    endpoints: Vec<String>,
    replay: Option<ReplayServer>,
}

pub(crate) fn publisher_config(cfg: &Config, server: Keypair) -> anyhow::Result<PublisherConfig> {
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

/// Binds the CURVE publisher of `cfg` (printing `listening: publish <ep>`), wires its
/// subscriber and counter figures into `registry`, and serves the metrics endpoint: what the
/// bridge and an edge both put in front of their subscribers.
pub(crate) async fn serve_subscribers(
    cfg: &Config,
    keys: PublishKeys,
    audit: &AuditLog,
    registry: &Arc<Registry>,
) -> anyhow::Result<(
    Arc<Publisher>,
    Vec<String>,
    Option<tokio::task::JoinHandle<()>>,
)> {
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
    Ok((publisher, endpoints, metrics_task))
}

/// Binds the replay endpoint (printing `listening: replay <ep>`).
pub(crate) async fn bind_replay(
    cfg: &Config,
    key: Keypair,
    authorizer: Arc<dyn Authorizer>,
    sources: ReplaySources,
    registry: &Arc<Registry>,
    audit: &AuditLog,
) -> anyhow::Result<ReplayServer> {
    let r = ReplayServer::bind(
        &cfg.publish.replay_bind,
        key,
        authorizer,
        sources,
        registry.clone(),
        audit.clone(),
    )
    .await
    .context("replay endpoint")?;
    for ep in r.local_endpoints() {
        eprintln!("listening: replay {ep}");
    }
    Ok(r)
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
        // The JetStream sink's secret files (credentials, nkey seed, TLS key) are checked now:
        // a readable-by-others seed stops start-up, an unreachable cluster does not.
        if let Some(n) = &cfg.sink.nats {
            crate::nats::connect::options(n, "fixcurve-bridge")
                .await
                .context("[sink.nats]")?;
        }
        // The journal before anything listens: a damaged one is reported (and what is intact
        // served) before the first subscriber or venue connects.
        let journal_cfg = cfg
            .journal
            .config(&cfg.state.dir)
            .map_err(|e| anyhow::anyhow!(e))?;
        let journal = match journal_cfg {
            Some(jc) => {
                let dir = jc.dir.clone();
                let j = crate::journal::Journal::open(jc, super::now_ns())
                    .with_context(|| format!("journal {}", dir.display()))?;
                let st = j.stats();
                tracing::info!(dir = %dir.display(), records = st.records, oldest = st.oldest_record, newest = st.newest_record, "journal open");
                Some(j)
            }
            None => None,
        };
        let registry = Registry::new();
        let replay_server_key = keys.server.clone();
        let replay_authorizer = keys.authorizer.clone();
        let (publisher, endpoints, metrics_task) =
            serve_subscribers(cfg, keys, &audit, &registry).await?;

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
        let reader = journal.as_ref().map(|j| j.reader());
        let mut pipeline = match journal {
            Some(j) => {
                registry.journal.set(&j.stats());
                Pipeline::with_journal(epoch, j, registry.clone())
            }
            None => Pipeline::new(epoch, registry.clone()),
        };
        let replay = if cfg.publish.replay_bind.is_empty() {
            None
        } else {
            let snapshots = Arc::new(Snapshots::new());
            pipeline = pipeline.with_snapshots(snapshots.clone());
            Some(
                bind_replay(
                    cfg,
                    replay_server_key,
                    replay_authorizer,
                    ReplaySources {
                        journal: reader,
                        snapshots,
                    },
                    &registry,
                    &audit,
                )
                .await?,
            )
        };
        // The JetStream sink, when configured: it starts connecting now (retrying while the
        // cluster is unreachable; the FIX sessions wait on their acknowledgements meanwhile).
        let sink = cfg.sink.nats.clone().map(|n| {
            let backlog = pipeline.journal().map(|j| Backlog {
                reader: j.reader(),
                epoch: j.epoch(),
                written: j.last_number(),
            });
            tracing::info!(servers = %n.servers.join(","), stream = %n.stream, "JetStream sink");
            Sink::start(n, backlog, registry.clone())
        });
        let publish_task = tokio::spawn(publish_loop(
            rx,
            pipeline,
            publisher.clone(),
            registry.clone(),
            sink,
        ));
        Ok(Bridge {
            publisher,
            registry,
            shutdown,
            transports,
            publish_task,
            metrics_task,
            endpoints,
            replay,
        })
    }

    /// The replay endpoint's bound endpoints, if it runs.
    pub fn replay_endpoints(&self) -> Vec<String> {
        self.replay
            .as_ref()
            .map(|r| r.local_endpoints())
            .unwrap_or_default()
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

async fn publish_loop(
    mut rx: mpsc::Receiver<FixEvent>,
    pipeline: Pipeline,
    publisher: Arc<Publisher>,
    registry: Arc<Registry>,
    sink: Option<Sink>,
) -> Totals {
    let mut router = Router::new(pipeline, registry.clone());
    let mut out: Vec<Outgoing> = Vec::with_capacity(16);
    let mut acks = Vec::new();
    while let Some(first) = rx.recv().await {
        crate::stagetrace::mark(crate::stagetrace::Stage::PublishLoop, first.received_ns);
        // Take what is queued (bounded) as one batch: one journal write for all of it.
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(mut ev) = next.take() {
            if let Some(a) = ev.ack.take() {
                acks.push(a);
            }
            router.handle(ev, &mut out);
            taken += 1;
            if taken < BATCH {
                next = rx.try_recv().ok();
            }
        }
        // Journaled before published, and before any session learns it may commit its
        // sequence number: what a subscriber saw, or the venue was told we have, survives.
        if let Some(j) = router.pipeline().journal() {
            if let Err(e) = j.flush() {
                // Without a journal we cannot promise anything: stop, and let every session's
                // pending acknowledgement fail so no sequence number moves past this point.
                tracing::error!(error = %e, "journal write failed; stopping the bridge");
                return router.totals;
            }
        }
        let msgs: Vec<SinkMsg> = match &sink {
            Some(_) => out
                .iter()
                .map(|o| SinkMsg {
                    topic: o.topic.clone(),
                    payload: o.payload.clone(),
                    epoch: o.epoch,
                    seq: o.seq,
                    journal: o.journal,
                })
                .collect(),
            None => Vec::new(),
        };
        // Sessions waiting only for the journal write are told before the publish, not
        // after: a task woken from a worker runs next on that worker (tokio's LIFO slot),
        // so the last one woken should be the subscriber's. Woken after it, each session
        // displaced it to the run queue, where it waited behind the session's store write
        // or for the other worker to wake and steal it (+14 µs median per message here).
        if sink.is_none() {
            let (durable, written): (Vec<_>, Vec<_>) = std::mem::take(&mut acks)
                .into_iter()
                .partition(|a| a.durable);
            acks = durable;
            for a in written {
                let _ = a.done.send(());
            }
        }
        for o in out.drain(..) {
            crate::stagetrace::mark_payload(crate::stagetrace::Stage::Routed, Some(&o.payload));
            publisher.publish(o.topic, o.payload);
        }
        let any_durable = acks.iter().any(|a| a.durable);
        // The fdatasync runs beside this loop: subscribers never wait for the disk, only
        // the sessions whose synced store batch depends on it.
        let sync = if any_durable {
            match router.pipeline().journal().map(|j| j.sync_handle()) {
                Some(Ok(file)) => Some(file),
                Some(Err(e)) => {
                    tracing::error!(error = %e, "journal sync failed; stopping the bridge");
                    return router.totals;
                }
                None => None,
            }
        } else {
            None
        };
        match &sink {
            // With a JetStream sink every acknowledgement also waits for the stream's.
            Some(s) => {
                let synced = sync.map(|file| {
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    tokio::spawn(sync_then(file, registry.clone(), tx));
                    rx
                });
                let batch = SinkBatch {
                    msgs,
                    acks: std::mem::take(&mut acks),
                    synced,
                };
                if !s.submit(batch).await {
                    tracing::error!("JetStream sink stopped; stopping the bridge");
                    return router.totals;
                }
            }
            None => {
                // Only durable acknowledgements are left (the others went before the publish).
                let durable = std::mem::take(&mut acks);
                match sync {
                    Some(file) => {
                        tokio::spawn(sync_then_ack(file, durable, registry.clone()));
                    }
                    None => {
                        for a in durable {
                            let _ = a.done.send(());
                        }
                    }
                }
            }
        }
        if let Some(j) = router.pipeline().journal() {
            registry.journal.set(&j.stats());
        }
    }
    if let Some(s) = sink {
        s.close(Duration::from_secs(5)).await;
    }
    router.totals
}

/// Events taken from the channel per journal write.
const BATCH: usize = 256;

/// `fdatasync`s the journal on the blocking pool, then acknowledges; on failure the
/// acknowledgements are dropped, so the sessions waiting on them do not commit (they close
/// and the venue resends to the next run).
async fn sync_then_ack(file: std::fs::File, acks: Vec<transport::Ack>, registry: Arc<Registry>) {
    if sync(file, &registry).await {
        for a in acks {
            let _ = a.done.send(());
        }
    }
}

/// As `sync_then_ack`, telling the JetStream sink the outcome instead.
async fn sync_then(
    file: std::fs::File,
    registry: Arc<Registry>,
    done: tokio::sync::oneshot::Sender<bool>,
) {
    let _ = done.send(sync(file, &registry).await);
}

async fn sync(file: std::fs::File, registry: &Registry) -> bool {
    let t = std::time::Instant::now();
    let r = tokio::task::spawn_blocking(move || file.sync_data()).await;
    registry.observe_journal_fsync(t.elapsed());
    match r {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "journal fdatasync failed");
            false
        }
        Err(e) => {
            tracing::error!(error = %e, "journal fdatasync task failed");
            false
        }
    }
}

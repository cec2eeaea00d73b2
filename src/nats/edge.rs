//! `fixcurve edge`: no FIX side. Follows the bridge's JetStream stream and serves its own
//! CURVE subscribers (own keyring, ACLs, revocation), replay and snapshots, publishing the
//! bridge's envelopes byte for byte: the per-topic sequence numbers are the same on every
//! edge, so a subscriber that loses one edge recovers from another by replay.
//!
//! Where it resumes: journaled topics (`exec.` by default) go into the edge's own journal
//! (what replay serves, and what tells an envelope already served after a restart); the
//! stream sequence of the last envelope served is kept in `<state>/edge/position`, where an
//! ordered consumer starts again (a durable consumer is resumed by the server instead).
//! Anything in the stream that is not an envelope on a subject of ours is counted and skipped.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer};
use bytes::Bytes;
use futures_util::StreamExt;

use super::subject;
use crate::audit::AuditLog;
use crate::bridge::daemon::PublishKeys;
use crate::config::{Config, ConsumerKind, NatsConnection};
use crate::envelope::Envelope;
use crate::journal::Journal;
use crate::metrics::Registry;
use crate::pubsub::Publisher;
use crate::replay::snapshots::Stamp;
use crate::replay::{ReplayServer, ReplaySources, Snapshots};

/// Envelopes taken from the consumer per journal write.
const BATCH: usize = 256;
/// How often the position file is rewritten while envelopes flow (and when they stop).
const POSITION_EVERY: std::time::Duration = std::time::Duration::from_millis(200);
/// A consumer silent this long is checked against the stream's end.
const IDLE_CHECK: std::time::Duration = std::time::Duration::from_secs(2);
/// Malformed messages logged one by one before only counting.
const LOG_MALFORMED: u64 = 20;

/// A running edge.
pub struct Edge {
    publisher: Arc<Publisher>,
    registry: Arc<Registry>,
    task: tokio::task::JoinHandle<()>,
    metrics_task: Option<tokio::task::JoinHandle<()>>,
    endpoints: Vec<String>,
    replay: Option<ReplayServer>,
}

/// What the consuming task owns.
struct Follower {
    cfg: NatsConnection,
    journal: Option<Journal>,
    snapshots: Arc<Snapshots>,
    publisher: Arc<Publisher>,
    registry: Arc<Registry>,
    position_path: PathBuf,
    /// Stream sequence of the last envelope served.
    position: u64,
    position_written: std::time::Instant,
    /// Last (epoch, seq) served per topic; journaled topics start from the journal.
    last: HashMap<String, (Option<u64>, u64)>,
}

impl Edge {
    /// Binds the publisher, replay endpoint and metrics of `cfg`, opens the edge's journal,
    /// and starts following `[source.nats]` (connecting in the background, with back-off).
    pub async fn start(cfg: &Config, keys: PublishKeys, audit: AuditLog) -> anyhow::Result<Edge> {
        let Some(nats) = cfg.source.nats.clone() else {
            anyhow::bail!("an edge needs a [source.nats] section");
        };
        std::fs::create_dir_all(&cfg.state.dir)
            .with_context(|| format!("state dir {}", cfg.state.dir.display()))?;
        // Secret files are checked before anything listens.
        super::connect::options(&nats, "fixcurve-edge").await?;
        let journal = match cfg
            .journal
            .config(&cfg.state.dir)
            .map_err(|e| anyhow::anyhow!(e))?
        {
            Some(jc) => {
                let dir = jc.dir.clone();
                Some(
                    Journal::open(jc, crate::clock::now_ns())
                        .with_context(|| format!("journal {}", dir.display()))?,
                )
            }
            None => None,
        };
        let edge_dir = cfg.state.dir.join("edge");
        crate::keys::fsutil::create_dir_mode(&edge_dir, 0o700)
            .map_err(|e| anyhow::anyhow!("{}: {e}", edge_dir.display()))?;
        let position_path = edge_dir.join("position");
        let position = read_position(&position_path);
        let registry = Registry::new();
        registry.nats.enabled.store(1, Ordering::Relaxed);
        let replay_key = keys.server.clone();
        let replay_auth = keys.authorizer.clone();
        let (publisher, endpoints, metrics_task) =
            crate::bridge::daemon::serve_subscribers(cfg, keys, &audit, &registry).await?;
        let snapshots = Arc::new(Snapshots::new());
        let replay = if cfg.publish.replay_bind.is_empty() {
            None
        } else {
            Some(
                crate::bridge::daemon::bind_replay(
                    cfg,
                    replay_key,
                    replay_auth,
                    ReplaySources {
                        journal: journal.as_ref().map(|j| j.reader()),
                        snapshots: snapshots.clone(),
                    },
                    &registry,
                    &audit,
                )
                .await?,
            )
        };
        let last = journal
            .as_ref()
            .map(|j| {
                j.last_seqs()
                    .iter()
                    .map(|(t, s)| (t.clone(), (None, *s)))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(j) = &journal {
            registry.journal.set(&j.stats());
        }
        tracing::info!(servers = %nats.servers.join(","), stream = %nats.stream, position, "edge following the stream");
        let follower = Follower {
            cfg: nats,
            journal,
            snapshots,
            publisher: publisher.clone(),
            registry: registry.clone(),
            position_path,
            position,
            position_written: std::time::Instant::now(),
            last,
        };
        let task = tokio::spawn(follower.run());
        Ok(Edge {
            publisher,
            registry,
            task,
            metrics_task,
            endpoints,
            replay,
        })
    }

    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    pub fn replay_endpoints(&self) -> Vec<String> {
        self.replay
            .as_ref()
            .map(|r| r.local_endpoints())
            .unwrap_or_default()
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Stops following, flushes subscribers and closes.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
        self.publisher.shutdown().await;
        if let Some(t) = self.metrics_task {
            t.abort();
        }
    }
}

fn read_position(path: &std::path::Path) -> u64 {
    crate::keys::fsutil::read_bounded(path, 64)
        .ok()
        .flatten()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

enum Verdict {
    Serve { topic: String, env: Box<Envelope> },
    Skip,
    Malformed(String),
}

impl Follower {
    fn write_position(&mut self) -> anyhow::Result<()> {
        let tmp = self.position_path.with_extension("tmp");
        std::fs::write(&tmp, format!("{}\n", self.position))
            .and_then(|()| std::fs::rename(&tmp, &self.position_path))
            .with_context(|| format!("{}", self.position_path.display()))?;
        self.position_written = std::time::Instant::now();
        Ok(())
    }

    async fn run(mut self) {
        let mut attempt = 0u32;
        loop {
            match self.follow().await {
                Ok(()) => attempt = 0,
                Err(e) => {
                    self.registry.nats.up.store(0, Ordering::Relaxed);
                    let wait = super::backoff(attempt);
                    tracing::error!(error = %format!("{e:#}"), retry_in_ms = wait.as_millis() as u64, "edge: stream not followed; retrying");
                    attempt = attempt.saturating_add(1);
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// One connection's worth of following; returns when the consumer ends or fails.
    async fn follow(&mut self) -> anyhow::Result<()> {
        let client =
            super::connect::connect_retrying(&self.cfg, "fixcurve-edge", &self.registry).await?;
        let js = jetstream::new(client.clone());
        let mut stream = js
            .get_stream(&self.cfg.stream)
            .await
            .map_err(|e| anyhow::anyhow!("stream {}: {e}", self.cfg.stream))?;
        let info = stream
            .info()
            .await
            .map_err(|e| anyhow::anyhow!("stream {}: {e}", self.cfg.stream))?;
        super::stream::check(&self.cfg, &info.config, false)?;
        let deliver = if self.position == 0 {
            consumer::DeliverPolicy::All
        } else {
            consumer::DeliverPolicy::ByStartSequence {
                start_sequence: self.position.saturating_add(1),
            }
        };
        self.registry.nats.up.store(1, Ordering::Relaxed);
        match (
            self.cfg.consumer.unwrap_or_default(),
            &self.cfg.durable_name,
        ) {
            (ConsumerKind::Durable, Some(name)) => {
                let c: consumer::PullConsumer = stream
                    .get_or_create_consumer(
                        name,
                        consumer::pull::Config {
                            durable_name: Some(name.clone()),
                            ack_policy: consumer::AckPolicy::All,
                            deliver_policy: deliver,
                            max_ack_pending: 20_000,
                            ..Default::default()
                        },
                    )
                    .await
                    .map_err(|e| anyhow::anyhow!("durable consumer {name}: {e}"))?;
                let msgs = c
                    .messages()
                    .await
                    .map_err(|e| anyhow::anyhow!("durable consumer {name}: {e}"))?;
                self.consume(&stream, msgs, true).await
            }
            _ => {
                // Push delivery: the server sends as envelopes are stored (with flow control),
                // where a pull consumer waits for its next request.
                let c = stream
                    .create_consumer(consumer::push::OrderedConfig {
                        deliver_subject: client.new_inbox(),
                        deliver_policy: deliver,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| anyhow::anyhow!("ordered consumer: {e}"))?;
                let msgs = c
                    .messages()
                    .await
                    .map_err(|e| anyhow::anyhow!("ordered consumer: {e}"))?;
                self.consume(&stream, msgs, false).await
            }
        }
    }

    async fn consume<S, E>(
        &mut self,
        stream: &jetstream::stream::Stream,
        mut msgs: S,
        ack: bool,
    ) -> anyhow::Result<()>
    where
        S: futures_util::Stream<Item = Result<jetstream::Message, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut batch: Vec<jetstream::Message> = Vec::with_capacity(BATCH);
        loop {
            match tokio::time::timeout(IDLE_CHECK, msgs.next()).await {
                // Quiet: make sure the stream is quiet too. A consumer whose server died can
                // stay silent without an error; one that is behind the stream is rebuilt
                // from the position.
                Err(_) => {
                    self.write_position()?;
                    let info = stream
                        .get_info()
                        .await
                        .map_err(|e| anyhow::anyhow!("stream {}: {e}", self.cfg.stream))?;
                    if info.state.last_sequence > self.position {
                        anyhow::bail!(
                            "consumer silent at stream sequence {} while the stream is at {}; re-creating it",
                            self.position,
                            info.state.last_sequence
                        );
                    }
                    continue;
                }
                Ok(None) => return Ok(()),
                Ok(Some(Err(e))) => anyhow::bail!("consumer: {e}"),
                Ok(Some(Ok(m))) => batch.push(m),
            }
            // Whatever else is ready joins this batch (one journal write, one position write).
            while batch.len() < BATCH {
                match futures_util::FutureExt::now_or_never(msgs.next()) {
                    Some(Some(Ok(m))) => batch.push(m),
                    Some(Some(Err(e))) => {
                        self.serve(&mut batch, ack).await?;
                        anyhow::bail!("consumer: {e}");
                    }
                    Some(None) | None => break,
                }
            }
            self.serve(&mut batch, ack).await?;
        }
    }

    fn judge(&mut self, m: &jetstream::Message) -> Verdict {
        let Some(topic) = subject::topic(&self.cfg.subject_prefix, m.subject.as_str()) else {
            return Verdict::Malformed(format!(
                "subject {:?} is not under the prefix",
                m.subject.as_str()
            ));
        };
        let env = match Envelope::decode(&m.payload) {
            Ok(e) => e,
            Err(e) => return Verdict::Malformed(format!("{topic}: {e}")),
        };
        match self.last.get(&topic) {
            // The same epoch (or a journaled topic, whose epoch is fixed): anything at or
            // below what was served is a repeat (a restart, a redelivery).
            Some((epoch, seq))
                if (epoch.is_none() || *epoch == Some(env.epoch)) && env.seq <= *seq =>
            {
                Verdict::Skip
            }
            _ => Verdict::Serve {
                topic,
                env: Box::new(env),
            },
        }
    }

    async fn serve(
        &mut self,
        batch: &mut Vec<jetstream::Message>,
        ack: bool,
    ) -> anyhow::Result<()> {
        let mut out: Vec<(Bytes, Bytes)> = Vec::with_capacity(batch.len());
        let mut last_seq = None;
        for m in batch.iter() {
            if let Ok(info) = m.info() {
                last_seq = Some(info.stream_sequence);
            }
            self.registry.nats.consumed.fetch_add(1, Ordering::Relaxed);
            match self.judge(m) {
                Verdict::Skip => {
                    self.registry.nats.skipped.fetch_add(1, Ordering::Relaxed);
                }
                Verdict::Malformed(why) => {
                    let n = self.registry.nats.malformed.fetch_add(1, Ordering::Relaxed);
                    if n < LOG_MALFORMED || n.is_multiple_of(1000) {
                        tracing::warn!(reason = %why, malformed = n + 1, "edge: stream message skipped");
                    }
                }
                Verdict::Serve { topic, env } => {
                    if let Some(j) = &mut self.journal {
                        if j.config().journals(&topic) {
                            j.append(&topic, env.seq, None, &m.payload);
                        }
                    }
                    if topic.starts_with("md.") {
                        let stamp = Stamp {
                            epoch: env.epoch,
                            seq: env.seq,
                            received_ns: env.received_ns,
                            venue: &env.venue,
                            session: &env.session,
                        };
                        self.snapshots.record(&topic, stamp, &env.event);
                    }
                    self.last.insert(topic.clone(), (Some(env.epoch), env.seq));
                    self.registry.published.fetch_add(1, Ordering::Relaxed);
                    out.push((Bytes::from(topic.into_bytes()), m.payload.clone()));
                }
            }
        }
        // Journaled before published, as in the bridge: what a subscriber saw can be replayed.
        if let Some(j) = &mut self.journal {
            j.flush().context("edge journal write")?;
            self.registry.journal.set(&j.stats());
        }
        for (t, p) in out {
            self.publisher.publish(t, p);
        }
        if let Some(s) = last_seq {
            self.position = s;
            // At most every POSITION_EVERY: a file rename per small batch costs the tail at
            // 10k msg/s, and a position that lags only means envelopes judged again (and
            // skipped by their seq) after a restart.
            if self.position_written.elapsed() >= POSITION_EVERY {
                self.write_position()?;
            }
        }
        if ack {
            if let Some(m) = batch.last() {
                // AckPolicy::All: acknowledges everything up to here.
                m.ack()
                    .await
                    .map_err(|e| anyhow::anyhow!("consumer ack: {e}"))?;
            }
        }
        batch.clear();
        Ok(())
    }
}

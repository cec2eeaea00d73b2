//! `[sink.nats]` (the bridge writes every envelope into a JetStream stream) and
//! `[source.nats]` (an edge reads that stream): one connection shape for both, so the edge's
//! file is the bridge's block with the consumer settings added.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// How to reach the JetStream cluster and which stream carries the envelopes.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NatsConnection {
    /// `nats://host:port` (or `tls://`); every cluster member the client may use.
    pub servers: Vec<String>,
    /// A `.creds` file (user JWT + nkey seed), as `nsc` writes it. Mode 0600 or stricter.
    #[serde(default)]
    pub credentials: Option<PathBuf>,
    /// A file holding an nkey seed (`SU...`). Mode 0600 or stricter.
    #[serde(default)]
    pub nkey: Option<PathBuf>,
    /// CA bundle the servers' certificates must chain to (turns TLS on).
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate and key for servers that verify clients.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// The JetStream stream.
    #[serde(default = "default_stream")]
    pub stream: String,
    /// Subjects are `<subject_prefix>.<topic>`.
    #[serde(default = "default_subject_prefix")]
    pub subject_prefix: String,
    /// Copies kept by the cluster when the bridge creates the stream (1, 3 or 5).
    #[serde(default = "default_replicas")]
    pub replicas: usize,
    /// Stream retention when the bridge creates it (`7d`).
    #[serde(default = "default_max_age")]
    pub max_age: String,
    /// How long a publish may wait for its acknowledgement before the sink reconnects and
    /// sends again from the first unacknowledged envelope.
    #[serde(default = "default_ack_timeout_ms")]
    pub ack_timeout_ms: u64,
    /// Envelopes published and not yet acknowledged, at most.
    #[serde(default = "default_max_inflight")]
    pub max_inflight: usize,
    /// Edges only: how to follow the stream (`ordered`, the default, or `durable`).
    #[serde(default)]
    pub consumer: Option<ConsumerKind>,
    /// Edges only: name of the durable consumer (`consumer = "durable"`); one per edge.
    #[serde(default)]
    pub durable_name: Option<String>,
}

/// How an edge follows the stream.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum ConsumerKind {
    /// A client-side ordered consumer started from the last stream sequence this edge served
    /// (kept in its state directory): nothing on the server to clean up.
    #[default]
    Ordered,
    /// A named durable consumer: the server remembers what this edge acknowledged.
    Durable,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SinkSection {
    #[serde(default)]
    pub nats: Option<NatsConnection>,
}

/// `[source.nats]`: what an edge consumes.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceSection {
    #[serde(default)]
    pub nats: Option<NatsConnection>,
}

fn default_stream() -> String {
    "FIXCURVE".into()
}
fn default_subject_prefix() -> String {
    "fixcurve".into()
}
fn default_replicas() -> usize {
    1
}
fn default_max_age() -> String {
    "7d".into()
}
fn default_ack_timeout_ms() -> u64 {
    5_000
}
fn default_max_inflight() -> usize {
    4_096
}

/// A NATS name token: stream, consumer and subject-prefix tokens may not hold wildcards,
/// separators or spaces.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl NatsConnection {
    pub(super) fn resolve(&mut self, base: &Path) {
        for p in [
            &mut self.credentials,
            &mut self.nkey,
            &mut self.tls_ca,
            &mut self.tls_cert,
            &mut self.tls_key,
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// Checks values; `key` is the table path for messages (`sink.nats`).
    pub(super) fn validate(&self, key: &str) -> Result<(), (String, String)> {
        let k = |f: &str| format!("{key}.{f}");
        if self.servers.is_empty() {
            return Err((k("servers"), "at least one server is required".into()));
        }
        for (i, s) in self.servers.iter().enumerate() {
            if !(s.starts_with("nats://") || s.starts_with("tls://"))
                || s.rsplit_once(':')
                    .and_then(|(_, p)| p.parse::<u16>().ok())
                    .is_none()
            {
                return Err((
                    format!("{key}.servers[{i}]"),
                    format!("{s:?}: servers are nats://host:port or tls://host:port"),
                ));
            }
        }
        if self.credentials.is_some() && self.nkey.is_some() {
            return Err((
                k("nkey"),
                "use either `credentials` or `nkey`, not both".into(),
            ));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err((k("tls_key"), "`tls_cert` and `tls_key` go together".into()));
        }
        if !valid_name(&self.stream) {
            return Err((
                k("stream"),
                format!("{:?}: 1-64 characters of A-Z a-z 0-9 _ -", self.stream),
            ));
        }
        if self.subject_prefix.is_empty()
            || self.subject_prefix.len() > 128
            || !self.subject_prefix.split('.').all(valid_name)
        {
            return Err((
                k("subject_prefix"),
                format!(
                    "{:?}: dot-separated tokens of A-Z a-z 0-9 _ -",
                    self.subject_prefix
                ),
            ));
        }
        if !matches!(self.replicas, 1 | 3 | 5) {
            return Err((k("replicas"), "must be 1, 3 or 5".into()));
        }
        if let Err(e) = humantime::parse_duration(&self.max_age) {
            return Err((k("max_age"), format!("{:?}: {e}", self.max_age)));
        }
        if !(100..=600_000).contains(&self.ack_timeout_ms) {
            return Err((k("ack_timeout_ms"), "must be between 100 and 600000".into()));
        }
        if self.max_inflight == 0 || self.max_inflight > 65_536 {
            return Err((k("max_inflight"), "must be between 1 and 65536".into()));
        }
        Ok(())
    }
}

impl NatsConnection {
    /// Checks a `[sink.nats]` block (no consumer settings there).
    pub(super) fn validate_sink(&self, key: &str) -> Result<(), (String, String)> {
        self.validate(key)?;
        if self.consumer.is_some() || self.durable_name.is_some() {
            return Err((
                format!("{key}.consumer"),
                "consumer settings belong in an edge's [source.nats]".into(),
            ));
        }
        Ok(())
    }

    /// Checks a `[source.nats]` block.
    pub(super) fn validate_source(&self, key: &str) -> Result<(), (String, String)> {
        self.validate(key)?;
        match (self.consumer.unwrap_or_default(), &self.durable_name) {
            (ConsumerKind::Durable, None) => Err((
                format!("{key}.durable_name"),
                "required with consumer = \"durable\"".into(),
            )),
            (ConsumerKind::Durable, Some(n)) if !valid_name(n) => Err((
                format!("{key}.durable_name"),
                format!("{n:?}: 1-64 characters of A-Z a-z 0-9 _ -"),
            )),
            (ConsumerKind::Ordered, Some(_)) => Err((
                format!("{key}.durable_name"),
                "only with consumer = \"durable\"".into(),
            )),
            _ => Ok(()),
        }
    }
}

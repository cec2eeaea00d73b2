//! TOML configuration (`fixcurve run --config FILE`), validated at start-up.
//!
//! Every table refuses unknown keys: a typo (`heartbeat_sec`) is an error naming the key and
//! its line, not a silently ignored setting. After parsing, cross-references (a session's
//! acceptor exists, names are unique, endpoints parse) are checked and reported with the
//! key path (`session[1].acceptor`). Relative paths are made relative to the configuration
//! file's folder, so the daemon behaves the same whatever its working directory. Secrets
//! (private keys, passwords) are only ever referenced by path.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod nats;
pub use self::nats::{ConsumerKind, NatsConnection, SinkSection, SourceSection};

use crate::tls::{ClientTlsSettings, ConnectionLimits, ServerTlsSettings};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Syntax, unknown key, wrong type: toml's message names the key and shows the line.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: `{key}`: {reason}")]
    Invalid {
        path: PathBuf,
        key: String,
        reason: String,
    },
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub publish: Publish,
    #[serde(default)]
    pub state: State,
    #[serde(default)]
    pub audit: Audit,
    #[serde(default)]
    pub metrics: Option<Metrics>,
    #[serde(default)]
    pub bridge: BridgeTuning,
    #[serde(default)]
    pub journal: JournalSection,
    /// Where envelopes are also written (`[sink.nats]`: a JetStream stream).
    #[serde(default)]
    pub sink: SinkSection,
    /// What an edge (`fixcurve edge`) consumes instead of FIX sessions.
    #[serde(default)]
    pub source: SourceSection,
    #[serde(default)]
    pub acceptor: Vec<Acceptor>,
    #[serde(default)]
    pub initiator: Vec<Initiator>,
    #[serde(default)]
    pub session: Vec<Session>,
}

/// What to do with a subscriber whose queue is full.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum SlowPolicy {
    /// Drop the message for that subscriber only, and count it.
    #[default]
    Drop,
    /// Close that subscriber's connection (it reconnects and sees a sequence gap).
    Disconnect,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Publish {
    /// Endpoints subscribers connect to (`tcp://host:port`, `ipc://path`).
    pub bind: Vec<String>,
    /// Keyring root (server/, authorized/, revoked/).
    #[serde(default = "default_keys")]
    pub keys: PathBuf,
    /// Messages queued per subscriber before `slow_policy` applies.
    #[serde(default = "default_queue")]
    pub queue: usize,
    #[serde(default)]
    pub slow_policy: SlowPolicy,
    /// ZMTP heartbeat interval (PING) in seconds; 0 disables.
    #[serde(default = "default_heartbeat")]
    pub heartbeat_secs: u64,
    /// Most authenticated subscribers at once.
    #[serde(default = "default_max_subscribers")]
    pub max_subscribers: usize,
    /// Connections still in the CURVE handshake at once (unauthenticated peers have their
    /// own budget, so they cannot lock subscribers out).
    #[serde(default = "default_curve_handshakes")]
    pub max_handshakes: usize,
    /// Connections in the CURVE handshake from one IP address at once.
    #[serde(default = "default_curve_handshakes_per_ip")]
    pub max_handshakes_per_ip: usize,
    /// From TCP accept to a completed CURVE handshake.
    #[serde(default = "default_curve_handshake_ms")]
    pub handshake_timeout_ms: u64,
    /// CIDR blocks allowed to connect (checked at accept); empty = any.
    #[serde(default)]
    pub allow_ips: Vec<String>,
    /// Endpoints of the replay/snapshot service (CURVE ROUTER, same keyring and ACLs);
    /// empty = none. Needs the journal for replay; snapshots work without it.
    #[serde(default)]
    pub replay_bind: Vec<String>,
}

/// The execution journal (see the README's durability model).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JournalSection {
    /// On by default: executions survive crashes and can be replayed.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Default `<state.dir>/journal`.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Topic prefixes journaled (add `md.` to journal market data too).
    #[serde(default = "default_journal_prefixes")]
    pub prefixes: Vec<String>,
    #[serde(default = "default_segment_mb")]
    pub segment_mb: u64,
    /// Oldest segments are deleted beyond this size...
    #[serde(default = "default_journal_max_mb")]
    pub max_mb: u64,
    /// ... or age (`7d`, `36h`).
    #[serde(default = "default_journal_max_age")]
    pub max_age: String,
}

impl Default for JournalSection {
    fn default() -> Self {
        JournalSection {
            enabled: true,
            dir: None,
            prefixes: default_journal_prefixes(),
            segment_mb: default_segment_mb(),
            max_mb: default_journal_max_mb(),
            max_age: default_journal_max_age(),
        }
    }
}

impl JournalSection {
    /// The journal's configuration, `None` when disabled.
    pub fn config(
        &self,
        state_dir: &std::path::Path,
    ) -> Result<Option<crate::journal::JournalConfig>, String> {
        if !self.enabled {
            return Ok(None);
        }
        let dir = self
            .dir
            .clone()
            .unwrap_or_else(|| state_dir.join("journal"));
        let mut c = crate::journal::JournalConfig::new(dir);
        if self.prefixes.is_empty() || self.prefixes.iter().any(|p| p.is_empty()) {
            return Err(
                "[journal] prefixes must be non-empty topic prefixes such as \"exec.\"".into(),
            );
        }
        c.prefixes = self.prefixes.clone();
        c.segment_bytes = self.segment_mb.max(1) << 20;
        c.max_bytes = self.max_mb.max(1) << 20;
        c.max_age = humantime::parse_duration(&self.max_age)
            .map_err(|e| format!("[journal] max_age {:?}: {e}", self.max_age))?;
        Ok(Some(c))
    }
}

fn default_journal_prefixes() -> Vec<String> {
    vec!["exec.".into()]
}
fn default_segment_mb() -> u64 {
    64
}
fn default_journal_max_mb() -> u64 {
    4096
}
fn default_journal_max_age() -> String {
    "7d".into()
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct State {
    #[serde(default = "default_state")]
    pub dir: PathBuf,
}

impl Default for State {
    fn default() -> Self {
        State {
            dir: default_state(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Audit {
    #[serde(default = "default_audit")]
    pub path: PathBuf,
}

impl Default for Audit {
    fn default() -> Self {
        Audit {
            path: default_audit(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// `host:port` of the Prometheus text endpoint (GET /metrics).
    pub listen: SocketAddr,
}

/// Internal capacities; the defaults suit most deployments.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BridgeTuning {
    /// FIX messages buffered between the FIX readers and the publisher. When full, FIX
    /// sockets stop being read: TCP back-pressure reaches the FIX peer, nothing is dropped.
    #[serde(default = "default_channel")]
    pub channel: usize,
}

impl Default for BridgeTuning {
    fn default() -> Self {
        BridgeTuning {
            channel: default_channel(),
        }
    }
}

/// A TLS listener that FIX initiators connect to.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Acceptor {
    pub name: String,
    /// `host:port`; port 0 picks a free port (printed on the `listening:` line).
    pub listen: SocketAddr,
    pub cert: PathBuf,
    #[serde(default)]
    pub key: Option<PathBuf>,
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    #[serde(default)]
    pub crl: Vec<PathBuf>,
    #[serde(default)]
    pub pinned_sha256: Vec<String>,
    #[serde(default)]
    pub tls13_only: bool,
    /// CIDR blocks allowed to connect (checked before the TLS handshake); empty = any.
    #[serde(default)]
    pub allow_ips: Vec<String>,
    #[serde(default = "default_per_ip")]
    pub max_connections_per_ip: usize,
    #[serde(default = "default_handshakes")]
    pub max_concurrent_handshakes: usize,
    #[serde(default = "default_handshake_ms")]
    pub handshake_timeout_ms: u64,
}

impl Acceptor {
    pub fn tls(&self) -> ServerTlsSettings {
        ServerTlsSettings {
            cert: self.cert.clone(),
            key: self.key.clone(),
            client_ca: self.client_ca.clone(),
            crl: self.crl.clone(),
            pinned_sha256: self.pinned_sha256.clone(),
            tls13_only: self.tls13_only,
        }
    }

    pub fn limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_connections_per_ip: self.max_connections_per_ip,
            max_concurrent_handshakes: self.max_concurrent_handshakes,
            handshake_timeout_ms: self.handshake_timeout_ms,
        }
    }
}

/// fixcurve connects out over (m)TLS, e.g. to a venue.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Initiator {
    pub name: String,
    /// `host:port` to connect to.
    pub connect: String,
    #[serde(default)]
    pub cert: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<PathBuf>,
    #[serde(default)]
    pub ca: Option<PathBuf>,
    #[serde(default)]
    pub server_name: Option<String>,
    #[serde(default)]
    pub pinned_sha256: Vec<String>,
    #[serde(default)]
    pub tls13_only: bool,
    /// First reconnect delay after a loss; doubles up to `reconnect_max_secs`.
    #[serde(default = "default_reconnect_min_ms")]
    pub reconnect_min_ms: u64,
    #[serde(default = "default_reconnect_max_secs")]
    pub reconnect_max_secs: u64,
}

impl Initiator {
    pub fn tls(&self) -> ClientTlsSettings {
        ClientTlsSettings {
            cert: self.cert.clone(),
            key: self.key.clone(),
            ca: self.ca.clone(),
            server_name: self.server_name.clone(),
            pinned_sha256: self.pinned_sha256.clone(),
            tls13_only: self.tls13_only,
        }
    }
}

/// One FIX session: which listener or connection carries it, its CompIDs, which TLS
/// identity may log on as it, and the VENUE its events are published under.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Session {
    pub venue: String,
    #[serde(default)]
    pub acceptor: Option<String>,
    #[serde(default)]
    pub initiator: Option<String>,
    pub begin_string: String,
    /// FIXT.1.1 sessions: the application version (DefaultApplVerID, 1137), e.g. `9` (5.0 SP2).
    #[serde(default)]
    pub default_appl_ver_id: Option<String>,
    pub sender_comp_id: String,
    pub target_comp_id: String,
    /// Certificate CN / DNS SAN, or `sha256:<hex>`, allowed to log on as this session.
    #[serde(default)]
    pub tls_identity: Option<String>,
    #[serde(default = "default_fix_heartbeat")]
    pub heartbeat_secs: u32,
    /// Symbols to request market data for (initiator sessions: a MarketDataRequest after Logon).
    #[serde(default)]
    pub subscribe: Vec<String>,
    /// Logon Username (553), for venues that authenticate at the FIX layer.
    #[serde(default)]
    pub username: Option<String>,
    /// File holding the Logon Password (554) — never the password itself.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Send/expect ResetSeqNumFlag (141=Y) on every Logon.
    #[serde(default)]
    pub reset_on_logon: bool,
    /// Most inbound application messages per second before the session is logged out.
    #[serde(default = "default_rate")]
    pub max_msgs_per_sec: u32,
    /// How long (ms) the sequence number of input that made us send nothing may wait for its
    /// disk sync; 0 syncs every read before its messages are published.
    #[serde(default = "default_inbound_sync_ms")]
    pub inbound_sync_ms: u32,
    /// A QuickFIX-format data dictionary (e.g. QuickFIX's `FIX44.xml`): inbound messages are
    /// validated against it and refused with the FIX Reject reason codes.
    #[serde(default)]
    pub data_dictionary: Option<PathBuf>,
    /// FIXT.1.1 sessions: the application dictionary (e.g. FIX50SP2.xml); `data_dictionary`
    /// is then the transport one (FIXT11.xml), as QuickFIX's AppDataDictionary and
    /// TransportDataDictionary.
    #[serde(default)]
    pub app_data_dictionary: Option<PathBuf>,
    /// Session schedule, QuickFIX's StartTime/EndTime/StartDay/EndDay/TimeZone: times of day
    /// `HH:MM:SS` in `time_zone` (IANA name, default UTC); days `Mon`..`Sun` for a weekly
    /// session. Outside it no Logon is accepted or sent; at its end we log out.
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub end_time: Option<String>,
    #[serde(default)]
    pub start_day: Option<String>,
    #[serde(default)]
    pub end_day: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
    /// With a schedule: sequence numbers start again at 1 in each new period.
    #[serde(default = "default_true")]
    pub reset_each_period: bool,
}

impl Session {
    /// The session's schedule, if it has one (`start_time` and `end_time` set).
    pub fn schedule(&self) -> Result<Option<crate::fix::session::schedule::Schedule>, String> {
        match (&self.start_time, &self.end_time) {
            (None, None) if self.start_day.is_none() && self.end_day.is_none() => Ok(None),
            (Some(s), Some(e)) => crate::fix::session::schedule::Schedule::parse(
                s,
                e,
                self.start_day.as_deref(),
                self.end_day.as_deref(),
                self.time_zone.as_deref(),
            )
            .map(Some),
            _ => Err("start_time and end_time go together (and days need both)".into()),
        }
    }

    /// `SENDER->TARGET`, from our side (used in logs, metrics and envelopes).
    pub fn id(&self) -> String {
        format!("{}->{}", self.sender_comp_id, self.target_comp_id)
    }
}

fn default_true() -> bool {
    true
}
fn default_keys() -> PathBuf {
    "keys".into()
}
fn default_state() -> PathBuf {
    "state".into()
}
fn default_audit() -> PathBuf {
    "state/audit.jsonl".into()
}
fn default_queue() -> usize {
    10_000
}
fn default_heartbeat() -> u64 {
    10
}
fn default_max_subscribers() -> usize {
    1024
}
fn default_curve_handshakes() -> usize {
    256
}
fn default_curve_handshakes_per_ip() -> usize {
    32
}
fn default_curve_handshake_ms() -> u64 {
    2_000
}
fn default_channel() -> usize {
    4096
}
fn default_per_ip() -> usize {
    ConnectionLimits::default().max_connections_per_ip
}
fn default_handshakes() -> usize {
    ConnectionLimits::default().max_concurrent_handshakes
}
fn default_handshake_ms() -> u64 {
    ConnectionLimits::default().handshake_timeout_ms
}
fn default_reconnect_min_ms() -> u64 {
    500
}
fn default_reconnect_max_secs() -> u64 {
    30
}
fn default_fix_heartbeat() -> u32 {
    30
}
fn default_rate() -> u32 {
    50_000
}

fn default_inbound_sync_ms() -> u32 {
    50
}

/// Largest configuration file read (it is a few kilobytes in practice).
const MAX_FILE: u64 = 1024 * 1024;

/// Characters a VENUE may contain: it becomes part of topics that subscribers prefix-match,
/// so a `.` would make `md.A` and `md.A.B` ambiguous.
fn valid_venue(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Config {
    /// Reads, parses, resolves paths against the file's folder, and validates.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let read_err = |source| ConfigError::Read {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read_err)?;
        if meta.len() > MAX_FILE {
            return Err(ConfigError::Parse {
                path: path.to_owned(),
                message: format!("file larger than {MAX_FILE} bytes"),
            });
        }
        let text = std::fs::read_to_string(path).map_err(read_err)?;
        // Absolute, so paths in errors and logs say exactly which file is meant.
        let parent = path.parent().unwrap_or(Path::new(""));
        let base = if parent.is_absolute() {
            parent.to_path_buf()
        } else {
            std::env::current_dir()
                .map(|cwd| cwd.join(parent))
                .unwrap_or_else(|_| parent.to_path_buf())
        };
        Self::parse(&text, path, &base)
    }

    /// Parses `text` as if read from `path`, resolving relative paths against `base`.
    pub fn parse(text: &str, path: &Path, base: &Path) -> Result<Config, ConfigError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        cfg.resolve(base);
        cfg.validate(path)?;
        Ok(cfg)
    }

    fn resolve(&mut self, base: &Path) {
        let join = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        join(&mut self.publish.keys);
        join(&mut self.state.dir);
        join(&mut self.audit.path);
        if let Some(n) = &mut self.sink.nats {
            n.resolve(base);
        }
        if let Some(n) = &mut self.source.nats {
            n.resolve(base);
        }
        for a in &mut self.acceptor {
            join(&mut a.cert);
            a.key.as_mut().map(join);
            a.client_ca.as_mut().map(join);
            a.crl.iter_mut().for_each(join);
        }
        for i in &mut self.initiator {
            i.cert.as_mut().map(join);
            i.key.as_mut().map(join);
            i.ca.as_mut().map(join);
        }
        for s in &mut self.session {
            s.password_file.as_mut().map(join);
            s.data_dictionary.as_mut().map(join);
            s.app_data_dictionary.as_mut().map(join);
        }
        for ep in &mut self.publish.bind {
            if let Some(p) = ep.strip_prefix("ipc://") {
                if Path::new(p).is_relative() {
                    *ep = format!("ipc://{}", base.join(p).display());
                }
            }
        }
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |key: String, reason: String| ConfigError::Invalid {
            path: path.to_owned(),
            key,
            reason,
        };
        if self.publish.bind.is_empty() {
            return Err(bad(
                "publish.bind".into(),
                "at least one endpoint is required".into(),
            ));
        }
        for (i, ep) in self.publish.bind.iter().enumerate() {
            if !(ep.starts_with("tcp://") || ep.starts_with("ipc://")) {
                return Err(bad(
                    format!("publish.bind[{i}]"),
                    format!("{ep:?}: endpoints are tcp://host:port or ipc://path"),
                ));
            }
        }
        if self.publish.queue == 0 || self.publish.queue > 10_000_000 {
            return Err(bad(
                "publish.queue".into(),
                "must be between 1 and 10000000".into(),
            ));
        }
        if self.publish.max_subscribers == 0 {
            return Err(bad(
                "publish.max_subscribers".into(),
                "must be at least 1".into(),
            ));
        }
        for (key, v) in [
            ("publish.max_handshakes", self.publish.max_handshakes),
            (
                "publish.max_handshakes_per_ip",
                self.publish.max_handshakes_per_ip,
            ),
        ] {
            if v == 0 || v > 1_000_000 {
                return Err(bad(key.into(), "must be between 1 and 1000000".into()));
            }
        }
        if !(100..=60_000).contains(&self.publish.handshake_timeout_ms) {
            return Err(bad(
                "publish.handshake_timeout_ms".into(),
                "must be between 100 and 60000".into(),
            ));
        }
        if let Err(e) = crate::admission::AllowList::parse(&self.publish.allow_ips) {
            return Err(bad("publish.allow_ips".into(), e));
        }
        if let Some(n) = &self.sink.nats {
            n.validate_sink("sink.nats").map_err(|(k, r)| bad(k, r))?;
        }
        if let Some(n) = &self.source.nats {
            n.validate_source("source.nats")
                .map_err(|(k, r)| bad(k, r))?;
            if let Some(k) = [
                (!self.acceptor.is_empty()).then_some("acceptor"),
                (!self.initiator.is_empty()).then_some("initiator"),
                (!self.session.is_empty()).then_some("session"),
                self.sink.nats.is_some().then_some("sink.nats"),
            ]
            .into_iter()
            .flatten()
            .next()
            {
                return Err(bad(
                    k.into(),
                    "an edge ([source.nats]) has no FIX side and no sink: run the bridge separately".into(),
                ));
            }
        }
        if self.bridge.channel == 0 || self.bridge.channel > 1_000_000 {
            return Err(bad(
                "bridge.channel".into(),
                "must be between 1 and 1000000".into(),
            ));
        }
        let mut names = HashSet::new();
        for (i, a) in self.acceptor.iter().enumerate() {
            if !names.insert(a.name.as_str()) {
                return Err(bad(
                    format!("acceptor[{i}].name"),
                    format!(
                        "{:?} is used twice (acceptor and initiator names are one namespace)",
                        a.name
                    ),
                ));
            }
            a.tls()
                .validate()
                .map_err(|e| bad(format!("acceptor[{i}]"), e.to_string()))?;
            crate::tls::AllowList::parse(&a.allow_ips)
                .map_err(|e| bad(format!("acceptor[{i}].allow_ips"), e))?;
            if a.max_concurrent_handshakes == 0 {
                return Err(bad(
                    format!("acceptor[{i}].max_concurrent_handshakes"),
                    "must be at least 1".into(),
                ));
            }
        }
        for (i, n) in self.initiator.iter().enumerate() {
            if !names.insert(n.name.as_str()) {
                return Err(bad(
                    format!("initiator[{i}].name"),
                    format!(
                        "{:?} is used twice (acceptor and initiator names are one namespace)",
                        n.name
                    ),
                ));
            }
            n.tls()
                .validate()
                .map_err(|e| bad(format!("initiator[{i}]"), e.to_string()))?;
            if n.connect
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_none()
            {
                return Err(bad(
                    format!("initiator[{i}].connect"),
                    format!("{:?} is not host:port", n.connect),
                ));
            }
        }
        let mut ids = HashSet::new();
        for (i, s) in self.session.iter().enumerate() {
            let k = |f: &str| format!("session[{i}].{f}");
            if !valid_venue(&s.venue) {
                return Err(bad(
                    k("venue"),
                    format!(
                        "{:?}: 1-64 characters of A-Z a-z 0-9 _ - (it is a topic component)",
                        s.venue
                    ),
                ));
            }
            match (&s.acceptor, &s.initiator) {
                (Some(a), None) => {
                    if !self.acceptor.iter().any(|x| &x.name == a) {
                        return Err(bad(k("acceptor"), format!("no [[acceptor]] named {a:?}")));
                    }
                    let mutual = self
                        .acceptor
                        .iter()
                        .find(|x| &x.name == a)
                        .is_some_and(|x| x.tls().mutual());
                    if mutual && s.tls_identity.is_none() {
                        return Err(bad(
                            k("tls_identity"),
                            "required on a session of an mTLS acceptor: which certificate may log on as it".into(),
                        ));
                    }
                    if !mutual && s.password_file.is_none() {
                        return Err(bad(
                            k("password_file"),
                            "a session on a one-way TLS acceptor must authenticate with Logon Username/Password".into(),
                        ));
                    }
                }
                (None, Some(n)) => {
                    if !self.initiator.iter().any(|x| &x.name == n) {
                        return Err(bad(k("initiator"), format!("no [[initiator]] named {n:?}")));
                    }
                }
                _ => {
                    return Err(bad(
                        k("acceptor"),
                        "exactly one of `acceptor` or `initiator` is required".into(),
                    ))
                }
            }
            if !matches!(
                s.begin_string.as_str(),
                "FIX.4.2" | "FIX.4.3" | "FIX.4.4" | "FIXT.1.1"
            ) {
                return Err(bad(
                    k("begin_string"),
                    format!(
                        "{:?}: one of FIX.4.2, FIX.4.3, FIX.4.4, FIXT.1.1",
                        s.begin_string
                    ),
                ));
            }
            for (f, v) in [
                ("sender_comp_id", &s.sender_comp_id),
                ("target_comp_id", &s.target_comp_id),
            ] {
                if v.is_empty() || v.len() > 64 || v.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
                    return Err(bad(k(f), format!("{v:?}: 1-64 printable ASCII characters")));
                }
            }
            if s.heartbeat_secs == 0 || s.heartbeat_secs > 3600 {
                return Err(bad(
                    k("heartbeat_secs"),
                    "must be between 1 and 3600".into(),
                ));
            }
            if s.max_msgs_per_sec == 0 {
                return Err(bad(k("max_msgs_per_sec"), "must be at least 1".into()));
            }
            if s.inbound_sync_ms > 10_000 {
                return Err(bad(
                    k("inbound_sync_ms"),
                    "must be between 0 and 10000".into(),
                ));
            }
            if s.app_data_dictionary.is_some() && s.data_dictionary.is_none() {
                return Err(bad(
                    k("app_data_dictionary"),
                    "needs data_dictionary (the transport dictionary, e.g. FIXT11.xml)".into(),
                ));
            }
            if let Err(e) = s.schedule() {
                return Err(bad(k("start_time"), e));
            }
            if s.username.is_some() != s.password_file.is_some() {
                return Err(bad(
                    k("password_file"),
                    "`username` and `password_file` go together".into(),
                ));
            }
            if !s.subscribe.is_empty() && s.initiator.is_none() {
                return Err(bad(
                    k("subscribe"),
                    "only initiator sessions send MarketDataRequests".into(),
                ));
            }
            let conn = s.acceptor.as_ref().or(s.initiator.as_ref());
            if !ids.insert((conn, s.sender_comp_id.clone(), s.target_comp_id.clone())) {
                return Err(bad(
                    k("target_comp_id"),
                    format!("session {} is defined twice on {:?}", s.id(), conn),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

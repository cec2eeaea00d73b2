//! Connects out to a venue over TLS (usually mTLS with a venue-issued combined PEM), runs the
//! session, asks for market data after Logon, and reconnects with exponential back-off and
//! jitter so a fleet of bridges does not hammer a venue in lockstep after an outage.

use std::path::PathBuf;
use std::time::Duration;

use rand_core::RngCore;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use super::drive::{self, FixEvent, OutboundApp, Outbox};
use super::TransportError;
use crate::audit::{AuditLog, AuditRecord, Side};
use crate::fix::session::SessionConfig;
use crate::tls::{ClientTlsSettings, PeerIdentity, ReloadableClient};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Reconnect back-off: doubles from `min_ms` up to `max_secs`, each wait drawn uniformly
/// from [half, full] of the current step. Reset after a session that logged on.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Reconnect {
    pub min_ms: u64,
    pub max_secs: u64,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            min_ms: 500,
            max_secs: 30,
        }
    }
}

impl Reconnect {
    fn delay(&self, attempt: u32) -> Duration {
        let max = self.max_secs.saturating_mul(1000).max(self.min_ms.max(1));
        let step = self
            .min_ms
            .max(1)
            .saturating_mul(1u64 << attempt.min(20))
            .min(max);
        let jitter = rand_core::OsRng.next_u64() % (step / 2 + 1);
        Duration::from_millis(step - jitter)
    }
}

#[derive(Clone, Debug)]
pub struct InitiatorConfig {
    pub name: String,
    /// `host:port`.
    pub connect: String,
    pub tls: ClientTlsSettings,
    pub venue: String,
    pub session: SessionConfig,
    /// Symbols for one MarketDataRequest (35=V) sent after each Logon.
    pub subscribe: Vec<String>,
    pub reconnect: Reconnect,
    /// Whether a session hands the bridge its next batch while the last still awaits the
    /// bridge's acknowledgement (see `drive::Env::read_ahead`): off behind a JetStream sink.
    pub read_ahead: bool,
}

/// The MarketDataRequest for `symbols`: snapshot + updates, full book, incremental refresh,
/// bids, offers and trades.
pub fn market_data_request(req_id: &str, symbols: &[String]) -> OutboundApp {
    let mut fields: Vec<(u32, Vec<u8>)> = vec![
        (262, req_id.as_bytes().to_vec()),
        (263, b"1".to_vec()),
        (264, b"0".to_vec()),
        (265, b"1".to_vec()),
        (267, b"3".to_vec()),
        (269, b"0".to_vec()),
        (269, b"1".to_vec()),
        (269, b"2".to_vec()),
        (146, symbols.len().to_string().into_bytes()),
    ];
    for s in symbols {
        fields.push((55, s.as_bytes().to_vec()));
    }
    OutboundApp {
        msg_type: "V".into(),
        fields,
    }
}

/// Runs until `shutdown`; connection failures are logged, audited and retried.
pub async fn run_initiator(
    cfg: InitiatorConfig,
    state_dir: PathBuf,
    audit: AuditLog,
    out: mpsc::Sender<FixEvent>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), TransportError> {
    run_initiator_with(cfg, state_dir, audit, out, shutdown, Outbox::default()).await
}

/// As [`run_initiator`], with an [`Outbox`] for sending application messages.
/// How long until the session's schedule allows a connection; `None` when it does now.
fn until_schedule(cfg: &crate::fix::session::SessionConfig) -> Option<Duration> {
    let schedule = cfg.schedule.as_ref()?;
    let now = jiff::Timestamp::now();
    if schedule.period_at(now).is_some() {
        return None;
    }
    let next = schedule.next_start(now)?;
    Some(Duration::try_from(next.duration_since(now)).unwrap_or(Duration::from_secs(1)))
}

pub async fn run_initiator_with(
    cfg: InitiatorConfig,
    state_dir: PathBuf,
    audit: AuditLog,
    out: mpsc::Sender<FixEvent>,
    mut shutdown: watch::Receiver<bool>,
    outbox: Outbox,
) -> Result<(), TransportError> {
    let label = format!("initiator:{}", cfg.name);
    let tls = ReloadableClient::client(label.clone(), cfg.tls.clone()).map_err(|source| {
        TransportError::Tls {
            name: label.clone(),
            source,
        }
    })?;
    let server_name = crate::tls::client::server_name(&cfg.tls, &cfg.connect).map_err(|e| {
        TransportError::Config {
            name: label.clone(),
            reason: e.to_string(),
        }
    })?;
    let reload_task = tls.spawn_watch(audit.clone(), shutdown.clone());
    let mut attempt: u32 = 0;
    let mut seq = 0u64;
    loop {
        if *shutdown.borrow() {
            break;
        }
        // Outside the session schedule nothing connects: wait for the next period (in steps,
        // so a changed clock or a long weekend is re-evaluated).
        if let Some(wait) = until_schedule(&cfg.session) {
            tracing::info!(initiator = %cfg.name, wait_secs = wait.as_secs(), "outside the session schedule; waiting");
            tokio::select! {
                _ = tokio::time::sleep(wait.min(Duration::from_secs(60))) => continue,
                _ = shutdown.changed() => break,
            }
        }
        let connected = tokio::select! {
            r = connect(&cfg.connect, tls.current(), server_name.clone()) => r,
            _ = shutdown.changed() => break,
        };
        match connected {
            Err(reason) => {
                audit.record(
                    AuditRecord::new(Side::Tls, "connect_failed", false)
                        .peer(&cfg.connect)
                        .name(&label)
                        .reason(&reason),
                );
                tracing::warn!(initiator = %cfg.name, connect = %cfg.connect, %reason, "connection failed");
            }
            Ok((stream, identity)) => {
                audit.record(
                    AuditRecord::new(Side::Tls, "tls_connected", true)
                        .peer(&cfg.connect)
                        .name(&label)
                        .identity(identity),
                );
                seq += 1;
                let after_logon = if cfg.subscribe.is_empty() {
                    Vec::new()
                } else {
                    vec![market_data_request(
                        &format!("{}-{seq}", cfg.venue),
                        &cfg.subscribe,
                    )]
                };
                let ended = drive::serve(
                    drive::Conn {
                        stream,
                        buffered: Vec::new(),
                        peer: cfg.connect.clone(),
                    },
                    &cfg.session,
                    drive::Env {
                        stop: None,
                        venue: &cfg.venue,
                        state_dir: &state_dir,
                        out: &out,
                        shutdown: shutdown.clone(),
                        outbox: &outbox,
                        audit: &audit,
                        after_logon,
                        read_ahead: cfg.read_ahead,
                    },
                )
                .await;
                if ended.shutdown {
                    break;
                }
                if ended.was_logged_on {
                    attempt = 0;
                }
            }
        }
        let wait = cfg.reconnect.delay(attempt);
        attempt = attempt.saturating_add(1);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
    }
    reload_task.abort();
    Ok(())
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

async fn connect(
    addr: &str,
    cfg: std::sync::Arc<rustls::ClientConfig>,
    name: rustls::pki_types::ServerName<'static>,
) -> Result<(Tls, String), String> {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| "TCP connect timed out".to_string())?
        .map_err(|e| format!("TCP connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let tls = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_rustls::TlsConnector::from(cfg).connect(name, tcp),
    )
    .await
    .map_err(|_| "TLS handshake timed out".to_string())?
    .map_err(|e| format!("TLS handshake: {e}"))?;
    let identity = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| PeerIdentity::from_der(c).to_string())
        .unwrap_or_default();
    Ok((tls, identity))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let r = Reconnect {
            min_ms: 100,
            max_secs: 1,
        };
        for _ in 0..50 {
            let d0 = r.delay(0).as_millis();
            assert!((50..=100).contains(&d0), "{d0}");
            let d3 = r.delay(3).as_millis();
            assert!((400..=800).contains(&d3), "{d3}");
            let d30 = r.delay(30).as_millis();
            assert!((500..=1000).contains(&d30), "{d30}");
        }
    }

    #[test]
    fn market_data_request_groups_in_order() {
        let m = market_data_request("R1", &["EUR/USD".into(), "USD/JPY".into()]);
        let tags: Vec<u32> = m.fields.iter().map(|f| f.0).collect();
        assert_eq!(
            tags,
            vec![262, 263, 264, 265, 267, 269, 269, 269, 146, 55, 55]
        );
    }
}

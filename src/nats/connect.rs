//! Connecting to the cluster with the configured credentials. Secret files (credentials,
//! nkey seed, TLS key) are refused when group or others can read them, as every other
//! secret of ours is; their contents are never logged.

use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event};

use super::NatsError;
use crate::config::NatsConnection;
use crate::metrics::Registry;

/// Largest nkey seed file read.
const MAX_SEED_FILE: u64 = 4096;

fn secret_err(path: &std::path::Path, reason: impl std::fmt::Display) -> NatsError {
    NatsError::Secret {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Options for `cfg` (reads and checks the secret files).
pub async fn options(cfg: &NatsConnection, name: &str) -> Result<ConnectOptions, NatsError> {
    let mut o = ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(3))
        .ping_interval(Duration::from_secs(5))
        .request_timeout(Some(Duration::from_millis(cfg.ack_timeout_ms)))
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| {
            super::backoff(u32::try_from(attempts).unwrap_or(u32::MAX))
        })
        .event_callback(|ev| async move {
            match ev {
                Event::Connected => tracing::info!("nats: connected"),
                Event::Disconnected => tracing::warn!("nats: disconnected; reconnecting"),
                // Authorization failures (a revoked credential) arrive here: say so on every
                // attempt, the bridge is holding its FIX sessions until this clears.
                Event::ServerError(e) => tracing::error!(error = %e, "nats: server error"),
                Event::ClientError(e) => tracing::warn!(error = %e, "nats: client error"),
                other => tracing::info!(event = %other, "nats"),
            }
        });
    if let Some(p) = &cfg.credentials {
        crate::keys::fsutil::check_private(p).map_err(|e| secret_err(p, e))?;
        o = o.credentials_file(p).await.map_err(|e| secret_err(p, e))?;
    }
    if let Some(p) = &cfg.nkey {
        crate::keys::fsutil::check_private(p).map_err(|e| secret_err(p, e))?;
        let seed = crate::keys::fsutil::read_bounded(p, MAX_SEED_FILE)
            .map_err(|e| secret_err(p, e))?
            .ok_or_else(|| secret_err(p, "larger than 4096 bytes"))?;
        let seed =
            String::from_utf8(seed).map_err(|_| secret_err(p, "not an nkey seed (not text)"))?;
        let seed = seed.trim();
        if !seed.starts_with('S') {
            return Err(secret_err(p, "not an nkey seed (seeds start with S)"));
        }
        o = o.nkey(seed.to_owned());
    }
    if let Some(ca) = &cfg.tls_ca {
        o = o.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let (Some(cert), Some(key)) = (&cfg.tls_cert, &cfg.tls_key) {
        crate::keys::fsutil::check_private(key).map_err(|e| secret_err(key, e))?;
        o = o.add_client_certificate(cert.clone(), key.clone());
    }
    Ok(o)
}

/// Connects, retrying with back-off until it works: the caller holds what depends on the
/// cluster (the FIX side waits on acknowledgements) and says so in the log on every attempt.
pub async fn connect_retrying(
    cfg: &NatsConnection,
    name: &str,
    registry: &Registry,
) -> Result<Client, NatsError> {
    let servers = cfg.servers.join(",");
    let mut attempt = 0u32;
    loop {
        let o = options(cfg, name).await?;
        match o.connect(cfg.servers.as_slice()).await {
            Ok(c) => return Ok(c),
            Err(e) => {
                let wait = super::backoff(attempt);
                registry
                    .nats
                    .up
                    .store(0, std::sync::atomic::Ordering::Relaxed);
                tracing::error!(servers = %servers, error = %e, retry_in_ms = wait.as_millis() as u64, "nats: cannot connect");
                tokio::time::sleep(wait).await;
                attempt = attempt.saturating_add(1);
            }
        }
    }
}

//! Measures revocation-to-disconnect time: how long after `keys revoke` moves a key file
//! into `revoked/` the publisher has closed that subscriber's live connection.
//!
//! Each run authorizes a fresh client key, connects a subscriber and waits for data, then
//! renames `authorized/NAME.key` to `revoked/NAME.key` (exactly what `fixcurve keys revoke`
//! does) and times until the subscriber sees the connection drop.
//!
//! ```text
//! cargo run --release --example revocation_latency -- [RUNS]     (default 50)
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fixcurve::audit::AuditLog;
use fixcurve::keyring::{self, Keyring};
use fixcurve::keys::{cert, Keypair};
use fixcurve::pubsub::{Publisher, PublisherConfig, SubEvent, Subscriber, SubscriberConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(50);
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    let server = keyring::load_or_create_server_keypair(root, &AuditLog::discard())?;
    let keyring = Keyring::open(root, AuditLog::discard())?;
    let publisher = Arc::new(
        Publisher::bind(
            PublisherConfig::new(vec!["tcp://127.0.0.1:0".into()], server.clone()),
            keyring,
            AuditLog::discard(),
        )
        .await?,
    );
    let endpoint = publisher
        .local_endpoints()
        .first()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no endpoint"))?;
    let ticker = {
        let publisher = publisher.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(1));
            loop {
                every.tick().await;
                publisher.publish(Bytes::from_static(b"md.X"), Bytes::from_static(b"tick"));
            }
        })
    };

    let mut samples = Vec::with_capacity(runs);
    for run in 0..runs {
        let name = format!("c{run}");
        let client = Keypair::generate();
        let authorized = root.join("authorized").join(format!("{name}.key"));
        cert::write_public(
            &authorized,
            &client.public,
            &[("name".into(), name.clone())],
        )?;
        // The keyring picks the file up by itself; retry the connection until it is served.
        let mut sub = loop {
            let mut cfg = SubscriberConfig::new(endpoint.clone(), server.public, client.clone());
            cfg.subscriptions = vec![Bytes::new()];
            let mut sub = Subscriber::connect(cfg)?;
            let served = tokio::time::timeout(Duration::from_secs(2), async {
                while let Some(ev) = sub.recv().await {
                    if matches!(ev, SubEvent::Message(_)) {
                        return true;
                    }
                }
                false
            })
            .await
            .unwrap_or(false);
            if served {
                break sub;
            }
        };
        let revoked = root.join("revoked").join(format!("{name}.key"));
        let start = Instant::now();
        std::fs::rename(&authorized, &revoked)?;
        let dropped = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(ev) = sub.recv().await {
                if matches!(ev, SubEvent::Disconnected { .. }) {
                    return Some(start.elapsed());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .ok_or_else(|| anyhow::anyhow!("run {run}: not disconnected within 5 s"))?;
        samples.push(dropped);
    }
    ticker.abort();
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "revocation -> disconnect over {} runs: min {:?}  median {:?}  p90 {:?}  p99 {:?}  max {:?}",
        samples.len(),
        samples[0],
        pct(0.5),
        pct(0.9),
        pct(0.99),
        samples[samples.len() - 1]
    );
    Ok(())
}

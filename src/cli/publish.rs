//! `fixcurve pub`: publishes each line of standard input as one `[topic, line]` message
//! through the same CURVE publisher and keyring as the daemon.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use clap::Args as ClapArgs;
use std::io::BufRead;

use crate::audit::AuditLog;
use crate::pubsub::{OverflowPolicy, Publisher, PublisherConfig};

/// Publish standard input, one message per line. After end of input it keeps serving
/// subscribers until SIGINT or SIGTERM.
#[derive(Debug, ClapArgs)]
#[command(
    after_help = "On end of standard input the publisher keeps running (subscribers stay \
connected) until SIGINT or SIGTERM, then flushes queues briefly and exits 0."
)]
pub struct Args {
    /// Endpoint to bind, e.g. tcp://127.0.0.1:5556 or ipc:///run/fixcurve.sock (repeatable).
    #[arg(long, required = true)]
    pub bind: Vec<String>,
    /// Keyring root (server/, authorized/, revoked/).
    #[arg(long)]
    pub keys: PathBuf,
    /// Topic frame for every line.
    #[arg(long, default_value = "")]
    pub topic: String,
    /// Append audit records (JSON lines) to this file.
    #[arg(long)]
    pub audit: Option<PathBuf>,
    /// Per-subscriber queue, in messages.
    #[arg(long, default_value_t = 10_000)]
    pub queue: usize,
    /// On a full subscriber queue: drop (count it) or disconnect that subscriber.
    #[arg(long, default_value = "drop", value_parser = ["drop", "disconnect"])]
    pub overflow: String,
    /// Heartbeat (PING) interval in milliseconds; 0 disables our PINGs.
    #[arg(long, default_value_t = 10_000)]
    pub heartbeat_ms: u64,
    /// Most authenticated subscribers at once.
    #[arg(long, default_value_t = 1024)]
    pub max_subscribers: usize,
    /// Connections still in the CURVE handshake at once.
    #[arg(long, default_value_t = 256)]
    pub max_handshakes: usize,
    /// Connections in the CURVE handshake from one IP address at once.
    #[arg(long, default_value_t = 32)]
    pub max_handshakes_per_ip: usize,
    /// A connection without a complete CURVE handshake after this long is closed.
    #[arg(long, default_value_t = 2_000)]
    pub handshake_timeout_ms: u64,
}

pub async fn run(args: Args) -> super::Outcome {
    let audit = match &args.audit {
        Some(p) => AuditLog::open(p).with_context(|| format!("audit log {}", p.display()))?,
        None => AuditLog::discard(),
    };
    let server = crate::keyring::load_or_create_server_keypair(&args.keys, &audit)?;
    let authorizer = crate::keyring::Keyring::open(&args.keys, audit.clone())?;
    let mut cfg = PublisherConfig::new(args.bind.clone(), server);
    cfg.queue_capacity = args.queue.max(1);
    cfg.max_subscribers = args.max_subscribers.max(1);
    cfg.max_handshakes = args.max_handshakes.max(1);
    cfg.max_handshakes_per_ip = args.max_handshakes_per_ip.max(1);
    cfg.handshake_timeout = Duration::from_millis(args.handshake_timeout_ms.max(1));
    cfg.overflow = if args.overflow == "disconnect" {
        OverflowPolicy::Disconnect
    } else {
        OverflowPolicy::Drop
    };
    cfg.heartbeat_ivl = (args.heartbeat_ms > 0).then(|| Duration::from_millis(args.heartbeat_ms));
    cfg.heartbeat_timeout = Duration::from_millis(args.heartbeat_ms.max(1000) * 3);
    let publisher = Publisher::bind(cfg, authorizer, audit).await?;
    for ep in publisher.local_endpoints() {
        eprintln!("listening: publish {ep}");
    }
    let topic = Bytes::from(args.topic.clone().into_bytes());
    // A plain thread reads stdin: tokio's stdin would make runtime shutdown wait for a
    // blocked read after SIGTERM.
    let (line_tx, mut lines) = tokio::sync::mpsc::channel::<std::io::Result<String>>(1024);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            if line_tx.blocking_send(line).is_err() {
                return;
            }
        }
    });
    let mut stdin_open = true;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            line = lines.recv(), if stdin_open => match line.transpose() {
                Ok(Some(line)) => publisher.publish(topic.clone(), Bytes::from(line.into_bytes())),
                Ok(None) => {
                    stdin_open = false;
                    tracing::info!("end of input; still serving subscribers until SIGINT/SIGTERM");
                }
                Err(e) => {
                    stdin_open = false;
                    tracing::warn!(error = %e, "reading standard input failed; still serving");
                }
            },
        }
    }
    publisher.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

//! `fixcurve sub`: a command-line CURVE subscriber printing one event per line: decoded
//! envelopes (readable, or `--json`) with sequence gaps reported on stderr (and filled from
//! the replay endpoint with `--replay`), or `--raw` hex.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use bytes::Bytes;
use clap::Args as ClapArgs;

use crate::client::{json_line, text_line, Options, Subscriber as ClientSubscriber, Update};
use crate::pubsub::{SubEvent, Subscriber, SubscriberConfig};

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Publisher endpoint, e.g. tcp://127.0.0.1:5556
    #[arg(long)]
    pub connect: String,
    /// The publisher's public key file (ZPL certificate). Repeat it during a server key
    /// rotation (new key and old one): each is tried in order when a handshake fails.
    #[arg(long, required = true)]
    pub server_key: Vec<PathBuf>,
    /// This subscriber's secret key file (ZPL `.key_secret`).
    #[arg(long)]
    pub key: PathBuf,
    /// Topic prefix to subscribe to (repeatable; default: everything).
    #[arg(long)]
    pub topic: Vec<String>,
    /// Print events as JSON lines.
    #[arg(long)]
    pub json: bool,
    /// Print topic and payload as hex, for payloads that are not fixcurve envelopes.
    #[arg(long)]
    pub raw: bool,
    /// Exit after N messages.
    #[arg(long)]
    pub count: Option<u64>,
    /// Heartbeat (PING) interval in milliseconds; 0 disables.
    #[arg(long, default_value_t = 10_000)]
    pub heartbeat_ms: u64,
    /// The publisher's replay endpoint (`[publish] replay_bind`): sequence gaps on journaled
    /// topics are filled from it, so every event is printed once and in order.
    #[arg(long)]
    pub replay: Option<String>,
    /// First print every journaled event of the subscribed prefixes from this per-topic
    /// sequence number (1: all the journal holds), then live events. Needs --replay.
    #[arg(long, requires = "replay")]
    pub since: Option<u64>,
    /// First print the market-data snapshots of the subscribed prefixes (the current book,
    /// last quote and status, each valid at its seq), then live updates. Needs --replay.
    #[arg(long, requires = "replay")]
    pub snapshot: bool,
}

pub async fn run(args: Args) -> super::Outcome {
    let mut server_keys = args
        .server_key
        .iter()
        .map(|p| crate::keys::cert::read_public(p).map(|c| c.key))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter();
    let server_key = server_keys
        .next()
        .ok_or_else(|| anyhow::anyhow!("--server-key is required"))?;
    let client = crate::keys::cert::read_secret(&args.key)?;
    if !args.raw {
        return decoded(args, server_key, server_keys.collect(), client).await;
    }
    let mut cfg = SubscriberConfig::new(args.connect.clone(), server_key, client);
    cfg.fallback_server_keys = server_keys.collect();
    cfg.subscriptions = if args.topic.is_empty() {
        vec![Bytes::new()]
    } else {
        args.topic
            .iter()
            .map(|t| Bytes::from(t.clone().into_bytes()))
            .collect()
    };
    cfg.heartbeat_ivl =
        (args.heartbeat_ms > 0).then(|| std::time::Duration::from_millis(args.heartbeat_ms));
    cfg.heartbeat_timeout = std::time::Duration::from_millis(args.heartbeat_ms.max(1000) * 3);
    let mut sub = Subscriber::connect(cfg)?;
    let mut received = 0u64;
    if args.count == Some(0) {
        return Ok(ExitCode::SUCCESS);
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let ev = tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            _ = term.recv() => return Ok(ExitCode::SUCCESS),
            ev = sub.recv() => ev,
        };
        match ev {
            None => return Ok(ExitCode::FAILURE),
            Some(SubEvent::Connected) => eprintln!("connected: {}", args.connect),
            Some(SubEvent::Disconnected { reason }) => eprintln!("disconnected: {reason}"),
            Some(SubEvent::Message(parts)) => {
                let mut out = std::io::stdout().lock();
                let line = parts.iter().map(hex::encode).collect::<Vec<_>>().join(" ");
                writeln!(out, "{line}")?;
                out.flush()?;
                received += 1;
                if args.count.is_some_and(|n| received >= n) {
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
    }
}

/// Envelopes decoded through the client library (gap detection, and recovery from the
/// replay endpoint when given).
async fn decoded(
    args: Args,
    server_key: crate::keys::PublicKey,
    fallback: Vec<crate::keys::PublicKey>,
    client: crate::keys::Keypair,
) -> super::Outcome {
    let opts = Options {
        heartbeat: (args.heartbeat_ms > 0)
            .then(|| std::time::Duration::from_millis(args.heartbeat_ms)),
        heartbeat_timeout: std::time::Duration::from_millis(args.heartbeat_ms.max(1000) * 3),
        fallback_server_keys: fallback,
        replay: args.replay.clone(),
        since: args.since,
        snapshot: args.snapshot,
        ..Options::default()
    };
    let prefixes: Vec<&str> = args.topic.iter().map(String::as_str).collect();
    let mut sub =
        ClientSubscriber::connect_with(&args.connect, server_key, client, &prefixes, opts)?;
    let mut received = 0u64;
    if args.count == Some(0) {
        return Ok(ExitCode::SUCCESS);
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let u = tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            _ = term.recv() => return Ok(ExitCode::SUCCESS),
            u = sub.recv() => u,
        };
        let Some(u) = u else {
            return Ok(ExitCode::FAILURE);
        };
        let mut out = std::io::stdout().lock();
        match &u {
            Update::Event(r) if args.json => writeln!(out, "{}", json_line(r))?,
            Update::Event(r) => writeln!(out, "{}", text_line(r))?,
            Update::Gap {
                topic,
                expected,
                missing,
            } => eprintln!("gap: {topic}: {missing} missing from seq {expected}"),
            Update::Restart { topic } => {
                eprintln!("restart: {topic}: publisher restarted, sequence begins again")
            }
            Update::Undecodable { topic, error } => {
                eprintln!("undecodable: {topic}: {error} (use --raw for non-fixcurve payloads)")
            }
            Update::Connected => eprintln!("connected: {}", args.connect),
            Update::Disconnected { reason } => eprintln!("disconnected: {reason}"),
        }
        out.flush()?;
        if matches!(u, Update::Event(_)) {
            received += 1;
            if args.count.is_some_and(|n| received >= n) {
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
}

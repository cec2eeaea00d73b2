//! `fixcurve demo`: the whole bridge in one command, with throw-away PKI and a venue simulator.
//!
//! Everything is real except the venue: a development CA and certificates are generated, the
//! bridge starts from an ordinary configuration (an mTLS acceptor bound to `client1`), the
//! built-in simulator connects to it as a FIX initiator over mTLS, and a CURVE subscriber
//! prints what the publisher sends.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args as ClapArgs;
use tokio::signal::unix::{signal, SignalKind};

use crate::audit::AuditLog;
use crate::bridge::{keys, Bridge, PublishKeys};
use crate::client::{text_line, Options as SubscriberOptions, Subscriber, Update};
use crate::config::Config;
use crate::tls::ClientTlsSettings;
use crate::tools::certs_dev::{self, DevOptions};
use crate::tools::simulator::{self, SimConfig, SimStats};

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Use this keyring (creating the server keypair if absent) and accept its authorized keys.
    #[arg(long)]
    pub keys: Option<PathBuf>,
    /// Where subscribers connect.
    #[arg(long, default_value = "tcp://127.0.0.1:5556")]
    pub bind: String,
    /// FIX messages per second from the simulator.
    #[arg(long, default_value_t = 10)]
    pub rate: u32,
    /// Exit 0 after this many seconds, printing a one-line summary.
    #[arg(long)]
    pub duration: Option<u64>,
    /// Do not print each event (only the summary).
    #[arg(long)]
    pub quiet: bool,
}

/// A temporary directory removed when the demo ends (the runtime has no tempfile crate).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> anyhow::Result<TempDir> {
        let base = std::env::temp_dir();
        for i in 0..100u32 {
            let p = base.join(format!(
                "fixcurve-demo-{}-{}-{i}",
                std::process::id(),
                crate::bridge::now_ns() % 1_000_000_000
            ));
            match std::fs::create_dir(&p) {
                Ok(()) => {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700))?;
                    return Ok(TempDir(p));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).context("creating a temporary directory"),
            }
        }
        anyhow::bail!("cannot create a temporary directory in {}", base.display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free loopback port for the FIX acceptor (the simulator must know where to connect).
fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn toml_path(p: &Path) -> String {
    p.display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
}

pub async fn run(args: Args) -> super::Outcome {
    let tmp = TempDir::new()?;
    let pki = certs_dev::generate(&tmp.0.join("certs"), &DevOptions::default())
        .context("generating the demo PKI")?;
    let audit = AuditLog::open(&tmp.0.join("audit.jsonl"))?;

    // CURVE keys: the given keyring (server keypair created if absent; it watches itself, so
    // keys authorized or revoked while the demo runs take effect at once), or throw-away ones.
    let (server, base) = match &args.keys {
        Some(root) => {
            let (k, _keyring) = keys::open(root, audit.clone())
                .with_context(|| format!("keyring {}", root.display()))?;
            eprintln!(
                "demo: keyring {} (server key {})",
                root.display(),
                root.join("server/server.key").display()
            );
            (k.server, k.authorizer)
        }
        None => (crate::keys::Keypair::generate(), keys::deny_all()),
    };
    let server_public = server.public;
    let (demo_client, extra) = keys::extra_client("demo-subscriber");
    let authorizer = Arc::new(keys::WithExtra {
        base: base.clone(),
        extra: vec![extra],
    });

    let fix_port = free_port()?;
    let text = format!(
        r#"
[publish]
bind = ["{bind}"]
replay_bind = ["tcp://127.0.0.1:0"]
keys = "keys"
[state]
dir = "state"
[journal]
prefixes = ["exec.", "status.", "md."]
[audit]
path = "audit.jsonl"
[[acceptor]]
name = "demo"
listen = "127.0.0.1:{fix_port}"
cert = "{cert}"
key = "{key}"
client_ca = "{ca}"
allow_ips = ["127.0.0.0/8", "::1/128"]
[[session]]
venue = "DEMO"
acceptor = "demo"
begin_string = "FIX.4.4"
sender_comp_id = "BRIDGE"
target_comp_id = "VENUE"
tls_identity = "client1"
heartbeat_secs = 30
"#,
        bind = args.bind.replace('"', ""),
        cert = toml_path(&pki.server_cert),
        key = toml_path(&pki.server_key),
        ca = toml_path(&pki.ca),
    );
    let cfg = Config::parse(&text, Path::new("<demo>"), &tmp.0)?;
    let mut bridge = Bridge::start(&cfg, PublishKeys { server, authorizer }, audit.clone()).await?;
    let endpoint = bridge
        .endpoints()
        .first()
        .cloned()
        .context("publisher has no endpoint")?;
    eprintln!("demo: server public key {}", server_public.to_z85());

    // The subscriber starts from the journal (per-topic sequence 1), as `fixcurve sub
    // --since 1` does: it connects while the simulator logs on, and an event published before
    // its subscription reached the publisher (the session's first status event, now and then)
    // would otherwise never reach it, nor be reported as a gap (nothing came before it). The
    // demo journals every topic for this, not only executions as the default does.
    let replay = bridge.replay_endpoints().first().cloned();
    let mut sub = Subscriber::connect_with(
        &endpoint,
        server_public,
        demo_client,
        &[],
        SubscriberOptions {
            replay,
            since: Some(1),
            ..SubscriberOptions::default()
        },
    )?;

    let (sim_stop, sim_stop_rx) = tokio::sync::watch::channel(false);
    let sim_stats = Arc::new(SimStats::default());
    let sim_cfg = SimConfig {
        connect: SocketAddr::from(([127, 0, 0, 1], fix_port)),
        tls: ClientTlsSettings {
            cert: Some(pki.client_combined.clone()),
            ca: Some(pki.ca.clone()),
            server_name: Some("localhost".into()),
            ..Default::default()
        },
        begin_string: "FIX.4.4".into(),
        sender_comp_id: "VENUE".into(),
        target_comp_id: "BRIDGE".into(),
        rate: args.rate.max(1),
        limit: None,
        heartbeat_secs: 30,
        stamp_quotes: false,
    };
    let mut sim = {
        let stats = sim_stats.clone();
        tokio::spawn(async move {
            // The acceptor binds in its own task: retry refused connections briefly.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match simulator::run_initiator(sim_cfg.clone(), stats.clone(), sim_stop_rx.clone())
                    .await
                {
                    Err(simulator::SimError::Connect { .. }) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    other => return other,
                }
            }
        })
    };

    let started = Instant::now();
    let until = args
        .duration
        .map(|d| tokio::time::Instant::now() + Duration::from_secs(d));
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let (mut received, mut gaps, mut missing) = (0u64, 0u64, 0u64);
    let mut sim_done = false;
    let mut failure: Option<anyhow::Error> = None;
    loop {
        tokio::select! {
            u = sub.recv() => match u {
                Some(Update::Event(r)) => {
                    received += 1;
                    if !args.quiet {
                        println!("{}", text_line(&r));
                    }
                }
                Some(Update::Gap { topic, expected, missing: m }) => {
                    gaps += 1;
                    missing += m;
                    eprintln!("demo: gap on {topic}: {m} missing from seq {expected}");
                }
                Some(Update::Connected) => eprintln!("demo: subscriber connected to {endpoint}"),
                Some(Update::Disconnected { reason }) => eprintln!("demo: subscriber disconnected: {reason}"),
                Some(_) => {}
                None => break,
            },
            r = &mut sim, if !sim_done => {
                sim_done = true;
                match r {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => { failure = Some(anyhow::anyhow!("{e}")); break; }
                    Err(e) => { failure = Some(anyhow::anyhow!("simulator task: {e}")); break; }
                }
            }
            _ = async { match until { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => break,
            _ = int.recv() => break,
            _ = term.recv() => break,
            e = bridge.failed() => { failure = Some(e); break; }
        }
    }
    let _ = sim_stop.send(true);
    if !sim_done {
        let _ = tokio::time::timeout(Duration::from_secs(3), &mut sim).await;
    }
    let totals = bridge.stop().await;
    // Whatever was flushed at shutdown still reaches the subscriber.
    while let Ok(Some(u)) = tokio::time::timeout(Duration::from_millis(200), sub.recv()).await {
        if let Update::Event(r) = u {
            received += 1;
            if !args.quiet {
                println!("{}", text_line(&r));
            }
        }
    }
    println!(
        "demo summary: {:.1}s, simulator sent {} FIX messages at {}/s, bridge normalized {} and published {} events, subscriber received {} events, {} gaps ({} missing)",
        started.elapsed().as_secs_f64(),
        sim_stats.sent.load(Ordering::Relaxed),
        args.rate,
        totals.fix_messages,
        totals.events_published,
        received,
        gaps,
        missing
    );
    drop(tmp);
    match failure {
        Some(e) => Err(e),
        None => Ok(ExitCode::SUCCESS),
    }
}

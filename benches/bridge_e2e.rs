//! The whole path, measured: FIX over mTLS into the bridge's acceptor (the built-in venue
//! simulator as initiator) → session → normalizer → envelope → CURVE publisher → Rust CURVE
//! subscribers, all over loopback in one process.
//!
//! ```sh
//! cargo bench --bench bridge_e2e                # throughput with 1 and 4 subscribers, latency at 10k msg/s
//! BRIDGE_BENCH_MSGS=100000 BRIDGE_BENCH_LAT_SECS=5 cargo bench --bench bridge_e2e
//! ```
//!
//! Throughput: the simulator sends as fast as TCP back-pressure lets it; each subscriber's
//! rate is events received / time from its first to its last event. Latency: Quotes at a
//! fixed rate carry their send time (ns) in QuoteID; a subscriber takes `now - QuoteID` on
//! receipt. Simulator, bridge and subscribers share the machine's cores, so these figures
//! are a floor for what a dedicated host does.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fixcurve::audit::AuditLog;
use fixcurve::auth::{Grant, StaticAuthorizer, TopicAcl};
use fixcurve::bridge::simulator::{run_initiator, SimConfig, SimError, SimStats};
use fixcurve::bridge::{now_ns, Bridge, PublishKeys};
use fixcurve::client::{Subscriber, Update};
use fixcurve::config::Config;
use fixcurve::keys::Keypair;
use fixcurve::normalize::Event;
use fixcurve::tls::certs_dev::{generate, DevOptions};
use fixcurve::tls::ClientTlsSettings;

struct Setup {
    bridge: Bridge,
    server: fixcurve::keys::PublicKey,
    clients: Vec<Keypair>,
    fix: SocketAddr,
    pki: fixcurve::tls::certs_dev::DevPki,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn setup(subs: usize) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let pki = generate(&dir.path().join("certs"), &DevOptions::default()).unwrap();
    let port = free_port();
    let text = format!(
        r#"
[publish]
bind = ["tcp://127.0.0.1:0"]
queue = 200000
[bridge]
channel = 8192
[[acceptor]]
name = "bench"
listen = "127.0.0.1:{port}"
cert = "{}"
key = "{}"
client_ca = "{}"
[[session]]
venue = "BENCH"
acceptor = "bench"
begin_string = "FIX.4.4"
sender_comp_id = "BRIDGE"
target_comp_id = "VENUE"
tls_identity = "client1"
max_msgs_per_sec = 10000000
"#,
        pki.server_cert.display(),
        pki.server_key.display(),
        pki.ca.display()
    );
    let cfg = Config::parse(&text, Path::new("bench.toml"), dir.path()).unwrap();
    let server = Keypair::generate();
    let clients: Vec<Keypair> = (0..subs).map(|_| Keypair::generate()).collect();
    let allowed = clients
        .iter()
        .enumerate()
        .map(|(i, k)| {
            (
                k.public,
                Grant {
                    name: format!("bench{i}"),
                    topics: TopicAcl::all(),
                },
            )
        })
        .collect();
    let server_public = server.public;
    let bridge = Bridge::start(
        &cfg,
        PublishKeys {
            server,
            authorizer: StaticAuthorizer::new(allowed),
        },
        AuditLog::discard(),
    )
    .await
    .unwrap();
    Setup {
        bridge,
        server: server_public,
        clients,
        fix: SocketAddr::from(([127, 0, 0, 1], port)),
        pki,
        _dir: dir,
    }
}

fn sim_config(s: &Setup, rate: u32, limit: u64, stamp: bool) -> SimConfig {
    SimConfig {
        connect: s.fix,
        tls: ClientTlsSettings {
            cert: Some(s.pki.client_combined.clone()),
            ca: Some(s.pki.ca.clone()),
            server_name: Some("localhost".into()),
            ..Default::default()
        },
        begin_string: "FIX.4.4".into(),
        sender_comp_id: "VENUE".into(),
        target_comp_id: "BRIDGE".into(),
        rate,
        limit: Some(limit),
        heartbeat_secs: 30,
        stamp_quotes: stamp,
    }
}

async fn start_sim(
    cfg: SimConfig,
) -> (
    tokio::task::JoinHandle<Result<(), SimError>>,
    tokio::sync::watch::Sender<bool>,
) {
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let stats = Arc::new(SimStats::default());
    let h = tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match run_initiator(cfg.clone(), stats.clone(), stop_rx.clone()).await {
                Err(SimError::Connect { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                other => return other,
            }
        }
    });
    (h, stop)
}

async fn connect_all(s: &Setup) -> Vec<Subscriber> {
    let ep = s.bridge.endpoints()[0].clone();
    let mut subs = Vec::new();
    for k in &s.clients {
        let mut sub = Subscriber::connect(&ep, s.server, k.clone(), &[]).unwrap();
        loop {
            if let Some(Update::Connected) = sub.recv().await {
                break;
            }
        }
        subs.push(sub);
    }
    // The publisher registers subscriptions just after the handshake.
    tokio::time::sleep(Duration::from_millis(200)).await;
    subs
}

/// Events per second at each subscriber, with `msgs` FIX messages sent flat out.
async fn throughput(n_subs: usize, msgs: u64) -> (f64, Vec<f64>, u64) {
    let s = setup(n_subs).await;
    let subs = connect_all(&s).await;
    // Every FIX message of the stamped feed is one Quote → one event.
    let mut tasks = Vec::new();
    for mut sub in subs {
        tasks.push(tokio::spawn(async move {
            let mut first: Option<Instant> = None;
            let mut n = 0u64;
            let mut gaps = 0u64;
            while n < msgs {
                match tokio::time::timeout(Duration::from_secs(20), sub.recv()).await {
                    Ok(Some(Update::Event(r))) if matches!(r.envelope.event, Event::Quote(_)) => {
                        first.get_or_insert_with(Instant::now);
                        n += 1;
                    }
                    Ok(Some(Update::Gap { missing, .. })) => gaps += missing,
                    Ok(Some(_)) => {}
                    _ => break,
                }
            }
            let secs = first.map(|f| f.elapsed().as_secs_f64()).unwrap_or(f64::NAN);
            (n as f64 / secs, n, gaps)
        }));
    }
    let t0 = Instant::now();
    let (sim, _stop) = start_sim(sim_config(&s, 10_000_000, msgs, true)).await;
    let mut rates = Vec::new();
    let mut gaps = 0;
    for t in tasks {
        let (rate, _, g) = t.await.unwrap();
        rates.push(rate);
        gaps += g;
    }
    let wall = t0.elapsed().as_secs_f64();
    let _ = sim.await;
    s.bridge.stop().await;
    (msgs as f64 / wall, rates, gaps)
}

/// Latency percentiles (µs) at `rate` messages per second for `secs` seconds.
async fn latency(rate: u32, secs: u64) -> (Vec<(f64, f64)>, Vec<(f64, f64)>, usize, u64) {
    let s = setup(1).await;
    let mut sub = connect_all(&s).await.pop().unwrap();
    let total = rate as u64 * secs;
    let (sim, _stop) = start_sim(sim_config(&s, rate, total, true)).await;
    let mut lat_ns: Vec<u64> = Vec::with_capacity(total as usize);
    // From the bridge reading the FIX message (envelope received_ns) to the subscriber.
    let mut inner_ns: Vec<u64> = Vec::with_capacity(total as usize);
    let mut gaps = 0;
    while (lat_ns.len() as u64) < total {
        match tokio::time::timeout(Duration::from_secs(10), sub.recv()).await {
            Ok(Some(Update::Event(r))) => {
                if let Event::Quote(q) = &r.envelope.event {
                    let now = now_ns();
                    if let Some(sent) = q.quote_id.as_deref().and_then(|v| v.parse::<u64>().ok()) {
                        lat_ns.push(now.saturating_sub(sent));
                        inner_ns.push(now.saturating_sub(r.envelope.received_ns));
                    }
                }
            }
            Ok(Some(Update::Gap { missing, .. })) => gaps += missing,
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    let _ = sim.await;
    s.bridge.stop().await;
    // Skip the first second: connection warm-up, not steady state.
    let warm = (rate as usize).min(lat_ns.len() / 2);
    let n = lat_ns.len() - warm;
    (
        percentiles(&lat_ns[warm..]),
        percentiles(&inner_ns[warm..]),
        n,
        gaps,
    )
}

fn percentiles(samples: &[u64]) -> Vec<(f64, f64)> {
    let mut steady = samples.to_vec();
    steady.sort_unstable();
    let pct = |p: f64| -> f64 {
        if steady.is_empty() {
            return f64::NAN;
        }
        let i = ((steady.len() as f64 - 1.0) * p).round() as usize;
        steady[i] as f64 / 1000.0
    };
    [0.5, 0.9, 0.99, 0.999, 1.0]
        .iter()
        .map(|&p| (p * 100.0, pct(p)))
        .collect()
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing useful: run tiny.
    let quick = !std::env::args().any(|a| a == "--bench");
    let msgs = if quick {
        2_000
    } else {
        env_u64("BRIDGE_BENCH_MSGS", 200_000)
    };
    let lat_secs = if quick {
        1
    } else {
        env_u64("BRIDGE_BENCH_LAT_SECS", 5)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for n in [1usize, 4] {
            let (overall, rates, gaps) = throughput(n, msgs).await;
            let min = rates.iter().cloned().fold(f64::INFINITY, f64::min);
            println!(
                "throughput: {n} subscriber(s), {msgs} FIX quotes over mTLS: {overall:.0} msg/s end to end (send start to last receipt); per subscriber min {min:.0} msg/s; {gaps} lost"
            );
        }
        if quick {
            println!("(smoke run under `cargo test`: unoptimized, figures are not measurements; use `cargo bench --bench bridge_e2e`)");
        }
        let (ps, inner, n, gaps) = latency(10_000, lat_secs).await;
        let fmt = |ps: &[(f64, f64)]| {
            ps.iter()
                .map(|(p, us)| format!("p{p}={us:.0}µs"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!(
            "latency at 10000 msg/s, 1 subscriber, {n} samples after 1 s warm-up: FIX send -> subscriber {} ({gaps} lost); bridge read -> subscriber {}",
            fmt(&ps),
            fmt(&inner)
        );
    });
}

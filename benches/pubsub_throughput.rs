//! PUB -> SUB throughput over CURVE on tcp loopback, shaped like the libzmq reference bench
//! (`libzmq_pubsub_bench thr curve SIZE COUNT NSUBS`): single-part messages of SIZE bytes,
//! NSUBS subscriber *processes* subscribed to everything, lossless (the publisher paces itself
//! on queue depth, as XPUB_NODROP blocks), each subscriber timing first to last message.
//!
//! Run: `cargo bench --bench pubsub_throughput -- SIZE COUNT NSUBS` (defaults 100 200000 1).

/// The `fixcurve` binary's allocator (src/main.rs), so the in-process publisher runs as the
/// daemon does.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fixcurve::audit::AuditLog;
use fixcurve::auth::{Grant, StaticAuthorizer, TopicAcl};
use fixcurve::keys::{Keypair, PublicKey, SecretKey};
use fixcurve::pubsub::{Publisher, PublisherConfig, SubEvent, Subscriber, SubscriberConfig};

const ROLE: &str = "FIXCURVE_BENCH_SUB";

fn main() {
    if let Ok(spec) = std::env::var(ROLE) {
        return run_sub(&spec);
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let size: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100);
    let count: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let nsubs: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run_pub(size, count, nsubs));
}

async fn run_pub(size: usize, count: u64, nsubs: usize) {
    let server = Keypair::generate();
    let client = Keypair::generate();
    let mut cfg = PublisherConfig::new(vec!["tcp://127.0.0.1:0".into()], server.clone());
    cfg.queue_capacity = 16_384;
    cfg.heartbeat_ivl = None;
    let auth = StaticAuthorizer::new(vec![(
        client.public,
        Grant {
            name: "bench".into(),
            topics: TopicAcl::all(),
        },
    )]);
    let p = Arc::new(
        Publisher::bind(cfg, auth, AuditLog::discard())
            .await
            .unwrap(),
    );
    let ep = p.local_endpoints()[0].clone();
    let exe = std::env::current_exe().unwrap();
    let mut children = Vec::new();
    for _ in 0..nsubs {
        let spec = format!("{ep} {} {}", server.public.to_z85(), client.secret.to_z85());
        children.push(
            Command::new(&exe)
                .env(ROLE, spec)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    // Wait until every subscriber is connected and subscribed.
    while p
        .stats()
        .iter()
        .filter(|s| !s.subscriptions.is_empty())
        .count()
        < nsubs
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let payload = Bytes::from(vec![0u8; size]);
    let high = 16_384 - 1024;
    let t0 = Instant::now();
    let mut i = 0;
    while i < count {
        for _ in 0..256.min(count - i) {
            p.publish_parts(vec![payload.clone()]);
            i += 1;
        }
        // Block like XPUB_NODROP does, without spinning a core the subscribers need.
        while p.max_queue_depth() > high {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let t_send = t0.elapsed();
    p.publish_parts(vec![Bytes::from_static(b"END")]);
    let (mut sum, mut min_rate, mut min_got) = (0.0f64, f64::MAX, u64::MAX);
    for c in children.iter_mut() {
        let line = BufReader::new(c.stdout.take().unwrap())
            .lines()
            .next()
            .unwrap()
            .unwrap();
        let mut it = line.split_whitespace();
        let got: u64 = it.next().unwrap().parse().unwrap();
        let secs: f64 = it.next().unwrap().parse().unwrap();
        let rate = got as f64 / secs;
        sum += rate;
        min_rate = min_rate.min(rate);
        min_got = min_got.min(got);
    }
    for mut c in children {
        let _ = c.wait();
    }
    println!(
        "fixcurve thr curve size={size} count={count} subs={nsubs} | per-sub min {min_rate:.0} msg/s ({:.1} MB/s) | aggregate {sum:.0} msg/s ({:.1} MB/s) | pub loop {:.2}s | min received {min_got} (loss {:.2}%)",
        min_rate * size as f64 / 1e6,
        sum * size as f64 / 1e6,
        t_send.as_secs_f64(),
        100.0 * (count.saturating_sub(min_got)) as f64 / count as f64
    );
    p.shutdown().await;
}

fn run_sub(spec: &str) {
    let mut it = spec.split(' ');
    let ep = it.next().unwrap().to_string();
    let server = PublicKey::from_z85(it.next().unwrap()).unwrap();
    let client = Keypair::from_secret(SecretKey::from_z85(it.next().unwrap()).unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let mut cfg = SubscriberConfig::new(ep, server, client);
        cfg.subscriptions = vec![Bytes::new()];
        cfg.heartbeat_ivl = None;
        let mut sub = Subscriber::connect(cfg).unwrap();
        let (mut got, mut t0, mut t1) = (0u64, Instant::now(), Instant::now());
        while let Some(ev) = sub.recv().await {
            if let SubEvent::Message(parts) = ev {
                if parts[0].len() == 3 && &parts[0][..] == b"END" {
                    break;
                }
                if got == 0 {
                    t0 = Instant::now();
                }
                got += 1;
                t1 = Instant::now();
            }
        }
        println!("{got} {}", (t1 - t0).as_secs_f64().max(1e-9));
    });
}

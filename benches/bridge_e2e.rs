//! The whole path, measured: FIX over mTLS into the bridge's acceptor (the built-in venue
//! simulator as initiator) → session → normalizer → envelope → CURVE publisher → Rust CURVE
//! subscribers, all over loopback in one process.
//!
//! ```sh
//! cargo bench --bench bridge_e2e                # throughput with 1 and 4 subscribers, latency at 10k msg/s
//! BRIDGE_BENCH_MSGS=100000 BRIDGE_BENCH_LAT_SECS=5 cargo bench --bench bridge_e2e
//! BRIDGE_BENCH_GLUE=1 cargo bench --bench bridge_e2e   # and the same against the glue baseline
//! BRIDGE_BENCH_JOURNAL=1 cargo bench --bench bridge_e2e # journal off, then on, same binary
//! BRIDGE_BENCH_NATS=1 cargo bench --bench bridge_e2e    # direct, then bridge → JetStream → edge
//! BRIDGE_BENCH_LATENCY_ONLY=1 BRIDGE_BENCH_RATE=2000 cargo bench --bench bridge_e2e # latency run alone
//! BRIDGE_BENCH_SUBS=4 BRIDGE_BENCH_LAT_SECS=1 cargo bench --bench bridge_e2e # one throughput size
//! BRIDGE_BENCH_LATENCY_ONLY=1 cargo bench --features stage-trace --bench bridge_e2e # and where it goes
//! BRIDGE_BENCH_QUEUES=1 cargo bench --bench bridge_e2e  # after a stall, the FIX connection's kernel queues (costly)
//! BRIDGE_BENCH_SIM_THREAD=1 BRIDGE_BENCH_LATENCY_ONLY=1 cargo bench --bench bridge_e2e # the simulator in its own thread
//! ```
//!
//! The JetStream run starts a local `nats-server -js` (Debian's package) on a free port; the
//! bridge's `[sink.nats]` writes every event to its stream and the subscribers connect to a
//! `fixcurve edge` following it, so the path is FIX → bridge → JetStream → edge → CURVE. It
//! also prints the sink's publish-acknowledgement latency and the edge's fan-out to
//! `BRIDGE_BENCH_FANOUT` (1,000) subscribers.
//!
//! The glue baseline (`benches/glue/glue_bridge.py`) is what people run today: stunnel
//! terminating mTLS, a QuickFIX acceptor in Python, and a pyzmq CURVE publisher sending the
//! same envelopes. It is driven by the same simulator and measured by the same subscribers,
//! so the ratio between the two runs is the comparison. It needs stunnel and the test
//! command's `.venv` (quickfix-ssl, pyzmq, msgpack).
//!
//! Throughput: the simulator sends as fast as TCP back-pressure lets it; each subscriber's
//! rate is events received / time from its first to its last event. Latency: Quotes at a
//! fixed rate carry their send time (ns) in QuoteID; a subscriber takes `now - QuoteID` on
//! receipt. Simulator, bridge and subscribers share the machine's cores, so these figures
//! are a floor for what a dedicated host does.

/// The `fixcurve` binary's allocator (src/main.rs), so the in-process bridge runs as the
/// daemon does.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fixcurve::audit::AuditLog;
use fixcurve::auth::{Grant, StaticAuthorizer, TopicAcl};
use fixcurve::bridge::{now_ns, Bridge, PublishKeys};
use fixcurve::client::{Subscriber, Update};
use fixcurve::config::Config;
use fixcurve::keys::Keypair;
use fixcurve::normalize::Event;
use fixcurve::tls::ClientTlsSettings;
use fixcurve::tools::certs_dev::{generate, DevOptions};
use fixcurve::tools::simulator::{run_initiator, SimConfig, SimError, SimStats};

/// Whether the bridge journals every event (md. and exec.: the bench traffic is quotes), so
/// the journal's cost shows as the difference between the two runs of the same binary.
static JOURNAL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Fixcurve,
    Glue,
    /// Bridge → JetStream → edge → subscribers.
    JetStream,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Fixcurve => "fixcurve",
            Target::Glue => "glue (stunnel + QuickFIX/Python + pyzmq)",
            Target::JetStream => {
                "fixcurve through JetStream (bridge -> nats-server -> fixcurve edge)"
            }
        }
    }
}

/// The glue's two processes; killed when the run ends.
struct Glue {
    procs: Vec<Child>,
}

impl Drop for Glue {
    fn drop(&mut self) {
        for p in &mut self.procs {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}

struct Setup {
    bridge: Option<Bridge>,
    glue: Option<Glue>,
    edge: Option<fixcurve::nats::edge::Edge>,
    endpoint: String,
    server: fixcurve::keys::PublicKey,
    clients: Vec<Keypair>,
    fix: SocketAddr,
    pki: fixcurve::tools::certs_dev::DevPki,
    nats: Option<Nats>,
    _dir: tempfile::TempDir,
}

/// A `nats-server -js` for the JetStream run; killed when dropped.
struct Nats {
    child: Child,
    url: String,
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_nats(dir: &Path) -> Nats {
    let bin = which("nats-server")
        .or_else(|| Some(PathBuf::from("/usr/sbin/nats-server")).filter(|p| p.exists()))
        .expect("BRIDGE_BENCH_NATS needs nats-server (Debian package nats-server)");
    let mut child = Command::new(bin)
        .args(["-js", "-a", "127.0.0.1", "-p", "-1", "-sd"])
        .arg(dir.join("nats"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let line = await_line(child.stderr.take().unwrap(), |l| {
        l.contains("Listening for client connections on")
    })
    .expect("nats-server did not start");
    let addr = line.rsplit(' ').next().unwrap().to_owned();
    Nats {
        child,
        url: format!("nats://{addr}"),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn setup(subs: usize, target: Target) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let pki = generate(&dir.path().join("certs"), &DevOptions::default()).unwrap();
    let clients: Vec<Keypair> = (0..subs).map(|_| Keypair::generate()).collect();
    if target == Target::Glue {
        return start_glue(dir, pki, clients);
    }
    let port = free_port();
    let nats = (target == Target::JetStream).then(|| start_nats(dir.path()));
    let sink = match &nats {
        Some(n) => format!("[sink.nats]\nservers = [\"{}\"]\nreplicas = 1\n", n.url),
        None => String::new(),
    };
    let text = format!(
        r#"
{sink}
[publish]
bind = ["tcp://127.0.0.1:0"]
queue = 200000
[bridge]
channel = 8192
[journal]
enabled = {journal}
prefixes = ["md.", "exec."]
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
        pki.ca.display(),
        journal = JOURNAL.load(std::sync::atomic::Ordering::Relaxed),
    );
    let cfg = Config::parse(&text, Path::new("bench.toml"), dir.path()).unwrap();
    let server = Keypair::generate();
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
    let authorizer = StaticAuthorizer::new(allowed);
    let bridge = Bridge::start(
        &cfg,
        PublishKeys {
            server: server.clone(),
            authorizer: authorizer.clone(),
        },
        AuditLog::discard(),
    )
    .await
    .unwrap();
    let edge = match &nats {
        Some(n) => {
            let text = format!(
                "[source.nats]\nservers = [\"{}\"]\n[publish]\nbind = [\"tcp://127.0.0.1:0\"]\nqueue = 200000\nmax_subscribers = 5000\n[state]\ndir = \"edge-state\"\n",
                n.url
            );
            let ecfg = Config::parse(&text, Path::new("edge.toml"), dir.path()).unwrap();
            Some(
                fixcurve::nats::edge::Edge::start(
                    &ecfg,
                    PublishKeys { server, authorizer },
                    AuditLog::discard(),
                )
                .await
                .unwrap(),
            )
        }
        None => None,
    };
    let endpoint = match &edge {
        Some(e) => e.endpoints()[0].clone(),
        None => bridge.endpoints()[0].clone(),
    };
    Setup {
        endpoint,
        bridge: Some(bridge),
        glue: None,
        edge,
        nats,
        server: server_public,
        clients,
        fix: SocketAddr::from(([127, 0, 0, 1], port)),
        pki,
        _dir: dir,
    }
}

impl Setup {
    /// The bridge's JetStream publish-acknowledgement latency so far: (count, mean µs).
    fn ack_latency(&self) -> Option<(u64, f64)> {
        let b = self.bridge.as_ref()?;
        b.registry().nats.ack_latency.count_and_mean_us()
    }

    async fn stop(self) {
        if let Some(e) = self.edge {
            e.stop().await;
        }
        if let Some(b) = self.bridge {
            b.stop().await;
        }
        drop(self.glue);
        drop(self.nats);
    }
}

/// Starts the glue: the Python process (QuickFIX acceptor on plain TCP, pyzmq PUB with
/// CURVE and ZAP over an authorized-keys folder), then stunnel in front of it.
fn start_glue(
    dir: tempfile::TempDir,
    pki: fixcurve::tools::certs_dev::DevPki,
    clients: Vec<Keypair>,
) -> Setup {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    let stunnel = ["stunnel4", "stunnel"]
        .iter()
        .find_map(|b| which(b))
        .expect("the glue baseline needs stunnel");
    assert!(
        python.exists(),
        "the glue baseline needs the test command's .venv"
    );
    let server = Keypair::generate();
    let keys = dir.path().join("glue-keys");
    let authorized = dir.path().join("glue-authorized");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::create_dir_all(&authorized).unwrap();
    let (_, secret) = fixcurve::keys::cert::write_keypair(&keys, "server", &server, &[]).unwrap();
    for (i, k) in clients.iter().enumerate() {
        fixcurve::keys::cert::write_public(
            &authorized.join(format!("bench{i}.key")),
            &k.public,
            &[],
        )
        .unwrap();
    }
    let fix_port = free_port();
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let mut py = Command::new(&python)
        .arg(root.join("benches/glue/glue_bridge.py"))
        .arg(fix_port.to_string())
        .arg(&endpoint)
        .arg(&secret)
        .arg(&authorized)
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = py.stdout.take().unwrap();
    await_line(out, |l| l == "READY").expect("glue did not start");
    let mut procs = vec![py];
    // stunnel cannot report an ephemeral port: pick one, await its own "bound to" line.
    let mut front = None;
    for _ in 0..5 {
        let port = free_port();
        let conf = dir.path().join("stunnel.conf");
        std::fs::write(
            &conf,
            format!(
                "foreground = yes\npid =\ndebug = 6\n[fix]\naccept = 127.0.0.1:{port}\n\
                 connect = 127.0.0.1:{fix_port}\ncert = {}\nkey = {}\nCAfile = {}\n\
                 verifyChain = yes\nrequireCert = yes\nsslVersionMin = TLSv1.2\n\
                 socket = l:TCP_NODELAY=1\nsocket = r:TCP_NODELAY=1\n",
                pki.server_cert.display(),
                pki.server_key.display(),
                pki.ca.display()
            ),
        )
        .unwrap();
        let mut tun = Command::new(&stunnel)
            .arg(&conf)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let err = tun.stderr.take().unwrap();
        let bound = format!("bound to 127.0.0.1:{port}");
        let line = await_line(err, |l| l.contains(&bound) || l.contains("failed"));
        procs.push(tun);
        if line.is_some_and(|l| l.contains(&bound)) {
            front = Some(port);
            break;
        }
        if let Some(mut t) = procs.pop() {
            let _ = t.kill();
            let _ = t.wait();
        }
    }
    let port = front.expect("stunnel could not bind a free port in five tries");
    Setup {
        bridge: None,
        edge: None,
        nats: None,
        glue: Some(Glue { procs }),
        endpoint,
        server: server.public,
        clients,
        fix: SocketAddr::from(([127, 0, 0, 1], port)),
        pki,
        _dir: dir,
    }
}

fn which(bin: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

/// Reads lines until one matches, then keeps draining the pipe on a thread (so the child
/// never blocks on a full pipe). `None` if the stream ended first.
fn await_line(
    pipe: impl std::io::Read + Send + 'static,
    want: impl Fn(&str) -> bool,
) -> Option<String> {
    let mut lines = BufReader::new(pipe).lines();
    let found = lines.by_ref().map_while(Result::ok).find(|l| want(l));
    std::thread::spawn(move || lines.for_each(drop));
    found
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

/// Starts the simulator: as a task on the bench's runtime, or (`own_thread`) on a runtime of
/// its own in its own thread, more like a venue on another host — a stall of the bridge's
/// workers then does not also stop the sender, whose quotes would otherwise be stamped
/// only after the stall and hide it; but on a 2-core box it is a third busy thread taking
/// CPU from the bridge (`BRIDGE_BENCH_SIM_THREAD=1`, latency run only).
async fn start_sim(
    cfg: SimConfig,
    own_thread: bool,
) -> (
    tokio::sync::oneshot::Receiver<Result<(), SimError>>,
    tokio::sync::watch::Sender<bool>,
    Arc<SimStats>,
) {
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let stats = Arc::new(SimStats::default());
    let sim_stats = stats.clone();
    let (done_tx, done) = tokio::sync::oneshot::channel();
    let run = async move {
        let deadline = Instant::now() + Duration::from_secs(10);
        let r = loop {
            match run_initiator(cfg.clone(), stats.clone(), stop_rx.clone()).await {
                Err(SimError::Connect { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                other => break other,
            }
        };
        let _ = done_tx.send(r);
    };
    if own_thread {
        std::thread::Builder::new()
            .name("sim".into())
            .spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("simulator runtime")
                    .block_on(run)
            })
            .expect("simulator thread");
    } else {
        tokio::spawn(run);
    }
    (done, stop, sim_stats)
}

async fn connect_all(s: &Setup) -> Vec<Subscriber> {
    let ep = s.endpoint.clone();
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

/// How long a throughput subscriber waits without progress before it gives up.
const IDLE: Duration = Duration::from_secs(20);

/// Events per second at each subscriber, with `msgs` FIX messages sent flat out.
/// Returns the end-to-end rate (messages sent / send start to last receipt), each
/// subscriber's own rate, events lost (received gaps) over all subscribers, and the longest
/// wait any subscriber had between two events, with where the event after it was held.
async fn throughput(target: Target, n_subs: usize, msgs: u64) -> (f64, Vec<f64>, u64, Pause) {
    let s = setup(n_subs, target).await;
    let subs = connect_all(&s).await;
    // Every FIX message of the stamped feed is one Quote → one event.
    let mut tasks = Vec::new();
    for mut sub in subs {
        tasks.push(tokio::spawn(async move {
            let mut first: Option<Instant> = None;
            let mut last = Instant::now();
            let mut n = 0u64;
            let mut gaps = 0u64;
            // The longest wait between two events: a stall shows here, a slow run does not.
            let mut longest = Pause::default();
            // One idle timer, pushed back every 256 updates, rather than a `timeout` around
            // each `recv()`: that moved the receive future into a new timer entry per event,
            // a cost of this harness (~3% of the profile), not of the subscriber.
            let idle = tokio::time::sleep(IDLE);
            tokio::pin!(idle);
            let mut since_reset = 0u32;
            while n + gaps < msgs {
                let update = tokio::select! {
                    biased;
                    u = sub.recv() => u,
                    _ = &mut idle => None,
                };
                since_reset += 1;
                if since_reset == 256 {
                    since_reset = 0;
                    idle.as_mut().reset(tokio::time::Instant::now() + IDLE);
                }
                match update {
                    Some(Update::Event(r)) if matches!(r.envelope.event, Event::Quote(_)) => {
                        let now = Instant::now();
                        if first.is_some() && now - last > longest.wait {
                            longest = Pause::after(now - last, &r.envelope);
                        }
                        last = now;
                        first.get_or_insert(last);
                        n += 1;
                    }
                    Some(Update::Gap { missing, .. }) => gaps += missing,
                    Some(_) => {}
                    None => break,
                }
            }
            // From its first event to its last: a timeout waiting for lost ones is not counted.
            let secs = first.map(|f| (last - f).as_secs_f64()).unwrap_or(f64::NAN);
            (n as f64 / secs, n, gaps, longest)
        }));
    }
    // Off unless asked for: each read of `/proc/net/tcp` walks the kernel's whole connection
    // hash table (~5 ms on a 24 GB guest with a dozen sockets), so sampling every 10 ms took
    // a tenth of the run's CPU (`established_get_first` in `perf`) from the bridge it measures.
    let probe = (std::env::var_os("BRIDGE_BENCH_QUEUES").is_some_and(|v| v == "1"))
        .then(|| QueueProbe::start(s.fix.port()));
    let t0 = Instant::now();
    let (sim, _stop, _) = start_sim(sim_config(&s, 10_000_000, msgs, true), false).await;
    let mut rates = Vec::new();
    let mut gaps = 0;
    let mut longest = Pause::default();
    for t in tasks {
        let (rate, _, g, l) = t.await.unwrap();
        rates.push(rate);
        gaps += g;
        if l.wait > longest.wait {
            longest = l;
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    // A pause this long (`BRIDGE_BENCH_STALL_MS`, 500 ms) is a stall: say where the bytes were.
    let queues = probe.and_then(|p| p.during(&longest));
    if longest.wait >= Duration::from_millis(env_u64("BRIDGE_BENCH_STALL_MS", 500)) {
        if let Some((rx, tx, n)) = queues {
            println!("stall: over the longest pause, the FIX connection's kernel queues at most: bridge receive {rx} B, simulator send {tx} B ({n} samples)");
        }
    }
    let _ = sim.await;
    s.stop().await;
    (msgs as f64 / wall, rates, gaps, longest)
}

/// A subscriber's longest wait between two events, and where the event that ended it was
/// held: a stall of seconds once in a few dozen runs says nothing about its cause by its
/// length alone.
#[derive(Clone, Copy, Default)]
struct Pause {
    wait: Duration,
    /// When it ended.
    ended: Option<Instant>,
    /// How long before its arrival the event after the wait was sent by the simulator
    /// (QuoteID) and read by the bridge (`received_ns`): both near `wait`, it sat between
    /// the bridge's read and the subscriber; only the first, between the simulator's send
    /// and the bridge's read; neither, nothing was sent during the wait. (A flat-out feed
    /// runs ahead of the bridge: `sent_ago` is ~0.1–0.2 s without any stall.)
    sent_ago: Duration,
    read_ago: Duration,
}

impl Pause {
    fn after(wait: Duration, env: &fixcurve::envelope::Envelope) -> Pause {
        let now = now_ns();
        let sent = match &env.event {
            Event::Quote(q) => q.quote_id.as_deref().and_then(|v| v.parse::<u64>().ok()),
            _ => None,
        };
        Pause {
            wait,
            ended: Some(Instant::now()),
            sent_ago: Duration::from_nanos(sent.map_or(0, |s| now.saturating_sub(s))),
            read_ago: Duration::from_nanos(now.saturating_sub(env.received_ns)),
        }
    }
}

impl std::fmt::Display for Pause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        write!(
            f,
            "{:.1} ms (the event after it sent {:.1} ms, read by the bridge {:.1} ms before it arrived)",
            ms(self.wait),
            ms(self.sent_ago),
            ms(self.read_ago)
        )
    }
}

/// The kernel's queues on the FIX connection (loopback), sampled every 10 ms from
/// `/proc/net/tcp` while a throughput run lasts (`BRIDGE_BENCH_QUEUES=1`): after a stall they
/// say which side held the bytes — the bridge not reading (its receive queue full) or the
/// simulator not writing (both empty). Costly, hence opt-in (see where it starts).
struct QueueProbe {
    stop: Arc<std::sync::atomic::AtomicBool>,
    samples: std::thread::JoinHandle<Vec<(Instant, u64, u64)>>,
}

impl QueueProbe {
    fn start(port: u16) -> QueueProbe {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let samples = std::thread::spawn(move || {
            let mut out = Vec::new();
            while !flag.load(std::sync::atomic::Ordering::Relaxed) && out.len() < 100_000 {
                let (mut bridge_rx, mut sim_tx) = (0, 0);
                for line in std::fs::read_to_string("/proc/net/tcp")
                    .unwrap_or_default()
                    .lines()
                    .skip(1)
                {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    let (Some(local), Some(remote), Some(queues)) = (f.get(1), f.get(2), f.get(4))
                    else {
                        continue;
                    };
                    let port_of = |a: &str| {
                        a.rsplit(':')
                            .next()
                            .and_then(|p| u16::from_str_radix(p, 16).ok())
                    };
                    let (tx, rx) = queues.split_once(':').unwrap_or(("0", "0"));
                    let q = |v: &str| u64::from_str_radix(v, 16).unwrap_or(0);
                    if port_of(local) == Some(port) {
                        bridge_rx += q(rx);
                    } else if port_of(remote) == Some(port) {
                        sim_tx += q(tx);
                    }
                }
                out.push((Instant::now(), bridge_rx, sim_tx));
                std::thread::sleep(Duration::from_millis(10));
            }
            out
        });
        QueueProbe { stop, samples }
    }

    /// The largest queues seen over the `wait` before `ended`, and the number of samples.
    fn during(self, pause: &Pause) -> Option<(u64, u64, usize)> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let samples = self.samples.join().ok()?;
        let ended = pause.ended?;
        let from = ended.checked_sub(pause.wait)?;
        let inside: Vec<_> = samples
            .iter()
            .filter(|(t, _, _)| *t >= from && *t <= ended)
            .collect();
        let max =
            |f: fn(&(Instant, u64, u64)) -> u64| inside.iter().map(|x| f(x)).max().unwrap_or(0);
        Some((max(|x| x.1), max(|x| x.2), inside.len()))
    }
}

/// Latency percentiles (µs) at `rate` messages per second for `secs` seconds.
async fn latency(
    target: Target,
    rate: u32,
    secs: u64,
) -> (
    Vec<(f64, f64)>,
    Vec<(f64, f64)>,
    Vec<(f64, f64)>,
    Option<Vec<(f64, f64)>>,
    (u64, u64),
    usize,
    u64,
) {
    let s = setup(1, target).await;
    let mut sub = connect_all(&s).await.pop().unwrap();
    let total = rate as u64 * secs;
    // Shared by default, as every figure so far was measured; neither layout is a venue on
    // another host (the README's latency section has both, alternated).
    let own_thread = std::env::var_os("BRIDGE_BENCH_SIM_THREAD").is_some_and(|v| v == "1");
    let (sim, _stop, sim_stats) = start_sim(sim_config(&s, rate, total, true), own_thread).await;
    let mut lat_ns: Vec<u64> = Vec::with_capacity(total as usize);
    // Arrival, QuoteID and MsgSeqNum of each quote, for the latency from when it was due.
    let mut arrivals: Vec<(u64, u64, u64)> = Vec::with_capacity(total as usize);
    // From the bridge reading the FIX message (envelope received_ns) to the subscriber.
    let mut inner_ns: Vec<u64> = Vec::with_capacity(total as usize);
    // From the simulator's send to the bridge reading it: TLS both ways and the loopback.
    let mut wire_ns: Vec<u64> = Vec::with_capacity(total as usize);
    let mut gaps = 0;
    while lat_ns.len() as u64 + gaps < total {
        match tokio::time::timeout(Duration::from_secs(10), sub.recv()).await {
            Ok(Some(Update::Event(r))) => {
                if let Event::Quote(q) = &r.envelope.event {
                    let now = now_ns();
                    if let Some(sent) = q.quote_id.as_deref().and_then(|v| v.parse::<u64>().ok()) {
                        lat_ns.push(now.saturating_sub(sent));
                        inner_ns.push(now.saturating_sub(r.envelope.received_ns));
                        wire_ns.push(r.envelope.received_ns.saturating_sub(sent));
                        arrivals.push((now, sent, r.envelope.fix_seq.unwrap_or(0)));
                        // The stage trace leaves out the warm-up second too.
                        if lat_ns.len() == rate as usize {
                            let _ = fixcurve::stagetrace::take();
                        }
                    }
                }
            }
            Ok(Some(Update::Gap { missing, .. })) => gaps += missing,
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    let _ = sim.await;
    use std::sync::atomic::Ordering::Relaxed;
    let due_ns = since_due(&arrivals, sim_stats.paced_from_ns.load(Relaxed), rate);
    // With `--features stage-trace`: where the time went, hand-over by hand-over.
    for r in fixcurve::stagetrace::take() {
        let [p50, p90, p99, p999] = r.us;
        println!(
            "  stage {:<22} {:>7} samples: p50={p50}µs p90={p90}µs p99={p99}µs p99.9={p999}µs since its FIX read",
            r.stage.name(),
            r.samples
        );
    }
    if let Some((count, mean)) = s.ack_latency() {
        println!("JetStream publish -> stream acknowledgement: {count} acks, mean {mean:.0} µs");
    }
    s.stop().await;
    // Skip the first second: connection warm-up, not steady state.
    let warm = (rate as usize).min(lat_ns.len() / 2);
    let n = lat_ns.len() - warm;
    (
        percentiles(&lat_ns[warm..]),
        percentiles(&inner_ns[warm..]),
        percentiles(&wire_ns[warm..]),
        due_ns.map(|d| percentiles(d.get(warm..).unwrap_or_default())),
        (
            sim_stats.pacer_late_500us.load(Relaxed),
            sim_stats.pacer_late_max_us.load(Relaxed),
        ),
        n,
        gaps,
    )
}

/// Each quote's latency from when the simulator's pacing made it due rather than from when
/// it was sent (QuoteID), so a simulator that sent late — busy cores, a descheduled vCPU —
/// counts against the figure instead of hiding the wait (coordinated omission). `None` when
/// the MsgSeqNum → due-time mapping does not hold (a quote stamped before it was due).
fn since_due(arrivals: &[(u64, u64, u64)], paced_from: u64, rate: u32) -> Option<Vec<u64>> {
    let period = 1_000_000_000 / u64::from(rate.max(1));
    let mut out = Vec::with_capacity(arrivals.len());
    let mut early = 0usize;
    for &(now, sent, seq) in arrivals {
        // Logon is MsgSeqNum 1; the k-th quote (0-based) is k + 2 and due (k + 1) periods in.
        let due = paced_from.saturating_add(seq.checked_sub(1)?.saturating_mul(period));
        // Wall clock against the monotonic pacing: allow 50 µs of disagreement.
        if sent.saturating_add(50_000) < due {
            early += 1;
        }
        out.push(now.saturating_sub(due));
    }
    (early * 1000 <= arrivals.len()).then_some(out)
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
    // Warnings on stdout, beside the figures (`scripts/bench.sh` keeps stdout only): a run
    // the disk stalled says so (`sequence store slow`, `reading paused waiting for ..`).
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::stdout)
        .with_ansi(false)
        .init();
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
    let glue = std::env::var_os("BRIDGE_BENCH_GLUE").is_some_and(|v| v == "1");
    let targets: &[Target] = if glue {
        &[Target::Fixcurve, Target::Glue]
    } else {
        &[Target::Fixcurve]
    };
    let nats = std::env::var_os("BRIDGE_BENCH_NATS").is_some_and(|v| v == "1");
    let targets: &[Target] = if nats {
        &[Target::Fixcurve, Target::JetStream]
    } else {
        targets
    };
    let fanout = env_u64("BRIDGE_BENCH_FANOUT", 1000) as usize;
    // Only the latency run, at this rate (the issue's figure is at 10k msg/s).
    let latency_only = std::env::var_os("BRIDGE_BENCH_LATENCY_ONLY").is_some_and(|v| v == "1");
    let lat_rate = env_u64("BRIDGE_BENCH_RATE", 10_000) as u32;
    // Subscriber counts of the throughput runs (e.g. `BRIDGE_BENCH_SUBS=4` to profile one).
    let subs_list: Vec<usize> = std::env::var("BRIDGE_BENCH_SUBS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 4]);
    let journal_modes: &[bool] =
        if std::env::var_os("BRIDGE_BENCH_JOURNAL").is_some_and(|v| v == "1") {
            &[false, true]
        } else {
            &[false]
        };
    rt.block_on(async {
        for &journal in journal_modes {
        JOURNAL.store(journal, std::sync::atomic::Ordering::Relaxed);
        for &target in targets {
            if journal && target == Target::Glue {
                continue;
            }
            println!(
                "== {}{}",
                target.name(),
                if journal { ", journal on (every event appended before it is published)" } else { "" }
            );
            let sizes: Vec<usize> = if latency_only { Vec::new() } else { subs_list.clone() };
            for &n in &sizes {
                let (overall, rates, lost, longest) = throughput(target, n, msgs).await;
                let min = rates.iter().cloned().fold(f64::INFINITY, f64::min);
                println!(
                    "throughput: {n} subscriber(s), {msgs} FIX quotes over mTLS: {overall:.0} msg/s end to end (send start to last receipt); per subscriber min {min:.0} msg/s; {lost} lost; longest pause {longest}",
                );
            }
            if target == Target::JetStream && !quick && !latency_only {
                let m = (msgs / 20).max(1000);
                let (overall, rates, lost, _) = throughput(target, fanout, m).await;
                let min = rates.iter().cloned().fold(f64::INFINITY, f64::min);
                println!(
                    "edge fan-out: {fanout} subscribers, {m} FIX quotes: {overall:.0} msg/s end to end ({:.0} deliveries/s); per subscriber min {min:.0} msg/s; {lost} lost",
                    overall * fanout as f64
                );
            }
            if quick {
                println!("(smoke run under `cargo test`: unoptimized, figures are not measurements; use `cargo bench --bench bridge_e2e`)");
            }
            // On a runtime worker like every other task (the main thread blocked in block_on
            // would add a cross-thread wake-up that no real subscriber pays).
            let (ps, inner, wire, due, (late_n, late_max), n, lost) = tokio::spawn(latency(target, lat_rate, lat_secs)).await.unwrap();
            let fmt = |ps: &[(f64, f64)]| {
                ps.iter()
                    .map(|(p, us)| format!("p{p}={us:.0}µs"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            println!(
                "latency at {lat_rate} msg/s, 1 subscriber, {n} samples after 1 s warm-up: FIX send -> subscriber {} ({lost} lost); bridge read -> subscriber {}; FIX send -> bridge read {}; FIX due -> subscriber {}; machine: the simulator's pacing thread woke >= 0.5 ms late {late_n} times, at worst {:.1} ms",
                fmt(&ps),
                fmt(&inner),
                fmt(&wire),
                due.as_deref().map_or("(not measured: quotes stamped before they were due)".into(), fmt),
                late_max as f64 / 1000.0
            );
        }
        }
    });
}

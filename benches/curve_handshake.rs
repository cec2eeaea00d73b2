//! CURVE handshake rate and memory per subscriber, fixcurve's publisher against libzmq + ZAP
//! in the same run, both driven by the same stock-libzmq client program
//! (`benches/refs/curve_handshake_bench.c`, built here with gcc when absent).
//!
//! ```sh
//! cargo bench --bench curve_handshake                       # 100 and 1,000 subscribers
//! HANDSHAKE_BENCH_SUBS=100,1000 HANDSHAKE_BENCH_CYCLES=10 HANDSHAKE_BENCH_MSGS=500 cargo bench --bench curve_handshake
//! HANDSHAKE_BENCH_QUEUE=1000 cargo bench --bench curve_handshake   # fixcurve pub --queue (default 10,000)
//! HANDSHAKE_CLIENT_IO_THREADS=2 cargo bench --bench curve_handshake # libzmq I/O threads of the client (default 1)
//! HANDSHAKE_BENCH_CLIENT_PROCS=1 cargo bench --bench curve_handshake # client processes the subscribers are spread over (default 2)
//! ```
//!
//! Each target is one server process for the whole run: `fixcurve pub` (its keyring with the
//! client key authorized, an audit file, the admission caps raised to the subscriber count
//! since every client comes from 127.0.0.1) and the reference, a libzmq PUB socket behind a
//! ZAP handler thread that allows the one key, run twice: as libzmq ships (listen backlog
//! 100, which a burst of connects overflows) and with the backlog raised. Per cycle the
//! client processes (two by default) open N SUB sockets between them, connect them at once
//! on a common signal and time until all N handshakes succeeded (socket monitors); the server then sends MSGS messages of 100 B until every socket has them;
//! the server's RSS is read idle; the client closes all sockets; the RSS is read again.
//! Figures: median handshakes/s over the cycles, RSS per idle subscriber after traffic
//! (idle RSS minus the RSS before the first cycle, over N; also the same for anonymous
//! memory alone, since RSS counts the code pages the first connections fault in), and the
//! RSS after each cycle's close (it must not grow cycle over cycle). Also each server's and the client's CPU time per
//! handshake over the connect phase (scheduler accounting of every thread): the rate on a
//! shared 2-core box is bounded by whichever side saturates a core first, and this says which.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn main() {
    // `cargo bench` passes --bench; under `cargo test --all-targets` (unoptimized) run a
    // small smoke pass: a thousand subscribers x 500 messages x 10 cycles is minutes there.
    let quick = !std::env::args().any(|a| a == "--bench");
    let subs: Vec<usize> = std::env::var("HANDSHAKE_BENCH_SUBS")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| if quick { vec![50] } else { vec![100, 1000] });
    let cycles: usize = env_num("HANDSHAKE_BENCH_CYCLES", if quick { 2 } else { 10 });
    let msgs: usize = env_num("HANDSHAKE_BENCH_MSGS", if quick { 20 } else { 500 });
    let client = reference_binary();
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = Keys::make(dir.path());
    for &n in &subs {
        let ours = run_target(Target::Fixcurve, &client, &keys, n, cycles, msgs);
        // The reference twice: as shipped (listen backlog 100) and with the backlog raised, so
        // a burst of connects times the handshakes rather than SYNs dropped and sent again.
        let theirs = run_target(
            Target::Libzmq { backlog: None },
            &client,
            &keys,
            n,
            cycles,
            msgs,
        );
        let tuned = run_target(
            Target::Libzmq {
                backlog: Some(TUNED_BACKLOG),
            },
            &client,
            &keys,
            n,
            cycles,
            msgs,
        );
        let rate = |r: &Results| {
            format!(
                "median {:.0}/s (min {:.0}, max {:.0}) | ratio {:.2}x",
                r.median_rate(),
                r.min_rate(),
                r.max_rate(),
                ours.median_rate() / r.median_rate()
            )
        };
        println!(
            "handshakes subs={n} cycles={cycles} client-procs={} | fixcurve median {:.0}/s (min {:.0}, max {:.0}) | libzmq+ZAP {} | libzmq+ZAP backlog {TUNED_BACKLOG} {}",
            client_procs(n),
            ours.median_rate(),
            ours.min_rate(),
            ours.max_rate(),
            rate(&theirs),
            rate(&tuned),
        );
        let cpu = |r: &Results| {
            format!(
                "server {:.0} us/handshake ({:.0}/s per core), its client {:.0} us",
                Results::median(&r.server_cpu_us),
                1e6 / Results::median(&r.server_cpu_us),
                Results::median(&r.client_cpu_us),
            )
        };
        println!(
            "handshake cpu subs={n} | fixcurve {} | libzmq+ZAP {} | libzmq+ZAP backlog {TUNED_BACKLOG} {}",
            cpu(&ours),
            cpu(&theirs),
            cpu(&tuned),
        );
        println!(
            "memory subs={n} msgs={msgs}x100B | fixcurve {:.1} KiB/idle subscriber (anonymous {:.1}), RSS after close per cycle {:?} KiB | libzmq {:.1} KiB/idle subscriber (anonymous {:.1}), after close {:?} KiB",
            ours.idle_kib_per_sub(n),
            ours.idle_anon_kib_per_sub(n),
            ours.closed_kib,
            theirs.idle_kib_per_sub(n),
            theirs.idle_anon_kib_per_sub(n),
            theirs.closed_kib,
        );
    }
}

/// CPU time of every thread of a process so far (ns), from the scheduler's per-task
/// accounting (`/proc/PID/task/*/schedstat`, first field), which has ns resolution where
/// `/proc/PID/stat` counts 10 ms ticks.
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(|t| t.ok())
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Clone, Copy, PartialEq)]
enum Target {
    Fixcurve,
    /// The reference server, with its listen backlog set (`None`: libzmq's 100).
    Libzmq {
        backlog: Option<u32>,
    },
}

/// The reference's raised listen backlog (the kernel caps it at `somaxconn`, 4096 here).
const TUNED_BACKLOG: u32 = 4096;

#[derive(Default)]
struct Results {
    rates: Vec<f64>,
    base_kib: u64,
    idle_kib: Vec<u64>,
    /// The same two readings of anonymous memory only (`RssAnon`): VmRSS also counts the
    /// binary's code pages, faulted in once by the first handshake and the first send
    /// (about 1 MB of `fixcurve`'s text), which at 10 or 100 subscribers is most of what
    /// "per subscriber" would show.
    base_anon_kib: u64,
    idle_anon_kib: Vec<u64>,
    closed_kib: Vec<u64>,
    /// Per cycle, CPU time per handshake (µs): the server's while the client connected,
    /// and the client process's up to its last handshake (socket set-up included).
    server_cpu_us: Vec<f64>,
    client_cpu_us: Vec<f64>,
}

impl Results {
    fn sorted(&self) -> Vec<f64> {
        let mut r = self.rates.clone();
        r.sort_by(|a, b| a.total_cmp(b));
        r
    }
    fn median(v: &[f64]) -> f64 {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    }
    fn median_rate(&self) -> f64 {
        Self::median(&self.rates)
    }
    fn min_rate(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(0.0)
    }
    fn max_rate(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(0.0)
    }
    /// The median over cycles of (idle RSS - RSS before any subscriber) / N.
    fn idle_kib_per_sub(&self, n: usize) -> f64 {
        Self::per_sub(&self.idle_kib, self.base_kib, n)
    }
    /// The same for anonymous memory.
    fn idle_anon_kib_per_sub(&self, n: usize) -> f64 {
        Self::per_sub(&self.idle_anon_kib, self.base_anon_kib, n)
    }
    fn per_sub(idle: &[u64], base: u64, n: usize) -> f64 {
        let per_sub: Vec<f64> = idle
            .iter()
            .map(|&k| k.saturating_sub(base) as f64 / n as f64)
            .collect();
        Self::median(&per_sub)
    }
}

struct Keys {
    root: PathBuf,
    server_public: String,
    server_secret: String,
    client_public: String,
    client_secret: String,
}

impl Keys {
    fn make(dir: &Path) -> Keys {
        let root = dir.join("keys");
        for d in ["server", "authorized", "revoked"] {
            std::fs::create_dir_all(root.join(d)).expect("keyring dirs");
        }
        fixcurve_cmd(&["keys", "gen", "server", "--dir"], &root.join("server"));
        fixcurve_cmd(&["keys", "gen", "bench", "--client", "--dir"], &root);
        std::fs::copy(
            root.join("clients/bench.key"),
            root.join("authorized/bench.key"),
        )
        .expect("authorize");
        let z85 = |file: &Path, field: &str| -> String {
            let text = std::fs::read_to_string(file).expect("key file");
            text.lines()
                .find_map(|l| {
                    let l = l.trim();
                    l.strip_prefix(field)
                        .and_then(|r| r.trim_start().strip_prefix('='))
                        .map(|v| v.trim().trim_matches('"').to_string())
                })
                .expect("key field")
        };
        Keys {
            server_public: z85(&root.join("server/server.key"), "public-key"),
            server_secret: z85(&root.join("server/server.key_secret"), "secret-key"),
            client_public: z85(&root.join("clients/bench.key"), "public-key"),
            client_secret: z85(&root.join("clients/bench.key_secret"), "secret-key"),
            root,
        }
    }
}

fn fixcurve_cmd(args: &[&str], last: &Path) {
    let st = Command::new(env!("CARGO_BIN_EXE_fixcurve"))
        .args(args)
        .arg(last)
        .stdout(Stdio::null())
        .status()
        .expect("run fixcurve");
    assert!(st.success(), "fixcurve {args:?} failed");
}

/// The libzmq client/server program, compiled once into target/refs.
fn reference_binary() -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/refs/curve_handshake_bench.c");
    let out_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/refs");
    let bin = out_dir.join("curve_handshake_bench");
    let fresh = |b: &Path| {
        let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        matches!((m(b), m(&src)), (Some(b), Some(s)) if b >= s)
    };
    if !fresh(&bin) {
        std::fs::create_dir_all(&out_dir).expect("target/refs");
        let st = Command::new("gcc")
            .args(["-O2", "-o"])
            .arg(&bin)
            .arg(&src)
            .args(["-lzmq", "-lpthread"])
            .status()
            .expect("gcc (needs Debian libzmq3-dev)");
        assert!(st.success(), "building {}", src.display());
    }
    bin
}

/// A child's stdout (or stderr) as a channel of lines.
fn lines_of<R: std::io::Read + Send + 'static>(r: R) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn expect_line(rx: &mpsc::Receiver<String>, prefix: &str, within: Duration) -> String {
    let end = Instant::now() + within;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.contains(prefix) => return l,
            Ok(_) => {}
            Err(e) => panic!("waiting for {prefix:?}: {e}"),
        }
    }
}

fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// A `/proc/PID/status` line in KiB (`VmRSS:`, `RssAnon:`), 0 when absent.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// RSS once it stops moving (allocators give memory back on a short delay).
fn settled_rss_kib(pid: u32) -> u64 {
    let mut last = rss_kib(pid);
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(100));
        let now = rss_kib(pid);
        if now.abs_diff(last) < 64 {
            return now;
        }
        last = now;
    }
    last
}

struct Server {
    child: Child,
    stdin: ChildStdin,
    endpoint: String,
    target: Target,
}

impl Server {
    fn start(target: Target, reference: &Path, keys: &Keys, n: usize) -> Server {
        let cap = (n + 16).to_string();
        let mut cmd = match target {
            Target::Fixcurve => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_fixcurve"));
                c.args(["pub", "--bind", "tcp://127.0.0.1:0", "--topic", "md.T"])
                    .arg("--keys")
                    .arg(&keys.root)
                    .arg("--audit")
                    .arg(keys.root.join("audit.jsonl"))
                    .args(["--heartbeat-ms", "0", "--max-subscribers", &cap])
                    .args(["--max-handshakes", &cap, "--max-handshakes-per-ip", &cap])
                    .args([
                        "--queue",
                        &env_num("HANDSHAKE_BENCH_QUEUE", 10_000).to_string(),
                    ]);
                c
            }
            Target::Libzmq { backlog } => {
                let mut c = Command::new(reference);
                c.args(["server", &keys.server_secret, &keys.client_public]);
                if let Some(b) = backlog {
                    c.env("HANDSHAKE_REF_BACKLOG", b.to_string());
                }
                c
            }
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start server");
        let stdin = child.stdin.take().expect("stdin");
        let out = lines_of(child.stdout.take().expect("stdout"));
        let err = lines_of(child.stderr.take().expect("stderr"));
        let line = match target {
            Target::Fixcurve => expect_line(&err, "listening: publish", Duration::from_secs(10)),
            Target::Libzmq { .. } => expect_line(&out, "ENDPOINT", Duration::from_secs(10)),
        };
        // Keep draining both streams so the server never blocks on a full pipe.
        std::thread::spawn(move || while err.recv().is_ok() {});
        std::thread::spawn(move || while out.recv().is_ok() {});
        let endpoint = line
            .split_whitespace()
            .last()
            .expect("endpoint")
            .to_string();
        Server {
            child,
            stdin,
            endpoint,
            target,
        }
    }

    /// Sends `count` 100-byte messages.
    fn send(&mut self, count: usize) {
        let body = "x".repeat(99);
        let text = match self.target {
            Target::Fixcurve => format!("{body}\n").repeat(count),
            Target::Libzmq { .. } => format!("send {count} 100\n"),
        };
        self.stdin.write_all(text.as_bytes()).expect("server stdin");
        self.stdin.flush().expect("server stdin");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One client process and the lines it prints.
struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    out: mpsc::Receiver<String>,
}

impl Client {
    /// Starts a client of `n` sockets; it sets them up and waits for [`Client::go`].
    fn start(reference: &Path, server: &Server, keys: &Keys, n: usize, msgs: usize) -> Client {
        let mut child = Command::new(reference)
            .args([
                "client",
                &server.endpoint,
                &keys.server_public,
                &keys.client_secret,
                &n.to_string(),
                &msgs.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("client");
        let out = lines_of(child.stdout.take().expect("stdout"));
        let stdin = child.stdin.take();
        Client { child, stdin, out }
    }

    /// A line on its stdin: the first starts the connects, the second closes.
    fn line(&mut self, text: &str) {
        if let Some(i) = self.stdin.as_mut() {
            let _ = i.write_all(text.as_bytes());
            let _ = i.flush();
        }
    }
}

/// Client processes per cycle (`HANDSHAKE_BENCH_CLIENT_PROCS`, default 2, one per core of the
/// 2-core boxes): the subscribers are spread over them, each with its own libzmq context and
/// I/O thread, as subscribers on one host run in separate processes. One process alone
/// bounds the rate by its single I/O thread (a full core, most of it libsodium's guarded
/// allocations and CURVE), not by the server.
fn client_procs(n: usize) -> usize {
    env_num("HANDSHAKE_BENCH_CLIENT_PROCS", 2).clamp(1, n.max(1))
}

fn run_target(
    target: Target,
    reference: &Path,
    keys: &Keys,
    n: usize,
    cycles: usize,
    msgs: usize,
) -> Results {
    let mut server = Server::start(target, reference, keys, n);
    let pid = server.child.id();
    let mut res = Results {
        base_kib: settled_rss_kib(pid),
        base_anon_kib: status_kib(pid, "RssAnon:"),
        ..Results::default()
    };
    let procs = client_procs(n);
    for _ in 0..cycles {
        let mut clients: Vec<Client> = (0..procs)
            .map(|i| {
                let share = n / procs + usize::from(i < n % procs);
                Client::start(reference, &server, keys, share, msgs)
            })
            .collect();
        for c in &clients {
            expect_line(&c.out, "READY", Duration::from_secs(60));
        }
        let server_cpu_before = cpu_ns(pid);
        for c in &mut clients {
            c.line("go\n");
        }
        // "HANDSHAKES ok secs failed t0": the span runs from the first process's start to
        // the last one's last handshake (t0 is CLOCK_MONOTONIC, shared by the processes).
        let (mut ok, mut first, mut last) = (0usize, f64::INFINITY, f64::NEG_INFINITY);
        for c in &clients {
            let line = expect_line(&c.out, "HANDSHAKES", Duration::from_secs(60));
            let f: Vec<&str> = line.split_whitespace().collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
            let (Some(got), Some(secs), Some(t0)) = (num(1), num(2), num(4)) else {
                panic!("client: {line}");
            };
            ok += got as usize;
            first = first.min(t0);
            last = last.max(t0 + secs);
        }
        assert_eq!(ok, n, "handshakes of {n}");
        res.rates.push(n as f64 / (last - first));
        let per_hs = |ns: u64| ns as f64 / 1000.0 / n as f64;
        res.server_cpu_us
            .push(per_hs(cpu_ns(pid).saturating_sub(server_cpu_before)));
        let client_ns: u64 = clients.iter().map(|c| cpu_ns(c.child.id())).sum();
        res.client_cpu_us.push(per_hs(client_ns));
        // Subscriptions reach the server after the handshake: send until every socket has
        // its MSGS (a socket subscribed late gets the next batch). With MSGS 0 the client
        // prints no RECEIVED line: idle memory is then measured without traffic.
        if msgs > 0 {
            let mut pending: Vec<&Client> = clients.iter().collect();
            while !pending.is_empty() {
                server.send(msgs);
                let mut still = Vec::new();
                for (k, c) in pending.into_iter().enumerate() {
                    // The first waits half a second for the batch to land; the rest only
                    // look at what has come.
                    let wait = Duration::from_millis(if k == 0 { 500 } else { 1 });
                    match c.out.recv_timeout(wait) {
                        Ok(l) if l.starts_with("RECEIVED") => {}
                        Ok(l) => panic!("client: {l}"),
                        Err(mpsc::RecvTimeoutError::Timeout) => still.push(c),
                        Err(e) => panic!("client ended: {e}"),
                    }
                }
                pending = still;
            }
        }
        res.idle_kib.push(settled_rss_kib(pid));
        res.idle_anon_kib.push(status_kib(pid, "RssAnon:"));
        for c in &mut clients {
            c.line("close\n");
            drop(c.stdin.take());
        }
        for c in &mut clients {
            expect_line(&c.out, "CLOSED", Duration::from_secs(30));
            let _ = c.child.wait();
        }
        res.closed_kib.push(settled_rss_kib(pid));
    }
    res
}

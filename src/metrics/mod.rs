//! Prometheus text exposition of per-session and per-subscriber counters.
//!
//! Counters are atomics bumped on the hot path; rendering walks them on scrape. Subscriber
//! figures come from the publisher's own stats (sampled on scrape through a callback), so the
//! publisher keeps a single source of truth. The HTTP side is a deliberately tiny GET-only
//! responder: bounded request size, a read timeout and a cap on concurrent scrapes, because
//! it listens on a socket like everything else.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

pub mod histogram;
pub mod journal;
pub mod nats;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Counters of one FIX session.
#[derive(Debug, Default)]
pub struct SessionCounters {
    /// FIX messages received (admin and application).
    pub messages_in: AtomicU64,
    /// Normalized events published from this session.
    pub events_out: AtomicU64,
    /// Application messages that could not be normalized.
    pub normalize_errors: AtomicU64,
    /// Inbound sequence gaps detected.
    pub gaps: AtomicU64,
    /// ResendRequests sent (or answered) on this session.
    pub resends: AtomicU64,
    /// Successful logons.
    pub logons: AtomicU64,
    /// 1 while logged on, 0 otherwise.
    pub logged_on: AtomicU64,
    /// Garbled frames dropped (bad BodyLength, CheckSum, framing).
    pub garbled: AtomicU64,
    /// Rejects (35=3) and BusinessMessageRejects (35=j) we sent.
    pub rejects_sent: AtomicU64,
    /// Executions the journal already held (a venue resending after a crash): not published again.
    pub duplicates_dropped: AtomicU64,
}

/// One subscriber as the publisher reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriberSample {
    pub peer: String,
    pub name: String,
    pub sent: u64,
    pub dropped: u64,
    pub queue_depth: u64,
}

type SubscriberSource = Box<dyn Fn() -> Vec<SubscriberSample> + Send + Sync>;

/// One publisher-wide counter sample: samples with the same name share HELP and TYPE and
/// differ by their one label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterSample {
    pub name: &'static str,
    pub help: &'static str,
    pub label: Option<(&'static str, &'static str)>,
    pub value: u64,
}

type CounterSource = Box<dyn Fn() -> Vec<CounterSample> + Send + Sync>;

/// Everything the endpoint exposes.
#[derive(Default)]
pub struct Registry {
    sessions: Mutex<BTreeMap<(String, String), Arc<SessionCounters>>>,
    subscribers: RwLock<Option<SubscriberSource>>,
    counters: RwLock<Option<CounterSource>>,
    /// Events refused because the topic table was full.
    pub topics_refused: AtomicU64,
    /// Events published in total.
    pub published: AtomicU64,
    /// The journal and the replay endpoint (rendered once a journal is open).
    pub journal: journal::JournalMetrics,
    /// The JetStream sink (bridge) or source (edge), rendered once one runs.
    pub nats: nats::NatsMetrics,
}

impl Registry {
    /// One journal `fdatasync` took `d`.
    pub fn observe_journal_fsync(&self, d: std::time::Duration) {
        self.journal.observe_fsync(d);
    }

    pub fn new() -> Arc<Self> {
        Arc::new(Registry::default())
    }

    /// The counters of `(venue, session)`, created on first use.
    pub fn session(&self, venue: &str, session: &str) -> Arc<SessionCounters> {
        let mut m = match self.sessions.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        m.entry((venue.to_owned(), session.to_owned()))
            .or_default()
            .clone()
    }

    /// Where subscriber figures come from (the publisher's stats).
    pub fn set_subscriber_source(&self, f: SubscriberSource) {
        if let Ok(mut s) = self.subscribers.write() {
            *s = Some(f);
        }
    }

    /// Where publisher-wide counters come from (the CURVE edge's own counters).
    pub fn set_counter_source(&self, f: CounterSource) {
        if let Ok(mut s) = self.counters.write() {
            *s = Some(f);
        }
    }

    /// The Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let sessions: Vec<_> = match self.sessions.lock() {
            Ok(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Err(p) => p
                .into_inner()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        type Get = fn(&SessionCounters) -> &AtomicU64;
        let session_metrics: [(&str, &str, &str, Get); 10] = [
            (
                "fixcurve_session_duplicates_dropped_total",
                "counter",
                "executions already journaled, received again and not republished",
                |c| &c.duplicates_dropped,
            ),
            (
                "fixcurve_session_garbled_total",
                "counter",
                "garbled frames dropped",
                |c| &c.garbled,
            ),
            (
                "fixcurve_session_rejects_sent_total",
                "counter",
                "Rejects and BusinessMessageRejects sent to the peer",
                |c| &c.rejects_sent,
            ),
            (
                "fixcurve_session_messages_in_total",
                "counter",
                "FIX messages received",
                |c| &c.messages_in,
            ),
            (
                "fixcurve_session_events_out_total",
                "counter",
                "normalized events published",
                |c| &c.events_out,
            ),
            (
                "fixcurve_session_normalize_errors_total",
                "counter",
                "application messages that could not be normalized",
                |c| &c.normalize_errors,
            ),
            (
                "fixcurve_session_gaps_total",
                "counter",
                "inbound sequence gaps",
                |c| &c.gaps,
            ),
            (
                "fixcurve_session_resends_total",
                "counter",
                "resend requests",
                |c| &c.resends,
            ),
            (
                "fixcurve_session_logons_total",
                "counter",
                "successful logons",
                |c| &c.logons,
            ),
            (
                "fixcurve_session_up",
                "gauge",
                "1 while the session is logged on",
                |c| &c.logged_on,
            ),
        ];
        for (name, ty, help, get) in session_metrics {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {ty}");
            for ((venue, session), c) in &sessions {
                let _ = writeln!(
                    out,
                    "{name}{{venue=\"{}\",session=\"{}\"}} {}",
                    escape(venue),
                    escape(session),
                    get(c).load(Ordering::Relaxed)
                );
            }
        }
        let subs = match self.subscribers.read() {
            Ok(s) => s.as_ref().map(|f| f()).unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let _ = writeln!(
            out,
            "# HELP fixcurve_subscribers connected, authorized subscribers\n# TYPE fixcurve_subscribers gauge\nfixcurve_subscribers {}",
            subs.len()
        );
        type SubGet = fn(&SubscriberSample) -> u64;
        let sub_metrics: [(&str, &str, &str, SubGet); 3] = [
            (
                "fixcurve_subscriber_sent_total",
                "counter",
                "messages sent to the subscriber",
                |s| s.sent,
            ),
            (
                "fixcurve_subscriber_dropped_total",
                "counter",
                "messages dropped because its queue was full",
                |s| s.dropped,
            ),
            (
                "fixcurve_subscriber_queue_depth",
                "gauge",
                "messages waiting in its queue",
                |s| s.queue_depth,
            ),
        ];
        for (name, ty, help, get) in sub_metrics {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {ty}");
            for s in &subs {
                let _ = writeln!(
                    out,
                    "{name}{{subscriber=\"{}\",peer=\"{}\"}} {}",
                    escape(&s.name),
                    escape(&s.peer),
                    get(s)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP fixcurve_published_total events published\n# TYPE fixcurve_published_total counter\nfixcurve_published_total {}",
            self.published.load(Ordering::Relaxed)
        );
        self.journal.render(&mut out);
        self.nats.render(&mut out);
        let _ = writeln!(
            out,
            "# HELP fixcurve_topics_refused_total events refused because the topic table was full\n# TYPE fixcurve_topics_refused_total counter\nfixcurve_topics_refused_total {}",
            self.topics_refused.load(Ordering::Relaxed)
        );
        let counters = match self.counters.read() {
            Ok(s) => s.as_ref().map(|f| f()).unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let mut last_name = "";
        for c in &counters {
            if c.name != last_name {
                let _ = writeln!(
                    out,
                    "# HELP {} {}\n# TYPE {} counter",
                    c.name, c.help, c.name
                );
                last_name = c.name;
            }
            match c.label {
                Some((k, v)) => {
                    let _ = writeln!(out, "{}{{{k}=\"{}\"}} {}", c.name, escape(v), c.value);
                }
                None => {
                    let _ = writeln!(out, "{} {}", c.name, c.value);
                }
            }
        }
        out
    }
}

/// Label values: backslash, double quote and newline escaped, as the format requires.
fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

const MAX_REQUEST: usize = 8 * 1024;
const MAX_SCRAPES: usize = 8;
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds `listen`, prints `listening: metrics <addr>` and serves until the task is dropped.
pub async fn serve(
    listen: SocketAddr,
    registry: Arc<Registry>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = crate::admission::listen_tcp(listen).await?;
    let addr = listener.local_addr()?;
    eprintln!("listening: metrics {addr}");
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_SCRAPES));
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut sock, peer)) = listener.accept().await else {
                continue;
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                drop(sock);
                continue;
            };
            let registry = registry.clone();
            tokio::spawn(async move {
                let _permit = permit;
                if let Err(e) = respond(&mut sock, &registry).await {
                    tracing::debug!(%peer, error = %e, "metrics request failed");
                }
            });
        }
    });
    Ok((addr, task))
}

async fn respond(sock: &mut tokio::net::TcpStream, registry: &Registry) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = tokio::time::timeout(READ_TIMEOUT, sock.read(&mut chunk))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "read timeout"))??;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            break;
        }
        if buf.len() > MAX_REQUEST {
            return write(
                sock,
                "431 Request Header Fields Too Large",
                "text/plain",
                "",
            )
            .await;
        }
    }
    let line = buf.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "GET" {
        return write(sock, "405 Method Not Allowed", "text/plain", "GET only\n").await;
    }
    let path = target.split('?').next().unwrap_or("");
    if path != "/metrics" && path != "/" {
        return write(sock, "404 Not Found", "text/plain", "try /metrics\n").await;
    }
    let body = registry.render();
    write(
        sock,
        "200 OK",
        "text/plain; version=0.0.4; charset=utf-8",
        &body,
    )
    .await
}

async fn write(
    sock: &mut tokio::net::TcpStream,
    status: &str,
    ctype: &str,
    body: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    sock.write_all(head.as_bytes()).await?;
    sock.write_all(body.as_bytes()).await?;
    sock.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_sessions_and_subscribers_with_escaped_labels() {
        let r = Registry::new();
        let c = r.session("VENUE1", "BRIDGE->CLIENT1");
        c.messages_in.fetch_add(3, Ordering::Relaxed);
        c.logged_on.store(1, Ordering::Relaxed);
        r.session("VENUE1", "BRIDGE->CLIENT1")
            .gaps
            .fetch_add(1, Ordering::Relaxed);
        r.set_subscriber_source(Box::new(|| {
            vec![SubscriberSample {
                peer: "tcp://127.0.0.1:5000".into(),
                name: "we\"ird".into(),
                sent: 10,
                dropped: 2,
                queue_depth: 5,
            }]
        }));
        let text = r.render();
        assert!(text.contains(
            "fixcurve_session_messages_in_total{venue=\"VENUE1\",session=\"BRIDGE->CLIENT1\"} 3"
        ));
        assert!(text.contains(
            "fixcurve_session_gaps_total{venue=\"VENUE1\",session=\"BRIDGE->CLIENT1\"} 1"
        ));
        assert!(
            text.contains("fixcurve_session_up{venue=\"VENUE1\",session=\"BRIDGE->CLIENT1\"} 1")
        );
        assert!(text.contains(
            "fixcurve_subscriber_dropped_total{subscriber=\"we\\\"ird\",peer=\"tcp://127.0.0.1:5000\"} 2"
        ));
        assert!(text.contains("fixcurve_subscribers 1"));
    }

    #[tokio::test]
    async fn http_endpoint_serves_metrics_and_404s_the_rest() {
        let r = Registry::new();
        r.published.fetch_add(7, Ordering::Relaxed);
        let (addr, task) = serve("127.0.0.1:0".parse().unwrap(), r).await.unwrap();
        let get = |path: &'static str| async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        let ok = get("/metrics").await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.contains("fixcurve_published_total 7"), "{ok}");
        assert!(get("/nope").await.starts_with("HTTP/1.1 404"));
        task.abort();
    }
}

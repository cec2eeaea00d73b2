//! The built-in FIX venue simulator behind `fixcurve demo` and the benchmarks: a FIX
//! initiator that connects over mTLS to a fixcurve acceptor (the real acceptor path: TLS
//! policy, identity binding, session layer) and streams market data and executions.
//!
//! [`VenueFeed`] is the sans-IO part (which message comes next, with deterministic prices);
//! [`run_initiator`] is a deliberately small FIX initiator around it: Logon, heartbeats,
//! TestRequest answers, gap-fill answers to ResendRequest, Logout. It is a test peer, not an
//! engine: fixcurve's own session layer is what it exercises.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fix::codec::{Decoder, DecoderLimits, Encoder};
use crate::fix::Field;
use crate::tls::ClientTlsSettings;

/// Prices are kept as integer numbers of 1e-5 so no float ever touches them.
const PRICE_SCALE: u32 = 5;

struct Instrument {
    symbol: &'static str,
    /// Mid price in units of 1e-5.
    mid: i64,
    /// Half spread in units of 1e-5.
    half_spread: i64,
    snapshot_sent: bool,
}

/// Generates the next application message of a plausible FX venue. Deterministic: the same
/// sequence of calls gives the same messages (tests compare exact decimals).
pub struct VenueFeed {
    instruments: Vec<Instrument>,
    tick: u64,
    orders: u64,
    rng: u64,
    account: String,
}

/// One application message to send: MsgType and body fields (after the standard header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppMessage {
    pub msg_type: &'static str,
    pub body: Vec<(u32, String)>,
}

fn px(units: i64) -> String {
    let scale = 10i64.pow(PRICE_SCALE);
    let sign = if units < 0 { "-" } else { "" };
    let a = units.unsigned_abs() as i64;
    format!(
        "{sign}{}.{:0width$}",
        a / scale,
        a % scale,
        width = PRICE_SCALE as usize
    )
}

impl Default for VenueFeed {
    fn default() -> Self {
        Self::new("DEMO-ACC")
    }
}

impl VenueFeed {
    pub fn new(account: &str) -> Self {
        VenueFeed {
            instruments: vec![
                Instrument {
                    symbol: "EUR/USD",
                    mid: 108_765,
                    half_spread: 5,
                    snapshot_sent: false,
                },
                Instrument {
                    symbol: "USD/JPY",
                    mid: 15_123_000,
                    half_spread: 1_000,
                    snapshot_sent: false,
                },
                Instrument {
                    symbol: "GBP/USD",
                    mid: 127_310,
                    half_spread: 8,
                    snapshot_sent: false,
                },
            ],
            tick: 0,
            orders: 0,
            rng: 0x9E37_79B9_7F4A_7C15,
            account: account.to_owned(),
        }
    }

    pub fn symbols(&self) -> Vec<&'static str> {
        self.instruments.iter().map(|i| i.symbol).collect()
    }

    fn rand(&mut self) -> u64 {
        // xorshift64*: plenty for a price walk.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// The next message: first a W snapshot per symbol, then X (with a trade every few),
    /// S quotes and 8 execution reports in turn.
    pub fn next_message(&mut self) -> AppMessage {
        let n = self.instruments.len() as u64;
        let idx = (self.tick % n) as usize;
        let step = self.tick / n;
        self.tick += 1;
        let r = self.rand();
        let Some(inst) = self.instruments.get_mut(idx) else {
            return AppMessage {
                msg_type: "0",
                body: vec![],
            };
        };
        // A random walk of -2..=+2 ticks.
        let delta = (r % 5) as i64 - 2;
        inst.mid = (inst.mid + delta * inst.half_spread / 2).max(inst.half_spread * 4);
        let (bid, offer) = (inst.mid - inst.half_spread, inst.mid + inst.half_spread);
        let symbol = inst.symbol.to_owned();
        let size = |k: u64| format!("{}", (k % 9 + 1) * 1_000_000);
        if !inst.snapshot_sent {
            inst.snapshot_sent = true;
            return AppMessage {
                msg_type: "W",
                body: vec![
                    (262, "DEMO".into()),
                    (55, symbol),
                    (268, "4".into()),
                    (269, "0".into()),
                    (270, px(bid)),
                    (271, size(r)),
                    (290, "1".into()),
                    (269, "0".into()),
                    (270, px(bid - inst.half_spread)),
                    (271, size(r >> 8)),
                    (290, "2".into()),
                    (269, "1".into()),
                    (270, px(offer)),
                    (271, size(r >> 16)),
                    (290, "1".into()),
                    (269, "1".into()),
                    (270, px(offer + inst.half_spread)),
                    (271, size(r >> 24)),
                    (290, "2".into()),
                ],
            };
        }
        match step % 4 {
            0 | 2 => {
                let mut body = vec![(262, "DEMO".into())];
                let trade = step % 8 == 2;
                body.push((268, if trade { "3" } else { "2" }.into()));
                for (side, p, k) in [("0", bid, r >> 4), ("1", offer, r >> 12)] {
                    body.extend([
                        (279, "1".to_owned()),
                        (269, side.to_owned()),
                        (55, symbol.clone()),
                        (270, px(p)),
                        (271, size(k)),
                        (290, "1".to_owned()),
                    ]);
                }
                if trade {
                    body.extend([
                        (279, "0".to_owned()),
                        (269, "2".to_owned()),
                        (55, symbol.clone()),
                        (270, px(inst.mid)),
                        (271, size(r >> 20)),
                        (278, format!("T{}", self.tick)),
                    ]);
                }
                AppMessage {
                    msg_type: "X",
                    body,
                }
            }
            1 => AppMessage {
                msg_type: "S",
                body: vec![
                    (117, format!("Q{}", self.tick)),
                    (55, symbol),
                    (132, px(bid)),
                    (133, px(offer)),
                    (134, size(r >> 3)),
                    (135, size(r >> 7)),
                ],
            },
            _ => {
                self.orders += 1;
                let qty = (r % 9 + 1) * 100_000;
                let fill = qty / 2;
                AppMessage {
                    msg_type: "8",
                    body: vec![
                        (37, format!("O{}", self.orders)),
                        (11, format!("C{}", self.orders)),
                        (17, format!("E{}", self.orders)),
                        (150, "F".into()),
                        (39, "1".into()),
                        (54, if r & 1 == 0 { "1" } else { "2" }.into()),
                        (55, symbol),
                        (38, qty.to_string()),
                        (44, px(offer)),
                        (31, px(offer)),
                        (32, fill.to_string()),
                        (14, fill.to_string()),
                        (151, (qty - fill).to_string()),
                        (6, px(offer)),
                        (1, self.account.clone()),
                    ],
                }
            }
        }
    }
}

/// A Quote whose QuoteID is the current time in ns (benchmark mode).
fn stamped_quote(n: u64) -> AppMessage {
    AppMessage {
        msg_type: "S",
        body: vec![
            (117, crate::bridge::now_ns().to_string()),
            (55, "EUR/USD".into()),
            (132, px(108_760 + (n % 7) as i64)),
            (133, px(108_770 + (n % 5) as i64)),
            (134, "1000000".into()),
            (135, "2000000".into()),
        ],
    }
}

/// How the simulator connects and what it sends.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub connect: SocketAddr,
    pub tls: ClientTlsSettings,
    pub begin_string: String,
    /// Ours (the venue's) SenderCompID: the bridge's target_comp_id.
    pub sender_comp_id: String,
    pub target_comp_id: String,
    /// Application messages per second.
    pub rate: u32,
    /// Stop after this many application messages (None: until cancelled).
    pub limit: Option<u64>,
    pub heartbeat_secs: u32,
    /// Benchmark mode: send only Quotes whose QuoteID (117) is the send time in ns since the
    /// Unix epoch, so a subscriber in the same process measures end-to-end latency.
    pub stamp_quotes: bool,
}

/// When the next batch is due. tokio's timer has 1 ms granularity, so at 10,000 msg/s it
/// would send bursts of 10: the tenth waits for the nine before it at every stage, and a
/// latency figure measures the burst, not the path. Rates above 1,000/s (up to 100,000/s)
/// are paced by a thread that sleeps one message interval at a time and wakes the task; the
/// batch size still comes from elapsed time, so a late wake-up sends what is owed.
enum Pacer {
    Tokio(tokio::time::Interval),
    Thread(Arc<tokio::sync::Notify>),
}

impl Pacer {
    /// Ticks at `start` + n / `rate`: the instants the send loop's batch arithmetic (from the
    /// same `start`) makes each message due, so a message is sent at its due time rather
    /// than a thread start-up later.
    ///
    /// How late each tick woke is recorded in `stats` (see [`SimStats::pacer_late_max_us`]).
    fn new(rate: u64, start: Instant, stats: Arc<SimStats>) -> Self {
        if !(1_001..=100_000).contains(&rate) {
            return Pacer::millisecond();
        }
        let notify = Arc::new(tokio::sync::Notify::new());
        let weak = Arc::downgrade(&notify);
        let spawned = std::thread::Builder::new()
            .name("sim-pacer".into())
            .spawn(move || {
                // The default 50 µs timer slack is half the interval at 10,000/s.
                // SAFETY: PR_SET_TIMERSLACK takes an integer and changes only this thread.
                unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1_000u64) };
                let period_ns = 1_000_000_000 / rate;
                let mut n: u64 = 0;
                // Ends when the simulator drops its side.
                while let Some(notify) = weak.upgrade() {
                    notify.notify_one();
                    drop(notify);
                    n = n.saturating_add(1);
                    let next = start + Duration::from_nanos(period_ns.saturating_mul(n));
                    let now = Instant::now();
                    let late = if next > now {
                        std::thread::sleep(next - now);
                        Instant::now().saturating_duration_since(next)
                    } else {
                        // Behind (the machine was busy): resynchronise, never spin.
                        let elapsed = u64::try_from(now.duration_since(start).as_nanos());
                        n = elapsed.unwrap_or(u64::MAX) / period_ns.max(1);
                        now.duration_since(next)
                    };
                    stats.pacer_woke_late(late);
                }
            });
        match spawned {
            Ok(_) => Pacer::Thread(notify),
            Err(_) => Pacer::millisecond(),
        }
    }

    /// tokio's own 1 ms ticks: low rates, very high ones, or no thread to pace with.
    fn millisecond() -> Self {
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        Pacer::Tokio(tick)
    }

    async fn wait(&mut self) {
        match self {
            Pacer::Tokio(t) => {
                t.tick().await;
            }
            Pacer::Thread(n) => n.notified().await,
        }
    }
}

/// Counters the caller can read while the simulator runs.
#[derive(Debug, Default)]
pub struct SimStats {
    pub sent: AtomicU64,
    pub logged_on: AtomicU64,
    /// Wall-clock ns (as `received_ns`) when the paced send loop started: the k-th message
    /// after Logon (0-based, MsgSeqNum k + 2 while nothing else is sent) is due (k + 1) / rate
    /// s after it. A latency measured from there also counts a simulator that sent late.
    pub paced_from_ns: AtomicU64,
    /// How late the pacing thread (rates 1,001–100,000/s) woke after a tick's due instant,
    /// at worst, in µs, and how many wake-ups were 500 µs or more late. Nothing in the simulator holds
    /// it up, so these measure the machine: a run where a thread that asked for 100 µs
    /// slept for milliseconds (a busy guest, a vCPU the host took away) says so beside its
    /// latency figures.
    pub pacer_late_max_us: AtomicU64,
    pub pacer_late_500us: AtomicU64,
}

impl SimStats {
    fn pacer_woke_late(&self, late: Duration) {
        let us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        self.pacer_late_max_us.fetch_max(us, Ordering::Relaxed);
        if us >= 500 {
            self.pacer_late_500us.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("simulator: connect {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("simulator: TLS: {0}")]
    Tls(String),
    #[error("simulator: {0}")]
    Io(#[from] std::io::Error),
    #[error("simulator: the bridge ended the session: {0}")]
    Ended(String),
}

struct Header {
    enc: Encoder,
    sender: String,
    target: String,
    next_seq: u64,
}

impl Header {
    fn encode(&mut self, msg_type: &str, body: &[(u32, String)], out: &mut Vec<u8>) {
        let seq = self.next_seq.to_string();
        self.next_seq += 1;
        let now = sending_time();
        let mut fields: Vec<Field<'_>> = Vec::with_capacity(body.len() + 4);
        fields.push(Field::new(49, self.sender.as_bytes()));
        fields.push(Field::new(56, self.target.as_bytes()));
        fields.push(Field::new(34, seq.as_bytes()));
        fields.push(Field::new(52, now.as_bytes()));
        fields.extend(body.iter().map(|(t, v)| Field::new(*t, v.as_bytes())));
        self.enc.encode(msg_type, &fields, out);
    }
}

/// UTCTimestamp with milliseconds.
fn sending_time() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}-{:02}:{:02}:{:02}.{:03}",
        now.year(),
        now.month() as u8,
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond()
    )
}

/// Connects, logs on, streams until `limit`, `shutdown` fires, or the bridge logs out.
pub async fn run_initiator(
    cfg: SimConfig,
    stats: Arc<SimStats>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), SimError> {
    let tcp = TcpStream::connect(cfg.connect)
        .await
        .map_err(|source| SimError::Connect {
            addr: cfg.connect,
            source,
        })?;
    tcp.set_nodelay(true)?;
    let tls_cfg =
        crate::tls::build_client_config(&cfg.tls).map_err(|e| SimError::Tls(e.to_string()))?;
    let name = cfg
        .tls
        .server_name
        .clone()
        .unwrap_or_else(|| cfg.connect.ip().to_string());
    let server_name =
        rustls_pki_types::ServerName::try_from(name).map_err(|e| SimError::Tls(e.to_string()))?;
    let stream = tokio_rustls::TlsConnector::from(tls_cfg)
        .connect(server_name, tcp)
        .await
        .map_err(|e| SimError::Tls(e.to_string()))?;
    let (mut rd, mut wr) = tokio::io::split(stream);

    let mut hdr = Header {
        enc: Encoder::new(cfg.begin_string.clone()),
        sender: cfg.sender_comp_id.clone(),
        target: cfg.target_comp_id.clone(),
        next_seq: 1,
    };
    let mut out = Vec::with_capacity(64 * 1024);
    hdr.encode(
        "A",
        &[
            (98, "0".into()),
            (108, cfg.heartbeat_secs.to_string()),
            (141, "Y".into()),
        ],
        &mut out,
    );
    send(&mut wr, &mut out).await?;

    let mut dec = Decoder::new(DecoderLimits::default());
    let mut buf = vec![0u8; 64 * 1024];
    // Wait for the Logon answer.
    let logon_deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    'logon: loop {
        let n = tokio::time::timeout_at(logon_deadline, rd.read(&mut buf))
            .await
            .map_err(|_| SimError::Ended("no Logon answer within 10 s".into()))??;
        if n == 0 {
            return Err(SimError::Ended("connection closed before Logon".into()));
        }
        dec.feed(buf.get(..n).unwrap_or(&[]));
        while let Some(m) = dec.decode_next() {
            let Ok(m) = m else { continue };
            match m.msg_type() {
                b"A" => break 'logon,
                b"5" => {
                    return Err(SimError::Ended(
                        m.get_str(58).unwrap_or("Logout").to_owned(),
                    ))
                }
                _ => {}
            }
        }
    }
    stats.logged_on.store(1, Ordering::Relaxed);

    let mut feed = VenueFeed::default();
    let start = Instant::now();
    stats
        .paced_from_ns
        .store(crate::bridge::now_ns(), Ordering::Relaxed);
    let mut sent: u64 = 0;
    let rate = cfg.rate.max(1) as u64;
    let mut tick = Pacer::new(rate, start, stats.clone());
    let hb = Duration::from_secs(cfg.heartbeat_secs.max(1) as u64);
    let mut last_sent = Instant::now();
    loop {
        tokio::select! {
            _ = tick.wait() => {
                let due = (start.elapsed().as_micros() as u64).saturating_mul(rate) / 1_000_000;
                let mut due = due.saturating_sub(sent).min(4096);
                if let Some(limit) = cfg.limit {
                    due = due.min(limit.saturating_sub(sent));
                }
                for _ in 0..due {
                    let m = if cfg.stamp_quotes {
                        stamped_quote(sent)
                    } else {
                        feed.next_message()
                    };
                    hdr.encode(m.msg_type, &m.body, &mut out);
                }
                if due == 0 && last_sent.elapsed() >= hb {
                    hdr.encode("0", &[], &mut out);
                }
                if !out.is_empty() {
                    send(&mut wr, &mut out).await?;
                    last_sent = Instant::now();
                }
                sent += due;
                stats.sent.store(sent, Ordering::Relaxed);
                if cfg.limit.is_some_and(|l| sent >= l) {
                    break;
                }
            }
            r = rd.read(&mut buf) => {
                let n = r?;
                if n == 0 {
                    return Err(SimError::Ended("connection closed".into()));
                }
                dec.feed(buf.get(..n).unwrap_or(&[]));
                while let Some(m) = dec.decode_next() {
                    let Ok(m) = m else { continue };
                    match m.msg_type() {
                        b"1" => {
                            let id = m.get_str(112).unwrap_or("").to_owned();
                            hdr.encode("0", &[(112, id)], &mut out);
                        }
                        b"2" => {
                            // Answer any resend with a gap fill up to our next number.
                            let begin = m.get_u64(7).unwrap_or(1);
                            let next = hdr.next_seq;
                            let reset = [(123, "Y".to_owned()), (36, next.to_string())];
                            let saved = hdr.next_seq;
                            hdr.next_seq = begin;
                            hdr.encode("4", &reset, &mut out);
                            hdr.next_seq = saved;
                        }
                        b"5" => {
                            hdr.encode("5", &[], &mut out);
                            send(&mut wr, &mut out).await?;
                            let _ = wr.shutdown().await;
                            return Err(SimError::Ended(m.get_str(58).unwrap_or("Logout").to_owned()));
                        }
                        _ => {}
                    }
                }
                if !out.is_empty() {
                    send(&mut wr, &mut out).await?;
                }
            }
            _ = shutdown.changed() => break,
        }
    }
    // Polite end: Logout, wait briefly for the answer.
    hdr.encode("5", &[], &mut out);
    send(&mut wr, &mut out).await?;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    dec.feed(buf.get(..n).unwrap_or(&[]));
                    while let Some(m) = dec.decode_next() {
                        if m.is_ok_and(|m| m.msg_type() == b"5") {
                            return;
                        }
                    }
                }
            }
        }
    })
    .await;
    let _ = wr.shutdown().await;
    Ok(())
}

/// Writes `out` and flushes it, then clears it.
///
/// The flush is not a formality: a TLS stream's `write_all` returns once rustls has accepted
/// the plaintext, and when the socket was full the last records stay in rustls's own buffer
/// until something writes or flushes again. Without it the final batch of a run sat there
/// through the 2 s wait for the Logout answer, and arrived 2 s late.
async fn send<W: AsyncWrite + Unpin>(wr: &mut W, out: &mut Vec<u8>) -> std::io::Result<()> {
    wr.write_all(out).await?;
    wr.flush().await?;
    out.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::{Event, Normalizer};

    /// A run's last batch must reach the venue's peer by itself: nothing is written after it
    /// until the Logout answer is given up on, so bytes left in rustls's buffer would wait.
    #[tokio::test]
    async fn a_send_reaches_the_peer_without_a_later_write() {
        use crate::tls::{build_client_config, build_server_config, ServerTlsSettings};
        use crate::tools::certs_dev::{generate, DevOptions};
        const N: usize = 256 * 1024;
        let d = tempfile::tempdir().unwrap();
        let p = generate(d.path(), &DevOptions::default()).unwrap();
        let scfg = build_server_config(&ServerTlsSettings {
            cert: p.server_combined.clone(),
            client_ca: Some(p.ca.clone()),
            ..Default::default()
        })
        .unwrap();
        let ccfg = build_client_config(&ClientTlsSettings {
            cert: Some(p.client_combined.clone()),
            ca: Some(p.ca.clone()),
            ..Default::default()
        })
        .unwrap();
        // A pipe far smaller than the batch: the socket is "full" when the batch is handed over.
        let (a, b) = tokio::io::duplex(4 * 1024);
        let srv = tokio::spawn(async move {
            let mut s = tokio_rustls::TlsAcceptor::from(scfg)
                .accept(a)
                .await
                .unwrap();
            let mut got = vec![0u8; N];
            s.read_exact(&mut got).await.map(|_| got)
        });
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let c = tokio_rustls::TlsConnector::from(ccfg)
            .connect(name, b)
            .await
            .unwrap();
        let (_rd, mut wr) = tokio::io::split(c);
        let mut out: Vec<u8> = (0..N).map(|i| (i % 251) as u8).collect();
        let want = out.clone();
        send(&mut wr, &mut out).await.unwrap();
        assert!(out.is_empty());
        // Nothing is written from here on, and `wr` stays open until the peer has it all.
        let got = tokio::time::timeout(Duration::from_secs(10), srv)
            .await
            .expect("the batch's last records stayed in the TLS buffer")
            .unwrap()
            .unwrap();
        assert!(got == want, "the peer read other bytes than were sent");
        drop(wr);
    }

    #[test]
    fn prices_format_exactly() {
        assert_eq!(px(108_765), "1.08765");
        assert_eq!(px(5), "0.00005");
        assert_eq!(px(-150), "-0.00150");
        assert_eq!(px(15_123_000), "151.23000");
    }

    #[test]
    fn feed_messages_all_normalize() {
        let mut feed = VenueFeed::default();
        let norm = Normalizer::new("SIM");
        let mut kinds = std::collections::BTreeSet::new();
        for seq in 1..=200u32 {
            let m = feed.next_message();
            let mut owned = vec![
                (35u32, m.msg_type.to_string()),
                (49, "VENUE".into()),
                (34, seq.to_string()),
            ];
            owned.extend(m.body.clone());
            let fields: Vec<Field<'_>> = owned
                .iter()
                .map(|(t, v)| Field::new(*t, v.as_bytes()))
                .collect();
            let events = norm.normalize(&fields).unwrap();
            assert!(!events.is_empty(), "{m:?}");
            for e in events {
                kinds.insert(e.event.kind());
                if let Event::Execution(x) = &e.event {
                    assert_eq!(e.topic, "exec.SIM.DEMO-ACC");
                    assert_eq!(x.last_px.unwrap().scale(), PRICE_SCALE);
                }
            }
        }
        let want: std::collections::BTreeSet<&str> = [
            "book_snapshot",
            "book_update",
            "trade",
            "quote",
            "execution",
        ]
        .into();
        assert_eq!(kinds, want);
    }
}

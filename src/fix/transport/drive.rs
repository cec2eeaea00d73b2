//! Drives one sans-IO `Session` over one connection: bytes from the socket into the session,
//! the session's bytes onto the socket, its events onto the bridge's bounded channel, its
//! timers onto the tokio clock. Awaiting a full channel pauses reading, which is how
//! back-pressure reaches the peer.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::audit::{AuditLog, AuditRecord, Side};
use crate::fix::session::{Session, SessionConfig, SessionEvent};
use crate::fix::store::{FileStore, SeqStore, StoreWork};
use crate::fix::Field;

use super::store_writer::StoreWriter;

/// Writes that make no progress for this long mean the peer stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Application messages queued by callers per session.
const OUTBOX_DEPTH: usize = 1024;

/// What the transports hand the bridge.
#[derive(Debug)]
pub struct FixEvent {
    /// The configured VENUE of the session (shared by all of a connection's events: a
    /// `String` each was two allocations per message, and two more where the bridge keyed on
    /// them).
    pub venue: Arc<str>,
    /// `SENDER->TARGET` from our side.
    pub session: Arc<str>,
    /// `None`: only the acknowledgement is wanted (a barrier).
    pub event: Option<SessionEvent>,
    /// Wall-clock receive time, ns since the Unix epoch.
    pub received_ns: u64,
    /// Answer once everything sent before it is written to the journal (and synced, when
    /// asked): the session's inbound sequence number is committed only then.
    pub ack: Option<Ack>,
}

/// A request to be told when the bridge has journaled what came before it.
#[derive(Debug)]
pub struct Ack {
    /// Also `fdatasync` the journal (the store work waiting on it is a synced one).
    pub durable: bool,
    /// Answered (or dropped, if the bridge stops first).
    pub done: tokio::sync::oneshot::Sender<()>,
}

/// An application message to send on a session (the session writes the header).
#[derive(Clone, Debug)]
pub struct OutboundApp {
    pub msg_type: String,
    pub fields: Vec<(u32, Vec<u8>)>,
}

impl OutboundApp {
    /// From `tag=value|tag=value` text (tests, tooling).
    pub fn parse(msg_type: &str, text: &str) -> Option<Self> {
        let mut fields = Vec::new();
        for kv in text.split('|').filter(|s| !s.is_empty()) {
            let (t, v) = kv.split_once('=')?;
            fields.push((t.trim().parse().ok()?, v.as_bytes().to_vec()));
        }
        Some(OutboundApp {
            msg_type: msg_type.to_string(),
            fields,
        })
    }
}

/// Where callers send application messages to live sessions, by `SENDER->TARGET` id.
#[derive(Clone, Default)]
pub struct Outbox(Arc<Mutex<HashMap<String, mpsc::Sender<OutboundApp>>>>);

impl Outbox {
    /// Queues a message for a logged-on session; fails if it is not connected or its queue
    /// is full (never blocks the caller).
    pub fn send(&self, session: &str, msg: OutboundApp) -> Result<(), String> {
        let tx = self
            .0
            .lock()
            .map_err(|_| "outbox poisoned".to_string())?
            .get(session)
            .cloned()
            .ok_or_else(|| format!("session {session} is not connected"))?;
        tx.try_send(msg)
            .map_err(|e| format!("session {session}: cannot queue: {e}"))
    }

    /// Ids of the sessions currently connected.
    pub fn sessions(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn register(&self, session: &str) -> mpsc::Receiver<OutboundApp> {
        let (tx, rx) = mpsc::channel(OUTBOX_DEPTH);
        if let Ok(mut m) = self.0.lock() {
            m.insert(session.to_string(), tx);
        }
        rx
    }

    fn unregister(&self, session: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(session);
        }
    }
}

pub(crate) struct Conn<S> {
    pub stream: S,
    /// Bytes already read (the acceptor peeks at the Logon before the session exists).
    pub buffered: Vec<u8>,
    pub peer: String,
}

/// Everything a session task needs besides its connection.
pub(crate) struct Env<'a> {
    pub venue: &'a str,
    pub state_dir: &'a Path,
    pub out: &'a mpsc::Sender<FixEvent>,
    pub shutdown: watch::Receiver<bool>,
    pub outbox: &'a Outbox,
    pub audit: &'a AuditLog,
    /// Sent once the session is logged on (the initiator's MarketDataRequest).
    pub after_logon: Vec<OutboundApp>,
    /// This connection alone must end (its certificate was revoked): the text goes in our
    /// Logout, then the connection closes as at shutdown.
    pub stop: Option<watch::Receiver<Option<String>>>,
    /// Hand the bridge the next batch while the last still awaits its acknowledgement (the
    /// store work waiting for it goes to the store's writer with the acknowledgement): reading
    /// and publishing overlap. Off, a session reads nothing more until the bridge has
    /// answered, which is what a JetStream sink wants: there the acknowledgement is the
    /// stream's, and while the stream is unreachable the sessions stop reading at once rather
    /// than after the bridge's queues fill.
    pub read_ahead: bool,
}

/// Resolves with the text once `stop` carries one; never without a `stop`.
async fn stop_requested(stop: &mut Option<watch::Receiver<Option<String>>>) -> String {
    let Some(rx) = stop.as_mut() else {
        return std::future::pending().await;
    };
    let text = match rx.wait_for(Option::is_some).await {
        Ok(v) => Some(v.clone().unwrap_or_default()),
        Err(_) => None,
    };
    match text {
        Some(t) => t,
        None => std::future::pending().await,
    }
}

/// How a connection ended.
pub(crate) struct Ended {
    pub was_logged_on: bool,
    pub shutdown: bool,
}

fn session_label(cfg: &SessionConfig) -> String {
    format!("{}->{}", cfg.sender_comp_id, cfg.target_comp_id)
}

fn send_app(session: &mut Session, m: &OutboundApp, label: &str) {
    let fields: Vec<Field<'_>> = m
        .fields
        .iter()
        .map(|(t, v)| Field::new(*t, v.as_slice()))
        .collect();
    if let Err(e) = session.send_app(&m.msg_type, &fields, std::time::Instant::now()) {
        tracing::warn!(session = %label, error = %e, "application message not sent");
    }
}

/// Garbled frames and rejects of one connection are logged one by one up to this many, then
/// every `LOG_EVERY`th (with the running count): 10 MB of junk must not become 10 MB of log.
const LOG_BURST: u64 = 10;
const LOG_EVERY: u64 = 1000;

/// Runs the session until the connection ends. Never panics on peer input.
pub(crate) async fn serve<S>(conn: Conn<S>, cfg: &SessionConfig, mut env: Env<'_>) -> Ended
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let label = session_label(cfg);
    let (venue_id, session_id): (Arc<str>, Arc<str>) =
        (Arc::from(env.venue), Arc::from(label.as_str()));
    let mut ended = Ended {
        was_logged_on: false,
        shutdown: false,
    };
    let store = match FileStore::open(env.state_dir, &cfg.session_id()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(session = %label, error = %e, "sequence store unavailable; closing");
            return ended;
        }
    };
    let resume = store.state();
    let store = StoreWriter::labelled(store, label.to_string());
    let started = Session::new(
        cfg.clone(),
        resume,
        std::time::Instant::now(),
        time::OffsetDateTime::now_utc(),
    );
    let mut session = match started {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(session = %label, error = %e, "session not started");
            store.close().await;
            return ended;
        }
    };
    let mut outbox_rx = env.outbox.register(&label);
    let (mut rd, mut wr) = tokio::io::split(conn.stream);
    session.connect(std::time::Instant::now());
    if !conn.buffered.is_empty() {
        session.handle_input(&conn.buffered, std::time::Instant::now());
    }
    let mut rbuf = vec![0u8; 64 * 1024];
    let mut wbuf = Vec::with_capacity(64 * 1024);
    let mut logging_out = false;
    let mut disconnect_reason: Option<String> = None;
    let mut shutdown_deadline: Option<Instant> = None;
    let mut announced = false;
    let (mut rejects_logged, mut garbled_logged) = (0u64, 0u64);
    // When the input behind the next events was read: the envelope's `received_ns` is the
    // moment the bytes arrived, not when the session finished with them.
    let mut batch_ns = super::now_ns();
    // Application messages handed to the bridge whose journal sync is still owed: the next
    // synced store batch waits for it (journal first, then our sequence number).
    let mut unsynced_app = false;
    // `inbound_sync_ms = 0`: every inbound sequence number on disk before reading on.
    let strict_sync = cfg.inbound_sync_after.is_zero();
    loop {
        // The order that makes a crash lose nothing: (1) this call's events go to the bridge,
        // and when they carry application messages we wait until its journal holds them;
        // (2) then the store records the inbound sequence number that covered them; (3) then
        // our bytes leave. Were the store first, a crash in between would leave the venue
        // believing we had what we never journaled.
        let work = session.poll_store();
        let sync = work.as_ref().is_some_and(|w| w.sync);
        let events: Vec<SessionEvent> = std::iter::from_fn(|| session.poll_event()).collect();
        let has_app = events.iter().any(|e| matches!(e, SessionEvent::App { .. }));
        if has_app {
            crate::stagetrace::mark(crate::stagetrace::Stage::SessionEvents, batch_ns);
        }
        unsynced_app |= has_app;
        let (mut ack, ack_rx) = if has_app || (sync && unsynced_app) {
            let (done, rx) = tokio::sync::oneshot::channel();
            (
                Some(Ack {
                    durable: sync,
                    done,
                }),
                Some(rx),
            )
        } else {
            (None, None)
        };
        if sync {
            unsynced_app = false;
        }
        let mut after_logon = Vec::new();
        for ev in events {
            match &ev {
                SessionEvent::LoggedOn { heartbeat_secs, .. } => {
                    ended.was_logged_on = true;
                    tracing::info!(session = %label, peer = %conn.peer, heartbeat_secs, "FIX session logged on");
                    after_logon = std::mem::take(&mut env.after_logon);
                }
                SessionEvent::LoggedOut { reason } => {
                    tracing::info!(session = %label, reason = %reason, "FIX session logged out");
                }
                SessionEvent::Disconnect { reason } => {
                    disconnect_reason = Some(reason.clone());
                }
                SessionEvent::Gap { expected, received } => {
                    tracing::info!(session = %label, expected, received, "sequence gap; ResendRequest sent");
                }
                SessionEvent::ResendRequested { begin, end } => {
                    tracing::info!(session = %label, begin, end, "peer ResendRequest answered");
                }
                SessionEvent::RejectSent {
                    ref_seq_num,
                    reason,
                    text,
                } => {
                    rejects_logged += 1;
                    if rejects_logged <= LOG_BURST || rejects_logged % LOG_EVERY == 0 {
                        tracing::warn!(session = %label, peer = %conn.peer, ref_seq_num, reason, %text, count = rejects_logged, "message rejected");
                    }
                }
                SessionEvent::Garbled { error } => {
                    garbled_logged += 1;
                    if garbled_logged <= LOG_BURST || garbled_logged % LOG_EVERY == 0 {
                        tracing::warn!(session = %label, peer = %conn.peer, %error, count = garbled_logged, "garbled frame dropped");
                    }
                }
                _ => {}
            }
            let is_disconnect = matches!(ev, SessionEvent::Disconnect { .. });
            announced |= is_disconnect;
            let fe = FixEvent {
                venue: venue_id.clone(),
                session: session_id.clone(),
                event: Some(ev),
                received_ns: batch_ns,
                ack: None,
            };
            // Awaiting here (channel full) pauses reading: TCP back-pressure.
            if env.out.send(fe).await.is_err() && !is_disconnect && !logging_out {
                // The bridge is gone: wind down as for a shutdown.
                logging_out = true;
                ended.shutdown = true;
                session.logout("shutting down", std::time::Instant::now());
                shutdown_deadline =
                    Some(Instant::now() + cfg.logout_timeout + Duration::from_secs(1));
            }
        }
        if let Some(a) = ack.take() {
            let barrier = FixEvent {
                venue: venue_id.clone(),
                session: session_id.clone(),
                event: None,
                received_ns: batch_ns,
                ack: Some(a),
            };
            let _ = env.out.send(barrier).await;
        }
        // When nothing of ours leaves after this batch, a sync only the session's timer asked
        // for (market data in) and, reading ahead, any store work, is handed to the store's
        // writer with the bridge's acknowledgement and neither is waited for: the writer
        // applies it after that acknowledgement, and anything that does precede our bytes (a
        // synced batch, a resend load) waits behind it in the writer's queue (see
        // `store_writer`). Waiting here made reading and publishing take turns: the reader
        // sat idle while the bridge routed its batch, and the bridge while the reader decoded
        // the next (`Env::read_ahead`).
        let background = (sync || env.read_ahead) && !strict_sync && !session.transmit_pending();
        match (work, ack_rx) {
            (Some(w), after) if background => {
                if let Err(reason) = store.submit(w, after).await {
                    session.handle_store_failure(&reason);
                }
            }
            (work, ack_rx) => {
                if let Some(rx) = ack_rx {
                    if rx.await.is_err() {
                        // The bridge stopped without journaling them: the store must not move
                        // past them (the venue resends them to the next run).
                        disconnect_reason.get_or_insert_with(|| "bridge stopped".into());
                        break;
                    }
                }
                if let Some(w) = work {
                    apply_work(&mut session, &store, w).await;
                }
            }
        }
        settle(&mut session, &store).await;
        wbuf.clear();
        session.drain_transmit(&mut wbuf);
        if !wbuf.is_empty() {
            let w = tokio::time::timeout(WRITE_TIMEOUT, async {
                wr.write_all(&wbuf).await?;
                wr.flush().await
            })
            .await;
            if !matches!(w, Ok(Ok(()))) {
                disconnect_reason = Some("write failed or timed out".into());
                break;
            }
        }
        if !after_logon.is_empty() && disconnect_reason.is_none() {
            // Write what was queued on Logon (the MarketDataRequest) now, not at the next
            // wake-up, which may be a heartbeat interval away.
            for m in &after_logon {
                send_app(&mut session, m, &label);
            }
            continue;
        }
        if disconnect_reason.is_some() {
            // Flush whatever the session queued with its Disconnect (e.g. a Logout).
            settle(&mut session, &store).await;
            wbuf.clear();
            session.drain_transmit(&mut wbuf);
            if !wbuf.is_empty() {
                // Flushed here, not at the shutdown below: over TLS the last records may
                // otherwise sit in rustls's buffer while the store closes.
                let _ = tokio::time::timeout(Duration::from_secs(2), async {
                    wr.write_all(&wbuf).await?;
                    wr.flush().await
                })
                .await;
            }
            break;
        }
        if logging_out && !wbuf.is_empty() {
            continue;
        }
        if session.transmit_pending() {
            // The rest of a resend answer: write it before reading more.
            continue;
        }
        let timer = session.poll_timeout().map(Instant::from_std);
        let deadline = match (timer, shutdown_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        tokio::select! {
            r = env.shutdown.changed(), if !logging_out => {
                batch_ns = super::now_ns();
                if r.is_err() || *env.shutdown.borrow() {
                    logging_out = true;
                    ended.shutdown = true;
                    session.logout("shutting down", std::time::Instant::now());
                    shutdown_deadline = Some(Instant::now() + cfg.logout_timeout + Duration::from_secs(1));
                }
            }
            r = rd.read(&mut rbuf) => match r {
                Ok(0) => {
                    disconnect_reason = Some("connection closed by peer".into());
                    break;
                }
                Ok(n) => {
                    batch_ns = super::now_ns();
                    session.handle_input(rbuf.get(..n).unwrap_or_default(), std::time::Instant::now());
                }
                Err(e) => {
                    disconnect_reason = Some(format!("read error: {e}"));
                    break;
                }
            },
            _ = sleep_until_opt(deadline) => {
                if shutdown_deadline.is_some_and(|d| Instant::now() >= d) {
                    disconnect_reason = Some("shutdown: Logout not answered in time".into());
                    break;
                }
                batch_ns = super::now_ns();
                session.handle_timeout(std::time::Instant::now());
            }
            text = stop_requested(&mut env.stop), if !logging_out => {
                batch_ns = super::now_ns();
                logging_out = true;
                tracing::warn!(session = %label, reason = %text, "closing the session");
                session.logout(&text, std::time::Instant::now());
                shutdown_deadline = Some(Instant::now() + cfg.logout_timeout + Duration::from_secs(1));
            }
            Some(m) = outbox_rx.recv(), if !logging_out => {
                batch_ns = super::now_ns();
                send_app(&mut session, &m, &label);
            }
        }
    }
    env.outbox.unregister(&label);
    // Queued batches land and the store's lock is released before a reconnect can want it.
    store.close().await;
    let reason = disconnect_reason.unwrap_or_else(|| "closed".into());
    // Tell the bridge about connection ends the session itself did not announce.
    if !announced {
        let _ = env.out.try_send(FixEvent {
            venue: venue_id.clone(),
            session: session_id.clone(),
            event: Some(SessionEvent::Disconnect {
                reason: reason.clone(),
            }),
            received_ns: super::now_ns(),
            ack: None,
        });
    }
    env.audit.record(
        AuditRecord::new(Side::Fix, "session_closed", true)
            .peer(&conn.peer)
            .name(format!("{}:{}", env.venue, label))
            .reason(&reason),
    );
    tracing::info!(session = %label, peer = %conn.peer, reason = %reason, "FIX connection closed");
    let _ = tokio::time::timeout(Duration::from_secs(2), wr.shutdown()).await;
    ended
}

/// Carries out one batch of the session's store work: a batch that must be durable is
/// waited for (applied and `fdatasync`ed on the blocking pool, never on an async worker); one
/// that is only written is queued to the store's writer and not waited for (see
/// `store_writer`). A failure, of this batch or of a written one before it, closes the session.
async fn apply_work(session: &mut Session, store: &StoreWriter, work: StoreWork) {
    if let Err(reason) = store.apply(work).await {
        session.handle_store_failure(&reason);
    }
}

/// Carries out what the session asks besides the batch already taken: pending store work,
/// then at most one resend load (so a huge ResendRequest is read a chunk per write).
async fn settle(session: &mut Session, store: &StoreWriter) {
    if let Some(work) = session.poll_store() {
        apply_work(session, store, work).await;
    }
    let Some(req) = session.poll_load() else {
        return;
    };
    match store.load(req).await {
        Ok(msgs) => session.handle_loaded(msgs, std::time::Instant::now()),
        Err(e) => {
            session.handle_store_failure(&e);
            return;
        }
    }
    if let Some(work) = session.poll_store() {
        apply_work(session, store, work).await;
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fix::codec::frame_body;
    use crate::fix::session::{utc_timestamp_string, Role};
    use tokio::io::duplex;

    const PEER: &str = "VENUE";
    const US: &str = "BRIDGE";

    fn peer_msg(seq: u64, msg_type: &str, body: &str) -> Vec<u8> {
        let now = utc_timestamp_string(time::OffsetDateTime::now_utc());
        let text = format!("35={msg_type}|34={seq}|49={PEER}|52={now}|56={US}|{body}");
        let mut out = Vec::new();
        frame_body("FIX.4.4", text.replace('|', "\x01").as_bytes(), &mut out);
        out
    }

    /// One session task over `ours`, reading ahead, its events on `tx`.
    fn spawn_session(
        state_dir: &Path,
        cfg: SessionConfig,
        ours: tokio::io::DuplexStream,
        tx: mpsc::Sender<FixEvent>,
        shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<Ended> {
        let state_dir = state_dir.to_path_buf();
        tokio::spawn(async move {
            let outbox = Outbox::default();
            let audit = AuditLog::discard();
            let env = Env {
                venue: "V",
                state_dir: &state_dir,
                out: &tx,
                shutdown,
                outbox: &outbox,
                audit: &audit,
                after_logon: Vec::new(),
                stop: None,
                read_ahead: true,
            };
            let conn = Conn {
                stream: ours,
                buffered: Vec::new(),
                peer: "test".into(),
            };
            serve(conn, &cfg, env).await
        })
    }

    /// The bridge stops draining its channel: the session task must stop reading, the peer's
    /// writes must stall in TCP (here a 4 KiB pipe), and once the bridge drains again every
    /// message must arrive, in order, none dropped.
    #[tokio::test(start_paused = true)]
    async fn a_full_bridge_channel_stalls_the_peer_and_loses_nothing() {
        const N: u64 = 5_000;
        let dir = tempfile::tempdir().unwrap();
        let cfg = SessionConfig::new("FIX.4.4", US, PEER, Role::Acceptor);
        let (ours, peer) = duplex(4096);
        let (mut peer_rd, mut peer_wr) = tokio::io::split(peer);
        let (tx, mut rx) = mpsc::channel::<FixEvent>(4);
        let (_stop, shutdown) = watch::channel(false);
        let task = spawn_session(dir.path(), cfg, ours, tx, shutdown);

        let mut wire = peer_msg(1, "A", "98=0|108=30|");
        for seq in 2..N + 2 {
            let body = format!("37=O{seq}|17=E{seq}|150=0|39=0|55=EUR/USD|54=1|151=100|14=0|6=0|");
            wire.extend_from_slice(&peer_msg(seq, "8", &body));
        }
        assert!(
            wire.len() > 100 * 4096,
            "the burst must dwarf every buffer on the way"
        );
        let mut writer = tokio::spawn(async move {
            peer_wr.write_all(&wire).await?;
            Ok::<_, std::io::Error>(peer_wr)
        });
        // Nobody drains `rx`: with a paused clock this timeout fires only when every task is
        // idle, i.e. the session task is parked on the full channel and no longer reading.
        let stalled = tokio::time::timeout(Duration::from_secs(5), &mut writer).await;
        assert!(stalled.is_err(), "the peer's writes were not held back");

        let mut seqs = Vec::new();
        while (seqs.len() as u64) < N {
            let Some(mut ev) = rx.recv().await else { break };
            if let Some(a) = ev.ack.take() {
                let _ = a.done.send(());
            }
            if let Some(SessionEvent::App { msg: m, .. }) = ev.event {
                seqs.push(m.seq_num().unwrap_or(0));
            }
        }
        assert_eq!(seqs, (2..N + 2).collect::<Vec<_>>());
        // The bridge goes on answering (the session commits its numbers only once it has).
        tokio::spawn(async move {
            while let Some(mut ev) = rx.recv().await {
                if let Some(a) = ev.ack.take() {
                    let _ = a.done.send(());
                }
            }
        });
        let peer_wr = writer.await.unwrap().expect("the whole burst was written");
        let mut reply = vec![0u8; 4096];
        let n = peer_rd.read(&mut reply).await.unwrap();
        assert!(String::from_utf8_lossy(&reply[..n]).contains("\x0135=A\x01"));
        drop((peer_rd, peer_wr));
        assert!(task.await.unwrap().was_logged_on, "the session logged on");
    }

    /// The reader does not take turns with the bridge: while the bridge has not yet
    /// acknowledged (journaled) one batch, the next is read and handed over. The order that
    /// makes a crash lose nothing still holds without the reader waiting: the store records
    /// no sequence number past what the bridge acknowledged, so when the bridge stops before
    /// journaling, the venue is asked for those messages again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reading_goes_on_while_a_batch_awaits_the_journal_and_the_store_waits_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SessionConfig::new("FIX.4.4", US, PEER, Role::Acceptor);
        let session_id = cfg.session_id();
        let (ours, peer) = duplex(64 * 1024);
        let (mut peer_rd, mut peer_wr) = tokio::io::split(peer);
        let (tx, mut rx) = mpsc::channel::<FixEvent>(64);
        let (_stop, shutdown) = watch::channel(false);
        let task = spawn_session(dir.path(), cfg, ours, tx, shutdown);
        let wait = Duration::from_secs(10);
        peer_wr
            .write_all(&peer_msg(1, "A", "98=0|108=30|"))
            .await
            .unwrap();
        let mut reply = vec![0u8; 4096];
        let n = tokio::time::timeout(wait, peer_rd.read(&mut reply))
            .await
            .expect("Logon answered")
            .unwrap();
        assert!(String::from_utf8_lossy(&reply[..n]).contains("\x0135=A\x01"));

        // Each execution in its own write; the bridge keeps every acknowledgement unanswered.
        let mut held = Vec::new();
        for seq in 2..=4u64 {
            let body = format!("37=O{seq}|17=E{seq}|150=0|39=0|55=EUR/USD|54=1|151=100|14=0|6=0|");
            peer_wr.write_all(&peer_msg(seq, "8", &body)).await.unwrap();
            loop {
                let mut ev = tokio::time::timeout(wait, rx.recv())
                    .await
                    .unwrap_or_else(|_| {
                        panic!("execution {seq} not read while an earlier batch awaits the journal")
                    })
                    .expect("the session is running");
                if let Some(a) = ev.ack.take() {
                    held.push(a);
                }
                if let Some(SessionEvent::App { msg: m, .. }) = &ev.event {
                    assert_eq!(m.seq_num(), Some(seq));
                    break;
                }
            }
        }
        // The bridge stops before journaling any of them.
        drop(held);
        drop(rx);
        drop((peer_rd, peer_wr));
        let ended = tokio::time::timeout(wait, task)
            .await
            .expect("the session ended")
            .unwrap();
        assert!(ended.was_logged_on);
        let store = FileStore::open(dir.path(), &session_id).unwrap();
        assert_eq!(
            store.next_target_seq(),
            2,
            "the store moved past executions the bridge never journaled"
        );
    }
}

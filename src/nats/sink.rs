//! The bridge's JetStream sink: every envelope the publishing task emits is published into
//! the stream, and the FIX sessions' acknowledgements are released only once the stream has
//! acknowledged everything up to their batch. While the cluster is unreachable or slow, the
//! acknowledgements wait, the FIX drivers stop reading and the venues see TCP back-pressure:
//! nothing is dropped and no inbound sequence number moves past what the stream holds.
//!
//! Order without gaps: envelopes are published in a pipeline (up to `max_inflight`), each
//! with `Nats-Expected-Last-Sequence` set to the stream sequence it must follow and a
//! `Nats-Msg-Id` of epoch, sequence and topic. If one is lost (a node dies, the connection
//! drops), every later one is refused instead of being stored out of order; the sink then
//! reads the stream's last message back, drops what it holds from the window and sends the
//! rest again. After a crash of the bridge, the journal records the stream lacks (those after
//! the journal header of its last message) are sent first: the venue's resend of them is a
//! duplicate for the journal, so the stream gets them from here.

use std::collections::VecDeque;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::subject::{message_id, subject, JOURNAL_HEADER};
use crate::config::NatsConnection;
use crate::fix::transport::Ack;
use crate::journal::JournalReader;
use crate::metrics::Registry;

/// One envelope for the stream.
#[derive(Clone, Debug)]
pub struct SinkMsg {
    pub topic: Bytes,
    pub payload: Bytes,
    pub epoch: u64,
    pub seq: u64,
    /// The last journal record number at or before this envelope (0: none yet).
    pub journal: u64,
}

/// What the publishing task hands over per batch: its envelopes, and the acknowledgements
/// to release once they (and everything before) are in the stream and, when `synced` is
/// set, the local journal's fdatasync succeeded.
pub struct SinkBatch {
    pub msgs: Vec<SinkMsg>,
    pub acks: Vec<Ack>,
    pub synced: Option<oneshot::Receiver<bool>>,
}

/// The journal tail the stream may lack after a crash: records up to `written` (what was
/// in the journal when the sink started; later ones arrive through the channel).
pub struct Backlog {
    pub reader: JournalReader,
    pub epoch: u64,
    pub written: u64,
}

/// Handle of the running sink.
pub struct Sink {
    tx: mpsc::Sender<SinkBatch>,
    task: tokio::task::JoinHandle<()>,
}

/// Batches queued between the publishing task and the sink; beyond this the publishing task
/// waits (and with it the FIX readers).
const QUEUE: usize = 64;

impl Sink {
    /// Starts the sink task; it connects (retrying), checks or creates the stream, sends the
    /// journal tail the stream lacks, then follows the channel.
    pub fn start(cfg: NatsConnection, backlog: Option<Backlog>, registry: Arc<Registry>) -> Sink {
        registry.nats.enabled.store(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(cfg, rx, backlog, registry));
        Sink { tx, task }
    }

    /// Queues a batch (waits while the sink is `QUEUE` batches behind). `false` if the sink
    /// task has ended.
    pub async fn submit(&self, b: SinkBatch) -> bool {
        self.tx.send(b).await.is_ok()
    }

    /// Lets the sink send what it holds (up to `grace`), then stops it.
    pub async fn close(self, grace: Duration) {
        let Sink { tx, mut task } = self;
        drop(tx);
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            tracing::warn!(
                "JetStream sink did not drain within {grace:?}; unacknowledged envelopes are resent from the journal at the next start"
            );
            task.abort();
        }
    }
}

type AckFuture = Pin<
    Box<
        dyn Future<
                Output = Result<jetstream::publish::PublishAck, jetstream::context::PublishError>,
            > + Send,
    >,
>;

struct Entry {
    index: u64,
    msg: SinkMsg,
    id: String,
    sent: Instant,
    fut: Option<AckFuture>,
}

struct Waiting {
    /// Released once every entry up to this index is acknowledged.
    upto: u64,
    acks: Vec<Ack>,
    synced: Option<oneshot::Receiver<bool>>,
}

struct State {
    cfg: NatsConnection,
    registry: Arc<Registry>,
    /// Sent (or to send), oldest first, not yet acknowledged.
    window: VecDeque<Entry>,
    waiting: VecDeque<Waiting>,
    next_index: u64,
    /// Highest index acknowledged.
    acked: u64,
    /// The stream's last sequence as far as acknowledged.
    base: u64,
    /// Message id of the stream's last message, when it is ours.
    last_id: Option<String>,
    backlog: Option<(Backlog, u64)>,
    /// The rest of the last batch taken from the channel, when the window filled before all
    /// of it was sent (they take the next indices, ahead of any later batch).
    pending: VecDeque<SinkMsg>,
    rx_closed: bool,
}

enum Step {
    Continue,
    /// Something failed: reconcile with the stream (and reconnect if needed).
    Reconcile(String),
    Done,
}

async fn run(
    cfg: NatsConnection,
    mut rx: mpsc::Receiver<SinkBatch>,
    backlog: Option<Backlog>,
    registry: Arc<Registry>,
) {
    let mut st = State {
        cfg,
        registry,
        window: VecDeque::new(),
        waiting: VecDeque::new(),
        next_index: 1,
        acked: 0,
        base: 0,
        last_id: None,
        backlog: backlog.map(|b| (b, 0)),
        pending: VecDeque::new(),
        rx_closed: false,
    };
    let mut first = true;
    let mut attempt = 0u32;
    loop {
        let js = match connect(&st.cfg, &st.registry).await {
            Ok(js) => js,
            Err(e) => {
                st.registry.nats.up.store(0, Ordering::Relaxed);
                let wait = super::backoff(attempt);
                tracing::error!(error = %e, retry_in_ms = wait.as_millis() as u64, "JetStream sink not ready; FIX sessions wait for it");
                attempt = attempt.saturating_add(1);
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        let mut failure = None;
        // Reconcile with what the stream holds, then (re)send the window.
        loop {
            match reconcile(&js, &mut st, first).await {
                Ok(()) => break,
                Err(e) => {
                    st.registry.nats.up.store(0, Ordering::Relaxed);
                    let wait = super::backoff(attempt);
                    tracing::error!(error = %e, retry_in_ms = wait.as_millis() as u64, "JetStream sink cannot read the stream's end; FIX sessions wait for it");
                    attempt = attempt.saturating_add(1);
                    tokio::time::sleep(wait).await;
                }
            }
        }
        first = false;
        st.registry.nats.up.store(1, Ordering::Relaxed);
        if let Err(e) = resend(&js, &mut st).await {
            failure = Some(e);
        }
        while failure.is_none() {
            match step(&js, &mut st, &mut rx).await {
                Step::Continue => attempt = 0,
                Step::Reconcile(e) => failure = Some(e),
                Step::Done => {
                    st.registry.nats.up.store(0, Ordering::Relaxed);
                    return;
                }
            }
        }
        if let Some(e) = failure {
            st.registry.nats.reconciles.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, unacknowledged = st.window.len(), "JetStream publish failed; re-reading the stream's end and sending again");
            attempt = attempt.saturating_add(1);
            tokio::time::sleep(
                super::backoff(attempt.saturating_sub(1)).min(Duration::from_millis(500)),
            )
            .await;
        }
    }
}

async fn connect(
    cfg: &NatsConnection,
    registry: &Registry,
) -> Result<jetstream::Context, super::NatsError> {
    let client = super::connect::connect_retrying(cfg, "fixcurve-bridge", registry).await?;
    let mut js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_millis(cfg.ack_timeout_ms))
        .max_ack_inflight(cfg.max_inflight.saturating_add(16))
        .backpressure_on_inflight(true)
        .build(client);
    js.set_timeout(Duration::from_millis(cfg.ack_timeout_ms));
    super::stream::ensure(&js, cfg).await?;
    Ok(js)
}

/// Reads the stream's end: entries of the window it holds are acknowledged; on the first
/// connection, the journal records after its journal header become the backlog.
async fn reconcile(
    js: &jetstream::Context,
    st: &mut State,
    first: bool,
) -> Result<(), super::NatsError> {
    let stream = js
        .get_stream(&st.cfg.stream)
        .await
        .map_err(|e| super::NatsError::Stream {
            stream: st.cfg.stream.clone(),
            reason: e.to_string(),
        })?;
    let end = super::stream::end(&stream, &st.cfg).await?;
    tracing::debug!(last_seq = end.last_seq, last_id = ?end.last_msg_id, window_front = ?st.window.front().map(|e| &e.id), window = st.window.len(), "sink reconcile");
    if let Some(id) = &end.last_msg_id {
        if let Some(pos) = st.window.iter().position(|e| &e.id == id) {
            for _ in 0..=pos {
                if let Some(e) = st.window.pop_front() {
                    st.acked = e.index;
                    st.registry.nats.acked.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    st.base = end.last_seq;
    st.last_id = end.last_msg_id.clone().filter(|_| end.last_is_ours);
    for e in st.window.iter_mut() {
        e.fut = None;
    }
    if first {
        if let Some((b, from)) = &mut st.backlog {
            if end.journal > b.written {
                tracing::error!(stream_journal = end.journal, local_journal = b.written, "the stream holds journal records this bridge's journal does not (journal lost or replaced?): numbering may collide with what the stream holds");
            }
            *from = end.journal.saturating_add(1);
            if *from > b.written {
                st.backlog = None;
            } else {
                tracing::info!(
                    from = *from,
                    to = b.written,
                    "sending the journal records the stream lacks"
                );
            }
        }
    }
    release(st);
    Ok(())
}

/// Each envelope must follow both the stream sequence and the message id before it: a
/// sequence alone could match by accident once someone else's message shifted the stream (a
/// later envelope would then be stored past a refused earlier one).
fn publish_message(e: &Entry, expected: u64, prev: Option<&str>) -> PublishMessage {
    let m = PublishMessage::build()
        .payload(e.msg.payload.clone())
        .message_id(&e.id)
        .expected_last_sequence(expected)
        .header(JOURNAL_HEADER, e.msg.journal.to_string().as_str());
    match prev {
        Some(p) => m.expected_last_message_id(p),
        None => m,
    }
}

async fn send(
    js: &jetstream::Context,
    prefix: &str,
    e: &mut Entry,
    expected: u64,
    prev: Option<&str>,
) -> Result<(), String> {
    let topic = String::from_utf8_lossy(&e.msg.topic).into_owned();
    let subj = subject(prefix, &topic);
    let f = js
        .send_publish(subj, publish_message(e, expected, prev))
        .await
        .map_err(|err| format!("publish: {err}"))?;
    e.sent = Instant::now();
    e.fut = Some(f.into_future());
    Ok(())
}

/// Sends every entry of the window again, expecting the stream's sequence to follow on.
async fn resend(js: &jetstream::Context, st: &mut State) -> Result<(), String> {
    let mut window = std::mem::take(&mut st.window);
    let mut r = Ok(());
    let mut prev = st.last_id.clone();
    for (k, e) in window.iter_mut().enumerate() {
        let expected = st.base.saturating_add(k as u64);
        if let Err(err) = send(js, &st.cfg.subject_prefix, e, expected, prev.as_deref()).await {
            r = Err(err);
            break;
        }
        prev = Some(e.id.clone());
        st.registry.nats.resent.fetch_add(1, Ordering::Relaxed);
    }
    st.window = window;
    r
}

async fn push(js: &jetstream::Context, st: &mut State, msg: SinkMsg) -> Result<(), String> {
    let topic = String::from_utf8_lossy(&msg.topic).into_owned();
    let id = message_id(msg.epoch, &topic, msg.seq);
    let mut e = Entry {
        index: st.next_index,
        msg,
        id,
        sent: Instant::now(),
        fut: None,
    };
    st.next_index = st.next_index.saturating_add(1);
    let expected = st.base.saturating_add(st.window.len() as u64);
    let prev = st
        .window
        .back()
        .map(|p| p.id.clone())
        .or_else(|| st.last_id.clone());
    let r = send(
        js,
        &st.cfg.subject_prefix,
        &mut e,
        expected,
        prev.as_deref(),
    )
    .await;
    st.window.push_back(e);
    st.registry
        .nats
        .inflight
        .store(st.window.len() as u64, Ordering::Relaxed);
    st.registry.nats.published.fetch_add(1, Ordering::Relaxed);
    r
}

/// Releases the acknowledgements whose envelopes are all in the stream.
fn release(st: &mut State) {
    while let Some(w) = st.waiting.front_mut() {
        if w.upto > st.acked {
            return;
        }
        if let Some(rx) = &mut w.synced {
            match rx.try_recv() {
                Ok(true) => {}
                Err(oneshot::error::TryRecvError::Empty) => return,
                // The journal sync failed: these sessions must not commit (their acks drop).
                Ok(false) | Err(oneshot::error::TryRecvError::Closed) => {
                    st.waiting.pop_front();
                    continue;
                }
            }
        }
        if let Some(w) = st.waiting.pop_front() {
            for a in w.acks {
                let _ = a.done.send(());
            }
        }
    }
}

/// Reads up to a window's worth of the journal backlog.
async fn fill_from_backlog(js: &jetstream::Context, st: &mut State) -> Result<(), String> {
    let Some((b, from)) = &st.backlog else {
        return Ok(());
    };
    let room = st
        .cfg
        .max_inflight
        .saturating_sub(st.window.len())
        .min(1024);
    if room == 0 {
        return Ok(());
    }
    let (reader, start, written, epoch) = (b.reader.clone(), *from, b.written, b.epoch);
    let batch = tokio::task::spawn_blocking(move || reader.read(start, &|_| true, room, 4 << 20))
        .await
        .map_err(|e| format!("journal read task: {e}"))?;
    if batch.records.is_empty() {
        // Nothing readable up to `written` (retired or damaged records): done.
        tracing::info!(to = written, "journal backlog sent to the stream");
        st.backlog = None;
        return Ok(());
    }
    let mut next = batch.next.max(start);
    for r in batch.records {
        if r.number > written {
            next = written.saturating_add(1);
            break;
        }
        let msg = SinkMsg {
            topic: Bytes::from(r.topic.into_bytes()),
            payload: r.payload,
            epoch,
            seq: r.seq,
            journal: r.number,
        };
        push(js, st, msg).await?;
    }
    if next > written {
        tracing::info!(to = written, "journal backlog sent to the stream");
        st.backlog = None;
    } else if let Some((_, f)) = &mut st.backlog {
        *f = next;
    }
    Ok(())
}

/// Sends what waits in `pending` while the window has room. The window never holds more
/// than `max_inflight`: the client's publish permits are `max_inflight + 16` and one comes
/// back only when its acknowledgement is read, which this task does between sends, never
/// inside one. A whole batch sent at once went past them and waited for a permit only its
/// own reading could free (found when FIX sessions were let read ahead of the stream's
/// acknowledgement, which makes such batches common).
async fn send_pending(js: &jetstream::Context, st: &mut State) -> Result<(), String> {
    while st.window.len() < st.cfg.max_inflight {
        let Some(m) = st.pending.pop_front() else {
            break;
        };
        push(js, st, m).await?;
    }
    Ok(())
}

async fn step(js: &jetstream::Context, st: &mut State, rx: &mut mpsc::Receiver<SinkBatch>) -> Step {
    if st.backlog.is_some() {
        if let Err(e) = fill_from_backlog(js, st).await {
            return Step::Reconcile(e);
        }
    }
    if !st.pending.is_empty() && st.window.len() < st.cfg.max_inflight {
        return match send_pending(js, st).await {
            Ok(()) => Step::Continue,
            Err(e) => Step::Reconcile(e),
        };
    }
    if st.rx_closed && st.window.is_empty() && st.backlog.is_none() && st.pending.is_empty() {
        release(st);
        return Step::Done;
    }
    let room = st.window.len() < st.cfg.max_inflight
        && st.pending.is_empty()
        && st.backlog.is_none()
        && !st.rx_closed;
    let front = st.window.front_mut().and_then(|e| e.fut.as_mut());
    let has_front = front.is_some();
    let sync_wait = st
        .waiting
        .front_mut()
        .filter(|w| w.upto <= st.acked)
        .and_then(|w| w.synced.as_mut());
    let has_sync = sync_wait.is_some();
    tokio::select! {
        r = async { match front { Some(f) => f.await, None => std::future::pending().await } }, if has_front => {
            on_ack(st, r)
        }
        ok = async { match sync_wait { Some(w) => matches!(w.await, Ok(true)), None => std::future::pending().await } }, if has_sync => {
            // A consumed receiver cannot be read again: settle this front here.
            if ok {
                if let Some(w) = st.waiting.front_mut() { w.synced = None; }
            } else {
                // The journal sync failed: these sessions must not commit (their acks drop).
                st.waiting.pop_front();
            }
            release(st);
            Step::Continue
        }
        b = rx.recv(), if room => match b {
            None => { st.rx_closed = true; Step::Continue }
            Some(b) => {
                let mut r = Step::Continue;
                // Released once the batch's last envelope is acknowledged: the indices its
                // envelopes take, whether sent now or from `pending` as the window drains.
                let upto = (st.next_index + b.msgs.len() as u64).saturating_sub(1);
                st.pending.extend(b.msgs);
                if let Err(e) = send_pending(js, st).await {
                    r = Step::Reconcile(e);
                }
                st.waiting.push_back(Waiting { upto, acks: b.acks, synced: b.synced });
                release(st);
                r
            }
        },
        else => Step::Continue,
    }
}

fn on_ack(
    st: &mut State,
    r: Result<jetstream::publish::PublishAck, jetstream::context::PublishError>,
) -> Step {
    let Some(e) = st.window.pop_front() else {
        return Step::Continue;
    };
    match r {
        Ok(a) if a.duplicate => {
            // Already stored (a resend after a crash or an unacknowledged attempt): the
            // entries after it expected one more sequence and will be refused and resent.
            st.registry.nats.duplicates.fetch_add(1, Ordering::Relaxed);
            st.last_id = None;
            st.acked = e.index;
            st.registry.nats.acked.fetch_add(1, Ordering::Relaxed);
            release(st);
            if st.window.is_empty() {
                Step::Continue
            } else {
                Step::Reconcile(format!("{} was already in the stream", e.id))
            }
        }
        Ok(a) => {
            st.registry.nats.ack_latency.observe(e.sent.elapsed());
            st.base = a.sequence;
            st.last_id = Some(e.id.clone());
            st.acked = e.index;
            st.registry.nats.acked.fetch_add(1, Ordering::Relaxed);
            st.registry
                .nats
                .inflight
                .store(st.window.len() as u64, Ordering::Relaxed);
            release(st);
            Step::Continue
        }
        Err(err) => {
            let kind = err.kind();
            st.window.push_front(e);
            if kind == PublishErrorKind::WrongLastSequence {
                Step::Reconcile("an earlier envelope was lost in transit".into())
            } else {
                Step::Reconcile(format!("acknowledgement: {err}"))
            }
        }
    }
}

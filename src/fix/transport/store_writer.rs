//! The session's sequence store, written off the task that reads the connection.
//!
//! Market data in only moves the inbound sequence number: its store batch is written (a
//! `pwrite` to the page cache) but not synced. On an ext4 disk that `pwrite` extends the file
//! and takes a journal handle, ~20 µs typically and milliseconds while a commit (our own
//! periodic sync, or anyone's) holds the journal; done on the async worker, the next message
//! waited behind it (bench, 10k msg/s: FIX send → bridge read p99 ~200 µs on disk against
//! ~90 µs with the store on tmpfs). Here every batch goes, in order, to one drainer on the
//! blocking pool; the reading task waits only for batches that must be synced before bytes
//! of ours leave, for resend loads, and when the queue is full.
//!
//! The periodic sync of market data in (`inbound_sync_ms`) is not waited for either: nothing
//! of ours leaves after it, and waiting for it was the tail of the whole feed (bench, 10k
//! msg/s: every 50 ms the reader stopped for an `fdatasync`, ~0.6 ms and at times 30–60 ms
//! on this class of disk; FIX send → bridge read p99 250–300 µs, p99.9 0.7–0.9 ms and runs
//! with a 30 ms p99, against 90 µs and 0.14–0.26 ms with the sync out of the way). When the
//! session owes the journal a sync for application messages it handed over, the drainer
//! waits for the bridge's acknowledgement before this one (journal first, then our sequence
//! number), so that order still holds without the reader in it.
//!
//! The drainer is not woken for each such batch: while traffic flows it wakes on a 1 ms tick
//! and writes what has been acknowledged since, and it is woken at once only for a batch
//! someone waits for. A written batch is thus on its way rather than in the page cache when
//! the session moves on: a process crash in that window (up to a tick, longer if the disk
//! stalls) costs what a machine crash before the periodic sync costs, the venue resending
//! what we already had. No sequence number of ours depends on it: those batches are synced,
//! and waited for.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::fix::session::{LoadRequest, StoreWork};
use crate::fix::store::{FileStore, SeqStore};

/// Written batches queued before the reading task waits for the drainer (back-pressure:
/// reading stops, TCP pushes back on the venue).
const MAX_QUEUED: usize = 4096;

/// How long a batch nobody waits for may sit in the queue: the drainer wakes on this tick
/// while traffic flows rather than being woken for every batch. Waking it per batch was a
/// thread hand-off (a `futex` wake and a context switch) in the reading task right before it
/// yielded to the publishing task, and another in the bridge's acknowledgement: ~2% of the
/// CPU with 4 subscribers end to end, on the latency path at 10k msg/s.
const TICK: Duration = Duration::from_millis(1);
/// A store operation, or a wait of the reading task for the writer, this long is logged: the
/// feed stood still, and an operator should see whether the disk held it (the operation's
/// warning) or the wait was for something else the writer waits on, the bridge's
/// acknowledgement of its journal (the reader's warning alone).
const SLOW: Duration = Duration::from_millis(100);

/// Empty ticks before the drainer stops (it is started again by the next batch): no timer
/// runs while the session is quiet.
const IDLE_TICKS: u32 = 100;

type Reply<T> = oneshot::Sender<Result<T, String>>;
/// A resend load's answer: the stored messages, by sequence number.
type Loaded = Vec<(u64, Vec<u8>)>;

/// The bridge's acknowledgement that its journal has the messages a batch covers.
enum Ack {
    /// None needed, or it has come.
    Ready,
    /// Not yet.
    Pending(oneshot::Receiver<()>),
    /// The bridge stopped without giving it: the batch must not be applied.
    Lost,
}

enum Job {
    /// Apply once `after` is ready; `done` is told once it is applied (synced batch: on
    /// disk).
    Apply {
        work: StoreWork,
        after: Ack,
        done: Option<Reply<()>>,
    },
    Load {
        req: LoadRequest,
        done: Reply<Loaded>,
    },
}

impl Job {
    /// Someone waits for this job's answer: the drainer must not leave it for a tick.
    fn waited(&self) -> bool {
        match self {
            Job::Apply { done, .. } => done.is_some(),
            Job::Load { .. } => true,
        }
    }
}

struct State<S> {
    /// `None` while the drainer holds it, or once it failed or was closed.
    store: Option<S>,
    queue: VecDeque<Job>,
    /// Jobs in `queue` someone waits for.
    waited: usize,
    /// The drainer runs (it stops after [`IDLE_TICKS`] quiet ticks, or once closed).
    draining: bool,
    /// The drainer sleeps until its next tick: a waited-for job must wake it.
    sleeping: bool,
    /// The handle is gone: the drainer finishes the queue and stops.
    closed: bool,
    /// Why the store stopped; every later request gets it.
    failed: Option<String>,
}

struct Shared<S> {
    state: Mutex<State<S>>,
    wake: Condvar,
    /// The session, for the slow-disk warnings.
    label: String,
    /// The longest single store operation (µs): a `pwrite`, a sync, a resend load.
    longest_op_us: AtomicU64,
    /// The longest the reading task waited for the writer (µs).
    longest_wait_us: AtomicU64,
}

/// The longest stalls a writer has seen (the warnings are what operators get).
#[cfg(test)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stalls {
    /// One store operation on the drainer.
    pub(crate) disk: Duration,
    /// The reading task waiting for a synced batch or for room in the queue.
    pub(crate) reading_paused: Duration,
}

/// Records `took` in `longest` (µs) and says whether it is worth a warning.
fn note(longest: &AtomicU64, took: Duration) -> bool {
    let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
    longest.fetch_max(us, Ordering::Relaxed);
    took >= SLOW
}

/// The drive task's handle on its store. Closing it ([`StoreWriter::close`]) waits for what is
/// queued and releases the store's lock, so a reconnecting session can open it again.
pub(crate) struct StoreWriter<S: SeqStore + 'static = FileStore> {
    shared: Arc<Shared<S>>,
}

const GONE: &str = "the sequence store is gone after an earlier failure";
const POISONED: &str = "sequence store writer poisoned";

impl<S: SeqStore + 'static> StoreWriter<S> {
    #[cfg(test)]
    pub(crate) fn new(store: S) -> Self {
        Self::labelled(store, String::new())
    }

    /// A writer whose slow-disk warnings name `label` (the session).
    pub(crate) fn labelled(store: S, label: String) -> Self {
        StoreWriter {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    store: Some(store),
                    queue: VecDeque::new(),
                    waited: 0,
                    draining: false,
                    sleeping: false,
                    closed: false,
                    failed: None,
                }),
                wake: Condvar::new(),
                label,
                longest_op_us: AtomicU64::new(0),
                longest_wait_us: AtomicU64::new(0),
            }),
        }
    }

    /// The longest store operation and the longest wait of the reading task so far.
    #[cfg(test)]
    pub(crate) fn stalls(&self) -> Stalls {
        let us = |a: &AtomicU64| Duration::from_micros(a.load(Ordering::Relaxed));
        Stalls {
            disk: us(&self.shared.longest_op_us),
            reading_paused: us(&self.shared.longest_wait_us),
        }
    }

    /// Applies `work`: a synced batch is waited for, a written one only queued (waited for
    /// only when the queue is full). `Err` names why the store failed, this batch or earlier.
    pub(crate) async fn apply(&self, work: StoreWork) -> Result<(), String> {
        let wait = work.sync;
        self.enqueue(work, None, wait).await
    }

    /// Queues `work`, synced or not, without waiting for it (unless the queue is full); with
    /// `after`, it is applied only once that acknowledgement comes, and never if it fails.
    /// For a sync nothing of ours waits on.
    pub(crate) async fn submit(
        &self,
        work: StoreWork,
        after: Option<oneshot::Receiver<()>>,
    ) -> Result<(), String> {
        self.enqueue(work, after, false).await
    }

    async fn enqueue(
        &self,
        work: StoreWork,
        after: Option<oneshot::Receiver<()>>,
        wait: bool,
    ) -> Result<(), String> {
        // A reply channel only for a batch that is waited for: none per written batch.
        let mut reply = None;
        self.push(|st| {
            let done = (wait || st.queue.len() >= MAX_QUEUED).then(|| {
                let (tx, rx) = oneshot::channel();
                reply = Some(rx);
                tx
            });
            let after = after.map_or(Ack::Ready, Ack::Pending);
            Job::Apply { work, after, done }
        })?;
        let Some(rx) = reply else {
            return Ok(());
        };
        let since = Instant::now();
        let r = rx
            .await
            .unwrap_or_else(|_| Err("sequence store task failed".into()));
        let waited = since.elapsed();
        if note(&self.shared.longest_wait_us, waited) {
            tracing::warn!(
                session = %self.shared.label,
                paused_ms = waited.as_millis() as u64,
                cause = if wait { "a synced batch" } else { "the writer's queue full" },
                "reading paused waiting for the sequence store"
            );
        }
        r
    }

    /// The stored messages a resend asks for, read after every batch queued before it.
    pub(crate) async fn load(&self, req: LoadRequest) -> Result<Loaded, String> {
        let (tx, rx) = oneshot::channel();
        self.push(|_| Job::Load { req, done: tx })?;
        rx.await
            .unwrap_or_else(|_| Err("sequence store task failed".into()))
    }

    /// Queues the job `make` builds (it sees the queue), unless the store failed already,
    /// and starts or wakes the drainer only when the job cannot wait for its tick.
    fn push(&self, make: impl FnOnce(&State<S>) -> Job) -> Result<(), String> {
        let mut st = self.lock()?;
        if let Some(reason) = &st.failed {
            return Err(reason.clone());
        }
        let job = make(&st);
        let waited = job.waited();
        st.waited = st.waited.saturating_add(usize::from(waited));
        st.queue.push_back(job);
        if !st.draining {
            st.draining = true;
            let shared = self.shared.clone();
            tokio::task::spawn_blocking(move || drain(&shared));
        } else if waited && st.sleeping {
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// Waits for what is queued, then drops the store on the blocking pool (its final sync).
    pub(crate) async fn close(self) {
        // An empty synced batch is a barrier: every job before it has run when it is answered.
        let _ = self
            .apply(StoreWork {
                ops: Vec::new(),
                sync: true,
            })
            .await;
        let store = self.lock().ok().and_then(|mut st| st.store.take());
        if let Some(store) = store {
            let _ = tokio::task::spawn_blocking(move || drop(store)).await;
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State<S>>, String> {
        self.shared.state.lock().map_err(|_| POISONED.to_string())
    }
}

impl<S: SeqStore + 'static> Drop for StoreWriter<S> {
    /// The drainer finishes what is queued and stops now rather than after its idle ticks.
    fn drop(&mut self) {
        if let Ok(mut st) = self.shared.state.lock() {
            st.closed = true;
            if st.sleeping {
                self.shared.wake.notify_one();
            }
        }
    }
}

/// Whether the first queued job can run now: its acknowledgement has come (or was lost), or
/// someone waits behind it, in which case the drainer blocks on that acknowledgement.
fn head_runnable<S>(st: &mut State<S>) -> bool {
    let waited = st.waited > 0;
    match st.queue.front_mut() {
        None => false,
        Some(Job::Apply { after, .. }) => {
            if let Ack::Pending(rx) = after {
                match rx.try_recv() {
                    Ok(()) => *after = Ack::Ready,
                    Err(oneshot::error::TryRecvError::Closed) => *after = Ack::Lost,
                    Err(oneshot::error::TryRecvError::Empty) => return waited,
                }
            }
            true
        }
        Some(Job::Load { .. }) => true,
    }
}

/// Runs queued jobs in order, each once its acknowledgement has come, waking on [`TICK`]
/// (or when a waited-for job is queued) until the queue has stayed empty for
/// [`IDLE_TICKS`] ticks or the handle is gone. The store is taken out of the lock while a
/// job runs, so the reading task only ever waits for the lock, never for the disk.
fn drain<S: SeqStore>(shared: &Shared<S>) {
    let mut quiet = 0u32;
    loop {
        let (job, store) = {
            let Ok(mut st) = shared.state.lock() else {
                return;
            };
            loop {
                if head_runnable(&mut st) {
                    break;
                }
                if st.queue.is_empty() {
                    if st.closed || quiet >= IDLE_TICKS {
                        st.draining = false;
                        return;
                    }
                    quiet = quiet.saturating_add(1);
                } else {
                    quiet = 0;
                }
                st.sleeping = true;
                let Ok((again, _)) = shared.wake.wait_timeout(st, TICK) else {
                    return;
                };
                st = again;
                st.sleeping = false;
            }
            quiet = 0;
            let Some(job) = st.queue.pop_front() else {
                continue;
            };
            if job.waited() {
                st.waited = st.waited.saturating_sub(1);
            }
            (job, st.store.take())
        };
        let Some(mut store) = store else {
            // Failed earlier (or closed): every job is answered with the reason.
            let reason = shared
                .state
                .lock()
                .ok()
                .and_then(|st| st.failed.clone())
                .unwrap_or_else(|| GONE.to_string());
            answer_failed(job, reason);
            continue;
        };
        let answer = match job {
            Job::Apply { work, after, done } => {
                // The bridge stopping before its journal had the messages: the store must not
                // move past them (the venue resends them to the next run).
                let acked = match after {
                    Ack::Ready => Ok(()),
                    Ack::Pending(rx) => rx.blocking_recv().map_err(|_| ()),
                    Ack::Lost => Err(()),
                }
                .map_err(|()| "the bridge stopped before journaling".to_string());
                let r = acked.and_then(|()| {
                    let what = if work.sync { "synced write" } else { "write" };
                    timed(shared, what, || {
                        store.apply(work).map_err(|e| e.to_string())
                    })
                });
                Answer::Applied(done, r)
            }
            Job::Load { req, done } => Answer::Loaded(
                done,
                timed(shared, "resend load", || {
                    store.load(req).map_err(|e| e.to_string())
                }),
            ),
        };
        // The store goes back (or, failed, is dropped) before the caller hears: `close` then
        // finds it there, and its lock is released when `close` returns.
        match answer.failure() {
            // A failed store is not used again: the session closes, the next run reopens it.
            Some(reason) => {
                drop(store);
                if let Ok(mut st) = shared.state.lock() {
                    st.failed.get_or_insert(reason);
                }
            }
            None => {
                if let Ok(mut st) = shared.state.lock() {
                    st.store = Some(store);
                }
            }
        }
        answer.send();
    }
}

/// Runs one store operation, noting (and, when slow, logging) how long it took.
fn timed<S, T>(shared: &Shared<S>, what: &str, op: impl FnOnce() -> T) -> T {
    let since = Instant::now();
    let r = op();
    let took = since.elapsed();
    if note(&shared.longest_op_us, took) {
        tracing::warn!(
            session = %shared.label,
            took_ms = took.as_millis() as u64,
            operation = what,
            "sequence store slow: the disk held one operation"
        );
    }
    r
}

enum Answer {
    Applied(Option<Reply<()>>, Result<(), String>),
    Loaded(Reply<Loaded>, Result<Loaded, String>),
}

impl Answer {
    fn failure(&self) -> Option<String> {
        match self {
            Answer::Applied(_, r) => r.as_ref().err().cloned(),
            Answer::Loaded(_, r) => r.as_ref().err().cloned(),
        }
    }

    fn send(self) {
        match self {
            Answer::Applied(done, r) => {
                if let Some(done) = done {
                    let _ = done.send(r);
                }
            }
            Answer::Loaded(done, r) => {
                let _ = done.send(r);
            }
        }
    }
}

fn answer_failed(job: Job, reason: String) {
    match job {
        Job::Apply { done, .. } => {
            if let Some(done) = done {
                let _ = done.send(Err(reason));
            }
        }
        Job::Load { done, .. } => {
            let _ = done.send(Err(reason));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fix::session::StoreOp;

    fn target(n: u64, sync: bool) -> StoreWork {
        StoreWork {
            ops: vec![StoreOp::NextTarget(n)],
            sync,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn written_batches_land_in_order_and_close_releases_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let w = StoreWriter::new(FileStore::open(dir.path(), "A-B").unwrap());
        // More than the queue holds, so some calls wait for the drainer.
        for n in 2..=2 * MAX_QUEUED as u64 + 7 {
            w.apply(target(n, false)).await.unwrap();
        }
        w.apply(target(9_000, true)).await.unwrap();
        w.apply(target(9_001, false)).await.unwrap();
        w.close().await;
        // Reopened right after: the lock is free and the last written batch is there.
        let s = FileStore::open(dir.path(), "A-B").unwrap();
        assert_eq!(s.state().next_target, 9_001);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_load_sees_every_batch_queued_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let w = StoreWriter::new(FileStore::open(dir.path(), "A-B").unwrap());
        w.apply(StoreWork {
            ops: vec![StoreOp::Sent {
                seq: 1,
                raw: b"one".to_vec(),
            }],
            sync: false,
        })
        .await
        .unwrap();
        let got = w.load(LoadRequest { begin: 1, end: 1 }).await.unwrap();
        assert_eq!(got, vec![(1, b"one".to_vec())]);
        w.close().await;
    }

    /// A memory store for the writer's tests: its writes fail once `fail` is set, and it
    /// records each applied NextTarget with whether `acked` was set at the time (also sent
    /// to `told`, when there is one).
    #[derive(Default)]
    struct TestStore {
        inner: crate::fix::store::MemoryStore,
        fail: Arc<std::sync::atomic::AtomicBool>,
        acked: Arc<std::sync::atomic::AtomicBool>,
        applied: Arc<Mutex<Vec<(u64, bool)>>>,
        told: Option<std::sync::mpsc::Sender<u64>>,
        /// Told when the store is dropped (the drainer and the handle have both let go).
        dropped: Option<std::sync::mpsc::Sender<()>>,
        /// A disk that holds the next write this long (once).
        hold: Option<std::time::Duration>,
    }

    impl Drop for TestStore {
        fn drop(&mut self) {
            if let Some(d) = &self.dropped {
                let _ = d.send(());
            }
        }
    }

    impl SeqStore for TestStore {
        fn state(&self) -> crate::fix::session::SeqState {
            SeqStore::state(&self.inner)
        }
        fn apply(&mut self, work: StoreWork) -> Result<(), crate::fix::store::StoreError> {
            use std::sync::atomic::Ordering::SeqCst;
            if self.fail.load(SeqCst) {
                return Err(crate::fix::store::StoreError::Io {
                    path: "flaky".into(),
                    source: std::io::Error::other("disk gone"),
                });
            }
            if let Some(hold) = self.hold.take() {
                std::thread::sleep(hold);
            }
            let acked = self.acked.load(SeqCst);
            for op in &work.ops {
                if let StoreOp::NextTarget(n) = op {
                    self.applied.lock().unwrap().push((*n, acked));
                    if let Some(told) = &self.told {
                        let _ = told.send(*n);
                    }
                }
            }
            SeqStore::apply(&mut self.inner, work)
        }
        fn load(
            &mut self,
            req: LoadRequest,
        ) -> Result<Vec<(u64, Vec<u8>)>, crate::fix::store::StoreError> {
            SeqStore::load(&mut self.inner, req)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_disk_that_holds_a_write_shows_as_a_slow_operation_and_a_paused_reader() {
        let mut store = TestStore::default();
        store.hold = Some(SLOW * 5);
        let w = StoreWriter::labelled(store, "A->B".into());
        assert_eq!(w.stalls(), Stalls::default());
        // The first write holds the drainer; the queue fills behind it, and the call that
        // finds it full waits for the disk.
        for n in 2..=MAX_QUEUED as u64 + 3 {
            w.apply(target(n, false)).await.unwrap();
        }
        let stalls = w.stalls();
        assert!(stalls.disk >= SLOW * 5, "{stalls:?}");
        // Filling the queue takes far less than the hold (in-memory pushes).
        assert!(stalls.reading_paused >= SLOW, "{stalls:?}");
        w.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_written_batch_is_reported_to_every_later_call() {
        let store = TestStore::default();
        let fail = store.fail.clone();
        let w = StoreWriter::new(store);
        w.apply(target(2, false)).await.unwrap();
        fail.store(true, std::sync::atomic::Ordering::SeqCst);
        // Not waited for: it fails on the drainer, and the next synced batch hears of it.
        w.apply(target(3, false)).await.unwrap();
        let err = w.apply(target(4, true)).await.unwrap_err();
        assert!(err.contains("disk gone"), "{err}");
        assert_eq!(w.apply(target(5, false)).await, Err(err.clone()));
        assert_eq!(w.load(LoadRequest { begin: 1, end: 1 }).await, Err(err));
        w.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_submitted_sync_and_what_follows_it_wait_for_the_acknowledgement() {
        let (told, applied_rx) = std::sync::mpsc::channel();
        let mut store = TestStore::default();
        store.told = Some(told);
        let (acked, applied) = (store.acked.clone(), store.applied.clone());
        let w = StoreWriter::new(store);
        let (ack, after) = oneshot::channel();
        w.submit(target(7, true), Some(after)).await.unwrap();
        w.apply(target(8, false)).await.unwrap();
        // Nothing may be applied before the acknowledgement: give the drainer a bounded
        // chance to do it wrongly (a writer that skipped the wait would apply 7 and 8 now,
        // and the assertion below would see them unacknowledged).
        let early = tokio::task::spawn_blocking(move || {
            applied_rx
                .recv_timeout(std::time::Duration::from_millis(200))
                .ok()
        })
        .await
        .unwrap();
        assert_eq!(early, None, "applied before the acknowledgement");
        acked.store(true, std::sync::atomic::Ordering::SeqCst);
        ack.send(()).unwrap();
        w.apply(target(9, true)).await.unwrap();
        assert_eq!(
            *applied.lock().unwrap(),
            vec![(7, true), (8, true), (9, true)]
        );
        w.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_submitted_sync_waits_for_its_acknowledgement_and_is_dropped_without_it() {
        let dir = tempfile::tempdir().unwrap();
        let w = StoreWriter::new(FileStore::open(dir.path(), "A-B").unwrap());
        let (ack, after) = oneshot::channel();
        w.submit(target(7, true), Some(after)).await.unwrap();
        // Queued behind it, so not applied before the acknowledgement either.
        w.apply(target(8, false)).await.unwrap();
        ack.send(()).unwrap();
        w.apply(target(9, true)).await.unwrap();
        let (ack, after) = oneshot::channel::<()>();
        w.submit(target(10, true), Some(after)).await.unwrap();
        drop(ack);
        let err = w.apply(target(11, true)).await.unwrap_err();
        assert!(err.contains("bridge stopped"), "{err}");
        w.close().await;
        let s = FileStore::open(dir.path(), "A-B").unwrap();
        assert_eq!(s.state().next_target, 9);
    }

    /// Nobody waits for a submitted batch, so nothing wakes the drainer for it: its tick
    /// must still write it once acknowledged (a drainer that only ran for waited-for jobs
    /// would leave it queued and this would time out).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_acknowledged_batch_nobody_waits_for_is_written_on_the_tick() {
        let (told, applied_rx) = std::sync::mpsc::channel();
        let mut store = TestStore::default();
        store.told = Some(told);
        let w = StoreWriter::new(store);
        let (ack, after) = oneshot::channel();
        w.submit(target(7, false), Some(after)).await.unwrap();
        w.submit(target(8, false), None).await.unwrap();
        ack.send(()).unwrap();
        let got = tokio::task::spawn_blocking(move || {
            let a = applied_rx.recv_timeout(std::time::Duration::from_secs(10));
            let b = applied_rx.recv_timeout(std::time::Duration::from_secs(10));
            (a.ok(), b.ok())
        })
        .await
        .unwrap();
        assert_eq!(got, (Some(7), Some(8)));
        w.close().await;
    }

    /// Dropping the handle (a session task cancelled at shutdown) stops the drainer once
    /// the queue is done: the store is dropped, so no blocking-pool thread is left behind
    /// to hold up the runtime's shutdown.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_handle_stops_the_drainer() {
        let (told, applied_rx) = std::sync::mpsc::channel();
        let (dropped, dropped_rx) = std::sync::mpsc::channel();
        let mut store = TestStore::default();
        store.told = Some(told);
        store.dropped = Some(dropped);
        let w = StoreWriter::new(store);
        w.submit(target(3, false), None).await.unwrap();
        drop(w);
        let (applied, gone) = tokio::task::spawn_blocking(move || {
            let a = applied_rx.recv_timeout(std::time::Duration::from_secs(10));
            let d = dropped_rx.recv_timeout(std::time::Duration::from_secs(10));
            (a.ok(), d.is_ok())
        })
        .await
        .unwrap();
        assert_eq!(applied, Some(3), "queued work is still written");
        assert!(gone, "the drainer kept the store");
    }
}

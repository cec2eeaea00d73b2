//! Test support shared by this crate's tests, the `fixcurve` crate's tests and the fuzzers
//! (feature `test-support`): FIX text helpers, a deterministic clock, and a driver that carries
//! out a session's store work the way the tokio layer does, so every test drives the session
//! through the same contract.

use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::fix::codec::frame_body;
use crate::fix::session::{LoadRequest, MemoryStore, Session, SessionEvent, StoreWork};

/// Where a [`Driver`] carries work to: the memory store here, a file store in the I/O crate's
/// tests (which panic on a store error: a test store has no business failing).
pub trait Backend {
    /// Applies one batch.
    fn apply(&mut self, work: StoreWork);
    /// Answers a load.
    fn load(&mut self, req: LoadRequest) -> Vec<(u64, Vec<u8>)>;
}

impl Backend for MemoryStore {
    fn apply(&mut self, work: StoreWork) {
        MemoryStore::apply(self, work);
    }
    fn load(&mut self, req: LoadRequest) -> Vec<(u64, Vec<u8>)> {
        MemoryStore::load(self, req)
    }
}

/// FIX text written with `|` for SOH, as bytes.
pub fn soh(text: &str) -> Vec<u8> {
    text.replace('|', "\x01").into_bytes()
}

/// FIX bytes shown with `|` for SOH.
pub fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace('\x01', "|")
}

/// One decode result as (tag, value) per field, or its error.
pub type Indexed = Result<Vec<(u32, Vec<u8>)>, crate::fix::codec::DecodeError>;

/// What a decoder yielded, field index included, for comparing two decode paths: a
/// `Message`'s equality compares the frame's bytes only, which would let two paths that
/// index the same frame differently agree.
pub fn indexed(
    got: &[Result<crate::fix::Message, crate::fix::codec::DecodeError>],
) -> Vec<Indexed> {
    got.iter()
        .map(|r| {
            r.as_ref()
                .map(|m| m.fields().map(|f| (f.tag, f.value.to_vec())).collect())
                .map_err(Clone::clone)
        })
        .collect()
}

/// A whole frame: `8=<begin>|9=..|<body>10=..|` with BodyLength and CheckSum computed;
/// `body` starts at `35=` and is written with `|` for SOH.
pub fn framed(begin: &str, body: &str) -> Vec<u8> {
    let mut out = Vec::new();
    frame_body(begin, &soh(body), &mut out);
    out
}

/// A deterministic clock: a fixed monotonic origin paired with a fixed wall time, so tests
/// name instants in milliseconds and SendingTimes come out byte for byte.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// The monotonic origin.
    pub t0: Instant,
    /// The wall time at `t0`.
    pub wall0: OffsetDateTime,
}

impl Clock {
    /// A clock whose origin reads `wall0`.
    pub fn new(wall0: OffsetDateTime) -> Clock {
        Clock {
            t0: Instant::now(),
            wall0,
        }
    }

    /// The instant `ms` after the origin.
    pub fn at(&self, ms: u64) -> Instant {
        self.t0
            .checked_add(Duration::from_millis(ms))
            .unwrap_or(self.t0)
    }

    /// The wall time `ms` after the origin.
    pub fn wall(&self, ms: u64) -> OffsetDateTime {
        self.wall0
            .checked_add(::time::Duration::milliseconds(
                i64::try_from(ms).unwrap_or(i64::MAX),
            ))
            .unwrap_or(self.wall0)
    }
}

/// Carries out a session's work as the I/O layer does, on a [`MemoryStore`]: store batches
/// first (logged as "write" or "sync"), then at most one resend load per step.
#[derive(Debug, Default)]
pub struct Driver<S = MemoryStore> {
    /// Where the work goes.
    pub store: S,
    /// One entry per applied batch: "sync" (durable before sending) or "write".
    pub log: Vec<&'static str>,
    /// Most frames one loaded resend chunk produced.
    pub largest_chunk: usize,
}

impl<S: Backend> Driver<S> {
    /// A driver over `store`.
    pub fn new(store: S) -> Driver<S> {
        Driver {
            store,
            log: Vec::new(),
            largest_chunk: 0,
        }
    }

    /// Applies pending store work and answers at most one load; returns whether it loaded.
    pub fn step(&mut self, s: &mut Session, now: Instant) -> bool {
        if let Some(w) = s.poll_store() {
            self.apply(w);
        }
        let Some(req) = s.poll_load() else {
            return false;
        };
        let before = s.stats().sent;
        s.handle_loaded(self.store.load(req), now);
        let produced = usize::try_from(s.stats().sent.saturating_sub(before)).unwrap_or(usize::MAX);
        self.largest_chunk = self.largest_chunk.max(produced);
        if let Some(w) = s.poll_store() {
            self.apply(w);
        }
        true
    }

    fn apply(&mut self, w: StoreWork) {
        self.log.push(if w.sync { "sync" } else { "write" });
        self.store.apply(w);
    }

    /// Everything the session sends now, a resend answer chunk by chunk.
    pub fn transmit(&mut self, s: &mut Session, now: Instant) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            self.step(s, now);
            out.extend(std::iter::from_fn(|| s.poll_transmit()));
            if !s.transmit_pending() {
                return out;
            }
        }
    }

    /// The session's pending events, after its store work.
    pub fn events(&mut self, s: &mut Session, now: Instant) -> Vec<SessionEvent> {
        self.step(s, now);
        std::iter::from_fn(|| s.poll_event()).collect()
    }
}

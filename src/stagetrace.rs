//! Where a message's time goes between the bridge reading it and a subscriber having it:
//! a timestamp at each hand-over (session, publish loop, subscriber task, socket, the
//! client's read, decrypt and delivery), relative to the last FIX read.
//!
//! Built only with `--features stage-trace`; without it every call is an empty inline
//! function. It is a profiling aid for the single-subscriber latency run of the
//! `bridge_e2e` bench (paced input, about one message per read), where "time since the last
//! read" is that message's age; with many messages per read it blurs.

/// The hand-overs, in path order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// The FIX session produced application events from the read.
    SessionEvents,
    /// The publish loop took the batch from its channel.
    PublishLoop,
    /// Routed: normalized, enveloped, handed to the publisher.
    Routed,
    /// A subscriber's task took the message from its queue (then seals it).
    SubscriberTask,
    /// That task writes sealed bytes to its socket.
    SocketWrite,
    /// The client library read bytes from its socket.
    ClientRead,
    /// The client opened (decrypted) a message.
    ClientDecrypted,
    /// The application's `recv` got the decoded envelope.
    Delivered,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::SessionEvents => "FIX session events",
            Stage::PublishLoop => "publish loop",
            Stage::Routed => "routed to publisher",
            Stage::SubscriberTask => "subscriber task",
            Stage::SocketWrite => "socket write",
            Stage::ClientRead => "client read",
            Stage::ClientDecrypted => "client decrypted",
            Stage::Delivered => "delivered to recv",
        }
    }
}

/// Percentiles of one stage, in µs since the read.
#[derive(Clone, Debug)]
pub struct StageReport {
    pub stage: Stage,
    pub samples: usize,
    /// p50, p90, p99, p99.9.
    pub us: [u64; 4],
}

#[cfg(feature = "stage-trace")]
mod imp {
    use super::{Stage, StageReport};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;

    /// Bounded: a long run keeps its first samples.
    const CAP: usize = 4_000_000;
    static BASE: AtomicU64 = AtomicU64::new(0);
    static LOG: Mutex<Vec<(Stage, u64)>> = Mutex::new(Vec::new());

    pub fn read_at(ns: u64) {
        BASE.store(ns, Ordering::Relaxed);
    }

    pub fn mark(stage: Stage) {
        let base = BASE.load(Ordering::Relaxed);
        if base == 0 {
            return;
        }
        let age = crate::clock::now_ns().saturating_sub(base);
        if let Ok(mut l) = LOG.lock() {
            if l.len() < CAP {
                l.push((stage, age));
            }
        }
    }

    pub fn take() -> Vec<StageReport> {
        let log = LOG
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default();
        let mut by: std::collections::BTreeMap<Stage, Vec<u64>> = Default::default();
        for (s, ns) in log {
            by.entry(s).or_default().push(ns);
        }
        by.into_iter()
            .map(|(stage, mut v)| {
                v.sort_unstable();
                let at = |q: f64| {
                    let i = ((v.len().saturating_sub(1)) as f64 * q).round() as usize;
                    v.get(i).copied().unwrap_or(0) / 1000
                };
                StageReport {
                    stage,
                    samples: v.len(),
                    us: [at(0.5), at(0.9), at(0.99), at(0.999)],
                }
            })
            .collect()
    }
}

#[cfg(not(feature = "stage-trace"))]
mod imp {
    use super::{Stage, StageReport};

    #[inline(always)]
    pub fn read_at(_ns: u64) {}

    #[inline(always)]
    pub fn mark(_stage: Stage) {}

    pub fn take() -> Vec<StageReport> {
        Vec::new()
    }
}

/// Records that a message passed `stage` now.
pub use imp::mark;
/// The FIX transport read input at `ns` (Unix ns): later marks are ages since then.
pub use imp::read_at;
/// Percentiles per stage since the last call, emptying the log (empty without the feature).
pub use imp::take;

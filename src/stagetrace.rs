//! Where a message's time goes between the bridge reading it and a subscriber having it:
//! a timestamp at each hand-over (session, publish loop, subscriber task, socket, the
//! client's read, decrypt and delivery), as that message's age: now less the time its FIX
//! bytes were read, the envelope's `received_ns`, read back from the message itself where
//! only bytes are at hand. (Ages counted from the last read instead, as this did first,
//! cannot show the tail: a message still on its way when the next is read was timed from
//! that one.)
//!
//! Built only with `--features stage-trace`; without it every call is an empty inline
//! function. It is a profiling aid for the single-subscriber latency run of the
//! `bridge_e2e` bench.

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

/// Percentiles of one stage, in µs since the message's FIX read.
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
    use std::sync::Mutex;

    /// Bounded: a long run keeps its first samples.
    const CAP: usize = 4_000_000;
    static LOG: Mutex<Vec<(Stage, u64)>> = Mutex::new(Vec::new());

    pub fn now() -> u64 {
        crate::clock::now_ns()
    }

    pub fn mark_at(stage: Stage, at_ns: u64, read_ns: u64) {
        if read_ns == 0 {
            return;
        }
        if let Ok(mut l) = LOG.lock() {
            if l.len() < CAP {
                l.push((stage, at_ns.saturating_sub(read_ns)));
            }
        }
    }

    pub fn received_ns(payload: Option<&[u8]>) -> u64 {
        payload
            .and_then(crate::envelope::Envelope::peek_received_ns)
            .unwrap_or(0)
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
    pub fn now() -> u64 {
        0
    }

    #[inline(always)]
    pub fn mark_at(_stage: Stage, _at_ns: u64, _read_ns: u64) {}

    #[inline(always)]
    pub fn received_ns(_payload: Option<&[u8]>) -> u64 {
        0
    }

    pub fn take() -> Vec<StageReport> {
        Vec::new()
    }
}

/// Records that the message whose FIX bytes were read at `read_ns` passed `stage` at
/// `at_ns` (ignored when `read_ns` is 0, unknown).
pub use imp::mark_at;
/// The clock the ages are taken with (0 without the feature: nothing is recorded).
pub use imp::now;
/// A published payload's `received_ns`, 0 when it has none (or without the feature, so
/// nothing is parsed in a normal build).
pub use imp::received_ns;
/// Percentiles per stage since the last call, emptying the log (empty without the feature).
pub use imp::take;

/// Records that the message read at `read_ns` passed `stage` now.
#[inline(always)]
pub fn mark(stage: Stage, read_ns: u64) {
    mark_at(stage, now(), read_ns);
}

/// Records that the published message `payload` (an envelope) passed `stage` now.
#[inline(always)]
pub fn mark_payload(stage: Stage, payload: Option<&[u8]>) {
    let read_ns = received_ns(payload);
    mark_at(stage, now(), read_ns);
}

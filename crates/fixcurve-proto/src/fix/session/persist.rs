//! What the session asks of its sequence store, as data.
//!
//! The session never writes or reads a file: it keeps its sequence numbers in memory and hands
//! out [`StoreWork`] ("make these records durable") exactly as it hands out bytes to send, and
//! [`LoadRequest`]s ("give me the messages I sent in this range") when answering a
//! ResendRequest. The I/O layer carries the work out (off its async workers when it must
//! `fdatasync`) and reports failures back with [`super::Session::handle_store_failure`].
//!
//! Order is the contract: the work polled after a call must be durable (when `sync`) or at
//! least written (otherwise) *before* any bytes polled after that same call are sent, so that
//! no MsgSeqNum of ours can ever be reused after a crash.

use std::collections::BTreeMap;

/// The sequence state a session resumes from (what the store holds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqState {
    /// MsgSeqNum of the next message we send.
    pub next_sender: u64,
    /// MsgSeqNum we expect next from the peer.
    pub next_target: u64,
    /// Start (Unix seconds) of the schedule period these numbers belong to, if recorded.
    pub period: Option<i64>,
}

impl Default for SeqState {
    fn default() -> Self {
        SeqState {
            next_sender: 1,
            next_target: 1,
            period: None,
        }
    }
}

/// One change to record, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreOp {
    /// The next MsgSeqNum we send.
    NextSender(u64),
    /// The next MsgSeqNum we expect from the peer.
    NextTarget(u64),
    /// An application message we sent (whole frame), kept for resends; the next sender
    /// number becomes `seq + 1`.
    Sent {
        /// Its MsgSeqNum.
        seq: u64,
        /// The frame as sent.
        raw: Vec<u8>,
    },
    /// Both numbers back to 1 and the stored messages dropped (ResetSeqNumFlag, new period).
    Reset,
    /// The schedule period the numbers now belong to.
    Period(i64),
}

/// A batch of changes from one call into the session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreWork {
    /// The changes, oldest first (may be empty when only a sync is due).
    pub ops: Vec<StoreOp>,
    /// `true`: make everything so far durable (`fdatasync`) before sending what this call
    /// produced. `false`: write it (it then survives a crash of the process) and sync by the
    /// session's next timeout; only batches that send nothing are left unsynced.
    pub sync: bool,
}

impl StoreWork {
    /// Nothing to write and nothing to sync.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && !self.sync
    }
}

/// "Give me the application messages I sent with `begin <= seq <= end`", answered with
/// [`super::Session::handle_loaded`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadRequest {
    /// First MsgSeqNum wanted.
    pub begin: u64,
    /// Last MsgSeqNum wanted (inclusive).
    pub end: u64,
}

/// A volatile store: the session's work applied in memory. For tests, the fuzzer and sessions
/// configured without persistence.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: SeqState,
    sent: BTreeMap<u64, Vec<u8>>,
    /// Batches applied with `sync` (what a file store would have `fdatasync`ed).
    syncs: u64,
}

impl MemoryStore {
    /// An empty store: both numbers at 1.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// A store that resumes at the given sequence numbers.
    pub fn with_seqs(next_sender: u64, next_target: u64) -> MemoryStore {
        MemoryStore {
            state: SeqState {
                next_sender,
                next_target,
                period: None,
            },
            ..MemoryStore::default()
        }
    }

    /// What a session built on this store resumes from.
    pub fn state(&self) -> SeqState {
        self.state
    }

    /// How many batches asked for a sync.
    pub fn syncs(&self) -> u64 {
        self.syncs
    }

    /// Carries out one batch of work.
    pub fn apply(&mut self, work: StoreWork) {
        for op in work.ops {
            match op {
                StoreOp::NextSender(n) => self.state.next_sender = n,
                StoreOp::NextTarget(n) => self.state.next_target = n,
                StoreOp::Sent { seq, raw } => {
                    self.state.next_sender = seq.saturating_add(1);
                    self.sent.insert(seq, raw);
                }
                StoreOp::Reset => {
                    self.state.next_sender = 1;
                    self.state.next_target = 1;
                    self.sent.clear();
                }
                StoreOp::Period(p) => self.state.period = Some(p),
            }
        }
        if work.sync {
            self.syncs = self.syncs.saturating_add(1);
        }
    }

    /// The stored messages a [`LoadRequest`] asks for, ascending.
    pub fn load(&self, req: LoadRequest) -> Vec<(u64, Vec<u8>)> {
        if req.begin > req.end {
            return Vec::new();
        }
        self.sent
            .range(req.begin..=req.end)
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    }
}

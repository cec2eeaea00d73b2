//! The FIX session layer as a deterministic, sans-IO state machine.
//!
//! Bytes and time go in (`handle_input`, `handle_timeout`), bytes and events come out
//! (`poll_transmit`, `poll_event`, `poll_timeout`). No sockets, no clocks: the caller passes
//! `Instant`s, and wall-clock time (SendingTime) is derived from the instant given at creation,
//! so tests replay exact bytes.
//!
//! The semantics follow the FIX session protocol as QuickFIX implements it: Logon negotiation,
//! heartbeats and TestRequest, gap detection with ResendRequest and an ordered queue of
//! messages that arrived early, answering resends (application messages resent with PossDupFlag
//! and OrigSendingTime, administrative ones gap-filled), SequenceReset, Reject with
//! SessionRejectReason, and the Logout handshake.
//!
//! Driver contract: after every call, (1) carry out [`Session::poll_store`]'s work (durably
//! when it says `sync`), (2) answer [`Session::poll_load`] with [`Session::handle_loaded`],
//! (3) drain `poll_transmit` (write those bytes in order) and then `poll_event`; on
//! [`SessionEvent::Disconnect`], flush what was polled and close the socket. A store failure
//! goes back through [`Session::handle_store_failure`] before anything is written. A large
//! ResendRequest is answered a chunk at a time: while [`Session::transmit_pending`] is true,
//! keep loading and writing before reading more input, so memory stays bounded whatever
//! range the peer asks for.

mod config;
mod events;
mod inbound;
mod persist;
mod resend;
pub mod schedule;
mod time;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use ::time::OffsetDateTime;

pub use self::config::{is_valid_msg_type, Rejection, Role, SessionConfig, MAX_SEQ_NUM};
use self::events::AppRefusal;
pub use self::events::{reject_reason, SessionError, SessionEvent, SessionState, SessionStats};
pub use self::persist::{LoadRequest, MemoryStore, SeqState, StoreOp, StoreWork};
use self::time::{after, scaled};
pub use self::time::{format_utc_timestamp, parse_utc_timestamp, utc_timestamp_string};
use super::codec::{frame_body, put_field, put_uint_field, Decoder, DecoderLimits};
use super::field::Field;
use super::message::{is_admin_msg_type, Message};

/// A queued early message; `answered` marks a ResendRequest already served on arrival.
struct Queued {
    msg: Message,
    answered: bool,
}

/// One FIX session over one connection (see the module docs for the driver contract).
pub struct Session {
    cfg: SessionConfig,
    /// The sequence numbers as of everything handed out in `work` (the store catches up).
    seqs: SeqState,
    /// Store changes of the current call, not yet polled.
    work: StoreWork,
    /// A chunk of stored messages the resend answer waits for; `load_polled` once handed out.
    load: Option<LoadRequest>,
    load_polled: bool,
    decoder: Decoder,
    state: SessionState,
    epoch_instant: Instant,
    epoch_wall: OffsetDateTime,
    heartbeat: Duration,
    last_recv: Instant,
    last_sent: Instant,
    test_request: Option<String>,
    test_request_counter: u64,
    logon_deadline: Option<Instant>,
    /// The end of the schedule period we are logged on in.
    period_end: Option<Instant>,
    logout_deadline: Option<Instant>,
    /// Highest seq our outstanding ResendRequest has to bring in.
    resend_until: Option<u64>,
    queue: BTreeMap<u64, Queued>,
    queued_bytes: usize,
    /// Highest MsgSeqNum seen ahead of a gap (queued or dropped): if it is still ahead once the
    /// queue is drained, dropped messages are requested again.
    highest_seen: u64,
    transmit: VecDeque<Vec<u8>>,
    /// A ResendRequest being answered chunk by chunk.
    resend: Option<ResendCursor>,
    /// New frames produced while a resend is being answered: they carry higher MsgSeqNums, so
    /// they leave after it.
    held: VecDeque<Vec<u8>>,
    events: VecDeque<SessionEvent>,
    rate_window: (Instant, u32),
    stats: SessionStats,
    scratch: Vec<u8>,
    /// Store changes written but not yet synced (a batch that sent nothing) must be synced by
    /// then (`SessionConfig::inbound_sync_after`).
    sync_due: Option<Instant>,
}

/// Stored messages read per step of a resend answer.
const RESEND_CHUNK: u64 = 256;

/// Where the answer to a ResendRequest stands.
#[derive(Debug)]
struct ResendCursor {
    /// First sequence number not yet resent or gap-filled.
    next: u64,
    /// Next sequence number to look up in the store.
    scan: u64,
    end: u64,
    /// The request's instant: resent frames carry it as SendingTime.
    now: Instant,
}

fn text_of(f: Option<Field<'_>>) -> Option<String> {
    f.map(|f| String::from_utf8_lossy(f.value).into_owned())
}

impl Session {
    /// A session resuming from `resume` (what the store holds), whose wall clock reads `wall`
    /// at `now`: the session never reads a clock, so tests replay exact bytes.
    pub fn new(
        cfg: SessionConfig,
        resume: SeqState,
        now: Instant,
        wall: OffsetDateTime,
    ) -> Result<Session, SessionError> {
        let bad = |reason: &str| SessionError::Config {
            session: cfg.session_id(),
            reason: reason.to_owned(),
        };
        if !matches!(
            cfg.begin_string.as_str(),
            "FIX.4.0" | "FIX.4.1" | "FIX.4.2" | "FIX.4.3" | "FIX.4.4" | "FIXT.1.1"
        ) {
            return Err(bad("begin_string must be FIX.4.x or FIXT.1.1"));
        }
        let ok_id = |s: &str| !s.is_empty() && !s.bytes().any(|b| b == 0x01 || b == b'=');
        if !ok_id(&cfg.sender_comp_id) || !ok_id(&cfg.target_comp_id) {
            return Err(bad("CompIDs must be non-empty and contain no SOH or '='"));
        }
        if cfg.begin_string == "FIXT.1.1" && cfg.default_appl_ver_id.is_none() {
            return Err(bad("FIXT.1.1 needs default_appl_ver_id (1137)"));
        }
        let decoder = Decoder::new(cfg.decoder_limits);
        let heartbeat = Duration::from_secs(cfg.heartbeat_secs as u64);
        Ok(Session {
            cfg,
            seqs: resume,
            work: StoreWork::default(),
            load: None,
            load_polled: false,
            decoder,
            state: SessionState::Created,
            epoch_instant: now,
            epoch_wall: wall,
            heartbeat,
            last_recv: now,
            last_sent: now,
            test_request: None,
            test_request_counter: 0,
            logon_deadline: None,
            period_end: None,
            logout_deadline: None,
            resend_until: None,
            queue: BTreeMap::new(),
            queued_bytes: 0,
            highest_seen: 0,
            transmit: VecDeque::new(),
            resend: None,
            held: VecDeque::new(),
            events: VecDeque::new(),
            rate_window: (now, 0),
            stats: SessionStats::default(),
            scratch: Vec::with_capacity(1024),
            sync_due: None,
        })
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &SessionConfig {
        &self.cfg
    }
    /// Where the session stands.
    pub fn state(&self) -> SessionState {
        self.state
    }
    /// Logged on: application messages may be sent.
    pub fn is_logged_on(&self) -> bool {
        self.state == SessionState::Active
    }
    /// Counters for metrics.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }
    /// MsgSeqNum of the next message we send.
    pub fn next_sender_seq(&self) -> u64 {
        self.seqs.next_sender
    }
    /// MsgSeqNum we expect next from the peer.
    pub fn next_target_seq(&self) -> u64 {
        self.seqs.next_target
    }
    /// The sequence state, as the store will hold it once the polled work is carried out.
    pub fn seq_state(&self) -> SeqState {
        self.seqs
    }
    /// The negotiated heartbeat interval.
    pub fn heartbeat_interval(&self) -> Duration {
        self.heartbeat
    }
    /// Store work of the last call: carry it out before sending what it produced.
    pub fn poll_store(&mut self) -> Option<StoreWork> {
        if self.work.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.work))
        }
    }

    /// Stored messages the resend answer needs next (answer with `handle_loaded`).
    pub fn poll_load(&mut self) -> Option<LoadRequest> {
        if self.load_polled {
            return None;
        }
        let req = self.load?;
        self.load_polled = true;
        Some(req)
    }

    /// The messages a [`LoadRequest`] asked for, ascending (missing ones are gap-filled).
    pub fn handle_loaded(&mut self, stored: Vec<(u64, Vec<u8>)>, now: Instant) {
        let Some(req) = self.load.take() else {
            return;
        };
        self.load_polled = false;
        self.resend_chunk(req, stored);
        self.finish(now);
    }

    /// The store could not carry out polled work: nothing produced since may leave (it could
    /// reuse a sequence number); the connection ends.
    pub fn handle_store_failure(&mut self, reason: &str) {
        self.transmit.clear();
        self.held.clear();
        self.resend = None;
        self.load = None;
        self.load_polled = false;
        self.disconnect(format!("sequence store failed: {reason}"));
    }

    /// The connection is up. Initiator: sends Logon. Acceptor: starts the logon timer.
    pub fn connect(&mut self, now: Instant) {
        if self.state != SessionState::Created {
            return;
        }
        self.state = SessionState::AwaitingLogon;
        self.logon_deadline = Some(after(now, self.cfg.logon_timeout));
        self.last_recv = now;
        if self.cfg.role == Role::Initiator {
            if let Err(reason) = self.enter_period(now) {
                self.disconnect(reason);
                self.finish(now);
                return;
            }
            if self.cfg.reset_on_logon {
                self.reset_seqs();
            }
            let reset = self.cfg.reset_on_logon;
            self.send_logon(reset, self.cfg.heartbeat_secs as u64, now);
        }
        self.finish(now);
    }

    /// Raw bytes read from the connection.
    pub fn handle_input(&mut self, data: &[u8], now: Instant) {
        if self.state == SessionState::Closed {
            return;
        }
        self.decoder.feed(data);
        while self.state != SessionState::Closed {
            match self.decoder.decode_next() {
                None => break,
                Some(Err(error)) => {
                    self.stats.garbled = self.stats.garbled.saturating_add(1);
                    self.events.push_back(SessionEvent::Garbled { error });
                }
                Some(Ok(msg)) => {
                    self.stats.received = self.stats.received.saturating_add(1);
                    if !self.within_rate(now) {
                        break;
                    }
                    self.on_message(msg, now);
                    self.drain_queue(now);
                }
            }
        }
        self.finish(now);
    }

    /// The earliest instant at which `handle_timeout` has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timer = match self.state {
            SessionState::Created | SessionState::Closed => None,
            SessionState::AwaitingLogon => self.logon_deadline,
            SessionState::LogoutSent => self.logout_deadline,
            SessionState::Active if self.heartbeat.is_zero() => None,
            SessionState::Active => {
                if self.test_request.is_some() {
                    Some(after(self.last_recv, scaled(self.heartbeat, 12, 5)))
                } else {
                    let hb = after(self.last_sent, self.heartbeat);
                    Some(hb.min(after(self.last_recv, scaled(self.heartbeat, 6, 5))))
                }
            }
        };
        let timer = match (timer, self.period_end) {
            (Some(a), Some(b)) if self.state == SessionState::Active => Some(a.min(b)),
            (None, Some(b)) if self.state == SessionState::Active => Some(b),
            (a, _) => a,
        };
        match (timer, self.sync_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fires due timers: logon/logout timeouts, Heartbeat, TestRequest, heartbeat timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            SessionState::AwaitingLogon if self.logon_deadline.is_some_and(|d| now >= d) => {
                self.disconnect("Logon timeout: no Logon received".into());
            }
            SessionState::LogoutSent if self.logout_deadline.is_some_and(|d| now >= d) => {
                self.disconnect("Logout timeout: no Logout reply received".into());
            }
            SessionState::Active if self.period_end.is_some_and(|e| now >= e) => {
                self.period_end = None;
                self.logout("End of session time", now);
            }
            SessionState::Active if !self.heartbeat.is_zero() => {
                let silent = now.saturating_duration_since(self.last_recv);
                if silent >= scaled(self.heartbeat, 12, 5) {
                    self.disconnect(format!(
                        "heartbeat timeout: nothing received for {} ms",
                        silent.as_millis()
                    ));
                } else {
                    if silent >= scaled(self.heartbeat, 6, 5) && self.test_request.is_none() {
                        self.test_request_counter = self.test_request_counter.saturating_add(1);
                        let id = format!("TEST{}", self.test_request_counter);
                        self.send_admin("1", now, |b| put_field(b, 112, id.as_bytes()));
                        self.test_request = Some(id);
                    }
                    // While our TestRequest is outstanding, it is the liveness probe: no
                    // Heartbeats on top (QuickFIX's behaviour, which its tests expect).
                    if self.test_request.is_none()
                        && now.saturating_duration_since(self.last_sent) >= self.heartbeat
                    {
                        self.send_admin("0", now, |_| {});
                    }
                }
            }
            _ => {}
        }
        self.finish(now);
    }

    /// Next chunk of bytes to write to the connection, in order.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.transmit.is_empty() {
            self.resend_step();
        }
        self.transmit.pop_front()
    }

    /// Appends what is pending to `out` (one write instead of one per message): everything
    /// queued, or the next chunk of a resend answer.
    pub fn drain_transmit(&mut self, out: &mut Vec<u8>) {
        if self.transmit.is_empty() {
            self.resend_step();
        }
        for chunk in self.transmit.drain(..) {
            out.extend_from_slice(&chunk);
        }
    }

    /// More bytes will come out of `poll_transmit` / `drain_transmit` without further input.
    pub fn transmit_pending(&self) -> bool {
        !self.transmit.is_empty() || self.resend.is_some()
    }

    /// The next event for the application (after the transmit).
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// Sends an application message; returns its MsgSeqNum. `fields` follow the standard
    /// header (which the session writes) in the order given.
    pub fn send_app(
        &mut self,
        msg_type: &str,
        fields: &[Field<'_>],
        now: Instant,
    ) -> Result<u64, SessionError> {
        if self.state != SessionState::Active {
            return Err(SessionError::NotLoggedOn {
                session: self.cfg.session_id(),
            });
        }
        if msg_type.is_empty() || is_admin_msg_type(msg_type.as_bytes()) {
            return Err(SessionError::AdminMsgType {
                session: self.cfg.session_id(),
                msg_type: msg_type.to_owned(),
            });
        }
        let mut data_tag = None;
        for f in fields {
            let is_data = data_tag == Some(f.tag);
            if f.tag == 0 || (!is_data && f.value.contains(&super::codec::SOH)) {
                return Err(SessionError::InvalidField {
                    session: self.cfg.session_id(),
                    tag: f.tag,
                });
            }
            data_tag = super::codec::data_tag_for_length(f.tag);
        }
        let seq = self.seqs.next_sender;
        let raw = self.build(msg_type, seq, now, |b| {
            for f in fields {
                put_field(b, f.tag, f.value);
            }
        });
        self.seqs.next_sender = seq.saturating_add(1);
        self.work.ops.push(StoreOp::Sent {
            seq,
            raw: raw.clone(),
        });
        self.push_transmit(raw, now);
        self.finish(now);
        Ok(seq)
    }

    /// Starts the Logout handshake (or closes at once if not logged on).
    pub fn logout(&mut self, text: &str, now: Instant) {
        match self.state {
            SessionState::Active => {
                self.send_admin("5", now, |b| {
                    if !text.is_empty() {
                        put_field(b, 58, text.as_bytes())
                    }
                });
                self.state = SessionState::LogoutSent;
                self.logout_deadline = Some(after(now, self.cfg.logout_timeout));
            }
            SessionState::Created | SessionState::AwaitingLogon => {
                self.disconnect(format!("closed before logon: {text}"));
            }
            SessionState::LogoutSent | SessionState::Closed => {}
        }
        self.finish(now);
    }

    // ---- inbound -------------------------------------------------------------------------

    /// Per-session inbound rate limit (a fixed one-second window): a peer flooding us is
    /// logged out rather than allowed to starve other sessions.
    fn within_rate(&mut self, now: Instant) -> bool {
        let Some(max) = self.cfg.max_msgs_per_sec else {
            return true;
        };
        let (start, count) = &mut self.rate_window;
        if now.saturating_duration_since(*start) >= Duration::from_secs(1) {
            *start = now;
            *count = 0;
        }
        *count = count.saturating_add(1);
        if *count > max {
            self.last_recv = now;
            self.logout_and_disconnect(format!(
                "message rate limit exceeded: more than {max} messages per second"
            ));
            return false;
        }
        true
    }

    /// Checks the schedule at `now` and, in a new period, starts the numbers again. `Err`: we
    /// are outside the schedule (the reason, for the log).
    fn enter_period(&mut self, now: Instant) -> Result<(), String> {
        let Some(schedule) = self.cfg.schedule.clone() else {
            return Ok(());
        };
        let wall = self.wall(now);
        let t = jiff::Timestamp::from_nanosecond(wall.unix_timestamp_nanos())
            .map_err(|e| format!("clock out of range: {e}"))?;
        let Some((start, end)) = schedule.period_at(t) else {
            return Err("outside the session schedule".into());
        };
        let start_secs = start.as_second();
        let recorded = self.seqs.period;
        if recorded != Some(start_secs) {
            if self.cfg.reset_each_period && recorded.is_some_and(|p| p < start_secs) {
                self.reset_seqs();
            }
            self.seqs.period = Some(start_secs);
            self.work.ops.push(StoreOp::Period(start_secs));
        }
        let left = end.duration_since(t);
        let left = std::time::Duration::try_from(left).unwrap_or_default();
        self.period_end = Some(after(now, left));
        Ok(())
    }

    fn wall(&self, now: Instant) -> OffsetDateTime {
        // Saturating at the ends of the calendar: a clock that far off is caught by the
        // SendingTime check, not by a panic.
        let ahead = now.saturating_duration_since(self.epoch_instant);
        let behind = self.epoch_instant.saturating_duration_since(now);
        let wall = if behind.is_zero() {
            ::time::Duration::try_from(ahead)
                .ok()
                .and_then(|d| self.epoch_wall.checked_add(d))
        } else {
            ::time::Duration::try_from(behind)
                .ok()
                .and_then(|d| self.epoch_wall.checked_sub(d))
        };
        wall.unwrap_or(self.epoch_wall)
    }

    fn wall_bytes(&self, now: Instant) -> Vec<u8> {
        let mut v = Vec::with_capacity(21);
        format_utc_timestamp(self.wall(now), &mut v);
        v
    }

    /// A whole frame: standard header (35, 49, 56, 34, 52), then what `body` writes.
    fn build(
        &mut self,
        msg_type: &str,
        seq: u64,
        now: Instant,
        body: impl FnOnce(&mut Vec<u8>),
    ) -> Vec<u8> {
        let mut b = std::mem::take(&mut self.scratch);
        b.clear();
        put_field(&mut b, 35, msg_type.as_bytes());
        put_field(&mut b, 49, self.cfg.sender_comp_id.as_bytes());
        put_field(&mut b, 56, self.cfg.target_comp_id.as_bytes());
        put_uint_field(&mut b, 34, seq);
        b.extend_from_slice(b"52=");
        format_utc_timestamp(self.wall(now), &mut b);
        b.push(super::codec::SOH);
        body(&mut b);
        let mut out = Vec::with_capacity(b.len().saturating_add(32));
        frame_body(&self.cfg.begin_string, &b, &mut out);
        self.scratch = b;
        out
    }

    /// Sends a session-level message with the next sender seq (not stored: gap-filled on
    /// resend).
    fn send_admin(&mut self, msg_type: &str, now: Instant, body: impl FnOnce(&mut Vec<u8>)) {
        let seq = self.seqs.next_sender;
        let raw = self.build(msg_type, seq, now, body);
        self.set_next_sender(seq.saturating_add(1));
        self.push_transmit(raw, now);
    }

    fn push_transmit(&mut self, raw: Vec<u8>, now: Instant) {
        self.stats.sent = self.stats.sent.saturating_add(1);
        self.last_sent = now;
        if self.resend.is_some() {
            self.held.push_back(raw);
        } else {
            self.transmit.push_back(raw);
        }
    }

    /// A frame of a resend answer: it goes out ahead of anything held.
    fn push_resent(&mut self, raw: Vec<u8>, now: Instant) {
        self.stats.sent = self.stats.sent.saturating_add(1);
        self.last_sent = now;
        self.transmit.push_back(raw);
    }

    /// Sends a Reject (35=3) with the standard text for `reason` (what QuickFIX and the FIX
    /// session test cases expect); `detail` goes to the event, for the log.
    fn reject(&mut self, msg: &Message, reason: u32, tag: Option<u32>, detail: &str) {
        let ref_seq = msg.seq_num().unwrap_or(0);
        let ref_type = msg.msg_type().to_vec();
        let now = self.last_recv;
        self.stats.rejects_sent = self.stats.rejects_sent.saturating_add(1);
        // 371-373 exist from FIX 4.2, and 4.2 defines reasons 0-11 only: say no more than
        // the peer's version can read (the text still names the problem).
        let version = self.cfg.begin_string.as_str();
        let (with_refs, with_reason) = match version {
            "FIX.4.0" | "FIX.4.1" => (false, false),
            "FIX.4.2" => (true, reason <= reject_reason::INVALID_MSG_TYPE),
            _ => (true, true),
        };
        self.send_admin("3", now, |b| {
            put_uint_field(b, 45, ref_seq);
            if let Some(t) = tag.filter(|_| with_refs) {
                put_uint_field(b, 371, u64::from(t));
            }
            if with_refs {
                put_field(b, 372, &ref_type);
            }
            if with_reason {
                put_uint_field(b, 373, u64::from(reason));
            }
            put_field(b, 58, reject_reason::text(reason).as_bytes());
        });
        self.events.push_back(SessionEvent::RejectSent {
            ref_seq_num: ref_seq,
            reason,
            text: detail.to_owned(),
        });
    }

    fn incr_target(&mut self, seq: u64) {
        self.set_next_target(seq.saturating_add(1));
    }

    fn incr_target_if_expected(&mut self, seq: u64) {
        if seq == self.seqs.next_target {
            self.incr_target(seq);
        }
    }

    /// Successive number changes in one batch collapse into the last (one record, not one
    /// per message of a burst).
    fn set_next_sender(&mut self, n: u64) {
        self.seqs.next_sender = n;
        match self.work.ops.last_mut() {
            Some(StoreOp::NextSender(m)) => *m = n,
            _ => self.work.ops.push(StoreOp::NextSender(n)),
        }
    }

    fn set_next_target(&mut self, n: u64) {
        self.seqs.next_target = n;
        match self.work.ops.last_mut() {
            Some(StoreOp::NextTarget(m)) => *m = n,
            _ => self.work.ops.push(StoreOp::NextTarget(n)),
        }
    }

    fn reset_seqs(&mut self) {
        self.seqs.next_sender = 1;
        self.seqs.next_target = 1;
        self.work.ops.push(StoreOp::Reset);
    }

    fn logout_and_disconnect(&mut self, reason: String) {
        if matches!(
            self.state,
            SessionState::Active | SessionState::AwaitingLogon | SessionState::LogoutSent
        ) {
            let now = self.last_recv;
            self.send_admin("5", now, |b| put_field(b, 58, reason.as_bytes()));
        }
        self.disconnect(reason);
    }

    fn disconnect(&mut self, reason: String) {
        if self.state == SessionState::Closed {
            return;
        }
        self.state = SessionState::Closed;
        self.queue.clear();
        self.queued_bytes = 0;
        // No more resending on a closing connection; what was held (e.g. the Logout) leaves.
        if self.resend.take().is_some() {
            self.transmit.append(&mut self.held);
        }
        self.events.push_back(SessionEvent::Disconnect { reason });
    }

    /// Decides how durable this call's store work must be: a call that produced bytes to send
    /// needs it synced before they leave; one that sent nothing (market data in) only written,
    /// with the sync due `inbound_sync_after` later, so inbound data never waits for the disk
    /// (no sequence number of ours can be reused by what has not left).
    fn finish(&mut self, now: Instant) {
        let leaving = !self.transmit.is_empty() || !self.held.is_empty();
        let strict = self.cfg.inbound_sync_after.is_zero();
        let due = self.sync_due.is_some_and(|d| now >= d);
        if leaving || due || (strict && !self.work.ops.is_empty()) {
            self.sync_due = None;
            self.work.sync = true;
        } else if !self.work.ops.is_empty() {
            self.sync_due
                .get_or_insert(after(now, self.cfg.inbound_sync_after));
        }
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("session", &self.cfg.session_id())
            .field("state", &self.state)
            .field("next_sender_seq", &self.seqs.next_sender)
            .field("next_target_seq", &self.seqs.next_target)
            .finish_non_exhaustive()
    }
}

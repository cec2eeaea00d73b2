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
//! Driver contract: after every call, drain `poll_transmit` (write those bytes in order) and
//! then `poll_event`; on [`SessionEvent::Disconnect`], flush what was polled and close the socket.
//! A large ResendRequest is answered a chunk at a time: while [`Session::transmit_pending`]
//! is true, keep writing before reading more input, so memory stays bounded whatever range
//! the peer asks for.

mod time;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use ::time::OffsetDateTime;

pub use self::time::{format_utc_timestamp, parse_utc_timestamp, utc_timestamp_string};
use super::codec::{frame_body, put_field, put_uint_field, DecodeError, Decoder, DecoderLimits};
use super::field::Field;
use super::message::{is_admin_msg_type, Message};
use super::store::{SeqStore, StoreError};

/// Which side of the TCP connection we are: the initiator sends the first Logon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Acceptor,
    Initiator,
}

/// Everything one session needs to know. Build with [`SessionConfig::new`] and adjust fields.
#[derive(Clone)]
pub struct SessionConfig {
    /// "FIX.4.2", "FIX.4.4" or "FIXT.1.1".
    pub begin_string: String,
    /// Ours (tag 49 on what we send).
    pub sender_comp_id: String,
    /// Theirs (tag 56 on what we send).
    pub target_comp_id: String,
    pub role: Role,
    /// HeartBtInt the initiator proposes. An acceptor adopts the initiator's value.
    pub heartbeat_secs: u32,
    /// Reset both sequence numbers at every logon (ResetSeqNumFlag=Y from the initiator;
    /// an acceptor resets when the Logon arrives).
    pub reset_on_logon: bool,
    /// FIXT.1.1 DefaultApplVerID (1137), e.g. "9" for FIX 5.0 SP2. Required for FIXT.
    pub default_appl_ver_id: Option<String>,
    /// How long to wait for the peer's Logon after the connection is up.
    pub logon_timeout: Duration,
    /// How long to wait for the peer's Logout reply before closing anyway.
    pub logout_timeout: Duration,
    /// Inbound messages per second above which the session is logged out.
    pub max_msgs_per_sec: Option<u32>,
    /// Initiator Logon Username (553) / Password (554).
    pub username: Option<String>,
    pub password: Option<String>,
    /// Maximum |SendingTime - now| accepted; `None` disables the check.
    pub check_sending_time: Option<Duration>,
    /// Reject (reason 9) and log out on a CompID mismatch.
    pub check_comp_ids: bool,
    /// Messages that arrived ahead of a gap kept for in-order delivery; beyond this they are
    /// dropped and fetched again by the next ResendRequest.
    pub max_queued: usize,
    /// The same bound in bytes (early messages can be large snapshots).
    pub max_queued_bytes: usize,
    pub decoder_limits: DecoderLimits,
    /// How long store changes of a batch that sent nothing (market data in) may wait for
    /// their `fdatasync`, so inbound messages never wait for the disk. A machine failure in
    /// this window makes the restarted session ask the peer again for up to this much of
    /// what it had received. Zero syncs every batch before its events are polled.
    pub inbound_sync_after: Duration,
    /// Application MsgTypes the application consumes; any other valid application message
    /// gets a BusinessMessageReject (35=j, 380=3 unsupported message type). `None`: every
    /// application message is delivered.
    pub app_msg_types: Option<Vec<String>>,
    /// Checks an application message before it is delivered; a `Rejection` is sent as a
    /// session Reject (35=3) with its reason and tag, and the message is not delivered.
    /// The bridge validates what it would publish: a field it cannot read is never published.
    pub validate_app: Option<Validator>,
}

/// Why an application message is refused: SessionRejectReason (373), RefTagID (371), text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub reason: u32,
    pub tag: Option<u32>,
    pub text: String,
}

/// See [`SessionConfig::validate_app`].
pub type Validator = fn(&Message) -> Result<(), Rejection>;

/// Largest MsgSeqNum (34) and NewSeqNo (36) accepted: FIX SeqNum is an `int`, and engines
/// (QuickFIX among them) hold it in 32 bits. A larger value is a hostile or broken peer,
/// never arithmetic that wraps.
pub const MAX_SEQ_NUM: u64 = i32::MAX as u64;

/// Whether `t` is a MsgType FIX defines (any version up to 5.0 SP2) or a user-defined one
/// (`U...`). Without a data dictionary this is what tells an invalid MsgType (Reject 373=11)
/// from a valid one the application does not support (BusinessMessageReject 380=3).
pub fn is_valid_msg_type(t: &[u8]) -> bool {
    match t {
        [c] => c.is_ascii_alphanumeric(),
        [b'U', rest @ ..] => !rest.is_empty() && rest.iter().all(u8::is_ascii_alphanumeric),
        [a, b] => (b'A'..=b'E').contains(a) && b.is_ascii_uppercase(),
        _ => false,
    }
}

impl SessionConfig {
    pub fn new(
        begin_string: impl Into<String>,
        sender_comp_id: impl Into<String>,
        target_comp_id: impl Into<String>,
        role: Role,
    ) -> SessionConfig {
        let begin_string = begin_string.into();
        SessionConfig {
            default_appl_ver_id: (begin_string == "FIXT.1.1").then(|| "9".to_owned()),
            begin_string,
            sender_comp_id: sender_comp_id.into(),
            target_comp_id: target_comp_id.into(),
            role,
            heartbeat_secs: 30,
            reset_on_logon: false,
            logon_timeout: Duration::from_secs(10),
            logout_timeout: Duration::from_secs(2),
            max_msgs_per_sec: None,
            username: None,
            password: None,
            check_sending_time: Some(Duration::from_secs(120)),
            check_comp_ids: true,
            max_queued: 10_000,
            max_queued_bytes: 16 << 20,
            decoder_limits: DecoderLimits::default(),
            inbound_sync_after: Duration::from_millis(50),
            app_msg_types: None,
            validate_app: None,
        }
    }

    /// The store name for this session: `BEGIN-SENDER-TARGET`, with characters a file name
    /// cannot carry replaced by '_'.
    pub fn session_id(&self) -> String {
        format!(
            "{}-{}-{}",
            self.begin_string, self.sender_comp_id, self.target_comp_id
        )
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
    }
}

impl std::fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionConfig")
            .field("begin_string", &self.begin_string)
            .field("sender_comp_id", &self.sender_comp_id)
            .field("target_comp_id", &self.target_comp_id)
            .field("role", &self.role)
            .field("heartbeat_secs", &self.heartbeat_secs)
            .field("reset_on_logon", &self.reset_on_logon)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// Why `dispatch` does not deliver an application message.
enum AppRefusal {
    Reject(Rejection),
    Unsupported,
}

/// SessionRejectReason (373) values we send.
pub mod reject_reason {
    pub const INVALID_TAG_NUMBER: u32 = 0;
    pub const REQUIRED_TAG_MISSING: u32 = 1;
    pub const TAG_NOT_DEFINED_FOR_MSG_TYPE: u32 = 2;
    pub const UNDEFINED_TAG: u32 = 3;
    pub const TAG_WITHOUT_VALUE: u32 = 4;
    pub const VALUE_INCORRECT: u32 = 5;
    pub const INCORRECT_DATA_FORMAT: u32 = 6;
    pub const COMP_ID_PROBLEM: u32 = 9;
    pub const SENDING_TIME_ACCURACY: u32 = 10;
    pub const INVALID_MSG_TYPE: u32 = 11;
    pub const TAG_APPEARS_MORE_THAN_ONCE: u32 = 13;
    pub const INCORRECT_NUM_IN_GROUP_COUNT: u32 = 16;
}
use reject_reason as rr;

/// What the session tells its driver.
#[derive(Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// Logon completed both ways. Username/Password are the peer's (acceptor side), for the
    /// driver to authenticate; never logged.
    LoggedOn {
        username: Option<String>,
        password: Option<String>,
        heartbeat_secs: u32,
        reset_seq_num: bool,
        default_appl_ver_id: Option<String>,
    },
    /// A validated application message, in sequence order, each MsgSeqNum once.
    App(Message),
    /// The peer skipped ahead: a ResendRequest for `expected..` was sent.
    Gap { expected: u64, received: u64 },
    /// The peer asked us to resend `begin..=end` (end 0: everything); answered already.
    ResendRequested { begin: u64, end: u64 },
    /// The peer moved our expected inbound sequence number.
    SequenceReset { new_seq_num: u64, gap_fill: bool },
    /// The peer rejected one of our messages (35=3).
    Rejected {
        ref_seq_num: Option<u64>,
        reason: Option<u32>,
        ref_tag: Option<u32>,
        text: Option<String>,
    },
    /// We rejected one of the peer's messages (35=3 sent).
    RejectSent {
        ref_seq_num: u64,
        reason: u32,
        text: String,
    },
    /// A garbled frame was dropped (counted in [`SessionStats::garbled`]).
    Garbled { error: DecodeError },
    /// The Logout handshake completed (either side started it).
    LoggedOut { reason: String },
    /// The connection must be closed now (after writing what `poll_transmit` returned).
    Disconnect { reason: String },
}

impl std::fmt::Debug for SessionEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionEvent::LoggedOn {
                username,
                password,
                heartbeat_secs,
                reset_seq_num,
                default_appl_ver_id,
            } => f
                .debug_struct("LoggedOn")
                .field("username", username)
                .field("password", &password.as_ref().map(|_| "<redacted>"))
                .field("heartbeat_secs", heartbeat_secs)
                .field("reset_seq_num", reset_seq_num)
                .field("default_appl_ver_id", default_appl_ver_id)
                .finish(),
            SessionEvent::App(m) => f.debug_tuple("App").field(m).finish(),
            SessionEvent::Gap { expected, received } => f
                .debug_struct("Gap")
                .field("expected", expected)
                .field("received", received)
                .finish(),
            SessionEvent::ResendRequested { begin, end } => f
                .debug_struct("ResendRequested")
                .field("begin", begin)
                .field("end", end)
                .finish(),
            SessionEvent::SequenceReset {
                new_seq_num,
                gap_fill,
            } => f
                .debug_struct("SequenceReset")
                .field("new_seq_num", new_seq_num)
                .field("gap_fill", gap_fill)
                .finish(),
            SessionEvent::Rejected {
                ref_seq_num,
                reason,
                ref_tag,
                text,
            } => f
                .debug_struct("Rejected")
                .field("ref_seq_num", ref_seq_num)
                .field("reason", reason)
                .field("ref_tag", ref_tag)
                .field("text", text)
                .finish(),
            SessionEvent::RejectSent {
                ref_seq_num,
                reason,
                text,
            } => f
                .debug_struct("RejectSent")
                .field("ref_seq_num", ref_seq_num)
                .field("reason", reason)
                .field("text", text)
                .finish(),
            SessionEvent::Garbled { error } => {
                f.debug_struct("Garbled").field("error", error).finish()
            }
            SessionEvent::LoggedOut { reason } => {
                f.debug_struct("LoggedOut").field("reason", reason).finish()
            }
            SessionEvent::Disconnect { reason } => f
                .debug_struct("Disconnect")
                .field("reason", reason)
                .finish(),
        }
    }
}

/// Errors from the calls a driver makes.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("session {session}: not logged on")]
    NotLoggedOn { session: String },
    #[error("session {session}: message type {msg_type:?} is administrative; the session sends those itself")]
    AdminMsgType { session: String, msg_type: String },
    #[error(
        "session {session}: field {tag} value contains SOH (only length-prefixed data fields may)"
    )]
    InvalidField { session: String, tag: u32 },
    #[error("session {session}: invalid configuration: {reason}")]
    Config { session: String, reason: String },
    #[error("session {session}: {source}")]
    Store {
        session: String,
        #[source]
        source: StoreError,
    },
}

/// Counters for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    pub received: u64,
    pub sent: u64,
    pub garbled: u64,
    pub rejects_sent: u64,
    /// BusinessMessageRejects (35=j) sent for unsupported application messages.
    pub business_rejects_sent: u64,
    pub duplicates_ignored: u64,
    pub resend_requests_sent: u64,
    pub queued_dropped: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionState {
    /// Created, `connect` not called yet.
    Created,
    /// Waiting for the peer's Logon (acceptor) or Logon reply (initiator).
    AwaitingLogon,
    Active,
    /// We sent Logout and wait for the reply.
    LogoutSent,
    /// Disconnect was emitted; the session ignores further input.
    Closed,
}

/// A queued early message; `answered` marks a ResendRequest already served on arrival.
struct Queued {
    msg: Message,
    answered: bool,
}

pub struct Session {
    cfg: SessionConfig,
    store: Box<dyn SeqStore>,
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
    /// A session whose wall clock is the system's UTC clock at `now`.
    pub fn new(
        cfg: SessionConfig,
        store: Box<dyn SeqStore>,
        now: Instant,
    ) -> Result<Session, SessionError> {
        Session::with_wall_clock(cfg, store, now, OffsetDateTime::now_utc())
    }

    /// A session whose wall clock reads `wall` at `now` (deterministic tests, replays).
    pub fn with_wall_clock(
        cfg: SessionConfig,
        store: Box<dyn SeqStore>,
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
            store,
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

    pub fn config(&self) -> &SessionConfig {
        &self.cfg
    }
    pub fn state(&self) -> SessionState {
        self.state
    }
    pub fn is_logged_on(&self) -> bool {
        self.state == SessionState::Active
    }
    pub fn stats(&self) -> SessionStats {
        self.stats
    }
    pub fn next_sender_seq(&self) -> u64 {
        self.store.next_sender_seq()
    }
    pub fn next_target_seq(&self) -> u64 {
        self.store.next_target_seq()
    }
    /// The negotiated heartbeat interval.
    pub fn heartbeat_interval(&self) -> Duration {
        self.heartbeat
    }
    /// Gives the store back, e.g. to build the next connection's session.
    pub fn into_store(self) -> Box<dyn SeqStore> {
        self.store
    }

    /// The connection is up. Initiator: sends Logon. Acceptor: starts the logon timer.
    pub fn connect(&mut self, now: Instant) {
        if self.state != SessionState::Created {
            return;
        }
        self.state = SessionState::AwaitingLogon;
        self.logon_deadline = Some(now + self.cfg.logon_timeout);
        self.last_recv = now;
        if self.cfg.role == Role::Initiator {
            if self.cfg.reset_on_logon {
                if let Err(e) = self.store.reset() {
                    self.store_failed(e);
                    return;
                }
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
                    self.stats.garbled += 1;
                    self.events.push_back(SessionEvent::Garbled { error });
                }
                Some(Ok(msg)) => {
                    self.stats.received += 1;
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
                let hb = self.last_sent + self.heartbeat;
                let recv = if self.test_request.is_some() {
                    self.last_recv + self.heartbeat * 12 / 5
                } else {
                    self.last_recv + self.heartbeat * 6 / 5
                };
                Some(hb.min(recv))
            }
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
            SessionState::Active if !self.heartbeat.is_zero() => {
                let silent = now.saturating_duration_since(self.last_recv);
                if silent >= self.heartbeat * 12 / 5 {
                    self.disconnect(format!(
                        "heartbeat timeout: nothing received for {} ms",
                        silent.as_millis()
                    ));
                } else {
                    if silent >= self.heartbeat * 6 / 5 && self.test_request.is_none() {
                        self.test_request_counter += 1;
                        let id = format!("TEST{}", self.test_request_counter);
                        self.send_admin("1", now, |b| put_field(b, 112, id.as_bytes()));
                        self.test_request = Some(id);
                    }
                    if now.saturating_duration_since(self.last_sent) >= self.heartbeat {
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
        let seq = self.store.next_sender_seq();
        let raw = self.build(msg_type, seq, now, |b| {
            for f in fields {
                put_field(b, f.tag, f.value);
            }
        });
        if let Err(source) = self
            .store
            .save_sent(seq, &raw)
            .and_then(|_| self.store.commit())
        {
            let session = self.cfg.session_id();
            self.store_failed_reason(&source);
            return Err(SessionError::Store { session, source });
        }
        self.push_transmit(raw, now);
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
                self.logout_deadline = Some(now + self.cfg.logout_timeout);
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
        *count += 1;
        if *count > max {
            self.last_recv = now;
            self.logout_and_disconnect(format!(
                "message rate limit exceeded: more than {max} messages per second"
            ));
            return false;
        }
        true
    }

    fn on_message(&mut self, msg: Message, now: Instant) {
        self.last_recv = now;
        self.test_request = None;
        if msg.begin_string() != self.cfg.begin_string.as_bytes() {
            self.logout_and_disconnect(format!(
                "Incorrect BeginString {}",
                String::from_utf8_lossy(msg.begin_string())
            ));
            return;
        }
        if msg.seq_num().is_some_and(|n| n > MAX_SEQ_NUM) {
            self.logout_and_disconnect(format!("MsgSeqNum (34) out of range: above {MAX_SEQ_NUM}"));
            return;
        }
        if self.state == SessionState::AwaitingLogon {
            if msg.msg_type() == b"5" && self.cfg.role == Role::Initiator {
                // The acceptor refused our Logon: its text is the only diagnosis we get.
                let text = text_of(msg.get(58)).unwrap_or_default();
                self.events.push_back(SessionEvent::LoggedOut {
                    reason: format!("logon refused by peer: {text}"),
                });
                self.disconnect(format!("logon refused by peer: {text}"));
                return;
            }
            if msg.msg_type() != b"A" {
                self.disconnect(format!(
                    "first message is not a Logon (35={})",
                    String::from_utf8_lossy(msg.msg_type())
                ));
                return;
            }
            self.on_logon(msg, now);
            return;
        }
        match msg.msg_type() {
            b"A" if msg.seq_num() == Some(1) && msg.get(141).is_some_and(|f| f.value == b"Y") => {
                self.reset_in_session(msg, now)
            }
            b"A" => self.logout_and_disconnect("Logon received while already logged on".into()),
            b"2" => self.on_resend_request(msg, now, false),
            b"4" => self.on_sequence_reset(msg, now),
            b"5" => self.on_logout(msg, now),
            _ => {
                if self.verify(&msg, now, true, true) {
                    self.dispatch(msg, now);
                }
            }
        }
    }

    /// Header checks every message passes, then the sequence number check. `true`: the
    /// message is in sequence and valid, process it.
    fn verify(&mut self, msg: &Message, now: Instant, too_high: bool, too_low: bool) -> bool {
        let Some(seq) = msg.seq_num() else {
            self.logout_and_disconnect("MsgSeqNum (34) missing or not a number".into());
            return false;
        };
        if !self.header_ok(msg, seq, now) {
            return false;
        }
        let expected = self.store.next_target_seq();
        if too_high && seq > expected {
            self.target_too_high(msg.clone(), seq, false);
            return false;
        }
        if too_low && seq < expected {
            self.target_too_low(msg, seq, expected);
            return false;
        }
        if msg.poss_dup() && msg.msg_type() != b"4" && !self.orig_sending_time_ok(msg) {
            if self.state != SessionState::Closed {
                self.incr_target(seq);
            }
            return false;
        }
        true
    }

    /// A PossDup message must carry OrigSendingTime (122), not later than its SendingTime.
    /// On failure the Reject (and, for a time in the future, the Logout) is queued.
    fn orig_sending_time_ok(&mut self, msg: &Message) -> bool {
        match msg.get(122).map(|f| parse_utc_timestamp(f.value)) {
            None => {
                self.reject(
                    msg,
                    rr::REQUIRED_TAG_MISSING,
                    Some(122),
                    "Required tag missing",
                );
                false
            }
            Some(None) => {
                self.reject(
                    msg,
                    rr::INCORRECT_DATA_FORMAT,
                    Some(122),
                    "Incorrect data format for value",
                );
                false
            }
            Some(Some(orig)) => {
                let sending = msg.get(52).and_then(|f| parse_utc_timestamp(f.value));
                if sending.is_some_and(|s| orig > s) {
                    self.reject(
                        msg,
                        rr::SENDING_TIME_ACCURACY,
                        Some(122),
                        "SendingTime accuracy problem",
                    );
                    self.logout_and_disconnect("OrigSendingTime after SendingTime".into());
                    return false;
                }
                true
            }
        }
    }

    /// CompIDs and SendingTime. On failure the reply (Reject, Logout) is already queued.
    fn header_ok(&mut self, msg: &Message, seq: u64, now: Instant) -> bool {
        if self.cfg.check_comp_ids {
            // A missing or empty CompID is a malformed message, not someone else's: Reject
            // it (required tag missing / tag without value) and carry on.
            for tag in [49u32, 56] {
                let problem = match msg.get(tag) {
                    None => Some((rr::REQUIRED_TAG_MISSING, "Required tag missing")),
                    Some(f) if f.value.is_empty() => {
                        Some((rr::TAG_WITHOUT_VALUE, "Tag specified without a value"))
                    }
                    Some(_) => None,
                };
                if let Some((reason, text)) = problem {
                    self.reject(msg, reason, Some(tag), text);
                    self.incr_target_if_expected(seq);
                    return false;
                }
            }
            let sender_ok = msg.sender_comp_id() == Some(self.cfg.target_comp_id.as_bytes());
            let target_ok = msg.target_comp_id() == Some(self.cfg.sender_comp_id.as_bytes());
            if !sender_ok || !target_ok {
                let tag = if sender_ok { 56 } else { 49 };
                self.reject(msg, rr::COMP_ID_PROBLEM, Some(tag), "CompID problem");
                self.logout_and_disconnect(format!(
                    "CompID problem: expected 49={} 56={}, got 49={} 56={}",
                    self.cfg.target_comp_id,
                    self.cfg.sender_comp_id,
                    String::from_utf8_lossy(msg.sender_comp_id().unwrap_or(b"")),
                    String::from_utf8_lossy(msg.target_comp_id().unwrap_or(b"")),
                ));
                return false;
            }
        }
        match msg.get(52) {
            None => {
                self.reject(
                    msg,
                    rr::REQUIRED_TAG_MISSING,
                    Some(52),
                    "Required tag missing",
                );
                self.incr_target_if_expected(seq);
                false
            }
            Some(f) => match parse_utc_timestamp(f.value) {
                None => {
                    self.reject(
                        msg,
                        rr::INCORRECT_DATA_FORMAT,
                        Some(52),
                        "Incorrect data format for value",
                    );
                    self.incr_target_if_expected(seq);
                    false
                }
                Some(t) => {
                    if let Some(tol) = self.cfg.check_sending_time {
                        let wall = self.wall(now);
                        let diff = (wall - t).abs();
                        if diff > tol {
                            self.reject(
                                msg,
                                rr::SENDING_TIME_ACCURACY,
                                Some(52),
                                "SendingTime accuracy problem",
                            );
                            self.logout_and_disconnect("SendingTime accuracy problem".into());
                            return false;
                        }
                    }
                    true
                }
            },
        }
    }

    fn target_too_high(&mut self, msg: Message, seq: u64, answered: bool) {
        let expected = self.store.next_target_seq();
        self.highest_seen = self.highest_seen.max(seq);
        let size = msg.as_bytes().len();
        if self.queue.len() < self.cfg.max_queued
            && self.queued_bytes + size <= self.cfg.max_queued_bytes
            && !self.queue.contains_key(&seq)
        {
            self.queued_bytes += size;
            self.queue.insert(seq, Queued { msg, answered });
        } else {
            // Dropped messages are fetched again by the next ResendRequest.
            self.stats.queued_dropped += 1;
        }
        if self.resend_until.is_none() {
            self.events.push_back(SessionEvent::Gap {
                expected,
                received: seq,
            });
            self.send_resend_request(expected, seq - 1);
        }
    }

    fn send_resend_request(&mut self, begin: u64, until: u64) {
        self.resend_until = Some(until);
        self.stats.resend_requests_sent += 1;
        let now = self.last_recv;
        // EndSeqNo 0 = "everything after BeginSeqNo" (FIX 4.2 and later).
        self.send_admin("2", now, |b| {
            put_uint_field(b, 7, begin);
            put_uint_field(b, 16, 0);
        });
    }

    fn target_too_low(&mut self, msg: &Message, seq: u64, expected: u64) {
        if msg.poss_dup() {
            // A resent duplicate: ignored, but only once its OrigSendingTime checks out.
            if msg.msg_type() != b"4" && !self.orig_sending_time_ok(msg) {
                return;
            }
            self.stats.duplicates_ignored += 1;
            return;
        }
        self.logout_and_disconnect(format!(
            "MsgSeqNum too low, expecting {expected} but received {seq}"
        ));
    }

    /// Delivers queued messages that are now in sequence, and re-requests if a hole remains
    /// after the outstanding resend completed.
    fn drain_queue(&mut self, now: Instant) {
        loop {
            if !matches!(self.state, SessionState::Active | SessionState::LogoutSent) {
                return;
            }
            let expected = self.store.next_target_seq();
            if self.resend_until.is_some_and(|u| expected > u) {
                self.resend_until = None;
            }
            let Some(entry) = self.queue.first_entry() else {
                if self.resend_until.is_none() && self.highest_seen >= expected {
                    let seen = self.highest_seen;
                    self.events.push_back(SessionEvent::Gap {
                        expected,
                        received: seen,
                    });
                    self.send_resend_request(expected, seen);
                }
                return;
            };
            let seq = *entry.key();
            if seq < expected {
                let q = entry.remove();
                self.queued_bytes = self.queued_bytes.saturating_sub(q.msg.as_bytes().len());
                continue;
            }
            if seq > expected {
                if self.resend_until.is_none() {
                    self.events.push_back(SessionEvent::Gap {
                        expected,
                        received: seq,
                    });
                    self.send_resend_request(expected, seq - 1);
                }
                return;
            }
            let q = entry.remove();
            self.queued_bytes = self.queued_bytes.saturating_sub(q.msg.as_bytes().len());
            match q.msg.msg_type() {
                // A Logon or an already answered ResendRequest only consumes its number.
                b"A" => self.incr_target(seq),
                b"2" if q.answered => self.incr_target(seq),
                _ => self.on_message(q.msg, now),
            }
        }
    }

    fn on_logon(&mut self, msg: Message, now: Instant) {
        let Some(seq) = msg.seq_num() else {
            self.logout_and_disconnect("MsgSeqNum (34) missing or not a number".into());
            return;
        };
        if !self.header_ok(&msg, seq, now) {
            return;
        }
        match msg.get(98).map(|f| f.value) {
            Some(b"0") => {}
            _ => {
                self.logout_and_disconnect("Unsupported EncryptMethod (98): only 0 (none)".into());
                return;
            }
        }
        let Some(hb) = msg.get_u64(108).filter(|&h| h <= 3600) else {
            self.logout_and_disconnect("HeartBtInt (108) missing or invalid".into());
            return;
        };
        let peer_appl_ver = text_of(msg.get(1137));
        if self.cfg.begin_string == "FIXT.1.1" && peer_appl_ver.is_none() {
            self.logout_and_disconnect("DefaultApplVerID (1137) required for FIXT.1.1".into());
            return;
        }
        let reset = msg.get(141).map(|f| f.value == b"Y").unwrap_or(false);
        let acceptor = self.cfg.role == Role::Acceptor;
        let we_reset = acceptor && (reset || self.cfg.reset_on_logon);
        if we_reset {
            if let Err(e) = self.store.reset() {
                self.store_failed(e);
                return;
            }
        } else if reset && !acceptor {
            // The acceptor confirmed (or imposed) a reset: our inbound count restarts.
            if let Err(e) = self.store.set_next_target_seq(1) {
                self.store_failed(e);
                return;
            }
        }
        let expected = self.store.next_target_seq();
        if seq < expected {
            self.logout_and_disconnect(format!(
                "MsgSeqNum too low, expecting {expected} but received {seq}"
            ));
            return;
        }
        if acceptor {
            self.heartbeat = Duration::from_secs(hb);
            // The reply echoes the request: 141=Y only if the peer asked. An initiator that
            // did not (QuickFIX's default ResetOnLogon=N) would take it as a reset request.
            self.send_logon(reset, hb, now);
        }
        self.state = SessionState::Active;
        self.logon_deadline = None;
        self.events.push_back(SessionEvent::LoggedOn {
            username: text_of(msg.get(553)),
            password: text_of(msg.get(554)),
            heartbeat_secs: self.heartbeat.as_secs() as u32,
            reset_seq_num: reset || we_reset,
            default_appl_ver_id: peer_appl_ver,
        });
        if seq > expected {
            self.target_too_high(msg, seq, false);
        } else {
            self.incr_target(seq);
        }
    }

    fn send_logon(&mut self, reset: bool, hb: u64, now: Instant) {
        let appl = self.cfg.default_appl_ver_id.clone();
        let (user, pass) = match self.cfg.role {
            Role::Initiator => (self.cfg.username.clone(), self.cfg.password.clone()),
            Role::Acceptor => (None, None),
        };
        let fixt = self.cfg.begin_string == "FIXT.1.1";
        self.send_admin("A", now, |b| {
            put_field(b, 98, b"0");
            put_uint_field(b, 108, hb);
            if reset {
                put_field(b, 141, b"Y");
            }
            if let Some(u) = &user {
                put_field(b, 553, u.as_bytes());
            }
            if let Some(p) = &pass {
                put_field(b, 554, p.as_bytes());
            }
            if fixt {
                if let Some(a) = &appl {
                    put_field(b, 1137, a.as_bytes());
                }
            }
        });
    }

    /// In-sequence message after `verify`: empty-value check, then by type.
    fn dispatch(&mut self, msg: Message, now: Instant) {
        let seq = msg.seq_num().unwrap_or(0);
        if let Some(f) = msg.fields().find(|f| f.value.is_empty()) {
            let tag = f.tag;
            self.reject(
                &msg,
                rr::TAG_WITHOUT_VALUE,
                Some(tag),
                "Tag specified without a value",
            );
            self.incr_target(seq);
            return;
        }
        match msg.msg_type() {
            b"0" => {
                self.incr_target(seq);
            }
            b"1" => match msg.get(112) {
                Some(id) => {
                    let id = id.value.to_vec();
                    self.incr_target(seq);
                    self.send_admin("0", now, |b| put_field(b, 112, &id));
                }
                None => {
                    self.reject(
                        &msg,
                        rr::REQUIRED_TAG_MISSING,
                        Some(112),
                        "Required tag missing",
                    );
                    self.incr_target(seq);
                }
            },
            b"3" => {
                self.events.push_back(SessionEvent::Rejected {
                    ref_seq_num: msg.get_u64(45),
                    reason: msg.get_u64(373).and_then(|r| u32::try_from(r).ok()),
                    ref_tag: msg.get_u64(371).and_then(|r| u32::try_from(r).ok()),
                    text: text_of(msg.get(58)),
                });
                self.incr_target(seq);
            }
            _ => {
                self.incr_target(seq);
                if let Some(refusal) = self.app_refusal(&msg) {
                    match refusal {
                        AppRefusal::Reject(r) => self.reject(&msg, r.reason, r.tag, &r.text),
                        AppRefusal::Unsupported => self.business_reject(&msg, now),
                    }
                    return;
                }
                self.events.push_back(SessionEvent::App(msg));
            }
        }
    }

    /// Why an in-sequence application message is not delivered, if it is not.
    fn app_refusal(&self, msg: &Message) -> Option<AppRefusal> {
        let t = msg.msg_type();
        if !is_valid_msg_type(t) {
            return Some(AppRefusal::Reject(Rejection {
                reason: rr::INVALID_MSG_TYPE,
                tag: Some(35),
                text: "Invalid MsgType".into(),
            }));
        }
        if let Some(types) = &self.cfg.app_msg_types {
            if !types.iter().any(|x| x.as_bytes() == t) {
                return Some(AppRefusal::Unsupported);
            }
        }
        let validate = self.cfg.validate_app?;
        validate(msg).err().map(AppRefusal::Reject)
    }

    /// BusinessMessageReject (35=j) with BusinessRejectReason 3, unsupported message type.
    fn business_reject(&mut self, msg: &Message, now: Instant) {
        let ref_seq = msg.seq_num().unwrap_or(0);
        let ref_type = msg.msg_type().to_vec();
        self.stats.business_rejects_sent += 1;
        self.send_admin("j", now, |b| {
            put_uint_field(b, 45, ref_seq);
            put_field(b, 372, &ref_type);
            put_uint_field(b, 380, 3);
            put_field(b, 58, b"Unsupported Message Type");
        });
        self.events.push_back(SessionEvent::RejectSent {
            ref_seq_num: ref_seq,
            reason: 3,
            text: format!(
                "BusinessMessageReject: unsupported MsgType {}",
                String::from_utf8_lossy(&ref_type)
            ),
        });
    }

    /// Logon with MsgSeqNum 1 and ResetSeqNumFlag=Y inside a logged-on session (how 24-hour
    /// sessions reset): both sides start again at 1, confirmed by our Logon with 141=Y.
    fn reset_in_session(&mut self, msg: Message, now: Instant) {
        if !self.header_ok(&msg, 1, now) {
            return;
        }
        if let Err(e) = self.store.reset() {
            self.store_failed(e);
            return;
        }
        self.queue.clear();
        self.queued_bytes = 0;
        self.highest_seen = 0;
        self.resend_until = None;
        let hb = self.heartbeat.as_secs();
        self.send_logon(true, hb, now);
        self.incr_target(1);
        self.events.push_back(SessionEvent::SequenceReset {
            new_seq_num: 1,
            gap_fill: false,
        });
    }

    fn on_resend_request(&mut self, msg: Message, now: Instant, _queued: bool) {
        let Some(seq) = msg.seq_num() else {
            self.logout_and_disconnect("MsgSeqNum (34) missing or not a number".into());
            return;
        };
        if !self.header_ok(&msg, seq, now) {
            return;
        }
        let expected = self.store.next_target_seq();
        if seq < expected {
            self.target_too_low(&msg, seq, expected);
            return;
        }
        let (Some(begin), Some(end)) = (msg.get_u64(7), msg.get_u64(16)) else {
            let tag = if msg.get_u64(7).is_none() { 7 } else { 16 };
            self.reject(
                &msg,
                rr::REQUIRED_TAG_MISSING,
                Some(tag),
                "Required tag missing",
            );
            self.incr_target_if_expected(seq);
            return;
        };
        if begin == 0 || (end != 0 && end < begin) {
            self.reject(
                &msg,
                rr::VALUE_INCORRECT,
                Some(7),
                "Value is incorrect (out of range) for this tag",
            );
            self.incr_target_if_expected(seq);
            return;
        }
        self.answer_resend(begin, end, now);
        self.events
            .push_back(SessionEvent::ResendRequested { begin, end });
        if seq > expected {
            self.target_too_high(msg, seq, true);
        } else {
            self.incr_target(seq);
        }
    }

    /// Resends our stored application messages in `begin..=end` with PossDupFlag=Y and
    /// OrigSendingTime; everything else in the range (administrative messages) is covered by
    /// SequenceReset-GapFill.
    fn answer_resend(&mut self, begin: u64, end: u64, now: Instant) {
        let last_sent = self.store.next_sender_seq().saturating_sub(1);
        // 0 and the FIX 4.0/4.1 "infinity" 999999 mean "up to the last one sent".
        let end = if end == 0 || end >= last_sent {
            last_sent
        } else {
            end
        };
        if begin > end {
            return;
        }
        match &mut self.resend {
            // Asked again while answering: widen the answer (a frame resent twice is a
            // harmless PossDup).
            Some(c) => {
                if begin < c.next {
                    c.next = begin;
                    c.scan = begin;
                }
                c.end = c.end.max(end);
            }
            None => {
                self.resend = Some(ResendCursor {
                    next: begin,
                    scan: begin,
                    end,
                    now,
                });
                self.resend_step();
            }
        }
    }

    /// Queues the next resent frames (stored application messages re-framed with
    /// PossDupFlag=Y and OrigSendingTime; gap fills over everything else), at most
    /// `RESEND_CHUNK` stored messages; when the answer is complete, releases what was held.
    fn resend_step(&mut self) {
        while let Some(mut c) = self.resend.take() {
            let upto = c.end.min(c.scan.saturating_add(RESEND_CHUNK - 1));
            let stored = match self.store.sent_range(c.scan, upto) {
                Ok(s) => s,
                Err(e) => {
                    self.store_failed(e);
                    return;
                }
            };
            let produced = !stored.is_empty();
            for (seq, raw) in stored {
                // An unreadable stored frame is gap-filled over rather than resent as garbage.
                let Some(resent) = self.rebuild_poss_dup(&raw, c.now) else {
                    continue;
                };
                if seq > c.next {
                    self.send_gap_fill(c.next, seq, c.now);
                }
                self.push_resent(resent, c.now);
                c.next = seq + 1;
            }
            if upto >= c.end {
                if c.next <= c.end {
                    self.send_gap_fill(c.next, c.end + 1, c.now);
                }
                self.transmit.append(&mut self.held);
                return;
            }
            c.scan = upto + 1;
            self.resend = Some(c);
            if produced {
                return;
            }
        }
    }

    fn send_gap_fill(&mut self, seq: u64, new_seq: u64, now: Instant) {
        let wall = self.wall_bytes(now);
        let raw = self.build("4", seq, now, |b| {
            put_field(b, 43, b"Y");
            put_field(b, 122, &wall);
            put_field(b, 123, b"Y");
            put_uint_field(b, 36, new_seq);
        });
        // Header order: PossDupFlag and OrigSendingTime are part of the header but follow
        // SendingTime here, as QuickFIX writes them; peers do not depend on header order.
        self.push_resent(raw, now);
    }

    /// A stored frame re-framed for resending: same MsgSeqNum and body, PossDupFlag=Y,
    /// fresh SendingTime, OrigSendingTime = the original SendingTime.
    fn rebuild_poss_dup(&mut self, raw: &[u8], now: Instant) -> Option<Vec<u8>> {
        let mut d = Decoder::new(DecoderLimits {
            max_message_size: raw.len().max(64),
            max_fields: usize::MAX,
        });
        d.feed(raw);
        let m = d.decode_next()?.ok()?;
        let seq = m.seq_num()?;
        let orig = m.get(52)?.value.to_vec();
        let msg_type = m.msg_type_str().to_owned();
        let built = self.build(&msg_type, seq, now, |b| {
            put_field(b, 43, b"Y");
            put_field(b, 122, &orig);
            for f in m.fields() {
                if !matches!(f.tag, 8 | 9 | 35 | 49 | 56 | 34 | 52 | 43 | 97 | 122 | 10) {
                    put_field(b, f.tag, f.value);
                }
            }
        });
        Some(built)
    }

    fn on_sequence_reset(&mut self, msg: Message, now: Instant) {
        let gap_fill = msg.get(123).map(|f| f.value == b"Y").unwrap_or(false);
        if !self.verify(&msg, now, gap_fill, gap_fill) {
            return;
        }
        let seq = msg.seq_num().unwrap_or(0);
        let Some(new_seq) = msg.get_u64(36) else {
            self.reject(
                &msg,
                rr::REQUIRED_TAG_MISSING,
                Some(36),
                "Required tag missing",
            );
            if gap_fill {
                self.incr_target(seq);
            }
            return;
        };
        if new_seq > MAX_SEQ_NUM {
            self.reject(
                &msg,
                rr::VALUE_INCORRECT,
                Some(36),
                &format!("NewSeqNo out of range: above {MAX_SEQ_NUM}"),
            );
            if gap_fill {
                self.incr_target(seq);
            }
            return;
        }
        let expected = self.store.next_target_seq();
        if new_seq > expected {
            if let Err(e) = self.store.set_next_target_seq(new_seq) {
                self.store_failed(e);
                return;
            }
            self.events.push_back(SessionEvent::SequenceReset {
                new_seq_num: new_seq,
                gap_fill,
            });
        } else if new_seq < expected {
            self.reject(
                &msg,
                rr::VALUE_INCORRECT,
                Some(36),
                &format!("Attempt to lower sequence number, invalid value NewSeqNo={new_seq}"),
            );
        }
    }

    fn on_logout(&mut self, msg: Message, now: Instant) {
        let reason = text_of(msg.get(58)).unwrap_or_else(|| "logout".to_owned());
        if let Some(seq) = msg.seq_num() {
            if seq == self.store.next_target_seq() {
                self.incr_target(seq);
            }
        }
        if self.state == SessionState::LogoutSent {
            self.events.push_back(SessionEvent::LoggedOut {
                reason: format!("logout confirmed by peer: {reason}"),
            });
            self.disconnect("logout complete".into());
        } else {
            self.send_admin("5", now, |_| {});
            self.events.push_back(SessionEvent::LoggedOut {
                reason: format!("peer logged out: {reason}"),
            });
            self.disconnect("peer logged out".into());
        }
    }

    // ---- outbound and helpers ------------------------------------------------------------

    fn wall(&self, now: Instant) -> OffsetDateTime {
        if now >= self.epoch_instant {
            self.epoch_wall + (now - self.epoch_instant)
        } else {
            self.epoch_wall - (self.epoch_instant - now)
        }
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
        let mut out = Vec::with_capacity(b.len() + 32);
        frame_body(&self.cfg.begin_string, &b, &mut out);
        self.scratch = b;
        out
    }

    /// Sends a session-level message with the next sender seq (not stored: gap-filled on
    /// resend).
    fn send_admin(&mut self, msg_type: &str, now: Instant, body: impl FnOnce(&mut Vec<u8>)) {
        let seq = self.store.next_sender_seq();
        let raw = self.build(msg_type, seq, now, body);
        if let Err(e) = self.store.set_next_sender_seq(seq.saturating_add(1)) {
            self.store_failed(e);
            return;
        }
        self.push_transmit(raw, now);
    }

    fn push_transmit(&mut self, raw: Vec<u8>, now: Instant) {
        self.stats.sent += 1;
        self.last_sent = now;
        if self.resend.is_some() {
            self.held.push_back(raw);
        } else {
            self.transmit.push_back(raw);
        }
    }

    /// A frame of a resend answer: it goes out ahead of anything held.
    fn push_resent(&mut self, raw: Vec<u8>, now: Instant) {
        self.stats.sent += 1;
        self.last_sent = now;
        self.transmit.push_back(raw);
    }

    fn reject(&mut self, msg: &Message, reason: u32, tag: Option<u32>, text: &str) {
        let ref_seq = msg.seq_num().unwrap_or(0);
        let ref_type = msg.msg_type().to_vec();
        let now = self.last_recv;
        self.stats.rejects_sent += 1;
        self.send_admin("3", now, |b| {
            put_uint_field(b, 45, ref_seq);
            if let Some(t) = tag {
                put_uint_field(b, 371, u64::from(t));
            }
            put_field(b, 372, &ref_type);
            put_uint_field(b, 373, u64::from(reason));
            put_field(b, 58, text.as_bytes());
        });
        self.events.push_back(SessionEvent::RejectSent {
            ref_seq_num: ref_seq,
            reason,
            text: text.to_owned(),
        });
    }

    fn incr_target(&mut self, seq: u64) {
        if let Err(e) = self.store.set_next_target_seq(seq.saturating_add(1)) {
            self.store_failed(e);
        }
    }

    fn incr_target_if_expected(&mut self, seq: u64) {
        if seq == self.store.next_target_seq() {
            self.incr_target(seq);
        }
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

    fn store_failed_reason(&mut self, e: &StoreError) {
        // Nothing produced in this batch may leave: it could reuse a sequence number.
        self.transmit.clear();
        self.held.clear();
        self.resend = None;
        self.disconnect(format!("sequence store failed: {e}"));
    }

    fn store_failed(&mut self, e: StoreError) {
        self.store_failed_reason(&e);
    }

    /// Makes this batch's store changes durable before its bytes can be polled. A batch that
    /// produced nothing to send only writes them (no sequence number of ours can be reused
    /// by what has not left) and leaves the sync to `sync_due`, so inbound market data never
    /// waits for the disk.
    fn finish(&mut self, now: Instant) {
        let leaving = !self.transmit.is_empty() || !self.held.is_empty();
        let strict = self.cfg.inbound_sync_after.is_zero();
        let result = if leaving || strict || self.sync_due.is_some_and(|d| now >= d) {
            self.sync_due = None;
            self.store.commit()
        } else {
            self.store.flush().map(|unsynced| {
                if unsynced {
                    self.sync_due
                        .get_or_insert(now + self.cfg.inbound_sync_after);
                }
            })
        };
        if let Err(e) = result {
            self.store_failed(e);
        }
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("session", &self.cfg.session_id())
            .field("state", &self.state)
            .field("next_sender_seq", &self.store.next_sender_seq())
            .field("next_target_seq", &self.store.next_target_seq())
            .finish_non_exhaustive()
    }
}

//! What the session tells its driver: events, errors, counters and states.

use super::super::codec::DecodeError;
use super::super::message::Message;
use super::Rejection;

/// Why `dispatch` does not deliver an application message.
pub(super) enum AppRefusal {
    Reject(Rejection),
    Unsupported,
}

/// SessionRejectReason (373) values we send.
pub mod reject_reason {
    /// 0: Invalid tag number.
    pub const INVALID_TAG_NUMBER: u32 = 0;
    /// 1: Required tag missing.
    pub const REQUIRED_TAG_MISSING: u32 = 1;
    /// 2: Tag not defined for this message type.
    pub const TAG_NOT_DEFINED_FOR_MSG_TYPE: u32 = 2;
    /// 3: Undefined tag.
    pub const UNDEFINED_TAG: u32 = 3;
    /// 4: Tag specified without a value.
    pub const TAG_WITHOUT_VALUE: u32 = 4;
    /// 5: Value is incorrect (out of range) for this tag.
    pub const VALUE_INCORRECT: u32 = 5;
    /// 6: Incorrect data format for value.
    pub const INCORRECT_DATA_FORMAT: u32 = 6;
    /// 9: CompID problem.
    pub const COMP_ID_PROBLEM: u32 = 9;
    /// 10: SendingTime accuracy problem.
    pub const SENDING_TIME_ACCURACY: u32 = 10;
    /// 11: Invalid MsgType.
    pub const INVALID_MSG_TYPE: u32 = 11;
    /// 13: Tag appears more than once.
    pub const TAG_APPEARS_MORE_THAN_ONCE: u32 = 13;
    /// 14: Tag specified out of required order.
    pub const TAG_OUT_OF_ORDER: u32 = 14;
    /// 15: Repeating group fields out of order.
    pub const GROUP_FIELDS_OUT_OF_ORDER: u32 = 15;
    /// 16: Incorrect NumInGroup count for repeating group.
    pub const INCORRECT_NUM_IN_GROUP_COUNT: u32 = 16;

    /// The standard text for a reason (the names FIX gives them, as QuickFIX sends them), for
    /// the Text (58) of our Reject: the details go to the log, not to the peer.
    pub fn text(reason: u32) -> &'static str {
        match reason {
            INVALID_TAG_NUMBER => "Invalid tag number",
            REQUIRED_TAG_MISSING => "Required tag missing",
            TAG_NOT_DEFINED_FOR_MSG_TYPE => "Tag not defined for this message type",
            UNDEFINED_TAG => "Undefined Tag",
            TAG_WITHOUT_VALUE => "Tag specified without a value",
            VALUE_INCORRECT => "Value is incorrect (out of range) for this tag",
            INCORRECT_DATA_FORMAT => "Incorrect data format for value",
            COMP_ID_PROBLEM => "CompID problem",
            SENDING_TIME_ACCURACY => "SendingTime accuracy problem",
            INVALID_MSG_TYPE => "Invalid MsgType",
            TAG_APPEARS_MORE_THAN_ONCE => "Tag appears more than once",
            TAG_OUT_OF_ORDER => "Tag specified out of required order",
            GROUP_FIELDS_OUT_OF_ORDER => "Repeating group fields out of order",
            INCORRECT_NUM_IN_GROUP_COUNT => "Incorrect NumInGroup count for repeating group",
            _ => "Other",
        }
    }
}

/// What the session tells its driver.
#[derive(Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// Logon completed both ways. Username/Password are the peer's (acceptor side), for the
    /// driver to authenticate; never logged.
    LoggedOn {
        /// Username (553) of the peer's Logon.
        username: Option<String>,
        /// Password (554) of the peer's Logon (redacted in Debug).
        password: Option<crate::secret::Secret>,
        /// The negotiated HeartBtInt.
        heartbeat_secs: u32,
        /// Both sides started again at 1 (ResetSeqNumFlag).
        reset_seq_num: bool,
        /// DefaultApplVerID (1137) of the peer, FIXT.1.1.
        default_appl_ver_id: Option<String>,
    },
    /// A validated application message, in sequence order, each MsgSeqNum once.
    App {
        /// The message as received.
        msg: Message,
        /// Its events, when the session normalized it ([`SessionConfig::normalize_app`](super::SessionConfig::normalize_app)).
        normalized: Option<Vec<crate::normalize::Normalized>>,
    },
    /// The peer skipped ahead: a ResendRequest for `expected..` was sent.
    Gap {
        /// The first missing MsgSeqNum.
        expected: u64,
        /// The MsgSeqNum that arrived instead.
        received: u64,
    },
    /// The peer asked us to resend `begin..=end` (end 0: everything); answered already.
    ResendRequested {
        /// BeginSeqNo (7).
        begin: u64,
        /// EndSeqNo (16); 0 means "up to the last".
        end: u64,
    },
    /// The peer moved our expected inbound sequence number.
    SequenceReset {
        /// NewSeqNo (36).
        new_seq_num: u64,
        /// GapFillFlag (123): a gap fill rather than a reset.
        gap_fill: bool,
    },
    /// The peer rejected one of our messages (35=3).
    Rejected {
        /// RefSeqNum (45) of the rejected message.
        ref_seq_num: Option<u64>,
        /// SessionRejectReason (373), if given.
        reason: Option<u32>,
        /// RefTagID (371), if given.
        ref_tag: Option<u32>,
        /// Text (58), if given.
        text: Option<String>,
    },
    /// We rejected one of the peer's messages (35=3 sent).
    RejectSent {
        /// MsgSeqNum of the message we rejected.
        ref_seq_num: u64,
        /// SessionRejectReason (373) we sent.
        reason: u32,
        /// What was wrong, for the log.
        text: String,
    },
    /// A garbled frame was dropped (counted in [`SessionStats::garbled`]).
    Garbled {
        /// Why it is not a frame.
        error: DecodeError,
    },
    /// The Logout handshake completed (either side started it).
    LoggedOut {
        /// Text (58) of the Logout, or why we sent one.
        reason: String,
    },
    /// The connection must be closed now (after writing what `poll_transmit` returned).
    Disconnect {
        /// Why, for the log.
        reason: String,
    },
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
                .field("password", password)
                .field("heartbeat_secs", heartbeat_secs)
                .field("reset_seq_num", reset_seq_num)
                .field("default_appl_ver_id", default_appl_ver_id)
                .finish(),
            SessionEvent::App { msg, normalized } => f
                .debug_struct("App")
                .field("msg", msg)
                .field("normalized", normalized)
                .finish(),
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
// Each variant is documented by its `#[error]` text, which is what users read.
#[allow(missing_docs)]
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
}

/// Counters for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Frames decoded from the peer.
    pub received: u64,
    /// Frames queued to the peer.
    pub sent: u64,
    /// Inbound bytes that were not a valid frame (dropped).
    pub garbled: u64,
    /// Session-level Rejects (35=3) sent.
    pub rejects_sent: u64,
    /// BusinessMessageRejects (35=j) sent for unsupported application messages.
    pub business_rejects_sent: u64,
    /// PossDup messages we already had.
    pub duplicates_ignored: u64,
    /// ResendRequests (35=2) sent.
    pub resend_requests_sent: u64,
    /// Early messages dropped because the out-of-order queue was full.
    pub queued_dropped: u64,
}

/// Where the session stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionState {
    /// Created, `connect` not called yet.
    Created,
    /// Waiting for the peer's Logon (acceptor) or Logon reply (initiator).
    AwaitingLogon,
    /// Logged on: application messages flow.
    Active,
    /// We sent Logout and wait for the reply.
    LogoutSent,
    /// Disconnect was emitted; the session ignores further input.
    Closed,
}

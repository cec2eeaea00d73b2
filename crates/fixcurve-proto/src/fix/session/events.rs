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
    pub const TAG_OUT_OF_ORDER: u32 = 14;
    pub const GROUP_FIELDS_OUT_OF_ORDER: u32 = 15;
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
        username: Option<String>,
        password: Option<crate::secret::Secret>,
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
                .field("password", password)
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

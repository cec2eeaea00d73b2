//! What one session is configured with, and the limits every session applies.

use std::time::Duration;

use super::super::codec::DecoderLimits;

/// Which side of the TCP connection we are: the initiator sends the first Logon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// We accept the connection and wait for the peer's Logon.
    Acceptor,
    /// We connect and send the Logon.
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
    /// Acceptor or initiator.
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
    /// Password (554) we send (initiator) or require (acceptor).
    pub password: Option<crate::secret::Secret>,
    /// Maximum |SendingTime - now| accepted; `None` disables the check.
    pub check_sending_time: Option<Duration>,
    /// Reject (reason 9) and log out on a CompID mismatch.
    pub check_comp_ids: bool,
    /// Messages that arrived ahead of a gap kept for in-order delivery; beyond this they are
    /// dropped and fetched again by the next ResendRequest.
    pub max_queued: usize,
    /// The same bound in bytes (early messages can be large snapshots).
    pub max_queued_bytes: usize,
    /// Frame size and field count limits for inbound messages.
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
    /// Normalizes an application message before it is delivered: one it cannot read
    /// completely is refused with a session Reject (35=3) naming the reason and tag, and not
    /// delivered, so a field the bridge cannot read is never published. The events it made
    /// go with the message ([`SessionEvent::App`](super::SessionEvent::App)), so the
    /// application does not read the message a second time.
    pub normalize_app: Option<crate::normalize::Normalizer>,
    /// A QuickFIX-format data dictionary (`data_dictionary` in the configuration): every
    /// inbound message handled after the header checks is validated against it first
    /// (fields defined and allowed, formats, enumerations, groups, order, required fields).
    pub dictionary: Option<std::sync::Arc<crate::fix::dictionary::Dictionary>>,
    /// When the session may be logged on: outside it no Logon is accepted or sent, at its end
    /// we log out.
    pub schedule: Option<super::schedule::Schedule>,
    /// With a schedule: both sequence numbers start again at 1 with each new period (as
    /// QuickFIX does with a session time).
    pub reset_each_period: bool,
}

/// Why an application message is refused: SessionRejectReason (373), RefTagID (371), text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// SessionRejectReason (373).
    pub reason: u32,
    /// RefTagID (371), when one field is at fault.
    pub tag: Option<u32>,
    /// Text (58) of the Reject.
    pub text: String,
}

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
    /// Defaults for one session: 30 s heartbeats, QuickFIX-compatible checks.
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
            normalize_app: None,
            dictionary: None,
            schedule: None,
            reset_each_period: true,
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
            .field("password", &self.password)
            .finish_non_exhaustive()
    }
}

//! The first message of a connection, read before a session exists (acceptor routing).

use super::*;

/// What an acceptor needs from the first message of a connection to pick the session (and to
/// check the TLS identity binding) before a `Session` exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogonInfo {
    /// BeginString (8) of the Logon.
    pub begin_string: String,
    /// The peer's SenderCompID (49): our TargetCompID.
    pub sender_comp_id: String,
    /// The peer's TargetCompID (56): our SenderCompID.
    pub target_comp_id: String,
    /// Username (553), if sent.
    pub username: Option<String>,
    /// Never printed (see [`Secret`](crate::secret::Secret)).
    pub password: Option<crate::secret::Secret>,
    /// HeartBtInt (108), if a number.
    pub heartbeat_secs: Option<u64>,
    /// ResetSeqNumFlag (141) is `Y`.
    pub reset_seq_num: bool,
    /// DefaultApplVerID (1137), FIXT.1.1 only.
    pub default_appl_ver_id: Option<String>,
    /// MsgSeqNum (34), if a number.
    pub seq_num: Option<u64>,
}

/// Decodes the first complete frame in `bytes` (leading garbage skipped) and returns its
/// identity if it is a valid Logon (35=A). `None`: incomplete, garbled, or not a Logon.
pub fn peek_logon(bytes: &[u8]) -> Option<LogonInfo> {
    match peek_first(bytes) {
        FirstMessage::Logon(l) => Some(l),
        _ => None,
    }
}

/// What the first complete message of a connection is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FirstMessage {
    /// No complete, valid message yet.
    Incomplete,
    /// A Logon, with what the acceptor needs to pick the session.
    Logon(LogonInfo),
    /// A complete message that is not a usable Logon (its MsgType): the FIX session test
    /// cases say to disconnect at once, without waiting for the logon timeout.
    NotLogon(String),
}

/// Looks at the first complete message in `bytes` (garbled frames before it are skipped, as
/// the session skips them).
pub fn peek_first(bytes: &[u8]) -> FirstMessage {
    let mut d = Decoder::new(DecoderLimits::default());
    d.feed(bytes);
    let Some(msg) = d.find_map(|r| r.ok()) else {
        return FirstMessage::Incomplete;
    };
    if msg.msg_type() != b"A" {
        return FirstMessage::NotLogon(String::from_utf8_lossy(msg.msg_type()).into_owned());
    }
    match logon_info(&msg) {
        Some(l) => FirstMessage::Logon(l),
        None => FirstMessage::NotLogon("A without CompIDs".into()),
    }
}

fn logon_info(msg: &Message) -> Option<LogonInfo> {
    let text = |tag| msg.get_str(tag).map(str::to_owned);
    Some(LogonInfo {
        begin_string: std::str::from_utf8(msg.begin_string()).ok()?.to_owned(),
        sender_comp_id: text(49)?,
        target_comp_id: text(56)?,
        username: text(553),
        password: text(554).map(crate::secret::Secret::new),
        heartbeat_secs: msg.get_u64(108),
        reset_seq_num: msg.get(141).map(|f| f.value == b"Y").unwrap_or(false),
        default_appl_ver_id: text(1137),
        seq_num: msg.seq_num(),
    })
}

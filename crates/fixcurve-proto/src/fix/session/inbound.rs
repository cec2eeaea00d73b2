//! Inbound handling: every message the peer sends, from the header and sequence checks to
//! Logon, SequenceReset, Logout and application messages (delivered, rejected, or answered
//! with a BusinessMessageReject).

use std::time::{Duration, Instant};

use super::reject_reason as rr;
use super::*;

impl Session {
    pub(super) fn on_message(&mut self, msg: Message, now: Instant) {
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
    pub(super) fn verify(
        &mut self,
        msg: &Message,
        now: Instant,
        too_high: bool,
        too_low: bool,
    ) -> bool {
        let Some(seq) = msg.seq_num() else {
            self.logout_and_disconnect("MsgSeqNum (34) missing or not a number".into());
            return false;
        };
        if !self.header_ok(msg, seq, now) {
            return false;
        }
        let expected = self.seqs.next_target;
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
    pub(super) fn orig_sending_time_ok(&mut self, msg: &Message) -> bool {
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
                        None,
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
    #[allow(clippy::arithmetic_side_effects)] // the difference of two valid timestamps fits a time::Duration
    pub(super) fn header_ok(&mut self, msg: &Message, seq: u64, now: Instant) -> bool {
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
                self.reject(msg, rr::COMP_ID_PROBLEM, None, "CompID problem");
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
                                None,
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

    /// The checks `header_ok` makes, for a first Logon: the reason instead of a Reject.
    #[allow(clippy::arithmetic_side_effects)] // the difference of two valid timestamps fits a time::Duration
    fn logon_header_ok(&self, msg: &Message, now: Instant) -> Result<(), String> {
        if self.cfg.check_comp_ids
            && (msg.sender_comp_id() != Some(self.cfg.target_comp_id.as_bytes())
                || msg.target_comp_id() != Some(self.cfg.sender_comp_id.as_bytes()))
        {
            return Err("CompID problem".into());
        }
        let sending = msg
            .get(52)
            .and_then(|f| parse_utc_timestamp(f.value))
            .ok_or("SendingTime (52) missing or malformed")?;
        if let Some(tol) = self.cfg.check_sending_time {
            if (self.wall(now) - sending).abs() > tol {
                return Err("SendingTime accuracy problem".into());
            }
        }
        Ok(())
    }

    pub(super) fn target_too_high(&mut self, msg: Message, seq: u64, answered: bool) {
        let expected = self.seqs.next_target;
        self.highest_seen = self.highest_seen.max(seq);
        let size = msg.as_bytes().len();
        if self.queue.len() < self.cfg.max_queued
            && self.queued_bytes.saturating_add(size) <= self.cfg.max_queued_bytes
            && !self.queue.contains_key(&seq)
        {
            self.queued_bytes = self.queued_bytes.saturating_add(size);
            self.queue.insert(seq, Queued { msg, answered });
        } else {
            // Dropped messages are fetched again by the next ResendRequest.
            self.stats.queued_dropped = self.stats.queued_dropped.saturating_add(1);
        }
        if self.resend_until.is_none() {
            self.events.push_back(SessionEvent::Gap {
                expected,
                received: seq,
            });
            self.send_resend_request(expected, seq.saturating_sub(1));
        }
    }

    pub(super) fn send_resend_request(&mut self, begin: u64, until: u64) {
        self.resend_until = Some(until);
        self.stats.resend_requests_sent = self.stats.resend_requests_sent.saturating_add(1);
        let now = self.last_recv;
        // EndSeqNo 0 = "everything after BeginSeqNo" (FIX 4.2 and later).
        self.send_admin("2", now, |b| {
            put_uint_field(b, 7, begin);
            put_uint_field(b, 16, 0);
        });
    }

    pub(super) fn target_too_low(&mut self, msg: &Message, seq: u64, expected: u64) {
        if msg.poss_dup() {
            // A resent duplicate: ignored, but only once its OrigSendingTime checks out.
            if msg.msg_type() != b"4" && !self.orig_sending_time_ok(msg) {
                return;
            }
            self.stats.duplicates_ignored = self.stats.duplicates_ignored.saturating_add(1);
            return;
        }
        self.logout_and_disconnect(format!(
            "MsgSeqNum too low, expecting {expected} but received {seq}"
        ));
    }

    /// Delivers queued messages that are now in sequence, and re-requests if a hole remains
    /// after the outstanding resend completed.
    pub(super) fn drain_queue(&mut self, now: Instant) {
        loop {
            if !matches!(self.state, SessionState::Active | SessionState::LogoutSent) {
                return;
            }
            let expected = self.seqs.next_target;
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
                    self.send_resend_request(expected, seq.saturating_sub(1));
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

    pub(super) fn on_logon(&mut self, msg: Message, now: Instant) {
        let Some(seq) = msg.seq_num() else {
            self.logout_and_disconnect("MsgSeqNum (34) missing or not a number".into());
            return;
        };
        if self.state == SessionState::AwaitingLogon {
            // A Logon we cannot trust (wrong CompIDs, SendingTime missing or far off) is not
            // answered at all: the FIX session test cases say disconnect, and a Reject would
            // consume a sequence number of a session that never started.
            if let Err(reason) = self.logon_header_ok(&msg, now) {
                self.disconnect(format!("Logon refused: {reason}"));
                return;
            }
            if self.cfg.role == Role::Acceptor {
                if let Err(reason) = self.enter_period(now) {
                    self.disconnect(format!("Logon refused: {reason}"));
                    return;
                }
            }
        } else if !self.header_ok(&msg, seq, now) {
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
            // Not a usable FIXT Logon: disconnect without a reply, as for a bad first Logon.
            self.disconnect("Logon refused: DefaultApplVerID (1137) required for FIXT.1.1".into());
            return;
        }
        let reset = msg.get(141).map(|f| f.value == b"Y").unwrap_or(false);
        let acceptor = self.cfg.role == Role::Acceptor;
        let we_reset = acceptor && (reset || self.cfg.reset_on_logon);
        if we_reset {
            self.reset_seqs();
        } else if reset && !acceptor {
            // The acceptor confirmed (or imposed) a reset: our inbound count restarts.
            self.set_next_target(1);
        }
        let expected = self.seqs.next_target;
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
            password: text_of(msg.get(554)).map(crate::secret::Secret::new),
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

    pub(super) fn send_logon(&mut self, reset: bool, hb: u64, now: Instant) {
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
                put_field(b, 554, p.expose().as_bytes());
            }
            if fixt {
                if let Some(a) = &appl {
                    put_field(b, 1137, a.as_bytes());
                }
            }
        });
    }

    /// In-sequence message after `verify`: empty-value check, then by type.
    pub(super) fn dispatch(&mut self, msg: Message, now: Instant) {
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
        if let Some(dictionary) = &self.cfg.dictionary {
            if let Err(v) = dictionary.validate(&msg) {
                self.reject(&msg, v.reason, v.tag, &v.detail);
                self.incr_target(seq);
                return;
            }
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
                match self.app_check(&msg) {
                    Ok(normalized) => self.events.push_back(SessionEvent::App { msg, normalized }),
                    Err(AppRefusal::Reject(r)) => self.reject(&msg, r.reason, r.tag, &r.text),
                    Err(AppRefusal::Unsupported) => self.business_reject(&msg, now),
                }
            }
        }
    }

    /// Whether an in-sequence application message is delivered, and with what events (when
    /// the session normalizes), or why not.
    pub(super) fn app_check(
        &self,
        msg: &Message,
    ) -> Result<Option<Vec<crate::normalize::Normalized>>, AppRefusal> {
        let t = msg.msg_type();
        if !is_valid_msg_type(t) {
            return Err(AppRefusal::Reject(Rejection {
                reason: rr::INVALID_MSG_TYPE,
                tag: None,
                text: "Invalid MsgType".into(),
            }));
        }
        if let Some(types) = &self.cfg.app_msg_types {
            if !types.iter().any(|x| x.as_bytes() == t) {
                return Err(AppRefusal::Unsupported);
            }
        }
        let Some(normalizer) = &self.cfg.normalize_app else {
            return Ok(None);
        };
        normalizer
            .normalize_message(msg)
            .map(Some)
            .map_err(|e| AppRefusal::Reject(e.rejection()))
    }

    /// BusinessMessageReject (35=j) with BusinessRejectReason 3, unsupported message type.
    pub(super) fn business_reject(&mut self, msg: &Message, now: Instant) {
        let ref_seq = msg.seq_num().unwrap_or(0);
        let ref_type = msg.msg_type().to_vec();
        self.stats.business_rejects_sent = self.stats.business_rejects_sent.saturating_add(1);
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
    pub(super) fn reset_in_session(&mut self, msg: Message, now: Instant) {
        if !self.header_ok(&msg, 1, now) {
            return;
        }
        self.reset_seqs();
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

    pub(super) fn on_sequence_reset(&mut self, msg: Message, now: Instant) {
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
                None,
                &format!("NewSeqNo out of range: above {MAX_SEQ_NUM}"),
            );
            if gap_fill {
                self.incr_target(seq);
            }
            return;
        }
        let expected = self.seqs.next_target;
        if new_seq > expected {
            self.set_next_target(new_seq);
            self.events.push_back(SessionEvent::SequenceReset {
                new_seq_num: new_seq,
                gap_fill,
            });
        } else if new_seq < expected {
            self.reject(
                &msg,
                rr::VALUE_INCORRECT,
                None,
                &format!("Attempt to lower sequence number, invalid value NewSeqNo={new_seq}"),
            );
        }
    }

    pub(super) fn on_logout(&mut self, msg: Message, now: Instant) {
        let reason = text_of(msg.get(58)).unwrap_or_else(|| "logout".to_owned());
        if let Some(seq) = msg.seq_num() {
            if seq == self.seqs.next_target {
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
}

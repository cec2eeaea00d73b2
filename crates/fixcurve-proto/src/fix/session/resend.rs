//! Answering the peer's ResendRequest: stored application messages again with PossDupFlag and
//! OrigSendingTime, administrative ones covered by SequenceReset-GapFill, a chunk at a time.

use std::time::Instant;

use super::reject_reason as rr;
use super::*;

impl Session {
    pub(super) fn on_resend_request(&mut self, msg: Message, now: Instant, _queued: bool) {
        let Some(seq) = msg.seq_num() else {
            self.logout_and_disconnect("MsgSeqNum (34) missing or not a number".into());
            return;
        };
        if !self.header_ok(&msg, seq, now) {
            return;
        }
        let expected = self.seqs.next_target;
        if seq < expected && msg.poss_dup() {
            self.target_too_low(&msg, seq, expected);
            return;
        }
        // A ResendRequest below the expected number is still answered (as QuickFIX does, and
        // its acceptance tests expect): refusing it would leave the peer stuck on its gap.
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
            // A too-low one was answered but consumes nothing: numbers never go back.
            self.incr_target_if_expected(seq);
        }
    }

    /// Resends our stored application messages in `begin..=end` with PossDupFlag=Y and
    /// OrigSendingTime; everything else in the range (administrative messages) is covered by
    /// SequenceReset-GapFill.
    pub(super) fn answer_resend(&mut self, begin: u64, end: u64, now: Instant) {
        let last_sent = self.seqs.next_sender.saturating_sub(1);
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

    /// Asks for the next chunk of stored messages (at most `RESEND_CHUNK`) unless one is
    /// already asked for; `handle_loaded` brings them to `resend_chunk`.
    pub(super) fn resend_step(&mut self) {
        if self.load.is_some() {
            return;
        }
        if let Some(c) = &self.resend {
            let end = c.end.min(c.scan.saturating_add(RESEND_CHUNK - 1));
            self.load = Some(LoadRequest { begin: c.scan, end });
            self.load_polled = false;
        }
    }

    /// Queues the resent frames of one loaded chunk (stored application messages re-framed
    /// with PossDupFlag=Y and OrigSendingTime; gap fills over everything else); when the
    /// answer is complete, releases what was held, else asks for the next chunk.
    pub(super) fn resend_chunk(&mut self, req: LoadRequest, stored: Vec<(u64, Vec<u8>)>) {
        let Some(mut c) = self.resend.take() else {
            return;
        };
        if req.begin != c.scan {
            // The answer was widened back while this chunk was loading: load from there.
            self.resend = Some(c);
            self.resend_step();
            return;
        }
        let upto = req.end.min(c.end);
        for (seq, raw) in stored {
            // Only what was asked for, in order: a store answering more is not trusted.
            if seq < c.next || seq < c.scan || seq > upto {
                continue;
            }
            // An unreadable stored frame is gap-filled over rather than resent as garbage.
            let Some(resent) = self.rebuild_poss_dup(&raw, c.now) else {
                continue;
            };
            if seq > c.next {
                self.send_gap_fill(c.next, seq, c.now);
            }
            self.push_resent(resent, c.now);
            c.next = seq.saturating_add(1);
        }
        if upto >= c.end {
            if c.next <= c.end {
                self.send_gap_fill(c.next, c.end.saturating_add(1), c.now);
            }
            self.transmit.append(&mut self.held);
            return;
        }
        c.scan = upto.saturating_add(1);
        self.resend = Some(c);
        self.resend_step();
    }

    pub(super) fn send_gap_fill(&mut self, seq: u64, new_seq: u64, now: Instant) {
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
    pub(super) fn rebuild_poss_dup(&mut self, raw: &[u8], now: Instant) -> Option<Vec<u8>> {
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
}

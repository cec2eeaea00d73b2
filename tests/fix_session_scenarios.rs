//! FIX session scenarios after the QuickFIX acceptance-test definitions: each feeds the
//! sans-IO session exact peer bytes at exact instants and asserts the exact bytes and events
//! that come out. Framing (9 and 10) of the few fully literal frames was computed
//! independently; the rest compare full frames built from literal header and body text.

use std::time::{Duration, Instant};

use fixcurve::fix::codec::{Decoder, DecoderLimits};
use fixcurve::fix::session::{Role, Session, SessionConfig, SessionEvent, SessionState};
use fixcurve::fix::store::{FileStore, MemoryStore, SeqStore, StoreOp, StoreWork};
use fixcurve::fix::Field;
use fixcurve_proto::testing::{framed, show, soh, Backend, Driver};
use time::macros::datetime;
use time::OffsetDateTime;

const WALL0: OffsetDateTime = datetime!(2026-11-22 09:30:00 UTC);

fn wire(s: &str) -> Vec<u8> {
    soh(s)
}

/// `8=FIX.4.4|9=..|<body>10=..|` with BodyLength and CheckSum filled in.
fn frame(begin: &str, body: &str) -> String {
    show(&framed(begin, body))
}

/// SendingTime text of `WALL0 + ms`.
fn ts(ms: u64) -> String {
    fixcurve::fix::session::utc_timestamp_string(WALL0 + Duration::from_millis(ms))
}

/// Any of our stores behind the shared test driver (a test store must not fail).
struct AnyStore(Box<dyn SeqStore>);

impl Backend for AnyStore {
    fn apply(&mut self, work: StoreWork) {
        self.0.apply(work).expect("test store");
    }
    fn load(&mut self, req: fixcurve::fix::store::LoadRequest) -> Vec<(u64, Vec<u8>)> {
        self.0.load(req).expect("test store")
    }
}

/// A session with its store: the shared driver carries out the work the session asks for,
/// as the tokio layer does, and logs each batch as "write" or "sync".
struct Harness {
    s: Session,
    d: Driver<AnyStore>,
    t0: Instant,
    begin: &'static str,
}

impl Harness {
    fn acceptor() -> Harness {
        Harness::with(acceptor_cfg(), Box::new(MemoryStore::new()))
    }

    fn with(cfg: SessionConfig, store: Box<dyn SeqStore>) -> Harness {
        let t0 = Instant::now();
        let begin = match cfg.begin_string.as_str() {
            "FIXT.1.1" => "FIXT.1.1",
            "FIX.4.2" => "FIX.4.2",
            _ => "FIX.4.4",
        };
        let s = Session::new(cfg, store.state(), t0, WALL0).unwrap();
        let mut h = Harness {
            s,
            d: Driver::new(AnyStore(store)),
            t0,
            begin,
        };
        h.s.connect(t0);
        h.pump();
        h
    }

    fn pump(&mut self) {
        self.d.step(&mut self.s, self.t0);
    }

    fn timeout(&mut self, ms: u64) {
        let now = self.at(ms);
        self.s.handle_timeout(now);
        self.pump();
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    /// A frame from the peer (CLIENT1 -> BRIDGE) sent at `ms`.
    fn peer(&self, seq: u64, msg_type: &str, ms: u64, rest: &str) -> Vec<u8> {
        wire(&frame(
            self.begin,
            &format!(
                "35={msg_type}|49=CLIENT1|56=BRIDGE|34={seq}|52={}|{rest}",
                ts(ms)
            ),
        ))
    }

    /// What we should send (BRIDGE -> CLIENT1) at `ms`.
    fn ours(&self, seq: u64, msg_type: &str, ms: u64, rest: &str) -> String {
        frame(
            self.begin,
            &format!(
                "35={msg_type}|49=BRIDGE|56=CLIENT1|34={seq}|52={}|{rest}",
                ts(ms)
            ),
        )
    }

    fn input(&mut self, bytes: &[u8], ms: u64) {
        let now = self.at(ms);
        self.s.handle_input(bytes, now);
        self.pump();
    }

    /// Everything the session sends now, a resend answer chunk by chunk as the driver does.
    fn out(&mut self) -> Vec<String> {
        let t0 = self.t0;
        self.d
            .transmit(&mut self.s, t0)
            .iter()
            .map(|b| show(b))
            .collect()
    }

    fn events(&mut self) -> Vec<SessionEvent> {
        let t0 = self.t0;
        self.d.events(&mut self.s, t0)
    }

    fn app_seqs(&mut self) -> Vec<u64> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                SessionEvent::App { msg: m, .. } => m.seq_num(),
                _ => None,
            })
            .collect()
    }

    /// Peer logs on with seq 1 at t=0; our reply is checked and drained.
    fn logged_on(mut self) -> Harness {
        let logon = self.peer(1, "A", 0, "98=0|108=30|");
        self.input(&logon, 0);
        let out = self.out();
        assert_eq!(out, vec![self.ours(1, "A", 0, "98=0|108=30|")]);
        assert!(matches!(self.events()[..], [SessionEvent::LoggedOn { .. }]));
        self
    }
}

fn acceptor_cfg() -> SessionConfig {
    SessionConfig::new("FIX.4.4", "BRIDGE", "CLIENT1", Role::Acceptor)
}

fn disconnect_reason(events: &[SessionEvent]) -> Option<String> {
    events.iter().find_map(|e| match e {
        SessionEvent::Disconnect { reason } => Some(reason.clone()),
        _ => None,
    })
}

#[test]
fn valid_logon_exact_bytes() {
    let mut h = Harness::acceptor();
    assert_eq!(h.s.state(), SessionState::AwaitingLogon);
    let logon = h.peer(1, "A", 0, "98=0|108=30|553=alice|554=s3cret|");
    h.input(&logon, 0);
    // Literal frame, BodyLength and CheckSum computed outside this code base.
    assert_eq!(
        h.out(),
        vec!["8=FIX.4.4|9=68|35=A|49=BRIDGE|56=CLIENT1|34=1|52=20261122-09:30:00.000|98=0|108=30|10=141|"]
    );
    let ev = h.events();
    assert_eq!(
        ev,
        vec![SessionEvent::LoggedOn {
            username: Some("alice".into()),
            password: Some(fixcurve::secret::Secret::new("s3cret")),
            heartbeat_secs: 30,
            reset_seq_num: false,
            default_appl_ver_id: None,
        }]
    );
    assert!(
        !format!("{ev:?}").contains("s3cret"),
        "password must not be printable"
    );
    assert!(h.s.is_logged_on());
    assert_eq!((h.s.next_sender_seq(), h.s.next_target_seq()), (2, 2));
}

#[test]
fn logon_with_reset_seq_num_flag_resets_both_sides() {
    let mut h = Harness::with(acceptor_cfg(), Box::new(MemoryStore::with_seqs(50, 40)));
    let logon = h.peer(1, "A", 0, "98=0|108=30|141=Y|");
    h.input(&logon, 0);
    assert_eq!(h.out(), vec![h.ours(1, "A", 0, "98=0|108=30|141=Y|")]);
    assert_eq!((h.s.next_sender_seq(), h.s.next_target_seq()), (2, 2));
}

#[test]
fn first_message_not_logon_disconnects_without_reply() {
    let mut h = Harness::acceptor();
    let hb = h.peer(1, "0", 0, "");
    h.input(&hb, 0);
    assert!(h.out().is_empty());
    let reason = disconnect_reason(&h.events()).unwrap();
    assert!(reason.contains("not a Logon"), "{reason}");
    assert_eq!(h.s.state(), SessionState::Closed);
    // Closed sessions ignore input.
    let logon = h.peer(2, "A", 0, "98=0|108=30|");
    h.input(&logon, 1);
    assert!(h.out().is_empty() && h.events().is_empty());
}

#[test]
fn logon_timeout() {
    let mut h = Harness::acceptor();
    assert_eq!(h.s.poll_timeout(), Some(h.at(10_000)));
    h.s.handle_timeout(h.at(9_999));
    assert!(h.events().is_empty());
    h.s.handle_timeout(h.at(10_000));
    assert!(disconnect_reason(&h.events())
        .unwrap()
        .contains("Logon timeout"));
}

#[test]
fn logon_with_encryption_is_refused() {
    let mut h = Harness::acceptor();
    let logon = h.peer(1, "A", 0, "98=1|108=30|");
    h.input(&logon, 0);
    assert_eq!(
        h.out(),
        vec![h.ours(
            1,
            "5",
            0,
            "58=Unsupported EncryptMethod (98): only 0 (none)|"
        )]
    );
    assert!(disconnect_reason(&h.events()).is_some());
}

#[test]
fn seq_too_high_resend_request_then_queued_delivered_in_order() {
    let mut h = Harness::acceptor().logged_on();
    // Expected 2, peer sends 5: ResendRequest 2..infinity, 5 queued.
    let m5 = h.peer(5, "D", 100, "11=o5|");
    h.input(&m5, 100);
    assert_eq!(h.out(), vec![h.ours(2, "2", 100, "7=2|16=0|")]);
    assert_eq!(
        h.events(),
        vec![SessionEvent::Gap {
            expected: 2,
            received: 5
        }]
    );
    // A second early message does not trigger a second ResendRequest.
    let m6 = h.peer(6, "D", 150, "11=o6|");
    h.input(&m6, 150);
    assert!(h.out().is_empty());
    // The resend: 2 and 3 as PossDup, 4 gap-filled; then 5 and 6 come out of the queue.
    let orig = ts(10);
    let r2 = h.peer(2, "D", 200, &format!("43=Y|122={orig}|11=o2|"));
    let r3 = h.peer(3, "D", 200, &format!("43=Y|122={orig}|11=o3|"));
    let gf = h.peer(4, "4", 200, &format!("43=Y|122={orig}|123=Y|36=5|"));
    h.input(&[r2, r3, gf].concat(), 200);
    assert!(h.out().is_empty());
    let ev = h.events();
    let order: Vec<String> = ev
        .iter()
        .filter_map(|e| match e {
            SessionEvent::App { msg: m, .. } => Some(m.get_str(11).unwrap().to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(order, vec!["o2", "o3", "o5", "o6"]);
    assert_eq!(h.s.next_target_seq(), 7);
    // A hole left after the resend is requested again.
    let m9 = h.peer(9, "D", 300, "11=o9|");
    h.input(&m9, 300);
    assert_eq!(h.out(), vec![h.ours(3, "2", 300, "7=7|16=0|")]);
}

#[test]
fn seq_too_low_without_poss_dup_logs_out() {
    let mut h = Harness::acceptor().logged_on();
    let stale = h.peer(1, "D", 0, "11=x|");
    h.input(&stale, 0);
    assert_eq!(
        h.out(),
        vec!["8=FIX.4.4|9=105|35=5|49=BRIDGE|56=CLIENT1|34=2|52=20261122-09:30:00.000|58=MsgSeqNum too low, expecting 2 but received 1|10=040|"]
    );
    assert!(disconnect_reason(&h.events())
        .unwrap()
        .contains("expecting 2 but received 1"));
}

#[test]
fn poss_dup_duplicates_are_ignored() {
    let mut h = Harness::acceptor().logged_on();
    let m2 = h.peer(2, "D", 10, "11=a|");
    h.input(&m2, 10);
    assert_eq!(h.app_seqs(), vec![2]);
    let dup = h.peer(2, "D", 20, &format!("43=Y|122={}|11=a|", ts(10)));
    h.input(&dup, 20);
    assert!(h.out().is_empty());
    assert!(h.events().is_empty());
    assert_eq!(h.s.stats().duplicates_ignored, 1);
    assert_eq!(h.s.next_target_seq(), 3);
}

#[test]
fn heartbeat_sent_after_interval_of_silence() {
    let mut h = Harness::acceptor().logged_on();
    assert_eq!(h.s.poll_timeout(), Some(h.at(30_000)));
    h.s.handle_timeout(h.at(29_999));
    assert!(h.out().is_empty());
    h.s.handle_timeout(h.at(30_000));
    assert_eq!(h.out(), vec![h.ours(2, "0", 30_000, "")]);
    // Their heartbeat is accepted silently.
    let hb = h.peer(2, "0", 30_500, "");
    h.input(&hb, 30_500);
    assert!(h.out().is_empty() && h.events().is_empty());
    assert_eq!(h.s.next_target_seq(), 3);
}

#[test]
fn test_request_answered_with_its_id() {
    let mut h = Harness::acceptor().logged_on();
    let tr = h.peer(2, "1", 1_000, "112=PING-7|");
    h.input(&tr, 1_000);
    assert_eq!(h.out(), vec![h.ours(2, "0", 1_000, "112=PING-7|")]);
    // Missing TestReqID: Reject with reason 1 (required tag missing).
    let bad = h.peer(3, "1", 2_000, "");
    h.input(&bad, 2_000);
    assert_eq!(
        h.out(),
        vec![h.ours(
            3,
            "3",
            2_000,
            "45=3|371=112|372=1|373=1|58=Required tag missing|"
        )]
    );
    assert_eq!(h.s.next_target_seq(), 4);
}

#[test]
fn silent_peer_gets_test_request_then_disconnect() {
    let mut h = Harness::acceptor().logged_on();
    h.s.handle_timeout(h.at(30_000));
    assert_eq!(h.out(), vec![h.ours(2, "0", 30_000, "")]);
    // 1.2 x HeartBtInt without input: TestRequest.
    assert_eq!(h.s.poll_timeout(), Some(h.at(36_000)));
    h.s.handle_timeout(h.at(36_000));
    assert_eq!(h.out(), vec![h.ours(3, "1", 36_000, "112=TEST1|")]);
    // 2.4 x HeartBtInt: give up. No Heartbeat while the TestRequest is outstanding.
    assert_eq!(h.s.poll_timeout(), Some(h.at(72_000)));
    h.s.handle_timeout(h.at(66_000));
    assert!(h.out().is_empty());
    h.s.handle_timeout(h.at(72_000));
    assert!(disconnect_reason(&h.events())
        .unwrap()
        .contains("heartbeat timeout"));
}

#[test]
fn resend_request_answered_with_poss_dup_and_gap_fill() {
    let mut h = Harness::acceptor().logged_on();
    let sym = Field::new(55, b"EUR/USD");
    assert_eq!(
        h.s.send_app("V", &[Field::new(262, b"r1"), sym], h.at(1_000))
            .unwrap(),
        2
    );
    assert_eq!(
        h.s.send_app("V", &[Field::new(262, b"r2"), sym], h.at(2_000))
            .unwrap(),
        3
    );
    h.s.handle_timeout(h.at(32_000)); // Heartbeat, seq 4
    assert_eq!(
        h.s.send_app("V", &[Field::new(262, b"r3"), sym], h.at(33_000))
            .unwrap(),
        5
    );
    let sent = h.out();
    assert_eq!(sent.len(), 4);
    assert_eq!(sent[0], h.ours(2, "V", 1_000, "262=r1|55=EUR/USD|"));

    let rr = h.peer(2, "2", 34_000, "7=1|16=0|");
    h.input(&rr, 34_000);
    let t = ts(34_000);
    assert_eq!(
        h.out(),
        vec![
            h.ours(1, "4", 34_000, &format!("43=Y|122={t}|123=Y|36=2|")),
            h.ours(
                2,
                "V",
                34_000,
                &format!("43=Y|122={}|262=r1|55=EUR/USD|", ts(1_000))
            ),
            h.ours(
                3,
                "V",
                34_000,
                &format!("43=Y|122={}|262=r2|55=EUR/USD|", ts(2_000))
            ),
            h.ours(4, "4", 34_000, &format!("43=Y|122={t}|123=Y|36=5|")),
            h.ours(
                5,
                "V",
                34_000,
                &format!("43=Y|122={}|262=r3|55=EUR/USD|", ts(33_000))
            ),
        ]
    );
    assert_eq!(
        h.events(),
        vec![SessionEvent::ResendRequested { begin: 1, end: 0 }]
    );
    // Resending does not consume sequence numbers.
    assert_eq!(h.s.next_sender_seq(), 6);
    // A bounded range: only 3..=3.
    let rr = h.peer(3, "2", 35_000, "7=3|16=3|");
    h.input(&rr, 35_000);
    assert_eq!(
        h.out(),
        vec![h.ours(
            3,
            "V",
            35_000,
            &format!("43=Y|122={}|262=r2|55=EUR/USD|", ts(2_000))
        )]
    );
}

#[test]
fn sequence_reset_gap_fill_and_reset_mode() {
    let mut h = Harness::acceptor().logged_on();
    // GapFill in sequence: jump to 10.
    let gf = h.peer(2, "4", 100, "123=Y|36=10|");
    h.input(&gf, 100);
    assert_eq!(h.s.next_target_seq(), 10);
    assert_eq!(
        h.events(),
        vec![SessionEvent::SequenceReset {
            new_seq_num: 10,
            gap_fill: true
        }]
    );
    // Reset mode ignores MsgSeqNum: jump to 20.
    let reset = h.peer(999, "4", 200, "36=20|");
    h.input(&reset, 200);
    assert_eq!(h.s.next_target_seq(), 20);
    assert!(h.out().is_empty());
    // Lowering is refused with Reject reason 5.
    let lower = h.peer(20, "4", 300, "36=5|");
    h.input(&lower, 300);
    assert_eq!(
        h.out(),
        vec![h.ours(
            2,
            "3",
            300,
            "45=20|372=4|373=5|58=Value is incorrect (out of range) for this tag|"
        )]
    );
    assert_eq!(h.s.next_target_seq(), 20);
}

#[test]
fn logout_initiated_by_us() {
    let mut h = Harness::acceptor().logged_on();
    h.s.logout("end of day", h.at(1_000));
    assert_eq!(h.out(), vec![h.ours(2, "5", 1_000, "58=end of day|")]);
    assert_eq!(h.s.state(), SessionState::LogoutSent);
    assert!(h.s.send_app("V", &[], h.at(1_001)).is_err());
    let reply = h.peer(2, "5", 1_500, "");
    h.input(&reply, 1_500);
    let ev = h.events();
    assert!(matches!(ev[0], SessionEvent::LoggedOut { .. }));
    assert_eq!(disconnect_reason(&ev).unwrap(), "logout complete");
    assert!(h.out().is_empty());
}

#[test]
fn logout_initiated_by_peer_and_logout_timeout() {
    let mut h = Harness::acceptor().logged_on();
    let lo = h.peer(2, "5", 1_000, "58=bye|");
    h.input(&lo, 1_000);
    assert_eq!(h.out(), vec![h.ours(2, "5", 1_000, "")]);
    let ev = h.events();
    assert_eq!(
        ev[0],
        SessionEvent::LoggedOut {
            reason: "peer logged out: bye".into()
        }
    );
    assert!(disconnect_reason(&ev).is_some());

    let mut h = Harness::acceptor().logged_on();
    h.s.logout("", h.at(0));
    assert_eq!(h.out(), vec![h.ours(2, "5", 0, "")]);
    assert_eq!(h.s.poll_timeout(), Some(h.at(2_000)));
    h.s.handle_timeout(h.at(2_000));
    assert!(disconnect_reason(&h.events())
        .unwrap()
        .contains("Logout timeout"));
}

#[test]
fn garbled_messages_are_dropped_and_counted() {
    let mut h = Harness::acceptor().logged_on();
    let mut bad = h.peer(2, "D", 10, "11=x|");
    let n = bad.len();
    bad[n - 2] = if bad[n - 2] == b'9' { b'0' } else { b'9' }; // wrong checksum
    let good = h.peer(2, "D", 20, "11=y|");
    h.input(&[b"noise".to_vec(), bad, good].concat(), 20);
    assert!(h.out().is_empty());
    let ev = h.events();
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, SessionEvent::Garbled { .. }))
            .count(),
        2
    );
    assert_eq!(
        ev.iter()
            .filter_map(|e| match e {
                SessionEvent::App { msg: m, .. } => m.get_str(11),
                _ => None,
            })
            .collect::<Vec<_>>(),
        vec!["y"]
    );
    assert_eq!(h.s.stats().garbled, 2);
    assert_eq!(h.s.next_target_seq(), 3);
}

#[test]
fn wrong_comp_id_rejected_and_logged_out() {
    let mut h = Harness::acceptor().logged_on();
    let m = wire(&frame(
        "FIX.4.4",
        &format!("35=D|49=INTRUDER|56=BRIDGE|34=2|52={}|11=x|", ts(10)),
    ));
    h.input(&m, 10);
    assert_eq!(
        h.out(),
        vec![
            h.ours(2, "3", 10, "45=2|372=D|373=9|58=CompID problem|"),
            h.ours(
                3,
                "5",
                10,
                "58=CompID problem: expected 49=CLIENT1 56=BRIDGE, got 49=INTRUDER 56=BRIDGE|"
            ),
        ]
    );
    assert!(disconnect_reason(&h.events()).is_some());
}

#[test]
fn sending_time_out_of_tolerance_rejected() {
    let mut h = Harness::acceptor().logged_on();
    // SendingTime 10 minutes behind our clock; tolerance is 120 s.
    let m = wire(&frame(
        "FIX.4.4",
        &format!(
            "35=D|49=CLIENT1|56=BRIDGE|34=2|52={}|11=x|",
            fixcurve::fix::session::utc_timestamp_string(WALL0 - Duration::from_secs(600))
        ),
    ));
    h.input(&m, 0);
    let out = h.out();
    assert_eq!(
        out[0],
        h.ours(
            2,
            "3",
            0,
            "45=2|372=D|373=10|58=SendingTime accuracy problem|"
        )
    );
    assert!(out[1].contains("|35=5|"));
    assert!(disconnect_reason(&h.events()).is_some());
}

#[test]
fn empty_value_rejected_with_reason_4_and_consumed() {
    let mut h = Harness::acceptor().logged_on();
    let m = h.peer(2, "D", 10, "11=|55=X|");
    h.input(&m, 10);
    assert_eq!(
        h.out(),
        vec![h.ours(
            2,
            "3",
            10,
            "45=2|371=11|372=D|373=4|58=Tag specified without a value|"
        )]
    );
    assert_eq!(h.s.next_target_seq(), 3);
}

#[test]
fn rate_limit_logs_out_flooding_peer() {
    let mut cfg = acceptor_cfg();
    cfg.max_msgs_per_sec = Some(3);
    let mut h = Harness::with(cfg, Box::new(MemoryStore::new())).logged_on();
    let burst: Vec<u8> = (2..=4).flat_map(|s| h.peer(s, "0", 500, "")).collect();
    h.input(&burst, 500);
    let ev = h.events();
    assert!(disconnect_reason(&ev).unwrap().contains("rate limit"));
    // Messages in a later window are fine (fresh session to show the window resets).
    let mut cfg = acceptor_cfg();
    cfg.max_msgs_per_sec = Some(3);
    let mut h = Harness::with(cfg, Box::new(MemoryStore::new())).logged_on();
    for (i, s) in (2..=7).enumerate() {
        let m = h.peer(s, "0", 1_000 + 400 * i as u64, "");
        h.input(&m, 1_000 + 400 * i as u64);
    }
    assert!(disconnect_reason(&h.events()).is_none());
}

#[test]
fn initiator_fixt_logon_with_credentials_and_appl_ver_id() {
    let mut cfg = SessionConfig::new("FIXT.1.1", "BRIDGE", "CLIENT1", Role::Initiator);
    cfg.heartbeat_secs = 1;
    cfg.reset_on_logon = true;
    cfg.username = Some("u1".into());
    cfg.password = Some(fixcurve::secret::Secret::new("p1"));
    let mut h = Harness::with(cfg, Box::new(MemoryStore::with_seqs(7, 9)));
    assert_eq!(
        h.out(),
        vec![h.ours(1, "A", 0, "98=0|108=1|141=Y|553=u1|554=p1|1137=9|")]
    );
    let reply = h.peer(1, "A", 50, "98=0|108=1|141=Y|1137=9|");
    h.input(&reply, 50);
    assert!(h.s.is_logged_on());
    assert!(matches!(
        h.events()[..],
        [SessionEvent::LoggedOn {
            heartbeat_secs: 1,
            reset_seq_num: true,
            ..
        }]
    ));
    assert_eq!((h.s.next_sender_seq(), h.s.next_target_seq()), (2, 2));
    // The reply moved our inbound number and sent nothing: its sync is due 50 ms later,
    // then only the heartbeat timer is left.
    assert_eq!(h.s.poll_timeout(), Some(h.at(100)));
    h.timeout(100);
    assert_eq!(h.d.log.last(), Some(&"sync"));
    assert_eq!(h.s.poll_timeout(), Some(h.at(1_000)));
}

#[test]
fn fixt_acceptor_requires_default_appl_ver_id() {
    let cfg = SessionConfig::new("FIXT.1.1", "BRIDGE", "CLIENT1", Role::Acceptor);
    let mut h = Harness::with(cfg, Box::new(MemoryStore::new()));
    let logon = h.peer(1, "A", 0, "98=0|108=30|");
    h.input(&logon, 0);
    assert!(disconnect_reason(&h.events()).unwrap().contains("1137"));
}

#[test]
fn wrong_begin_string_logs_out() {
    let mut h = Harness::acceptor().logged_on();
    let m = wire(&frame(
        "FIX.4.2",
        &format!("35=0|49=CLIENT1|56=BRIDGE|34=2|52={}|", ts(0)),
    ));
    h.input(&m, 0);
    assert!(disconnect_reason(&h.events())
        .unwrap()
        .contains("BeginString"));
}

/// Partial reads and many messages per read through the whole session.
#[test]
fn byte_at_a_time_input() {
    let mut h = Harness::acceptor();
    let all: Vec<u8> = [
        h.peer(1, "A", 0, "98=0|108=30|"),
        h.peer(2, "D", 0, "11=a|"),
        h.peer(3, "D", 0, "11=b|"),
    ]
    .concat();
    for b in &all {
        h.input(std::slice::from_ref(b), 0);
    }
    assert_eq!(h.out().len(), 1);
    assert_eq!(h.app_seqs(), vec![2, 3]);
}

#[test]
fn restart_recovers_sequence_numbers_and_resends_from_file_store() {
    let dir = tempfile::tempdir().unwrap();
    let id = acceptor_cfg().session_id();
    assert_eq!(id, "FIX.4.4-BRIDGE-CLIENT1");
    {
        let store = FileStore::open(dir.path(), &id).unwrap();
        let mut h = Harness::with(acceptor_cfg(), Box::new(store)).logged_on();
        h.s.send_app("D", &[Field::new(11, b"kept")], h.at(100))
            .unwrap();
        let m2 = h.peer(2, "D", 200, "11=in|");
        h.input(&m2, 200);
        assert_eq!(h.app_seqs(), vec![2]);
        // As after kill -9: the store does nothing on drop; only committed batches count.
        drop(h);
    }
    let store = FileStore::open(dir.path(), &id).unwrap();
    assert_eq!((store.next_sender_seq(), store.next_target_seq()), (3, 3));
    let mut h = Harness::with(acceptor_cfg(), Box::new(store));
    let logon = h.peer(3, "A", 0, "98=0|108=30|");
    h.input(&logon, 0);
    assert_eq!(h.out(), vec![h.ours(3, "A", 0, "98=0|108=30|")]);
    // The peer missed our seq 2 and asks for it: it comes back from disk.
    let rr = h.peer(4, "2", 10, "7=1|16=0|");
    h.input(&rr, 10);
    assert_eq!(
        h.out(),
        vec![
            h.ours(1, "4", 10, &format!("43=Y|122={}|123=Y|36=2|", ts(10))),
            h.ours(2, "D", 10, &format!("43=Y|122={}|11=kept|", ts(100))),
            h.ours(3, "4", 10, &format!("43=Y|122={}|123=Y|36=4|", ts(10))),
        ]
    );
}

/// A value with SOH would corrupt the frame: refused unless it is a length-prefixed data field.
#[test]
fn send_app_refuses_soh_in_text_fields_but_carries_binary_data() {
    let mut h = Harness::acceptor().logged_on();
    assert!(h
        .s
        .send_app("D", &[Field::new(58, b"x\x01y")], h.at(1))
        .is_err());
    let data = b"x\x01y=z";
    h.s.send_app("D", &[Field::new(95, b"5"), Field::new(96, data)], h.at(1))
        .unwrap();
    let out: Vec<Vec<u8>> = std::iter::from_fn(|| h.s.poll_transmit()).collect();
    let mut d = Decoder::new(DecoderLimits::default());
    d.feed(&out[0]);
    let m = d.next().unwrap().unwrap();
    assert_eq!(m.get(96).unwrap().value, data);
    assert_eq!(m.seq_num(), Some(2));
}

#[test]
fn initiator_sees_why_its_logon_was_refused() {
    let cfg = SessionConfig::new("FIX.4.4", "BRIDGE", "CLIENT1", Role::Initiator);
    let mut h = Harness::with(cfg, Box::new(MemoryStore::new()));
    assert_eq!(h.out(), vec![h.ours(1, "A", 0, "98=0|108=30|")]);
    let lo = h.peer(1, "5", 10, "58=unknown CompID|");
    h.input(&lo, 10);
    let ev = h.events();
    assert_eq!(
        ev[0],
        SessionEvent::LoggedOut {
            reason: "logon refused by peer: unknown CompID".into()
        }
    );
    assert!(disconnect_reason(&ev).is_some());
}

#[test]
fn logon_with_seq_too_high_logs_on_then_requests_resend() {
    let mut h = Harness::acceptor();
    let logon = h.peer(5, "A", 0, "98=0|108=30|");
    h.input(&logon, 0);
    assert_eq!(
        h.out(),
        vec![
            h.ours(1, "A", 0, "98=0|108=30|"),
            h.ours(2, "2", 0, "7=1|16=0|")
        ]
    );
    let ev = h.events();
    assert!(matches!(ev[0], SessionEvent::LoggedOn { .. }));
    assert_eq!(
        ev[1],
        SessionEvent::Gap {
            expected: 1,
            received: 5
        }
    );
    // The peer gap-fills 1..=5 (its Logon included): next expected is 6.
    let gf = h.peer(1, "4", 10, &format!("43=Y|122={}|123=Y|36=6|", ts(10)));
    h.input(&gf, 10);
    assert_eq!(h.s.next_target_seq(), 6);
    let m6 = h.peer(6, "D", 20, "11=a|");
    h.input(&m6, 20);
    assert_eq!(h.app_seqs(), vec![6]);
}

#[test]
fn resend_request_with_seq_too_high_is_answered_once_and_queued() {
    let mut h = Harness::acceptor().logged_on();
    h.s.send_app("D", &[Field::new(11, b"z")], h.at(5)).unwrap();
    h.out();
    let rr = h.peer(4, "2", 10, "7=2|16=2|");
    h.input(&rr, 10);
    assert_eq!(
        h.out(),
        vec![
            h.ours(2, "D", 10, &format!("43=Y|122={}|11=z|", ts(5))),
            h.ours(3, "2", 10, "7=2|16=0|"),
        ]
    );
    let r2 = h.peer(2, "0", 20, &format!("43=Y|122={}|", ts(1)));
    let r3 = h.peer(3, "0", 20, &format!("43=Y|122={}|", ts(1)));
    h.input(&[r2, r3].concat(), 20);
    // Draining the queued ResendRequest does not answer it a second time.
    assert!(h.out().is_empty());
    assert_eq!(h.s.next_target_seq(), 5);
}

/// A ResendRequest for everything after many messages is answered a chunk at a time (memory
/// stays bounded whatever the peer asks), in order, and what the same input produced besides
/// (our own ResendRequest for the peer's gap) leaves after the whole answer.
#[test]
fn large_resend_answered_in_chunks_then_held_frames() {
    const SENT: u64 = 3_000;
    let mut h = Harness::acceptor().logged_on();
    for i in 0..SENT {
        let id = format!("c{i}");
        h.s.send_app("D", &[Field::new(11, id.as_bytes())], h.at(5))
            .unwrap();
    }
    assert_eq!(h.out().len() as u64, SENT);
    // Seq 3 while 2 is expected: answered, then our own ResendRequest for 2.
    let rr = h.peer(3, "2", 10, "7=1|16=0|");
    h.input(&rr, 10);
    assert!(h.s.transmit_pending());
    let out = h.out();
    assert!(!h.s.transmit_pending());
    assert!(
        (1..=300).contains(&h.d.largest_chunk),
        "{} frames built at once for one ResendRequest",
        h.d.largest_chunk
    );
    assert_eq!(out.len() as u64, 1 + SENT + 1);
    assert_eq!(
        out[0],
        h.ours(1, "4", 10, &format!("43=Y|122={}|123=Y|36=2|", ts(10)))
    );
    for (i, frame) in out[1..=SENT as usize].iter().enumerate() {
        let seq = i as u64 + 2;
        let body = format!("43=Y|122={}|11=c{i}|", ts(5));
        assert_eq!(frame, &h.ours(seq, "D", 10, &body), "resent frame {seq}");
    }
    assert_eq!(
        out[SENT as usize + 1],
        h.ours(SENT + 2, "2", 10, "7=2|16=0|")
    );
}

#[test]
fn fix42_session_logs_on() {
    let cfg = SessionConfig::new("FIX.4.2", "BRIDGE", "CLIENT1", Role::Acceptor);
    let mut h = Harness::with(cfg, Box::new(MemoryStore::new()));
    let logon = h.peer(1, "A", 0, "98=0|108=10|");
    h.input(&logon, 0);
    assert_eq!(h.out(), vec![h.ours(1, "A", 0, "98=0|108=10|")]);
    assert!(h.s.is_logged_on());
    assert_eq!(h.s.heartbeat_interval(), Duration::from_secs(10));
    assert!(h.ours(1, "A", 0, "").starts_with("8=FIX.4.2|"));
}

/// Early messages beyond the queue bound are dropped, not buffered without limit; the next
/// ResendRequest brings them back.
#[test]
fn out_of_order_queue_is_bounded() {
    let mut cfg = acceptor_cfg();
    cfg.max_queued = 2;
    let mut h = Harness::with(cfg, Box::new(MemoryStore::new())).logged_on();
    let early: Vec<u8> = (5..=8).flat_map(|s| h.peer(s, "D", 10, "11=e|")).collect();
    h.input(&early, 10);
    assert_eq!(h.s.stats().queued_dropped, 2);
    assert_eq!(h.out(), vec![h.ours(2, "2", 10, "7=2|16=0|")]);
    let gf = h.peer(2, "4", 20, &format!("43=Y|122={}|123=Y|36=5|", ts(20)));
    h.input(&gf, 20);
    // 5 and 6 were queued and come out; 7 and 8 were dropped and are asked for again.
    assert_eq!(h.app_seqs(), vec![5, 6]);
    assert_eq!(h.out(), vec![h.ours(3, "2", 20, "7=7|16=0|")]);
}

/// A logged-on acceptor; its harness logs each store batch as "write" or "sync".
fn sync_logged(cfg: SessionConfig) -> Harness {
    Harness::with(cfg, Box::new(MemoryStore::new())).logged_on()
}

#[test]
fn inbound_only_batches_do_not_wait_for_the_disk_but_are_synced_soon_and_before_any_reply() {
    let mut h = sync_logged(acceptor_cfg());
    assert_eq!(h.d.log.last(), Some(&"sync"), "Logon reply synced first");
    h.d.log.clear();
    let heartbeat_due = h.at(30_000);
    assert_eq!(h.s.poll_timeout(), Some(heartbeat_due));

    // Executions in, nothing out: written, not synced; the sync is due 50 ms later.
    let mut batch = h.peer(2, "8", 100, "37=O1|17=E1|150=0|39=0|");
    batch.extend(h.peer(3, "8", 100, "37=O1|17=E2|150=F|39=2|"));
    h.input(&batch, 100);
    assert_eq!(h.app_seqs(), vec![2, 3]);
    assert!(h.out().is_empty());
    assert_eq!(h.d.log, ["write"]);
    assert_eq!(h.s.poll_timeout(), Some(h.at(150)));
    // More input before then neither syncs nor moves the deadline.
    let m = h.peer(4, "8", 120, "37=O1|17=E3|150=F|39=2|");
    h.input(&m, 120);
    assert_eq!(h.d.log, ["write", "write"]);
    assert_eq!(h.s.poll_timeout(), Some(h.at(150)));
    // The timer syncs it, and only the heartbeat timer is left.
    h.timeout(150);
    assert_eq!(h.d.log, ["write", "write", "sync"]);
    assert!(h.out().is_empty());
    assert_eq!(h.s.poll_timeout(), Some(heartbeat_due));

    // A batch that answers (TestRequest -> Heartbeat) is synced before its bytes can leave.
    h.d.log.clear();
    let tr = h.peer(5, "1", 200, "112=T1|");
    h.input(&tr, 200);
    assert_eq!(h.d.log, ["sync"]);
    assert_eq!(h.out(), vec![h.ours(2, "0", 200, "112=T1|")]);
}

#[test]
fn inbound_sync_after_zero_syncs_every_batch_before_its_events() {
    let mut cfg = acceptor_cfg();
    cfg.inbound_sync_after = Duration::ZERO;
    let mut h = sync_logged(cfg);
    h.d.log.clear();
    let m = h.peer(2, "8", 100, "37=O1|17=E1|150=0|39=0|");
    h.input(&m, 100);
    assert_eq!(h.d.log, ["sync"]);
    assert_eq!(h.app_seqs(), vec![2]);
    assert_eq!(h.s.poll_timeout(), Some(h.at(30_000)), "no sync timer");
}

// ---- conformance: what a FIX counterparty expects (issue: QuickFIX acceptance behaviour) ----

#[test]
fn reset_on_logon_acceptor_echoes_141_only_when_asked() {
    let mut cfg = acceptor_cfg();
    cfg.reset_on_logon = true;
    let mut h = Harness::with(cfg.clone(), Box::new(MemoryStore::with_seqs(9, 7)));
    // QuickFIX's default initiator (ResetOnLogon=N) on a fresh store: no 141 in, none out.
    let logon = h.peer(1, "A", 0, "98=0|108=30|");
    h.input(&logon, 0);
    assert_eq!(h.out(), vec![h.ours(1, "A", 0, "98=0|108=30|")]);
    assert!(h.s.is_logged_on());
    assert_eq!((h.s.next_sender_seq(), h.s.next_target_seq()), (2, 2));
    // An initiator that asks gets the echo.
    let mut h = Harness::with(cfg, Box::new(MemoryStore::with_seqs(9, 7)));
    let logon = h.peer(1, "A", 0, "98=0|108=30|141=Y|");
    h.input(&logon, 0);
    assert_eq!(h.out(), vec![h.ours(1, "A", 0, "98=0|108=30|141=Y|")]);
}

#[test]
fn logon_with_reset_inside_a_session_resets_both_sides() {
    let mut h = Harness::acceptor().logged_on();
    for seq in 2..5 {
        let m = h.peer(seq, "D", 10, "11=x|");
        h.input(&m, 10);
    }
    assert_eq!(h.app_seqs(), vec![2, 3, 4]);
    assert_eq!((h.s.next_sender_seq(), h.s.next_target_seq()), (2, 5));
    let reset = h.peer(1, "A", 20, "98=0|108=30|141=Y|");
    h.input(&reset, 20);
    assert_eq!(h.out(), vec![h.ours(1, "A", 20, "98=0|108=30|141=Y|")]);
    assert!(h.s.is_logged_on());
    assert_eq!((h.s.next_sender_seq(), h.s.next_target_seq()), (2, 2));
    let m = h.peer(2, "D", 30, "11=y|");
    h.input(&m, 30);
    assert_eq!(h.app_seqs(), vec![2]);
    // without 141=Y it is still a protocol error
    let again = h.peer(3, "A", 40, "98=0|108=30|");
    h.input(&again, 40);
    assert!(disconnect_reason(&h.events())
        .unwrap()
        .contains("already logged on"));
}

#[test]
fn poss_dup_with_orig_sending_time_after_sending_time_is_rejected_and_logged_out() {
    let mut h = Harness::acceptor().logged_on();
    let m2 = h.peer(2, "D", 10, "11=a|");
    h.input(&m2, 10);
    h.events();
    // a duplicate of 2 (too low) whose OrigSendingTime is after its SendingTime
    let dup = h.peer(2, "D", 20, &format!("43=Y|122={}|11=a|", ts(30_000)));
    h.input(&dup, 20);
    let out = h.out();
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(
        out[0].contains("|35=3|") && out[0].contains("|372=D|373=10|") && !out[0].contains("|371=")
    );
    assert!(out[1].contains("|35=5|"));
    assert!(disconnect_reason(&h.events()).is_some());
}

#[test]
fn poss_dup_without_orig_sending_time_is_rejected_and_the_session_goes_on() {
    let mut h = Harness::acceptor().logged_on();
    let m2 = h.peer(2, "D", 10, "11=a|");
    h.input(&m2, 10);
    h.events();
    let dup = h.peer(2, "D", 20, "43=Y|11=a|");
    h.input(&dup, 20);
    let out = h.out();
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(
        out[0].contains("|35=3|") && out[0].contains("|371=122|") && out[0].contains("|373=1|")
    );
    assert!(h.s.is_logged_on());
    let m3 = h.peer(3, "D", 30, "11=b|");
    h.input(&m3, 30);
    assert_eq!(h.app_seqs(), vec![3]);
}

#[test]
fn missing_or_empty_target_comp_id_is_rejected_and_the_session_goes_on() {
    let mut h = Harness::acceptor().logged_on();
    let missing = wire(&frame(
        "FIX.4.4",
        &format!("35=0|49=CLIENT1|34=2|52={}|", ts(10)),
    ));
    h.input(&missing, 10);
    let empty = wire(&frame(
        "FIX.4.4",
        &format!("35=0|49=CLIENT1|56=|34=3|52={}|", ts(20)),
    ));
    h.input(&empty, 20);
    let out = h.out();
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(
        out[0].contains("|45=2|371=56|") && out[0].contains("|373=1|"),
        "{}",
        out[0]
    );
    assert!(
        out[1].contains("|45=3|371=56|") && out[1].contains("|373=4|"),
        "{}",
        out[1]
    );
    assert!(h.s.is_logged_on());
    assert_eq!(h.s.next_target_seq(), 4);
}

#[test]
fn invalid_msg_type_is_rejected_and_unsupported_ones_get_a_business_reject() {
    let mut cfg = acceptor_cfg();
    cfg.app_msg_types = Some(vec!["8".into(), "W".into()]);
    let mut h = Harness::with(cfg, Box::new(MemoryStore::new())).logged_on();
    let zz = h.peer(2, "ZZ", 10, "");
    h.input(&zz, 10);
    let d = h.peer(3, "D", 20, "11=a|");
    h.input(&d, 20);
    let er = h.peer(4, "8", 30, "17=e|");
    h.input(&er, 30);
    let out = h.out();
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(
        out[0].contains("|35=3|") && out[0].contains("|45=2|372=ZZ|373=11|58=Invalid MsgType|"),
        "{}",
        out[0]
    );
    assert!(
        out[1].contains("|35=j|") && out[1].contains("|45=3|372=D|380=3|"),
        "{}",
        out[1]
    );
    assert_eq!(h.app_seqs(), vec![4]);
    assert_eq!(h.s.stats().business_rejects_sent, 1);
    assert_eq!(h.s.next_target_seq(), 5);
}

#[test]
fn a_normalizer_refusal_is_a_reject_and_what_is_delivered_carries_its_events() {
    let mut cfg = acceptor_cfg();
    cfg.normalize_app = Some(fixcurve::normalize::Normalizer::new("V"));
    let mut h = Harness::with(cfg, Box::new(MemoryStore::new())).logged_on();
    let exec = "37=O|17=E|150=0|39=0|54=1|55=X|";
    let bad = h.peer(2, "8", 10, &format!("{exec}44=abc|"));
    h.input(&bad, 10);
    let good = h.peer(3, "8", 20, &format!("{exec}44=1.5|"));
    h.input(&good, 20);
    let out = h.out();
    assert_eq!(out.len(), 1);
    assert!(out[0].contains("|45=2|371=44|372=8|373=6|"), "{}", out[0]);
    let delivered: Vec<_> = h
        .events()
        .into_iter()
        .filter_map(|e| match e {
            SessionEvent::App { msg, normalized } => Some((msg.seq_num(), normalized)),
            _ => None,
        })
        .collect();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].0, Some(3));
    let events = delivered[0].1.as_ref().expect("normalized by the session");
    assert_eq!(events.len(), 1);
    assert!(
        events[0].topic.starts_with("exec.V."),
        "{}",
        events[0].topic
    );
    let fixcurve::normalize::Event::Execution(e) = &events[0].event else {
        panic!("{:?}", events[0].event)
    };
    assert_eq!(e.price.map(|p| p.to_string()).as_deref(), Some("1.5"));
}

#[test]
fn extreme_sequence_numbers_log_out_instead_of_wrapping() {
    let mut h = Harness::acceptor().logged_on();
    // SequenceReset to u64::MAX: refused (out of range), the session goes on
    let reset = h.peer(2, "4", 10, "123=Y|36=18446744073709551615|");
    h.input(&reset, 10);
    let out = h.out();
    assert!(
        out[0].contains("|35=3|") && out[0].contains("|372=4|373=5|"),
        "{out:?}"
    );
    assert_eq!(h.s.next_target_seq(), 3);
    let reset = h.peer(3, "4", 20, "123=Y|36=2147483648|");
    h.input(&reset, 20);
    assert!(h.out()[0].contains("|373=5|"));
    // a MsgSeqNum above the bound ends the session with a typed reason
    let m = h.peer(18_446_744_073_709_551_615, "0", 30, "");
    h.input(&m, 30);
    let reason = disconnect_reason(&h.events()).unwrap_or_default();
    assert!(
        reason.contains("not a number") || reason.contains("out of range"),
        "{reason}"
    );
    let mut h = Harness::acceptor().logged_on();
    let m = h.peer(4_000_000_000, "0", 30, "");
    h.input(&m, 30);
    let reason = disconnect_reason(&h.events()).unwrap_or_default();
    assert!(reason.contains("out of range"), "{reason}");
    assert!(h.out().last().is_some_and(|l| l.contains("|35=5|")));
}

// ---- session schedules ----

fn scheduled(start: &str, end: &str) -> SessionConfig {
    let mut cfg = acceptor_cfg();
    cfg.schedule = Some(
        fixcurve::fix::session::schedule::Schedule::parse(start, end, None, None, None).unwrap(),
    );
    cfg
}

#[test]
fn logon_inside_the_schedule_then_logout_at_its_end() {
    // WALL0 is 09:30 UTC; the session runs 08:00-17:00.
    let mut h = Harness::with(
        scheduled("08:00:00", "17:00:00"),
        Box::new(MemoryStore::new()),
    )
    .logged_on();
    let end = h.at(7 * 3600 * 1000 + 30 * 60 * 1000);
    assert!(h.s.poll_timeout().is_some_and(|t| t <= end));
    // keep the peer alive up to the end, then the end comes
    let mut seq = 2;
    let mut ms = 20_000;
    while h.at(ms) < end {
        let hb = h.peer(seq, "0", ms, "");
        h.input(&hb, ms);
        h.s.handle_timeout(h.at(ms));
        h.out();
        seq += 1;
        ms += 20_000;
    }
    h.s.handle_timeout(end);
    let out = h.out();
    assert!(
        out.last()
            .is_some_and(|l| l.contains("|35=5|") && l.contains("58=End of session time|")),
        "{out:?}"
    );
}

#[test]
fn logon_outside_the_schedule_is_disconnected_without_a_reply() {
    let mut h = Harness::with(
        scheduled("10:00:00", "17:00:00"),
        Box::new(MemoryStore::new()),
    );
    let logon = h.peer(1, "A", 0, "98=0|108=30|");
    h.input(&logon, 0);
    assert!(h.out().is_empty());
    let reason = disconnect_reason(&h.events()).unwrap();
    assert!(reason.contains("outside the session schedule"), "{reason}");
}

#[test]
fn a_new_period_starts_the_numbers_again_the_same_period_does_not() {
    let today = WALL0
        .replace_time(time::macros::time!(08:00))
        .unix_timestamp();
    // numbers from yesterday's period: reset, the peer starts at 1
    let mut store = MemoryStore::with_seqs(50, 40);
    store.apply(StoreWork {
        ops: vec![StoreOp::Period(today - 86_400)],
        sync: true,
    });
    let mut h = Harness::with(scheduled("08:00:00", "17:00:00"), Box::new(store));
    let logon = h.peer(1, "A", 0, "98=0|108=30|");
    h.input(&logon, 0);
    assert_eq!(h.out(), vec![h.ours(1, "A", 0, "98=0|108=30|")]);
    assert_eq!((h.s.next_sender_seq(), h.s.next_target_seq()), (2, 2));
    // numbers from this period: kept
    let mut store = MemoryStore::with_seqs(50, 40);
    store.apply(StoreWork {
        ops: vec![StoreOp::Period(today)],
        sync: true,
    });
    let mut h = Harness::with(scheduled("08:00:00", "17:00:00"), Box::new(store));
    let logon = h.peer(40, "A", 0, "98=0|108=30|");
    h.input(&logon, 0);
    assert_eq!(h.out(), vec![h.ours(50, "A", 0, "98=0|108=30|")]);
}

#[test]
fn an_initiator_outside_its_schedule_sends_no_logon() {
    let mut cfg = scheduled("10:00:00", "17:00:00");
    cfg.role = Role::Initiator;
    let mut h = Harness::with(cfg, Box::new(MemoryStore::new()));
    assert!(h.out().is_empty());
    assert!(disconnect_reason(&h.events())
        .unwrap()
        .contains("outside the session schedule"));
}

#[test]
fn a_too_low_resend_request_is_answered_without_moving_our_inbound_number_back() {
    let mut h = Harness::acceptor().logged_on();
    for (seq, ms) in [(2, 10), (3, 20)] {
        let m = h.peer(seq, "D", ms, "11=x|");
        h.input(&m, ms);
    }
    h.out();
    assert_eq!(h.s.next_target_seq(), 4);
    // found by the fix_session fuzz target: 34=1 would set the expected number back to 2
    let rr = h.peer(1, "2", 30, "7=1|16=0|");
    h.input(&rr, 30);
    assert!(!h.out().is_empty(), "the ResendRequest is answered");
    assert_eq!(h.s.next_target_seq(), 4);
    assert!(h.s.is_logged_on());
}

//! The FIX session state machine driven by a fuzzer-chosen script: raw bytes, well-framed
//! messages of any type with fuzzer-chosen sequence numbers and fields, time jumps, sends and
//! logouts. It must never panic, and its invariants must hold: sequence numbers never go
//! backwards except by a reset, everything it transmits is a valid frame, and App events come
//! out in strictly increasing MsgSeqNum order.
#![no_main]

use std::time::{Duration, Instant};

use fixcurve_proto::fix::codec::{frame_body, Decoder, DecoderLimits};
use fixcurve_proto::fix::session::{
    utc_timestamp_string, MemoryStore, Role, Session, SessionConfig, SessionEvent,
};
use fixcurve_proto::testing::Driver;
use fixcurve_proto::fix::Field;
use libfuzzer_sys::fuzz_target;

const TYPES: [&str; 12] = ["A", "0", "1", "2", "3", "4", "5", "D", "8", "W", "ZZ", "j"];
const TAGS: [u32; 18] = [
    7, 16, 36, 43, 112, 122, 123, 141, 98, 108, 45, 58, 268, 269, 270, 95, 371, 373,
];
/// Sequence numbers and counts a hostile peer would try: around the 32-bit bound, the u64
/// bound, zero, and too many digits for u64.
const EXTREMES: [&str; 8] = [
    "0",
    "2147483647",
    "2147483648",
    "4294967296",
    "18446744073709551614",
    "18446744073709551615",
    "18446744073709551616",
    "-1",
];

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let wall0 = time::macros::datetime!(2026-11-22 09:30:00 UTC);
    let role = if data.first().is_some_and(|b| b & 1 == 1) {
        Role::Initiator
    } else {
        Role::Acceptor
    };
    let mut cfg = SessionConfig::new("FIX.4.4", "BRIDGE", "CLIENT1", role);
    cfg.heartbeat_secs = 5;
    cfg.max_queued = 16;
    cfg.max_msgs_per_sec = Some(200);
    // As the daemon runs it: application messages normalized before delivery.
    cfg.normalize_app = Some(fixcurve_proto::normalize::Normalizer::new("V"));
    let mut driver = Driver::new(MemoryStore::new());
    let Ok(mut s) = Session::new(cfg, driver.store.state(), t0, wall0) else {
        return;
    };
    s.connect(t0);
    let mut now_ms: u64 = 0;
    let mut last_app_seq = 0u64;
    let mut i = 1;
    let byte = |i: &mut usize| -> u8 {
        let b = data.get(*i).copied().unwrap_or(0);
        *i += 1;
        b
    };
    while i < data.len() {
        let op = byte(&mut i);
        let now = t0 + Duration::from_millis(now_ms);
        match op % 6 {
            0 => {
                let want = usize::from(byte(&mut i));
                let start = i.min(data.len());
                let n = want.min(data.len() - start);
                s.handle_input(&data[start..start + n], now);
                i = start + n;
            }
            1 | 2 => {
                // A valid frame: type, seq near the expected one, flags and a few fields.
                let ty = TYPES[usize::from(byte(&mut i)) % TYPES.len()];
                let pick = byte(&mut i);
                let delta = i64::from(pick as i8) / 16;
                let seq = if pick >= 0xF8 {
                    EXTREMES[usize::from(pick & 7)].to_string()
                } else {
                    (s.next_target_seq() as i64 + delta).max(1).to_string()
                };
                let ts = utc_timestamp_string(wall0 + Duration::from_millis(now_ms));
                let mut body =
                    format!("35={ty}\x0149=CLIENT1\x0156=BRIDGE\x0134={seq}\x0152={ts}\x01");
                let nf = byte(&mut i) % 6;
                for _ in 0..nf {
                    let tag = TAGS[usize::from(byte(&mut i)) % TAGS.len()];
                    let v = byte(&mut i);
                    let value = match tag {
                        43 | 123 | 141 => {
                            if v & 1 == 1 {
                                "Y".to_string()
                            } else {
                                "N".to_string()
                            }
                        }
                        122 => ts.clone(),
                        _ if v >= 0xF8 => EXTREMES[usize::from(v & 7)].to_string(),
                        _ => (u64::from(v) % 12).to_string(),
                    };
                    body.push_str(&format!("{tag}={value}\x01"));
                }
                if ty == "A" {
                    body.push_str("98=0\x01108=5\x01");
                }
                let mut raw = Vec::new();
                frame_body("FIX.4.4", body.as_bytes(), &mut raw);
                s.handle_input(&raw, now);
            }
            3 => {
                now_ms += u64::from(byte(&mut i)) * 100;
                s.handle_timeout(t0 + Duration::from_millis(now_ms));
            }
            4 => {
                let _ = s.send_app(
                    "D",
                    &[Field::new(11, b"x"), Field::new(58, &[byte(&mut i)])],
                    now,
                );
            }
            _ => {
                if byte(&mut i) == 0 {
                    s.logout("fuzz", now);
                }
            }
        }
        // The driver's part: store work first, then loads a chunk at a time; the store must
        // end up exactly where the session says it is.
        let mut d = Decoder::new(DecoderLimits::default());
        while driver.step(&mut s, now) {
            assert_eq!(driver.store.state(), s.seq_state());
            assert!(driver.largest_chunk <= 256 * 2 + 1);
        }
        assert_eq!(driver.store.state(), s.seq_state());
        while let Some(out) = s.poll_transmit() {
            d.feed(&out);
            let m = d.next().expect("whole frame").expect("valid frame");
            assert_eq!(m.as_bytes().len(), out.len());
            assert_eq!(m.sender_comp_id(), Some(&b"BRIDGE"[..]));
        }
        while let Some(ev) = s.poll_event() {
            if let SessionEvent::App { msg: m, .. } = ev {
                let seq = m.seq_num().expect("app messages carry a seq");
                // Strictly increasing unless the peer reset the sequence (Logon 141=Y).
                assert!(
                    seq > last_app_seq || seq == 1 || last_app_seq == 0,
                    "{seq} after {last_app_seq}"
                );
                last_app_seq = seq;
            } else if let SessionEvent::LoggedOn {
                reset_seq_num: true,
                ..
            } = ev
            {
                last_app_seq = 0;
            } else if let SessionEvent::SequenceReset {
                new_seq_num: 1,
                gap_fill: false,
            } = ev
            {
                // A reset inside the session (Logon 34=1 141=Y): numbering starts again.
                last_app_seq = 0;
            }
        }
        // Whatever the peer sent, our numbers stay within the FIX bound.
        assert!(s.next_target_seq() <= fixcurve_proto::fix::session::MAX_SEQ_NUM + 1);
        if let Some(t) = s.poll_timeout() {
            assert!(t >= t0);
        }
    }
});

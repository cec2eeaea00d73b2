use super::scan::{in_bitset, LENGTH_TAG_BITS};
use super::*;

use crate::testing::{framed, indexed, soh as wire};

fn decoder() -> Decoder {
    Decoder::new(DecoderLimits::default())
}

/// Everything `d` yields for `raw` fed as one read.
fn decode_all(mut d: Decoder, raw: &[u8]) -> Vec<Result<Message, DecodeError>> {
    d.feed(raw);
    d.by_ref().collect()
}

/// `d` on each block-pass path the differential tests hold to the byte loop: the widest
/// the CPU has, at most AVX2, and the SSE2 baseline.
fn block_pass_paths(d: impl Fn() -> Decoder) -> [(&'static str, Decoder); 3] {
    [
        ("detected", d()),
        ("avx2", d().avx2_block_pass()),
        ("sse2", d().baseline_block_pass()),
    ]
}

/// Computed independently (Python: sum of bytes mod 256).
const HB: &str = "8=FIX.4.4|9=54|35=0|49=VENUE|56=BRIDGE|34=2|52=20261122-09:30:10.846|10=005|";

#[test]
fn encoder_matches_known_frame() {
    let mut out = Vec::new();
    encode(
        "FIX.4.4",
        "0",
        &[
            Field::new(49, b"VENUE"),
            Field::new(56, b"BRIDGE"),
            Field::new(34, b"2"),
            Field::new(52, b"20261122-09:30:10.846"),
        ],
        &mut out,
    );
    let body = "35=0|49=VENUE|56=BRIDGE|34=2|52=20261122-09:30:10.846|";
    assert_eq!(out, framed("FIX.4.4", body));
    let cs = checksum(&out[..out.len() - 7]);
    assert_eq!(&out[out.len() - 7..], format!("10={cs:03}\x01").as_bytes());
    assert_eq!(out, wire(HB));
    let mut d = decoder();
    d.feed(&out);
    let m = d.next().unwrap().unwrap();
    assert_eq!(m.msg_type(), b"0");
    assert_eq!(m.seq_num(), Some(2));
    assert_eq!(m.sender_comp_id(), Some(&b"VENUE"[..]));
    assert_eq!(m.target_comp_id(), Some(&b"BRIDGE"[..]));
    assert_eq!(m.as_bytes(), &out[..]);
    let tags: Vec<u32> = m.fields().map(|f| f.tag).collect();
    assert_eq!(tags, vec![8, 9, 35, 49, 56, 34, 52, 10]);
    assert!(d.next().is_none());
}

#[test]
fn partial_reads_byte_by_byte() {
    let a = framed("FIX.4.4", "35=0|49=A|56=B|34=1|52=20260101-00:00:00.000|");
    let b = framed(
        "FIX.4.4",
        "35=1|49=A|56=B|34=2|52=20260101-00:00:00.000|112=x|",
    );
    let all = [a.clone(), b.clone()].concat();
    let mut d = decoder();
    let mut got = Vec::new();
    for byte in &all {
        d.feed(std::slice::from_ref(byte));
        for m in &mut d {
            got.push(m.unwrap());
        }
    }
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].as_bytes(), &a[..]);
    assert_eq!(got[1].as_bytes(), &b[..]);
    assert_eq!(got[1].get_str(112), Some("x"));
    assert_eq!(d.buffered(), 0);
}

#[test]
fn many_messages_per_read() {
    let mut all = Vec::new();
    for i in 1..=50 {
        all.extend(framed(
            "FIX.4.2",
            &format!("35=D|49=A|56=B|34={i}|52=20260101-00:00:00|11=o{i}|"),
        ));
    }
    let mut d = decoder();
    d.feed(&all);
    let seqs: Vec<u64> = d.map(|m| m.unwrap().seq_num().unwrap()).collect();
    assert_eq!(seqs, (1..=50).collect::<Vec<_>>());
}

#[test]
fn zero_padded_body_length_accepted() {
    let body = wire("35=0|49=A|56=B|34=1|52=20260101-00:00:00.000|");
    let mut raw = format!("8=FIXT.1.1\x019={:06}\x01", body.len()).into_bytes();
    raw.extend_from_slice(&body);
    let cs = checksum(&raw);
    raw.extend_from_slice(format!("10={cs:03}\x01").as_bytes());
    let mut d = decoder();
    d.feed(&raw);
    let m = d.next().unwrap().unwrap();
    assert_eq!(m.begin_string(), b"FIXT.1.1");
    assert_eq!(
        m.get(9).unwrap().value,
        format!("{:06}", body.len()).as_bytes()
    );
}

#[test]
fn length_field_not_followed_by_its_data_field() {
    // 95 then an ordinary field: the length is kept as a field and 96 later is read by SOH.
    let m = decode_one(framed("FIX.4.4", "35=B|95=3|58=abc|96=x|"));
    assert_eq!(m.get_str(95), Some("3"));
    assert_eq!(m.get_str(58), Some("abc"));
    assert_eq!(m.get_str(96), Some("x"));
    // A length field last in the body, and two length fields in a row.
    let m = decode_one(framed("FIX.4.4", "35=B|58=a|95=2|"));
    assert_eq!(m.get_str(95), Some("2"));
    let m = decode_one(framed("FIX.4.4", "35=B|95=2|354=1|355=\x01|96=ab|"));
    assert_eq!(m.get(355).unwrap().value, b"\x01");
    assert_eq!(m.get_str(96), Some("ab"));
}

fn decode_one(raw: Vec<u8>) -> Message {
    let mut d = decoder();
    d.feed(&raw);
    d.next().unwrap().unwrap()
}

#[test]
fn binary_data_fields_may_contain_soh_and_equals() {
    let data = b"a\x01b=c\x0110=123\x01\x00\xff";
    let mut body = wire("35=B|49=A|56=B|34=3|52=20260101-00:00:00.000|148=hi|95=");
    body.extend_from_slice(data.len().to_string().as_bytes());
    body.extend_from_slice(b"\x0196=");
    body.extend_from_slice(data);
    body.extend_from_slice(b"\x0110001=z\x01");
    let mut raw = Vec::new();
    frame_body("FIX.4.4", &body, &mut raw);
    let mut d = decoder();
    d.feed(&raw);
    let m = d.next().unwrap().unwrap();
    assert_eq!(m.get(96).unwrap().value, &data[..]);
    assert_eq!(m.get_str(10001), Some("z"));
    // A data length that overruns the frame is a garbled message.
    let mut bad = wire("35=B|49=A|56=B|34=3|52=20260101-00:00:00.000|95=500|96=x|");
    let mut raw = Vec::new();
    frame_body("FIX.4.4", &bad, &mut raw);
    d.feed(&raw);
    assert_eq!(d.next(), Some(Err(DecodeError::DataLength { tag: 96 })));
    bad = wire("35=B|49=A|56=B|34=3|52=20260101-00:00:00.000|95=x|96=x|");
    raw.clear();
    frame_body("FIX.4.4", &bad, &mut raw);
    d.feed(&raw);
    assert_eq!(d.next(), Some(Err(DecodeError::DataLength { tag: 96 })));
}

/// Each validation failure is reported once and the next good frame still decodes.
fn expect_error_then_good(bad: Vec<u8>, want: DecodeError) {
    let good = framed("FIX.4.4", "35=0|49=A|56=B|34=9|52=20260101-00:00:00.000|");
    let mut d = decoder();
    d.feed(&bad);
    d.feed(&good);
    assert_eq!(
        d.next(),
        Some(Err(want)),
        "bad frame {:?}",
        String::from_utf8_lossy(&bad)
    );
    let m = d.next().expect("resynced").expect("good frame");
    assert_eq!(m.seq_num(), Some(9));
    assert!(d.next().is_none());
    assert_eq!(d.garbled_count(), 1);
}

fn with_checksum(s: &str) -> Vec<u8> {
    let mut raw = wire(s);
    let cs = checksum(&raw);
    raw.extend_from_slice(format!("10={cs:03}\x01").as_bytes());
    raw
}

#[test]
fn bad_checksum() {
    let mut bad = framed("FIX.4.4", "35=0|49=A|56=B|34=1|52=20260101-00:00:00.000|");
    let n = bad.len();
    let declared = (checksum(&bad[..n - 7]) as u32 + 1) % 256;
    bad[n - 4..n - 1].copy_from_slice(format!("{declared:03}").as_bytes());
    expect_error_then_good(
        bad,
        DecodeError::Checksum {
            declared: declared as u8,
            computed: (declared as u8).wrapping_sub(1),
        },
    );
}

#[test]
fn checksum_not_three_digits() {
    let mut bad = framed("FIX.4.4", "35=0|49=A|56=B|34=1|52=20260101-00:00:00.000|");
    let n = bad.len();
    bad[n - 2] = b'x';
    expect_error_then_good(bad, DecodeError::ChecksumFormat);
}

#[test]
fn body_length_too_short_and_too_long() {
    let body = "35=0|49=A|56=B|34=1|52=20260101-00:00:00.000|";
    let n = body.len();
    for declared in [n - 1, n + 1] {
        let bad = with_checksum(&format!("8=FIX.4.4|9={declared}|{body}"));
        expect_error_then_good(bad, DecodeError::BodyLengthMismatch { declared });
    }
}

#[test]
fn begin_string_must_be_first() {
    let bad = with_checksum("8=FIX.4.4AAAAAAAAAAAAAAAAAAAAAAA|9=5|35=0|");
    expect_error_then_good(bad, DecodeError::BeginString);
}

#[test]
fn body_length_must_be_second() {
    let bad = with_checksum("8=FIX.4.4|35=0|9=5|");
    expect_error_then_good(bad, DecodeError::BodyLength);
    let bad = with_checksum("8=FIX.4.4|9=1x|35=0|");
    expect_error_then_good(bad, DecodeError::BodyLength);
    let bad = with_checksum("8=FIX.4.4|9=|35=0|");
    expect_error_then_good(bad, DecodeError::BodyLength);
}

#[test]
fn msg_type_must_be_third() {
    let body = "49=A|35=0|56=B|34=1|52=20260101-00:00:00.000|";
    let bad = with_checksum(&format!("8=FIX.4.4|9={}|{body}", body.len()));
    expect_error_then_good(bad, DecodeError::MsgType);
    let body = "35=|49=A|56=B|34=1|";
    let bad = with_checksum(&format!("8=FIX.4.4|9={}|{body}", body.len()));
    expect_error_then_good(bad, DecodeError::MsgType);
}

#[test]
fn checksum_must_be_last() {
    let body = "35=0|49=A|10=000|56=B|";
    let bad = with_checksum(&format!("8=FIX.4.4|9={}|{body}", body.len()));
    expect_error_then_good(bad, DecodeError::ChecksumNotLast);
}

#[test]
fn malformed_tags() {
    for body in [
        "35=0|4x9=A|",
        "35=0|=A|",
        "35=0|0=A|",
        "35=0|1234567890=A|",
        "35=0|49A|",
    ] {
        let bad = with_checksum(&format!("8=FIX.4.4|9={}|{body}", body.len()));
        let mut d = decoder();
        d.feed(&bad);
        assert!(
            matches!(d.next(), Some(Err(DecodeError::Tag { .. }))),
            "{body}"
        );
    }
}

#[test]
fn max_message_size_enforced_before_buffering() {
    let mut d = Decoder::new(DecoderLimits {
        max_message_size: 100,
        ..Default::default()
    });
    d.feed(b"8=FIX.4.4\x019=5000\x0135=0");
    assert!(matches!(
        d.next(),
        Some(Err(DecodeError::TooLarge { max: 100, .. }))
    ));
    let good = framed("FIX.4.4", "35=0|49=A|56=B|34=1|");
    d.feed(&good);
    assert_eq!(d.next().unwrap().unwrap().seq_num(), Some(1));
}

#[test]
fn too_many_fields() {
    let mut d = Decoder::new(DecoderLimits {
        max_fields: 6,
        ..Default::default()
    });
    d.feed(&framed("FIX.4.4", "35=0|49=A|56=B|34=1|52=x|"));
    assert_eq!(d.next(), Some(Err(DecodeError::TooManyFields { max: 6 })));
}

#[test]
fn garbage_between_frames_is_skipped_and_reported() {
    let good = framed("FIX.4.4", "35=0|49=A|56=B|34=9|52=20260101-00:00:00.000|");
    let mut d = decoder();
    d.feed(b"hello\r\n");
    d.feed(&good);
    assert_eq!(d.next(), Some(Err(DecodeError::Garbage { skipped: 7 })));
    assert_eq!(d.next().unwrap().unwrap().seq_num(), Some(9));
    // A lone partial prefix waits for more bytes.
    d.feed(b"8=FI");
    assert!(d.next().is_none());
    assert_eq!(d.buffered(), 4);
}

#[test]
fn truncated_frame_followed_by_new_frame_resyncs() {
    let good = framed("FIX.4.4", "35=0|49=A|56=B|34=9|52=20260101-00:00:00.000|");
    let mut d = decoder();
    d.feed(&good[..30]);
    d.feed(&good);
    // The truncated frame's BodyLength reaches into the next one: its trailer is wrong.
    assert!(matches!(d.next(), Some(Err(_))));
    assert_eq!(d.next().unwrap().unwrap().seq_num(), Some(9));
}

#[test]
fn peek_logon_reads_identity_and_hides_password() {
    let raw = framed(
        "FIX.4.4",
        "35=A|49=CLIENT1|56=BRIDGE|34=1|52=20260101-00:00:00.000|98=0|108=30|141=Y|553=user|554=secret|",
    );
    let info = peek_logon(&raw).unwrap();
    assert_eq!(info.sender_comp_id, "CLIENT1");
    assert_eq!(info.target_comp_id, "BRIDGE");
    assert_eq!(info.username.as_deref(), Some("user"));
    assert_eq!(
        info.password.as_ref().map(|p| p.expose().as_str()),
        Some("secret")
    );
    assert_eq!(info.heartbeat_secs, Some(30));
    assert!(info.reset_seq_num);
    assert!(!format!("{info:?}").contains("secret"));
    assert!(peek_logon(&raw[..raw.len() - 1]).is_none());
    let hb = framed("FIX.4.4", "35=0|49=A|56=B|34=1|");
    assert!(peek_logon(&hb).is_none());
}

#[test]
fn length_tag_bitset_matches_the_pairs() {
    for tag in 0..3000 {
        assert_eq!(
            in_bitset(&LENGTH_TAG_BITS, tag),
            data_tag_for_length(tag).is_some(),
            "{tag}"
        );
    }
}

#[test]
fn long_values_cross_scanner_blocks() {
    let long = "x".repeat(200);
    let body = format!("35=0|49=A|56=B|34=1|58={long}|59=0|1={}|", "y".repeat(63));
    let raw = framed("FIX.4.4", &body);
    let mut d = decoder();
    d.feed(&raw);
    let m = d.next().unwrap().unwrap();
    assert_eq!(m.get(58).unwrap().value.len(), 200);
    assert_eq!(m.get_str(59), Some("0"));
    assert_eq!(m.get(1).unwrap().value.len(), 63);
}

#[test]
fn shared_samples_decode() {
    for s in [
        &include_bytes!("../testdata/md_w.fix")[..],
        &include_bytes!("../testdata/md_x.fix")[..],
        &include_bytes!("../testdata/er_8.fix")[..],
    ] {
        let mut d = decoder();
        d.feed(s);
        let m = d.next().unwrap().unwrap();
        assert_eq!(m.as_bytes(), s);
    }
}

/// Random bodies (tags of 1 to 9 digits, values of 0 to 150 bytes holding '=' and digits, so
/// fields straddle the 64-byte blocks of the mask pass) decode to exactly the fields written,
/// whichever of the block pass or the byte loop reads them.
#[test]
fn random_bodies_index_exactly() {
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    let alphabet = b"0123456789=ab.-:";
    for round in 0..3_000 {
        // Nine-digit tags send the whole frame to the byte loop: only every eighth body may
        // have them, so most bodies go through the block pass.
        let max_digits = if round % 8 == 0 { 9 } else { 8 };
        let mut want: Vec<(u32, Vec<u8>)> = Vec::new();
        for _ in 0..(next() % 40) {
            let digits = (next() % max_digits + 1) as u32;
            let tag = (next() % 10u64.pow(digits)).max(1) as u32;
            if tag == 10 || data_tag_for_length(tag).is_some() {
                continue;
            }
            let len = (next() % 151) as usize;
            let value: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            want.push((tag, value));
        }
        let mut body = b"35=D\x01".to_vec();
        for (t, v) in &want {
            body.extend_from_slice(format!("{t}=").as_bytes());
            body.extend_from_slice(v);
            body.push(SOH);
        }
        let mut raw = Vec::new();
        frame_body("FIX.4.4", &body, &mut raw);
        let mut d = decoder();
        d.feed(&raw);
        let m = d.next().unwrap().unwrap();
        let got: Vec<(u32, Vec<u8>)> = m
            .fields()
            .skip(3)
            .take(want.len())
            .map(|f| (f.tag, f.value.to_vec()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(m.field_count(), want.len() + 4);
    }
}

/// The block pass (with the widest compares the CPU has, with AVX2 and with the SSE2
/// baseline) and the byte loop agree on every frame, garbled ones included: the same
/// messages and the same errors, in the same order, over valid frames with bytes replaced by
/// the characters the block pass keys on (SOH, '=', digits) and by others.
#[test]
fn block_pass_agrees_with_byte_loop_on_garbled_frames() {
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    let values = b"0123456789ab.";
    let damage = b"0123456789=\x01ab";
    let (mut accepted, mut rejected) = (0, 0);
    for _ in 0..4_000 {
        let mut body = b"35=X\x01".to_vec();
        for _ in 0..(next() % 30) {
            let tag = next() % 2000 + 1;
            body.extend_from_slice(format!("{tag}=").as_bytes());
            for _ in 0..(next() % 12) {
                body.push(values[(next() % values.len() as u64) as usize]);
            }
            body.push(SOH);
        }
        let mut raw = Vec::new();
        frame_body("FIX.4.4", &body, &mut raw);
        // Replace a few body bytes; fix the CheckSum half of the time so the damage reaches
        // the field index rather than stopping at the sum.
        for _ in 0..(next() % 4) {
            let span = raw.len() - 7 - 16;
            let at = 16 + (next() as usize) % span;
            raw[at] = damage[(next() % damage.len() as u64) as usize];
        }
        if next().is_multiple_of(2) {
            let n = raw.len();
            let sum = format!("{:03}", checksum(&raw[..n - 7]));
            raw[n - 4..n - 1].copy_from_slice(sum.as_bytes());
        }
        let slow = decode_all(decoder().without_block_pass(), &raw);
        for (path, d) in block_pass_paths(decoder) {
            assert_eq!(
                indexed(&decode_all(d, &raw)),
                indexed(&slow),
                "{path}: frame {}",
                crate::testing::show(&raw)
            );
        }
        match slow.first() {
            Some(Ok(_)) => accepted += 1,
            _ => rejected += 1,
        }
    }
    // Both outcomes were exercised.
    assert!(accepted > 500 && rejected > 500, "{accepted} / {rejected}");
}

/// Long, valid messages (up to hundreds of fields, values from empty to longer than a
/// block, tags of one to nine digits): the block pass reads them in segments of positions,
/// carrying a field open at a segment's end into the next, and must index them exactly as
/// the byte loop does.
#[test]
fn block_pass_agrees_with_byte_loop_on_long_messages() {
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    let mut fields_seen = 0usize;
    for _ in 0..300 {
        let mut body = b"35=W\x01".to_vec();
        let count = 40 + next() % 360;
        for _ in 0..count {
            // Nine-digit tags, rare: any one sends the frame to the byte loop.
            let digits = if next().is_multiple_of(2000) {
                9
            } else {
                1 + next() % 8
            };
            let mut tag = (next() % 10u64.pow(digits as u32)).max(1);
            // CheckSum and length tags would make the frame invalid or read it by length.
            while tag == 10 || data_tag_for_length(tag as u32).is_some() {
                tag += 1;
            }
            body.extend_from_slice(format!("{tag}=").as_bytes());
            let len = match next() % 8 {
                0 => 70 + next() % 90,
                _ => next() % 12,
            };
            for _ in 0..len {
                body.push(b"0123456789.AZ-"[(next() % 14) as usize]);
            }
            body.push(SOH);
        }
        let mut raw = Vec::new();
        frame_body("FIX.4.4", &body, &mut raw);
        let limits = DecoderLimits {
            max_message_size: 1 << 20,
            max_fields: 1 << 14,
        };
        let slow = indexed(&decode_all(Decoder::new(limits).without_block_pass(), &raw));
        for (path, d) in block_pass_paths(|| Decoder::new(limits)) {
            assert_eq!(indexed(&decode_all(d, &raw)), slow, "{path}");
        }
        match slow.as_slice() {
            [Ok(f)] => fields_seen += f.len(),
            other => panic!("one message expected, got {other:?}"),
        }
    }
    assert!(fields_seen > 50_000, "{fields_seen}");
}

/// A deterministic xorshift64 stream for the randomized codec tests (same bodies every run).
fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// The vectorised CheckSum (16-byte sums, masked tail) against a byte-by-byte sum, for every
/// length up to a few blocks and every byte value, so a wrong tail mask or lost lane shows.
#[test]
fn checksum_matches_a_plain_byte_sum() {
    let mut next = xorshift(0x5eed_c0de);
    for len in 0..200usize {
        for fill in [None, Some(0xFF), Some(0x01)] {
            let bytes: Vec<u8> = (0..len).map(|_| fill.unwrap_or(next() as u8)).collect();
            let plain = bytes.iter().fold(0u8, |s, &b| s.wrapping_add(b));
            assert_eq!(checksum(&bytes), plain, "len {len} fill {fill:?}");
            // A window that does not start at the allocation's start.
            if len > 1 {
                let inner = &bytes[1..];
                let plain = inner.iter().fold(0u8, |s, &b| s.wrapping_add(b));
                assert_eq!(checksum(inner), plain, "len {} offset 1", len - 1);
            }
        }
    }
}

/// Tags that alias a refused tag in the block pass's `tag % 2048` set (2058 = 2048 + 10, as
/// CheckSum; 2143 = 2048 + 95, as RawDataLength) are ordinary fields: the byte loop they fall
/// back to reads them exactly as the block pass reads any other tag.
#[test]
fn tags_aliasing_refused_ones_decode_as_ordinary_fields() {
    let body = "35=8|49=VENUE|56=BRIDGE|34=7|2058=AB|2143=4|96=xyz|55=BTC-USD|";
    let raw = with_checksum(&format!("8=FIX.4.4|9={}|{body}", body.len()));
    let slow = decode_all(decoder().without_block_pass(), &raw);
    for (path, d) in block_pass_paths(decoder) {
        assert_eq!(indexed(&decode_all(d, &raw)), indexed(&slow), "{path}");
    }
    let m = match slow.as_slice() {
        [Ok(m)] => m,
        other => panic!("one message expected, got {other:?}"),
    };
    assert_eq!(m.get(2058).map(|f| f.value), Some(&b"AB"[..]));
    assert_eq!(m.get(2143).map(|f| f.value), Some(&b"4"[..]));
    // 2143 is not a length tag: 96 is read up to its SOH, not 4 bytes.
    assert_eq!(m.get(96).map(|f| f.value), Some(&b"xyz"[..]));
}

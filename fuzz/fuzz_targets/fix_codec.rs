//! Arbitrary bytes, cut into arbitrary reads, through the streaming FIX decoder, the group
//! parser and `peek_logon`: nothing may panic, every decoded message must re-validate, a
//! frame never exceeds the size limit, and the block pass (AVX-512 or AVX2 where the CPU has
//! it, AVX2 alone, and the SSE2 baseline) yields exactly what the byte loop alone yields
//! (same messages, same errors, same order).
#![no_main]

use fixcurve_proto::fix::codec::{checksum, peek_logon, Decoder, DecoderLimits};
use fixcurve_proto::fix::groups;
use fixcurve_proto::testing::indexed;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = peek_logon(data);
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let limits = DecoderLimits {
        max_message_size: 64 + usize::from(ctl) * 16,
        max_fields: 8 + usize::from(ctl),
    };
    let mut d = Decoder::new(limits);
    let mut reference = Decoder::new(limits).without_block_pass();
    let mut baseline = Decoder::new(limits).baseline_block_pass();
    let mut avx2 = Decoder::new(limits).avx2_block_pass();
    // Read sizes cycle through 1..=ctl%31+1 bytes so partial frames are everywhere.
    let step = usize::from(ctl % 31) + 1;
    let mut fed = 0;
    let mut read = 1;
    while fed < rest.len() {
        let n = read.min(rest.len() - fed);
        d.feed(&rest[fed..fed + n]);
        reference.feed(&rest[fed..fed + n]);
        baseline.feed(&rest[fed..fed + n]);
        avx2.feed(&rest[fed..fed + n]);
        fed += n;
        read = read % step + 1;
        let got: Vec<_> = d.by_ref().collect();
        let want: Vec<_> = reference.by_ref().collect();
        // Field by field: `Message`'s equality compares the frame's bytes only.
        assert_eq!(indexed(&got), indexed(&want));
        let sse2: Vec<_> = baseline.by_ref().collect();
        assert_eq!(indexed(&sse2), indexed(&want));
        let narrow: Vec<_> = avx2.by_ref().collect();
        assert_eq!(indexed(&narrow), indexed(&want));
        for r in got {
            let Ok(m) = r else { continue };
            let raw = m.as_bytes();
            assert!(raw.len() <= limits.max_message_size);
            assert!(raw.starts_with(b"8=FIX"));
            assert_eq!(m.fields().next().map(|f| f.tag), Some(8));
            assert_eq!(m.field_at(2).map(|f| f.tag), Some(35));
            assert_eq!(m.fields().last().map(|f| f.tag), Some(10));
            // The checksum it passed is the one on the wire.
            let n = raw.len();
            let declared = std::str::from_utf8(&raw[n - 4..n - 1]).unwrap();
            assert_eq!(
                declared.parse::<u32>().unwrap(),
                checksum(&raw[..n - 7]) as u32
            );
            // Decoding the frame again yields the same message.
            let mut again = Decoder::new(limits);
            again.feed(raw);
            assert_eq!(again.next().unwrap().unwrap(), m);
            for tag in [268, 146, 267, 453, 555, 382, 136, 816, 9000] {
                if let Ok(Some(g)) = groups::group(&m, tag) {
                    for e in g.entries() {
                        let _ = e.get(270);
                        let _ = e.group(453);
                    }
                }
            }
            let _ = m.body_fields().count();
            let _ = m.seq_num();
        }
    }
    assert!(d.buffered() <= limits.max_message_size + step + 64);
});

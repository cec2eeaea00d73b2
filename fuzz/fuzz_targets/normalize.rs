//! Hostile FIX fields into the normalizer and envelope: no panic, and every event that comes
//! out round-trips through the MessagePack envelope unchanged.
#![no_main]

use fixcurve_proto::envelope::{Envelope, VERSION};
use fixcurve_proto::fix::Field;
use fixcurve_proto::normalize::Normalizer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Input: SOH-separated tag=value pairs (a FIX body without framing), so the fuzzer spends
    // its time on group and field logic rather than on checksums.
    let mut fields = Vec::new();
    for part in data.split(|&b| b == 1) {
        let Some(eq) = part.iter().position(|&b| b == b'=') else { continue };
        let Some(tag) = std::str::from_utf8(&part[..eq]).ok().and_then(|t| t.parse::<u32>().ok()) else {
            continue;
        };
        fields.push(Field::new(tag, &part[eq + 1..]));
    }
    let Ok(events) = Normalizer::new("FUZZ").normalize(&fields) else { return };
    for (i, n) in events.into_iter().enumerate() {
        let env = Envelope {
            version: VERSION,
            epoch: 1,
            seq: i as u64 + 1,
            received_ns: 2,
            venue: "FUZZ".into(),
            session: "A->B".into(),
            fix_seq: None,
            event: n.event,
        };
        let bytes = env.encode().expect("encode");
        assert_eq!(Envelope::decode(&bytes).expect("decode"), env);
    }
});

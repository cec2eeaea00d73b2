//! Arbitrary bytes as a subscriber's envelope payload: nothing may panic, and whatever the
//! one-pass reader accepts, rmp_serde reads to the same envelope (`check_one_pass_reader`
//! panics otherwise); what decodes re-encodes and decodes to itself, with its `received_ns`
//! readable from the bytes alone.
#![no_main]

use fixcurve_proto::envelope::Envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Envelope::check_one_pass_reader(data);
    let _ = Envelope::peek_received_ns(data);
    if let Ok(env) = Envelope::decode(data) {
        let again = env.encode().expect("a decoded envelope encodes");
        assert_eq!(Envelope::peek_received_ns(&again), Some(env.received_ns));
        assert_eq!(Envelope::decode(&again).ok(), Some(env));
    }
});

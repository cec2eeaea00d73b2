//! Arbitrary bytes through the ZMTP greeting, frame, command and metadata decoders: they must
//! never panic, and a frame never exceeds the configured limit.
#![no_main]

use bytes::BytesMut;
use fixcurve_proto::zmtp::{command, greeting, FrameDecoder, Metadata};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = greeting::check_prefix(data);
    let _ = greeting::parse(data);
    let Some((&limit, rest)) = data.split_first() else {
        return;
    };
    let max = 16 + usize::from(limit) * 64;
    let dec = FrameDecoder::new(max);
    // Feed in two chunks so partial headers are exercised.
    let cut = rest.len() / 3;
    let mut buf = BytesMut::from(&rest[..cut]);
    let mut fed_rest = false;
    loop {
        match dec.decode(&mut buf) {
            Ok(Some(frame)) => {
                assert!(frame.body.len() <= max);
                let _ = command::parse(&frame.body);
                let _ = Metadata::parse(&frame.body);
                if let Ok((_, data)) = command::split(&frame.body) {
                    let _ = Metadata::parse(data);
                }
            }
            Ok(None) if !fed_rest => {
                buf.extend_from_slice(&rest[cut..]);
                fed_rest = true;
            }
            Ok(None) | Err(_) => break,
        }
    }
});

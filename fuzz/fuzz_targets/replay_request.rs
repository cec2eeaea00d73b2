//! Replay requests from an authenticated but hostile client: any frames must parse to a
//! request within bounds or a refusal with a known code, never a panic.
#![no_main]

use bytes::Bytes;
use fixcurve::replay::protocol::{parse, Request, MAX_BATCH};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Frames separated by 0xFF.
    let frames: Vec<Bytes> = data.split(|&b| b == 0xff).map(Bytes::copy_from_slice).collect();
    let (route, r) = parse(&frames);
    assert!(route.len() <= 1);
    match r {
        Ok(Request::Replay { since, max, prefix, .. }) => {
            assert!(since >= 1 && (1..=MAX_BATCH).contains(&max) && prefix.len() <= 256);
        }
        Ok(Request::Snapshot { prefix }) => assert!(prefix.len() <= 256),
        Err(e) => assert!(["malformed", "range"].contains(&e.code)),
    }
});

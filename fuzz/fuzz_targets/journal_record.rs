//! Journal records from a damaged disk: scanning arbitrary bytes (record by record, resyncing
//! after damage, as start-up and the replay reader do) must never panic, and every record it
//! accepts must encode back to exactly the bytes it was read from.
#![no_main]

use fixcurve::journal::record::{encode, resync, scan, Scan};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut pos = 0usize;
    let mut steps = 0;
    while pos < data.len() && steps < 10_000 {
        steps += 1;
        match scan(data, pos) {
            Scan::Record(r, next) => {
                assert!(next > pos && next <= data.len());
                let mut again = Vec::new();
                encode(&mut again, r.number, r.seq, &r.topic, r.dedupe.as_deref(), &r.payload);
                assert_eq!(&again[..], &data[pos..next]);
                pos = next;
            }
            Scan::Incomplete => break,
            Scan::Bad => match resync(data, pos + 1, steps % 2 == 0) {
                Some(at) => {
                    assert!(at > pos);
                    pos = at;
                }
                None => break,
            },
        }
    }
});

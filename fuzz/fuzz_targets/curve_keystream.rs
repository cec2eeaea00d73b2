//! The eight-lane Salsa20 (`curve::keystream::blocks`) against RustCrypto's Salsa20, lane by
//! lane, for arbitrary keys, nonces and block counters (high words included): every lane
//! must be the reference's block at that position of that nonce's stream.
#![no_main]

use fixcurve_proto::curve::keystream::{blocks, BLOCK, LANES};
use libfuzzer_sys::fuzz_target;
use salsa20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use salsa20::Salsa20;

fuzz_target!(|data: &[u8]| {
    let Some((key, rest)) = data.split_first_chunk::<32>() else {
        return;
    };
    let mut nonces = [[0u8; 8]; LANES];
    let mut counters = [0u64; LANES];
    for (i, chunk) in rest.chunks_exact(16).take(LANES).enumerate() {
        nonces[i].copy_from_slice(&chunk[..8]);
        counters[i] = u64::from_le_bytes(chunk[8..].try_into().unwrap());
    }
    let mut out = [[0u8; BLOCK]; LANES];
    blocks(key, &nonces, &counters, &mut out);
    for lane in 0..LANES {
        let mut cipher = Salsa20::new(key.into(), (&nonces[lane]).into());
        // The stream position in bytes, beyond u64 for the largest counters.
        let at = u128::from(counters[lane]) * BLOCK as u128;
        if cipher.try_seek(at).is_err() {
            continue;
        }
        let mut expect = [0u8; BLOCK];
        // The reference refuses the stream's very last block (counter 2^64 - 1).
        if cipher.try_apply_keystream(&mut expect).is_err() {
            continue;
        }
        assert_eq!(out[lane], expect, "lane {lane}, counter {}", counters[lane]);
    }
});

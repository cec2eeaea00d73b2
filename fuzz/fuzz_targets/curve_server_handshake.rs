//! Arbitrary bytes into the publisher's CURVE session. The first byte picks how far a
//! well-formed prefix takes it: raw bytes, after a valid greeting, or after a valid
//! greeting + HELLO (so the fuzzer works on INITIATE and later frames).
#![no_main]

use bytes::BytesMut;
use fixcurve_proto::curve::{ClientSession, ServerEvent, ServerSession};
use fixcurve_proto::keys::{Keypair, SecretKey};
use libfuzzer_sys::fuzz_target;

struct Det(u8);
impl rand_core::RngCore for Det {
    fn next_u32(&mut self) -> u32 {
        u32::from(self.0)
    }
    fn next_u64(&mut self) -> u64 {
        u64::from(self.0)
    }
    fn fill_bytes(&mut self, d: &mut [u8]) {
        for x in d {
            self.0 = self.0.wrapping_mul(31).wrapping_add(7);
            *x = self.0;
        }
    }
    fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(d);
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let server = Keypair::from_secret(SecretKey::from_bytes([9u8; 32]));
    // During a rotation the server holds two keys; half the inputs run that path.
    let keys = if mode & 4 == 0 {
        vec![server.clone()]
    } else {
        vec![
            Keypair::from_secret(SecretKey::from_bytes([7u8; 32])),
            server.clone(),
        ]
    };
    let mut s = ServerSession::with_keys(keys, 4096, Box::new(Det(1)));
    let mut out = BytesMut::new();
    match mode % 3 {
        0 => {}
        1 => s
            .input()
            .extend_from_slice(&fixcurve_proto::zmtp::greeting::encode("CURVE", false)),
        _ => {
            let client = Keypair::from_secret(SecretKey::from_bytes([5u8; 32]));
            let mut c = ClientSession::new(client, server.public, 4096, Box::new(Det(2)));
            let mut c_out = BytesMut::from(&c.greeting()[..]);
            c.input().extend_from_slice(&s.greeting());
            let _ = c.poll(&mut c_out);
            s.input().extend_from_slice(&c_out);
        }
    }
    // Then the fuzz input, in up to 4 chunks.
    for chunk in rest.chunks(rest.len() / 4 + 1) {
        s.input().extend_from_slice(chunk);
        loop {
            match s.poll(&mut out) {
                Ok(Some(ServerEvent::Authenticate { .. })) => {
                    let _ = s.accept(&mut out);
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});

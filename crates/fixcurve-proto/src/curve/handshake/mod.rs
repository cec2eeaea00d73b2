//! The CurveZMQ handshake, one state type per expected command (as rustls models TLS): each
//! step consumes its state and returns the reply with the next state, so a command out of
//! order has no method to call. They work on command *data* (the bytes after the command
//! name) and hold no sockets: `session` frames them.
//!
//! - server: [`ExpectHello`] -> [`ExpectInitiate`] -> [`Deciding`] -> `MessageCodec`.
//! - client: [`ClientStart`] -> [`ExpectWelcome`] -> [`ExpectReady`] -> `MessageCodec`.
//!
//! Layouts (measured against libzmq 4.3.5):
//! - HELLO 194: version 1.0, 72 zero bytes, C' (32), short nonce (8), box[64 zeros] C'->S.
//! - WELCOME 160: 16-byte nonce, box[S' + cookie] S->C'.
//! - cookie 96: 16-byte nonce, secretbox[C' + s'] under a per-connection cookie key.
//! - INITIATE: cookie (96), short nonce (8), box[C + vouch nonce (16) + vouch (80) + metadata]
//!   C'->S'; vouch = box[C' + S] C->S'.
//! - READY: short nonce (8), box[metadata] S'->C'.

use zeroize::Zeroize;

use super::crypto::TAG_LEN;
use super::Rng;
use crate::keys::PublicKey;
use crate::zmtp::Metadata;

mod client;
mod server;

pub use self::client::{ClientStart, ExpectReady, ExpectWelcome};
pub use self::server::{Deciding, ExpectHello, ExpectInitiate};

/// HELLO command body length (RFC 26), name included.
pub const HELLO_LEN: usize = 194;
/// WELCOME command body length (RFC 26), name included.
pub const WELCOME_LEN: usize = 160;
/// Cookie length: 16-byte nonce plus an 80-byte box.
pub const COOKIE_LEN: usize = 96;
/// INITIATE data without metadata.
pub const INITIATE_MIN_LEN: usize = COOKIE_LEN + 8 + TAG_LEN + 32 + 16 + 80;
/// Bounds the metadata a client may send before it is authenticated.
pub const MAX_METADATA: usize = 4096;

pub(super) fn random32(rng: &mut Rng) -> [u8; 32] {
    let mut b = [0u8; 32];
    rng.fill_bytes(&mut b);
    b
}

pub(super) fn random16(rng: &mut Rng) -> [u8; 16] {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    b
}

/// A transient keypair; the secret is wiped when dropped.
pub(super) struct Transient {
    pub(super) public: [u8; 32],
    pub(super) secret: [u8; 32],
}

impl Transient {
    pub(super) fn generate(rng: &mut Rng) -> Self {
        let secret = random32(rng);
        let public =
            x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(secret)).to_bytes();
        Transient { public, secret }
    }
}

impl Drop for Transient {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

pub(super) fn read_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

pub(super) fn arr32(b: &[u8]) -> [u8; 32] {
    let mut a = [0u8; 32];
    a.copy_from_slice(&b[..32]);
    a
}

/// What the server learns from a valid INITIATE: who the client is (vouch verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Initiated {
    /// The client's long-term key, proven by the vouch.
    pub client_key: PublicKey,
    /// The client's ZMTP metadata (Socket-Type, Identity...).
    pub metadata: Metadata,
    /// Which of our long-term keys the client addressed (during a rotation the server
    /// answers to the current and the previous key).
    pub server_key: PublicKey,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curve::{os_rng, CurveError};
    use crate::keys::Keypair;

    #[test]
    fn full_handshake_and_lengths() {
        let server = Keypair::generate();
        let client = Keypair::generate();
        let s = ExpectHello::new(server.clone(), os_rng());
        let c = ClientStart::new(client.clone(), server.public, os_rng());
        let (hello, c) = c.hello().unwrap();
        assert_eq!(hello.len(), HELLO_LEN);
        let (welcome, s) = s.on_hello(&hello).unwrap();
        assert_eq!(welcome.len(), WELCOME_LEN);
        let (initiate, c) = c
            .on_welcome(&welcome, &Metadata::socket_type("SUB"))
            .unwrap();
        assert_eq!(initiate.len(), INITIATE_MIN_LEN + 19);
        let (init, s) = s.on_initiate(&initiate).unwrap();
        assert_eq!(init.client_key, client.public);
        assert_eq!(init.metadata.get("Socket-Type"), Some(&b"SUB"[..]));
        let (ready, mut stx) = s.ready(&Metadata::socket_type("PUB"));
        let (md, mut crx) = c.on_ready(&ready).unwrap();
        assert_eq!(md.get("socket-type"), Some(&b"PUB"[..]));
        let mut out = bytes::BytesMut::new();
        stx.seal_into(&mut out, false, false, b"hi");
        let f = crate::zmtp::FrameDecoder::new(1024)
            .decode(&mut out)
            .unwrap()
            .unwrap();
        assert_eq!(&crx.open(f.body).unwrap().1[..], b"hi");
    }

    #[test]
    fn wrong_server_key_fails_at_hello() {
        let s = ExpectHello::new(Keypair::generate(), os_rng());
        let c = ClientStart::new(Keypair::generate(), Keypair::generate().public, os_rng());
        let (hello, _) = c.hello().unwrap();
        assert!(matches!(s.on_hello(&hello), Err(CurveError::BadBox)));
    }

    #[test]
    fn tampered_initiate_and_forged_vouch() {
        let server = Keypair::generate();
        for flip in [5usize, 100, 150, 230] {
            let s = ExpectHello::new(server.clone(), os_rng());
            let c = ClientStart::new(Keypair::generate(), server.public, os_rng());
            let (hello, c) = c.hello().unwrap();
            let (welcome, s) = s.on_hello(&hello).unwrap();
            let (mut initiate, _) = c.on_welcome(&welcome, &Metadata::default()).unwrap();
            initiate[flip] ^= 1;
            assert!(s.on_initiate(&initiate).is_err(), "flip {flip}");
        }
        // Malformed and wrong-version HELLOs are refused.
        let s = || ExpectHello::new(server.clone(), os_rng());
        assert!(matches!(
            s().on_hello(&[0u8; 10]),
            Err(CurveError::Malformed("HELLO"))
        ));
        let mut v2 = vec![0u8; HELLO_LEN];
        v2[0] = 2;
        assert!(matches!(s().on_hello(&v2), Err(CurveError::Version(2, 0))));
    }
}

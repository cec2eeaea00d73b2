//! The CurveZMQ handshake as two small state machines working on command *data* (the bytes
//! after the command name). They hold no sockets: `session` frames them.
//!
//! Layouts (measured against libzmq 4.3.5):
//! - HELLO 194: version 1.0, 72 zero bytes, C' (32), short nonce (8), box[64 zeros] C'->S.
//! - WELCOME 160: 16-byte nonce, box[S' + cookie] S->C'.
//! - cookie 96: 16-byte nonce, secretbox[C' + s'] under a per-connection cookie key.
//! - INITIATE: cookie (96), short nonce (8), box[C + vouch nonce (16) + vouch (80) + metadata]
//!   C'->S'; vouch = box[C' + S] C->S'.
//! - READY: short nonce (8), box[metadata] S'->C'.

use zeroize::Zeroize;

use super::crypto::{long_nonce, short_nonce, CookieKey, PrecomputedBox, TAG_LEN};
use super::message::MessageCodec;
use super::{prefix, CurveError, Rng};
use crate::keys::{Keypair, PublicKey};
use crate::zmtp::Metadata;

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

fn random32(rng: &mut Rng) -> [u8; 32] {
    let mut b = [0u8; 32];
    rng.fill_bytes(&mut b);
    b
}

fn random16(rng: &mut Rng) -> [u8; 16] {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    b
}

/// A transient keypair; the secret is wiped when dropped.
struct Transient {
    public: [u8; 32],
    secret: [u8; 32],
}

impl Transient {
    fn generate(rng: &mut Rng) -> Self {
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

fn read_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

fn arr32(b: &[u8]) -> [u8; 32] {
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

enum ServerState {
    ExpectHello,
    ExpectInitiate {
        client_transient: [u8; 32],
        cookie_key: CookieKey,
        hello_nonce: u64,
        server_key: PublicKey,
    },
    Decide {
        key: PrecomputedBox,
        initiate_nonce: u64,
    },
    Done,
}

/// The server side: HELLO in, WELCOME out; INITIATE in, a verified client key out; then the
/// caller's decision becomes READY (with a `MessageCodec`) or ERROR.
///
/// It may hold several long-term keys (the current one first, then one being retired): the
/// HELLO box opens only with the key the client was given, so the key is found by trying
/// each, and a stock libzmq client never notices that the server has more than one.
pub struct ServerHandshake {
    keys: Vec<Keypair>,
    rng: Rng,
    state: ServerState,
}

impl ServerHandshake {
    /// A server handshake answering to `server`, with `rng` for transient keys and cookies.
    pub fn new(server: Keypair, rng: Rng) -> Self {
        Self::with_keys(vec![server], rng)
    }

    /// Several long-term keys, tried in order.
    pub fn with_keys(keys: Vec<Keypair>, rng: Rng) -> Self {
        ServerHandshake {
            keys,
            rng,
            state: ServerState::ExpectHello,
        }
    }

    /// Checks a HELLO and returns the WELCOME to send.
    pub fn on_hello(&mut self, data: &[u8]) -> Result<Vec<u8>, CurveError> {
        if !matches!(self.state, ServerState::ExpectHello) {
            return Err(CurveError::Unexpected {
                got: "HELLO".into(),
                expected: "INITIATE",
            });
        }
        if data.len() != HELLO_LEN {
            return Err(CurveError::Malformed("HELLO"));
        }
        if data[0] != 1 || data[1] != 0 {
            return Err(CurveError::Version(data[0], data[1]));
        }
        let client_transient = arr32(&data[74..106]);
        let hello_nonce = read_u64(&data[106..114]);
        let nonce = short_nonce(prefix::HELLO, hello_nonce);
        let mut opened = Err(CurveError::Malformed("HELLO: no server key"));
        for kp in &self.keys {
            let attempt =
                PrecomputedBox::new(&client_transient, kp.secret.as_bytes()).and_then(|b| {
                    b.open(&nonce, &data[114..194])
                        .map(|sig| (b, sig, kp.public))
                });
            if attempt.is_ok() || opened.is_err() {
                opened = attempt;
            }
            if opened.is_ok() {
                break;
            }
        }
        let (hello_box, signature, server_key) = opened?;
        if signature.iter().any(|&b| b != 0) {
            return Err(CurveError::Malformed("HELLO"));
        }
        // Server transient key and cookie: the cookie lets a stateless server recover s'; we
        // keep state anyway, but verify the cookie exactly as the RFC says.
        let transient = Transient::generate(&mut self.rng);
        let cookie_key = CookieKey::new(random32(&mut self.rng));
        let cookie_nonce = random16(&mut self.rng);
        let mut cookie_plain = [0u8; 64];
        cookie_plain[..32].copy_from_slice(&client_transient);
        cookie_plain[32..].copy_from_slice(&transient.secret);
        let cookie_box = cookie_key.seal(&long_nonce(prefix::COOKIE, &cookie_nonce), &cookie_plain);
        cookie_plain.zeroize();
        let mut welcome_plain = Vec::with_capacity(32 + COOKIE_LEN);
        welcome_plain.extend_from_slice(&transient.public);
        welcome_plain.extend_from_slice(&cookie_nonce);
        welcome_plain.extend_from_slice(&cookie_box);
        let welcome_nonce = random16(&mut self.rng);
        let sealed = hello_box.seal(&long_nonce(prefix::WELCOME, &welcome_nonce), &welcome_plain);
        let mut out = Vec::with_capacity(WELCOME_LEN);
        out.extend_from_slice(&welcome_nonce);
        out.extend_from_slice(&sealed);
        self.state = ServerState::ExpectInitiate {
            client_transient,
            cookie_key,
            hello_nonce,
            server_key,
        };
        Ok(out)
    }

    /// Checks an INITIATE (cookie, vouch, metadata box) and says who the client is.
    pub fn on_initiate(&mut self, data: &[u8]) -> Result<Initiated, CurveError> {
        let ServerState::ExpectInitiate {
            client_transient,
            cookie_key,
            hello_nonce,
            server_key,
        } = &self.state
        else {
            return Err(CurveError::Unexpected {
                got: "INITIATE".into(),
                expected: "HELLO",
            });
        };
        if data.len() < INITIATE_MIN_LEN || data.len() > INITIATE_MIN_LEN + MAX_METADATA {
            return Err(CurveError::Malformed("INITIATE"));
        }
        let mut cookie_plain = cookie_key
            .open(&long_nonce(prefix::COOKIE, &data[..16]), &data[16..96])
            .map_err(|_| CurveError::BadCookie)?;
        if cookie_plain[..32] != client_transient[..] {
            cookie_plain.zeroize();
            return Err(CurveError::BadCookie);
        }
        let mut server_transient_secret = arr32(&cookie_plain[32..64]);
        cookie_plain.zeroize();
        let nonce = read_u64(&data[96..104]);
        if nonce <= *hello_nonce {
            server_transient_secret.zeroize();
            return Err(CurveError::Replay {
                got: nonce,
                last: *hello_nonce,
            });
        }
        let key = PrecomputedBox::new(client_transient, &server_transient_secret);
        let plain = key
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|k| k.open(&short_nonce(prefix::INITIATE, nonce), &data[104..]));
        let plain = match plain {
            Ok(p) => p,
            Err(e) => {
                server_transient_secret.zeroize();
                return Err(e);
            }
        };
        let client_long = arr32(&plain[..32]);
        // The vouch is boxed from C to S', so it opens with s' and C.
        let vouch_box = PrecomputedBox::new(&client_long, &server_transient_secret);
        server_transient_secret.zeroize();
        let (key, vouch_box) = (key?, vouch_box?);
        let vouch = vouch_box.open(&long_nonce(prefix::VOUCH, &plain[32..48]), &plain[48..128])?;
        if vouch[..32] != client_transient[..] || vouch[32..64] != server_key.0[..] {
            return Err(CurveError::BadVouch);
        }
        let metadata = Metadata::parse(&plain[128..])
            .map_err(|_| CurveError::Malformed("INITIATE metadata"))?;
        let server_key = *server_key;
        self.state = ServerState::Decide {
            key,
            initiate_nonce: nonce,
        };
        Ok(Initiated {
            client_key: PublicKey(client_long),
            metadata,
            server_key,
        })
    }

    /// The client is allowed: READY data (our metadata boxed S'->C') and the traffic codec.
    /// Our READY uses short nonce 1, messages follow from 2, as libzmq does.
    #[allow(clippy::arithmetic_side_effects)] // lengths of boxes we sealed, a few hundred bytes
    pub fn ready(&mut self, metadata: &Metadata) -> Result<(Vec<u8>, MessageCodec), CurveError> {
        if !matches!(self.state, ServerState::Decide { .. }) {
            return Err(CurveError::Unexpected {
                got: "READY".into(),
                expected: "INITIATE first",
            });
        }
        let ServerState::Decide {
            key,
            initiate_nonce,
        } = std::mem::replace(&mut self.state, ServerState::Done)
        else {
            return Err(CurveError::Unexpected {
                got: "READY".into(),
                expected: "INITIATE first",
            });
        };
        let sealed = key.seal(&short_nonce(prefix::READY, 1), &metadata.encode());
        let mut out = Vec::with_capacity(8 + sealed.len());
        out.extend_from_slice(&1u64.to_be_bytes());
        out.extend_from_slice(&sealed);
        Ok((out, MessageCodec::new(key, true, 2, initiate_nonce)))
    }
}

enum ClientState {
    Start,
    ExpectWelcome {
        transient: Transient,
        hello_box: PrecomputedBox,
    },
    ExpectReady {
        key: PrecomputedBox,
    },
    Done,
}

/// The client side: HELLO out; WELCOME in, INITIATE out; READY in, traffic codec out.
pub struct ClientHandshake {
    client: Keypair,
    server_key: PublicKey,
    rng: Rng,
    state: ClientState,
}

impl ClientHandshake {
    /// A client handshake with `client`'s key towards the server key `server_key`.
    pub fn new(client: Keypair, server_key: PublicKey, rng: Rng) -> Self {
        ClientHandshake {
            client,
            server_key,
            rng,
            state: ClientState::Start,
        }
    }

    /// HELLO data. Short nonce 1 (INITIATE uses 2, messages 3 onwards), as libzmq.
    pub fn hello(&mut self) -> Result<Vec<u8>, CurveError> {
        let transient = Transient::generate(&mut self.rng);
        let hello_box = PrecomputedBox::new(&self.server_key.0, &transient.secret)?;
        let sealed = hello_box.seal(&short_nonce(prefix::HELLO, 1), &[0u8; 64]);
        let mut out = Vec::with_capacity(HELLO_LEN);
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&[0u8; 72]);
        out.extend_from_slice(&transient.public);
        out.extend_from_slice(&1u64.to_be_bytes());
        out.extend_from_slice(&sealed);
        self.state = ClientState::ExpectWelcome {
            transient,
            hello_box,
        };
        Ok(out)
    }

    /// WELCOME data in, INITIATE data out.
    #[allow(clippy::arithmetic_side_effects)] // lengths of boxes we sealed, a few hundred bytes
    pub fn on_welcome(&mut self, data: &[u8], metadata: &Metadata) -> Result<Vec<u8>, CurveError> {
        let ClientState::ExpectWelcome {
            transient,
            hello_box,
        } = &self.state
        else {
            return Err(CurveError::Unexpected {
                got: "WELCOME".into(),
                expected: "READY",
            });
        };
        if data.len() != WELCOME_LEN {
            return Err(CurveError::Malformed("WELCOME"));
        }
        let plain = hello_box.open(&long_nonce(prefix::WELCOME, &data[..16]), &data[16..])?;
        let server_transient = arr32(&plain[..32]);
        let cookie = &plain[32..128];
        let key = PrecomputedBox::new(&server_transient, &transient.secret)?;
        let vouch_nonce = random16(&mut self.rng);
        let mut vouch_plain = [0u8; 64];
        vouch_plain[..32].copy_from_slice(&transient.public);
        vouch_plain[32..].copy_from_slice(&self.server_key.0);
        let vouch = PrecomputedBox::new(&server_transient, self.client.secret.as_bytes())?
            .seal(&long_nonce(prefix::VOUCH, &vouch_nonce), &vouch_plain);
        let mut inner = Vec::with_capacity(128 + 64);
        inner.extend_from_slice(&self.client.public.0);
        inner.extend_from_slice(&vouch_nonce);
        inner.extend_from_slice(&vouch);
        metadata.encode_into(&mut inner);
        let sealed = key.seal(&short_nonce(prefix::INITIATE, 2), &inner);
        let mut out = Vec::with_capacity(COOKIE_LEN + 8 + sealed.len());
        out.extend_from_slice(cookie);
        out.extend_from_slice(&2u64.to_be_bytes());
        out.extend_from_slice(&sealed);
        self.state = ClientState::ExpectReady { key };
        Ok(out)
    }

    /// READY data in: the server's metadata and the traffic codec.
    pub fn on_ready(&mut self, data: &[u8]) -> Result<(Metadata, MessageCodec), CurveError> {
        let ClientState::ExpectReady { key } =
            std::mem::replace(&mut self.state, ClientState::Done)
        else {
            return Err(CurveError::Unexpected {
                got: "READY".into(),
                expected: "WELCOME",
            });
        };
        if data.len() < 8 + TAG_LEN {
            return Err(CurveError::Malformed("READY"));
        }
        let nonce = read_u64(data);
        let plain = key.open(&short_nonce(prefix::READY, nonce), &data[8..])?;
        let metadata =
            Metadata::parse(&plain).map_err(|_| CurveError::Malformed("READY metadata"))?;
        Ok((metadata, MessageCodec::new(key, false, 3, nonce)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_handshake_and_lengths() {
        let server = Keypair::generate();
        let client = Keypair::generate();
        let mut s = ServerHandshake::new(server.clone(), super::super::os_rng());
        let mut c = ClientHandshake::new(client.clone(), server.public, super::super::os_rng());
        let hello = c.hello().unwrap();
        assert_eq!(hello.len(), HELLO_LEN);
        let welcome = s.on_hello(&hello).unwrap();
        assert_eq!(welcome.len(), WELCOME_LEN);
        let initiate = c
            .on_welcome(&welcome, &Metadata::socket_type("SUB"))
            .unwrap();
        assert_eq!(initiate.len(), INITIATE_MIN_LEN + 19);
        let init = s.on_initiate(&initiate).unwrap();
        assert_eq!(init.client_key, client.public);
        assert_eq!(init.metadata.get("Socket-Type"), Some(&b"SUB"[..]));
        let (ready, mut stx) = s.ready(&Metadata::socket_type("PUB")).unwrap();
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
        let server = Keypair::generate();
        let mut s = ServerHandshake::new(server, super::super::os_rng());
        let mut c = ClientHandshake::new(
            Keypair::generate(),
            Keypair::generate().public,
            super::super::os_rng(),
        );
        assert_eq!(s.on_hello(&c.hello().unwrap()), Err(CurveError::BadBox));
    }

    #[test]
    fn tampered_initiate_and_forged_vouch() {
        let server = Keypair::generate();
        for flip in [5usize, 100, 150, 230] {
            let mut s = ServerHandshake::new(server.clone(), super::super::os_rng());
            let mut c =
                ClientHandshake::new(Keypair::generate(), server.public, super::super::os_rng());
            let welcome = s.on_hello(&c.hello().unwrap()).unwrap();
            let mut initiate = c.on_welcome(&welcome, &Metadata::default()).unwrap();
            initiate[flip] ^= 1;
            assert!(s.on_initiate(&initiate).is_err(), "flip {flip}");
        }
        // Out-of-order commands are refused.
        let mut s = ServerHandshake::new(server.clone(), super::super::os_rng());
        assert!(matches!(
            s.on_initiate(&[0u8; 300]),
            Err(CurveError::Unexpected { .. })
        ));
        assert!(s.ready(&Metadata::default()).is_err());
        assert_eq!(s.on_hello(&[0u8; 10]), Err(CurveError::Malformed("HELLO")));
        let mut v2 = vec![0u8; HELLO_LEN];
        v2[0] = 2;
        assert_eq!(s.on_hello(&v2), Err(CurveError::Version(2, 0)));
    }
}

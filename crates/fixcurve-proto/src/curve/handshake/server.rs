//! The server side: HELLO in, WELCOME out; INITIATE in, a verified client key out; then the
//! caller's decision becomes READY (with a `MessageCodec`) or ERROR.

use zeroize::Zeroize;

use super::{arr32, random16, random32, read_u64, Initiated, Transient};
use super::{COOKIE_LEN, HELLO_LEN, INITIATE_MIN_LEN, MAX_METADATA, WELCOME_LEN};
use crate::curve::crypto::{long_nonce, short_nonce, CookieKey, PrecomputedBox};
use crate::curve::message::MessageCodec;
use crate::curve::{prefix, CurveError, Rng};
use crate::keys::{Keypair, PublicKey};
use crate::zmtp::Metadata;

/// Waiting for HELLO.
///
/// It may hold several long-term keys (the current one first, then one being retired): the
/// HELLO box opens only with the key the client was given, so the key is found by trying
/// each, and a stock libzmq client never notices that the server has more than one.
pub struct ExpectHello {
    keys: Vec<Keypair>,
    rng: Rng,
}

/// WELCOME sent; waiting for INITIATE.
pub struct ExpectInitiate {
    client_transient: [u8; 32],
    cookie_key: CookieKey,
    hello_nonce: u64,
    server_key: PublicKey,
}

/// INITIATE verified; waiting for the caller to allow ([`Deciding::ready`]) or refuse.
pub struct Deciding {
    key: PrecomputedBox,
    initiate_nonce: u64,
}

impl ExpectHello {
    /// A server handshake answering to `server`, with `rng` for transient keys and cookies.
    pub fn new(server: Keypair, rng: Rng) -> Self {
        Self::with_keys(vec![server], rng)
    }

    /// Several long-term keys, tried in order.
    pub fn with_keys(keys: Vec<Keypair>, rng: Rng) -> Self {
        ExpectHello { keys, rng }
    }

    /// Checks a HELLO; returns the WELCOME to send and the next state.
    pub fn on_hello(mut self, data: &[u8]) -> Result<(Vec<u8>, ExpectInitiate), CurveError> {
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
        let next = ExpectInitiate {
            client_transient,
            cookie_key,
            hello_nonce,
            server_key,
        };
        Ok((out, next))
    }
}

impl ExpectInitiate {
    /// Checks an INITIATE (cookie, vouch, metadata box): who the client is, and the state in
    /// which the caller decides.
    pub fn on_initiate(self, data: &[u8]) -> Result<(Initiated, Deciding), CurveError> {
        if data.len() < INITIATE_MIN_LEN || data.len() > INITIATE_MIN_LEN + MAX_METADATA {
            return Err(CurveError::Malformed("INITIATE"));
        }
        let mut cookie_plain = self
            .cookie_key
            .open(&long_nonce(prefix::COOKIE, &data[..16]), &data[16..96])
            .map_err(|_| CurveError::BadCookie)?;
        if cookie_plain[..32] != self.client_transient[..] {
            cookie_plain.zeroize();
            return Err(CurveError::BadCookie);
        }
        let mut server_transient_secret = arr32(&cookie_plain[32..64]);
        cookie_plain.zeroize();
        let nonce = read_u64(&data[96..104]);
        if nonce <= self.hello_nonce {
            server_transient_secret.zeroize();
            return Err(CurveError::Replay {
                got: nonce,
                last: self.hello_nonce,
            });
        }
        let key = PrecomputedBox::new(&self.client_transient, &server_transient_secret);
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
        if vouch[..32] != self.client_transient[..] || vouch[32..64] != self.server_key.0[..] {
            return Err(CurveError::BadVouch);
        }
        let metadata = Metadata::parse(&plain[128..])
            .map_err(|_| CurveError::Malformed("INITIATE metadata"))?;
        let initiated = Initiated {
            client_key: PublicKey(client_long),
            metadata,
            server_key: self.server_key,
        };
        let deciding = Deciding {
            key,
            initiate_nonce: nonce,
        };
        Ok((initiated, deciding))
    }
}

impl Deciding {
    /// The client is allowed: READY data (our metadata boxed S'->C') and the traffic codec.
    /// Our READY uses short nonce 1, messages follow from 2, as libzmq does.
    #[allow(clippy::arithmetic_side_effects)] // lengths of boxes we sealed, a few hundred bytes
    pub fn ready(self, metadata: &Metadata) -> (Vec<u8>, MessageCodec) {
        let sealed = self
            .key
            .seal(&short_nonce(prefix::READY, 1), &metadata.encode());
        let mut out = Vec::with_capacity(8 + sealed.len());
        out.extend_from_slice(&1u64.to_be_bytes());
        out.extend_from_slice(&sealed);
        let codec = MessageCodec::new(self.key, true, 2, self.initiate_nonce);
        (out, codec)
    }
}

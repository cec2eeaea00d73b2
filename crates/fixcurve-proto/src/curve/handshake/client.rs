//! The client side: HELLO out; WELCOME in, INITIATE out; READY in, traffic codec out.

use super::{arr32, random16, read_u64, Transient};
use super::{COOKIE_LEN, HELLO_LEN, WELCOME_LEN};
use crate::curve::crypto::{long_nonce, short_nonce, PrecomputedBox, TAG_LEN};
use crate::curve::message::MessageCodec;
use crate::curve::{prefix, CurveError, Rng};
use crate::keys::{Keypair, PublicKey};
use crate::zmtp::Metadata;

/// Before HELLO: our key, the server's, and the randomness for transient keys.
pub struct ClientStart {
    client: Keypair,
    server_key: PublicKey,
    rng: Rng,
}

/// HELLO sent; waiting for WELCOME.
pub struct ExpectWelcome {
    client: Keypair,
    server_key: PublicKey,
    rng: Rng,
    transient: Transient,
    hello_box: PrecomputedBox,
}

/// INITIATE sent; waiting for READY.
pub struct ExpectReady {
    key: PrecomputedBox,
}

impl ClientStart {
    /// A client handshake with `client`'s key towards the server key `server_key`.
    pub fn new(client: Keypair, server_key: PublicKey, rng: Rng) -> Self {
        ClientStart {
            client,
            server_key,
            rng,
        }
    }

    /// HELLO data. Short nonce 1 (INITIATE uses 2, messages 3 onwards), as libzmq.
    pub fn hello(mut self) -> Result<(Vec<u8>, ExpectWelcome), CurveError> {
        let transient = Transient::generate(&mut self.rng);
        let hello_box = PrecomputedBox::new(&self.server_key.0, &transient.secret)?;
        let sealed = hello_box.seal(&short_nonce(prefix::HELLO, 1), &[0u8; 64]);
        let mut out = Vec::with_capacity(HELLO_LEN);
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&[0u8; 72]);
        out.extend_from_slice(&transient.public);
        out.extend_from_slice(&1u64.to_be_bytes());
        out.extend_from_slice(&sealed);
        let next = ExpectWelcome {
            client: self.client,
            server_key: self.server_key,
            rng: self.rng,
            transient,
            hello_box,
        };
        Ok((out, next))
    }
}

impl ExpectWelcome {
    /// WELCOME data in, INITIATE data out.
    #[allow(clippy::arithmetic_side_effects)] // lengths of boxes we sealed, a few hundred bytes
    pub fn on_welcome(
        mut self,
        data: &[u8],
        metadata: &Metadata,
    ) -> Result<(Vec<u8>, ExpectReady), CurveError> {
        if data.len() != WELCOME_LEN {
            return Err(CurveError::Malformed("WELCOME"));
        }
        let plain = self
            .hello_box
            .open(&long_nonce(prefix::WELCOME, &data[..16]), &data[16..])?;
        let server_transient = arr32(&plain[..32]);
        let cookie = &plain[32..128];
        let key = PrecomputedBox::new(&server_transient, &self.transient.secret)?;
        let vouch_nonce = random16(&mut self.rng);
        let mut vouch_plain = [0u8; 64];
        vouch_plain[..32].copy_from_slice(&self.transient.public);
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
        Ok((out, ExpectReady { key }))
    }
}

impl ExpectReady {
    /// READY data in: the server's metadata and the traffic codec.
    pub fn on_ready(self, data: &[u8]) -> Result<(Metadata, MessageCodec), CurveError> {
        if data.len() < 8 + TAG_LEN {
            return Err(CurveError::Malformed("READY"));
        }
        let nonce = read_u64(data);
        let plain = self
            .key
            .open(&short_nonce(prefix::READY, nonce), &data[8..])?;
        let metadata =
            Metadata::parse(&plain).map_err(|_| CurveError::Malformed("READY metadata"))?;
        Ok((metadata, MessageCodec::new(self.key, false, 3, nonce)))
    }
}

//! MESSAGE: `"\x07MESSAGE"`, an 8-byte big-endian nonce, and a box of `[flags, payload]`.
//!
//! libzmq sends every message part as its own MESSAGE in a frame whose outer flags are 0
//! (33 bytes of overhead per part); the MORE and COMMAND bits travel inside the box. Sealing
//! writes straight into the connection's output buffer and encrypts there, so a published
//! payload is copied once per subscriber (into its socket buffer) and never allocated.

use bytes::{Buf, BufMut, BytesMut};

use super::crypto::{MessageKeys, PrecomputedBox, TAG_LEN};
use super::{prefix, CurveError};
use crate::zmtp::frame;

/// The MESSAGE command name as it appears on the wire, length byte first.
pub const MESSAGE_NAME: &[u8; 8] = b"\x07MESSAGE";
/// Name + nonce + tag + inner flags.
pub const OVERHEAD: usize = 8 + 8 + TAG_LEN + 1;

/// Flag in the sealed payload: more frames of this message follow.
pub const INNER_MORE: u8 = 0x01;
/// Flag in the sealed payload: the frame is a command (SUBSCRIBE, PING...).
pub const INNER_COMMAND: u8 = 0x02;

/// Per-connection traffic keys and nonce counters after the handshake.
pub struct MessageCodec {
    keys: MessageKeys,
    tx_nonce: u64,
    rx_last: u64,
}

impl MessageCodec {
    /// `tx_next`: our next short nonce; `rx_last`: the peer's last short nonce seen in the
    /// handshake (its messages must carry larger ones).
    pub fn new(key: PrecomputedBox, is_server: bool, tx_next: u64, rx_last: u64) -> Self {
        let (tx_prefix, rx_prefix) = if is_server {
            (prefix::MESSAGE_S, prefix::MESSAGE_C)
        } else {
            (prefix::MESSAGE_C, prefix::MESSAGE_S)
        };
        MessageCodec {
            keys: MessageKeys::new(key, tx_prefix, rx_prefix),
            tx_nonce: tx_next,
            rx_last,
        }
    }

    /// Appends one sealed part as a complete ZMTP frame.
    #[allow(clippy::arithmetic_side_effects)] // payload lengths are bounded by the frame limit; 0/1 flags times bit constants
    pub fn seal_into(&mut self, out: &mut BytesMut, more: bool, command: bool, payload: &[u8]) {
        let body_len = OVERHEAD + payload.len();
        out.reserve(frame::header_len(body_len) + body_len);
        frame::put_header(out, false, false, body_len);
        out.put_slice(MESSAGE_NAME);
        let nonce = self.tx_nonce;
        self.tx_nonce = self.tx_nonce.wrapping_add(1);
        out.put_u64(nonce);
        let tag_at = out.len();
        out.put_bytes(0, TAG_LEN);
        let plain_at = out.len();
        out.put_u8((u8::from(more) * INNER_MORE) | (u8::from(command) * INNER_COMMAND));
        out.put_slice(payload);
        let tag = self.keys.seal(nonce, &mut out[plain_at..]);
        out[tag_at..plain_at].copy_from_slice(&tag);
    }

    /// Opens a MESSAGE frame body in place; returns the inner flags and the payload (a view
    /// of the same buffer).
    pub fn open(&mut self, mut body: BytesMut) -> Result<(u8, BytesMut), CurveError> {
        if body.len() < OVERHEAD || &body[..8] != MESSAGE_NAME {
            if body.len() >= 8 && &body[..8] != MESSAGE_NAME {
                let got = crate::zmtp::command::split(&body)
                    .map(|(n, _)| String::from_utf8_lossy(n).into_owned())
                    .unwrap_or_else(|_| "non-command".into());
                return Err(CurveError::Unexpected {
                    got,
                    expected: "MESSAGE",
                });
            }
            return Err(CurveError::Malformed("MESSAGE"));
        }
        let mut n = [0u8; 8];
        n.copy_from_slice(&body[8..16]);
        let nonce = u64::from_be_bytes(n);
        if nonce <= self.rx_last {
            return Err(CurveError::Replay {
                got: nonce,
                last: self.rx_last,
            });
        }
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&body[16..32]);
        self.keys.open(nonce, &mut body[32..], &tag)?;
        self.rx_last = nonce;
        body.advance(32);
        let flags = body[0];
        body.advance(1);
        Ok((flags, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zmtp::FrameDecoder;

    fn pair() -> (MessageCodec, MessageCodec) {
        let a = [3u8; 32];
        let b = [5u8; 32];
        let a_pub = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(a)).to_bytes();
        let b_pub = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(b)).to_bytes();
        (
            MessageCodec::new(PrecomputedBox::new(&b_pub, &a).unwrap(), true, 2, 2),
            MessageCodec::new(PrecomputedBox::new(&a_pub, &b).unwrap(), false, 3, 1),
        )
    }

    #[test]
    fn roundtrip_and_layout() {
        let (mut server, mut client) = pair();
        let mut out = BytesMut::new();
        server.seal_into(&mut out, true, false, b"topic");
        server.seal_into(&mut out, false, false, &[0xAB; 1000]);
        // 2-byte header, name, nonce 2 (big-endian), then the box.
        assert_eq!(out[0], 0x00);
        assert_eq!(usize::from(out[1]), OVERHEAD + 5);
        assert_eq!(&out[2..10], MESSAGE_NAME);
        assert_eq!(&out[10..18], &[0, 0, 0, 0, 0, 0, 0, 2]);
        let dec = FrameDecoder::new(1 << 20);
        let f1 = dec.decode(&mut out).unwrap().unwrap();
        let f2 = dec.decode(&mut out).unwrap().unwrap();
        assert_eq!(f2.body.len(), OVERHEAD + 1000);
        let (flags, p) = client.open(f1.body).unwrap();
        assert_eq!((flags, &p[..]), (INNER_MORE, &b"topic"[..]));
        let (flags, p) = client.open(f2.body).unwrap();
        assert_eq!(flags, 0);
        assert_eq!(&p[..], &[0xAB; 1000][..]);
    }

    #[test]
    fn rejects_replay_tamper_truncation() {
        let (mut server, mut client) = pair();
        let dec = FrameDecoder::new(1 << 20);
        let mut out = BytesMut::new();
        server.seal_into(&mut out, false, false, b"one");
        let f = dec.decode(&mut out).unwrap().unwrap();
        let copy = f.body.clone();
        client.open(f.body).unwrap();
        assert_eq!(
            client.open(copy).err(),
            Some(CurveError::Replay { got: 2, last: 2 })
        );
        server.seal_into(&mut out, false, false, b"two");
        let mut f = dec.decode(&mut out).unwrap().unwrap();
        let last = f.body.len() - 1;
        f.body[last] ^= 0x80;
        assert_eq!(client.open(f.body).err(), Some(CurveError::BadBox));
        assert_eq!(
            client
                .open(BytesMut::from(&b"\x07MESSAGE\0\0\0\0\0\0\0\x09short"[..]))
                .err(),
            Some(CurveError::Malformed("MESSAGE"))
        );
        assert!(matches!(
            client.open(BytesMut::from(
                &b"\x05READYxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"[..]
            )),
            Err(CurveError::Unexpected { .. })
        ));
        // a tampered message did not advance the nonce: the next genuine one still opens
        server.seal_into(&mut out, false, false, b"three");
        let f = dec.decode(&mut out).unwrap().unwrap();
        assert_eq!(&client.open(f.body).unwrap().1[..], b"three");
    }
}

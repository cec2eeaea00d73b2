//! ZMTP 3 frames: `flags`, size (1 byte, or 8 bytes big-endian with the LONG flag), body.
//!
//! The decoder works on a `BytesMut` the socket reads into, and hands out each body as a
//! `BytesMut` split off that buffer (no copy), so CURVE can decrypt it in place. The size
//! limit is checked on the header, before a single body byte is buffered.

use bytes::{Buf, BufMut, BytesMut};

use super::ZmtpError;

/// More frames of this message follow.
pub const FLAG_MORE: u8 = 0x01;
/// The size is 8 bytes, not 1.
pub const FLAG_LONG: u8 = 0x02;
/// A command frame, not a message frame.
pub const FLAG_COMMAND: u8 = 0x04;

/// One decoded frame; `body` is mutable so it can be decrypted in place.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    /// More frames of this message follow.
    pub more: bool,
    /// A command frame.
    pub command: bool,
    /// The frame body.
    pub body: BytesMut,
}

/// Writes a frame header for a body of `len` bytes.
pub fn put_header(out: &mut BytesMut, more: bool, command: bool, len: usize) {
    let mut flags = 0u8;
    if more {
        flags |= FLAG_MORE;
    }
    if command {
        flags |= FLAG_COMMAND;
    }
    if len > 255 {
        out.put_u8(flags | FLAG_LONG);
        out.put_u64(len as u64);
    } else {
        out.put_u8(flags);
        out.put_u8(len as u8);
    }
}

/// Size of the header `put_header` writes for a body of `len` bytes.
pub fn header_len(len: usize) -> usize {
    if len > 255 {
        9
    } else {
        2
    }
}

/// Writes a complete frame.
#[allow(clippy::arithmetic_side_effects)] // lengths of a body held in memory
pub fn put_frame(out: &mut BytesMut, more: bool, command: bool, body: &[u8]) {
    out.reserve(header_len(body.len()) + body.len());
    put_header(out, more, command, body.len());
    out.put_slice(body);
}

/// Splits frames off an input buffer, refusing any frame larger than `max_frame`.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_frame: usize,
}

impl FrameDecoder {
    /// A decoder refusing frames over `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        FrameDecoder { max_frame }
    }

    /// The largest frame accepted.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// How many more bytes are needed before the next frame can be decoded (a read-size
    /// hint), or 0 if one is ready.
    pub fn needed(&self, buf: &[u8]) -> usize {
        match self.peek(buf) {
            Ok(Some((hdr, len))) => hdr.saturating_add(len).saturating_sub(buf.len()),
            Ok(None) => 9usize.saturating_sub(buf.len()).max(1),
            Err(_) => 0,
        }
    }

    /// Header length and body length of the frame at the start of `buf`, if its header is
    /// complete.
    fn peek(&self, buf: &[u8]) -> Result<Option<(usize, usize)>, ZmtpError> {
        let Some(&flags) = buf.first() else {
            return Ok(None);
        };
        if flags & !(FLAG_MORE | FLAG_LONG | FLAG_COMMAND) != 0 {
            return Err(ZmtpError::BadFlags(flags));
        }
        if flags & FLAG_COMMAND != 0 && flags & FLAG_MORE != 0 {
            return Err(ZmtpError::CommandWithMore);
        }
        let (hdr, size) = if flags & FLAG_LONG != 0 {
            let Some(raw) = buf.get(1..9) else {
                return Ok(None);
            };
            let mut a = [0u8; 8];
            a.copy_from_slice(raw);
            (9, u64::from_be_bytes(a))
        } else {
            let Some(&s) = buf.get(1) else {
                return Ok(None);
            };
            (2, u64::from(s))
        };
        if size > self.max_frame as u64 {
            return Err(ZmtpError::FrameTooLarge {
                size,
                max: self.max_frame,
            });
        }
        Ok(Some((hdr, size as usize)))
    }

    /// The next complete frame, `None` if more bytes are needed.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Frame>, ZmtpError> {
        let Some((hdr, len)) = self.peek(buf)? else {
            return Ok(None);
        };
        // `peek` bounds `len` by the frame limit, but the sum is checked all the same: the
        // length is the peer's number.
        let total = hdr.checked_add(len).ok_or(ZmtpError::FrameTooLarge {
            size: u64::MAX,
            max: self.max_frame,
        })?;
        if buf.len() < total {
            // Make room once for the whole frame instead of growing in small steps.
            buf.reserve(total.saturating_sub(buf.len()));
            return Ok(None);
        }
        let flags = buf[0];
        buf.advance(hdr);
        let body = buf.split_to(len);
        Ok(Some(Frame {
            more: flags & FLAG_MORE != 0,
            command: flags & FLAG_COMMAND != 0,
            body,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_roundtrip() {
        let mut out = BytesMut::new();
        put_frame(&mut out, true, false, b"topic");
        put_frame(&mut out, false, true, &[7u8; 300]);
        assert_eq!(&out[..7], b"\x01\x05topic");
        assert_eq!(&out[7..16], &[0x06, 0, 0, 0, 0, 0, 0, 0x01, 0x2c]);
        let dec = FrameDecoder::new(1024);
        // byte by byte: nothing until complete
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for &b in out.iter() {
            buf.put_u8(b);
            while let Some(f) = dec.decode(&mut buf).unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(frames.len(), 2);
        assert!(frames[0].more && !frames[0].command);
        assert_eq!(&frames[0].body[..], b"topic");
        assert!(!frames[1].more && frames[1].command);
        assert_eq!(frames[1].body.len(), 300);
        assert!(buf.is_empty());
    }

    #[test]
    fn rejects_hostile_headers() {
        let dec = FrameDecoder::new(1000);
        let mut b = BytesMut::from(&[0x02u8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..]);
        assert_eq!(
            dec.decode(&mut b),
            Err(ZmtpError::FrameTooLarge {
                size: u64::MAX,
                max: 1000
            })
        );
        let mut b = BytesMut::from(&[0x02u8, 0, 0, 0, 0, 0, 0, 0x03, 0xe9][..]);
        assert_eq!(
            dec.decode(&mut b),
            Err(ZmtpError::FrameTooLarge {
                size: 1001,
                max: 1000
            })
        );
        let mut b = BytesMut::from(&[0x08u8, 0][..]);
        assert_eq!(dec.decode(&mut b), Err(ZmtpError::BadFlags(0x08)));
        let mut b = BytesMut::from(&[0x05u8, 0][..]);
        assert_eq!(dec.decode(&mut b), Err(ZmtpError::CommandWithMore));
        // A truncated long header is simply incomplete.
        let mut b = BytesMut::from(&[0x02u8, 0, 0][..]);
        assert_eq!(dec.decode(&mut b), Ok(None));
        assert_eq!(dec.needed(&b), 6);
    }
}

//! Streaming FIX tag=value codec.
//!
//! The decoder is fed whatever a socket read returned (half a message, many messages, garbage)
//! and yields whole validated messages. It is a single pass per frame: BeginString and
//! BodyLength locate the frame, the checksum is one vectorisable byte sum, and the field index
//! is built from SOH/'='/digit bitmasks of 64 bytes at a time (`parse::index_fast`, with
//! SSE2, AVX2 or AVX-512 as the CPU has them; the byte loop judges what it declines) — no
//! allocation per field, one `Vec` per message. The frame itself is split off the input
//! buffer as a refcounted `Bytes`, so messages are zero-copy.
//!
//! A frame that fails validation is reported once as a [`DecodeError`] and skipped: the decoder
//! resynchronises on the next `8=FIX`, as the FIX session spec asks for garbled messages.

use bytes::{Buf, BytesMut};
use memchr::memmem;

use super::field::Field;
use super::message::Message;

mod encode;
mod first;
mod parse;
mod scan;
#[cfg(test)]
mod tests;

pub use self::encode::{encode, frame_body, put_field, put_uint, put_uint_field, Encoder};
pub use self::first::{peek_first, peek_logon, FirstMessage, LogonInfo};
use self::parse::{locate_frame, parse_frame, Positions};
pub use self::scan::{checksum, data_tag_for_length};

/// Field delimiter.
pub const SOH: u8 = 0x01;

const BEGIN_PREFIX: &[u8] = b"8=FIX";
/// Longest BeginString value we accept ("FIXT.1.1" is 8; leave room for odd variants).
const MAX_BEGIN_STRING: usize = 16;
/// Longest BodyLength value, zero padding included (jspurefix sends `9=000086`).
const MAX_BODY_LENGTH_DIGITS: usize = 10;
/// Tags are at most 9 digits (u32 without overflow checks inside the hot loop).
const MAX_TAG_DIGITS: usize = 9;

/// Bounds the decoder enforces on hostile input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecoderLimits {
    /// Whole frame, `8=` to the SOH after `10=nnn`.
    pub max_message_size: usize,
    /// Fields per message, header and trailer included.
    pub max_fields: usize,
}

impl Default for DecoderLimits {
    fn default() -> Self {
        DecoderLimits {
            max_message_size: 1 << 20,
            max_fields: 16 * 1024,
        }
    }
}

/// Why a frame was dropped. Each variant says what was wrong so it can be logged with the peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
// Each variant is documented by its `#[error]` text, which is what users read.
#[allow(missing_docs)]
pub enum DecodeError {
    #[error("{skipped} bytes of garbage before the next 8=FIX")]
    Garbage { skipped: usize },
    #[error("BeginString (8) malformed or not first")]
    BeginString,
    #[error("BodyLength (9) missing, malformed or not second")]
    BodyLength,
    #[error("message of {size} bytes exceeds the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("CheckSum (10) not where BodyLength {declared} puts it")]
    BodyLengthMismatch { declared: usize },
    #[error("CheckSum (10) is not three digits")]
    ChecksumFormat,
    #[error("CheckSum mismatch: declared {declared:03}, computed {computed:03}")]
    Checksum { declared: u8, computed: u8 },
    #[error("MsgType (35) missing, empty or not third")]
    MsgType,
    #[error("malformed tag at byte {offset}")]
    Tag { offset: usize },
    #[error("tag {tag} value not terminated by SOH")]
    Unterminated { tag: u32 },
    #[error("data field {tag}: length missing, invalid or overrunning the message")]
    DataLength { tag: u32 },
    #[error("CheckSum (10) appears before the end of the message")]
    ChecksumNotLast,
    #[error("more than {max} fields")]
    TooManyFields { max: usize },
}

/// Streaming decoder: `feed` bytes, then iterate for messages.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    limits: DecoderLimits,
    garbled: u64,
    /// How well-formed bodies are indexed; other than `Detect` only in differential tests
    /// and fuzzing, which compare the paths.
    block_pass: BlockPass,
    /// The block pass's field positions, reused frame to frame.
    positions: Box<Positions>,
}

/// Which field-index path the decoder takes for well-formed bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BlockPass {
    /// The byte loop alone: the reference the block pass is checked against.
    Off,
    /// The block pass with the x86_64 baseline (SSE2) only.
    #[cfg_attr(not(any(test, feature = "test-support")), allow(dead_code))]
    Baseline,
    /// At most AVX2 (when detected) even where AVX-512 is available, so that path is
    /// checked on machines that would otherwise never take it.
    #[cfg_attr(not(any(test, feature = "test-support")), allow(dead_code))]
    Avx2,
    /// The block pass with the widest compares the CPU has (AVX-512 with VBMI2, else AVX2,
    /// when detected).
    Detect,
}

impl Decoder {
    /// A decoder enforcing `limits` on every frame.
    pub fn new(limits: DecoderLimits) -> Decoder {
        Decoder {
            buf: BytesMut::with_capacity(8192),
            limits,
            garbled: 0,
            block_pass: BlockPass::Detect,
            positions: Box::default(),
        }
    }

    /// A decoder that reads every frame with the byte loop alone, the reference the block
    /// pass is checked against (same messages, same errors).
    #[cfg(any(test, feature = "test-support"))]
    pub fn without_block_pass(mut self) -> Decoder {
        self.block_pass = BlockPass::Off;
        self
    }

    /// A decoder whose block pass goes no wider than AVX2 even where AVX-512 is available,
    /// so tests on AVX-512 machines check the AVX2 path too.
    #[cfg(any(test, feature = "test-support"))]
    pub fn avx2_block_pass(mut self) -> Decoder {
        self.block_pass = BlockPass::Avx2;
        self
    }

    /// A decoder whose block pass uses only the x86_64 baseline (SSE2) even where AVX2 is
    /// available, so tests on AVX2 machines check that path too.
    #[cfg(any(test, feature = "test-support"))]
    pub fn baseline_block_pass(mut self) -> Decoder {
        self.block_pass = BlockPass::Baseline;
        self
    }

    /// Appends bytes read from the transport. Call `next()` until it returns `None` before
    /// feeding again: the buffer then never holds more than one partial frame (bounded by
    /// `max_message_size`) plus one read.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held back waiting for the rest of a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Frames dropped as garbled since creation.
    pub fn garbled_count(&self) -> u64 {
        self.garbled
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> DecoderLimits {
        self.limits
    }

    /// Drops at least one byte and everything up to the next `8=FIX`, keeping a possible
    /// partial `8=FI` at the end of the buffer.
    #[allow(clippy::arithmetic_side_effects)] // positions within the buffer
    fn resync(&mut self) -> usize {
        let buf = &self.buf[..];
        let skip = match memmem::find(buf.get(1..).unwrap_or(&[]), BEGIN_PREFIX) {
            Some(i) => i + 1,
            None => {
                let keep = (1..BEGIN_PREFIX.len())
                    .rev()
                    .find(|&k| k < buf.len() && buf.ends_with(&BEGIN_PREFIX[..k]))
                    .unwrap_or(0);
                buf.len() - keep
            }
        };
        let skip = skip.max(1).min(self.buf.len());
        self.buf.advance(skip);
        skip
    }

    fn fail(&mut self, e: DecodeError) -> Option<Result<Message, DecodeError>> {
        self.garbled = self.garbled.saturating_add(1);
        self.resync();
        Some(Err(e))
    }

    /// The next complete frame: `None` when more bytes are needed, `Some(Err)` once per dropped
    /// garbled frame (decoding continues afterwards).
    #[allow(clippy::arithmetic_side_effects)] // field counts derived from a body length bounded by max_message_size
    pub fn decode_next(&mut self) -> Option<Result<Message, DecodeError>> {
        let buf = &self.buf[..];
        if buf.is_empty() {
            return None;
        }
        if !buf.starts_with(BEGIN_PREFIX) {
            if BEGIN_PREFIX.starts_with(buf) {
                return None;
            }
            // Garbage before a frame: skip to the next candidate and report it once.
            let skipped = match memmem::find(buf, BEGIN_PREFIX) {
                Some(i) => i,
                None => self.buf.len(),
            };
            self.garbled = self.garbled.saturating_add(1);
            if skipped == self.buf.len() {
                self.resync();
            } else {
                self.buf.advance(skipped);
            }
            return Some(Err(DecodeError::Garbage { skipped }));
        }
        let header = match locate_frame(buf, &self.limits) {
            Ok(Some(h)) => h,
            Ok(None) => return None,
            Err(e) => return self.fail(e),
        };
        let mut fields = Vec::with_capacity(header.body_len / 7 + 4);
        if let Err(e) = parse_frame(
            &buf[..header.total],
            &header,
            &self.limits,
            self.block_pass,
            &mut fields,
            &mut self.positions,
        ) {
            return self.fail(e);
        }
        let raw = self.buf.split_to(header.total).freeze();
        Some(Ok(Message::from_parts(raw, fields)))
    }
}

impl Iterator for Decoder {
    type Item = Result<Message, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.decode_next()
    }
}

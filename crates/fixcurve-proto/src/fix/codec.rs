//! Streaming FIX tag=value codec.
//!
//! The decoder is fed whatever a socket read returned (half a message, many messages, garbage)
//! and yields whole validated messages. It is a single pass per frame: BeginString and
//! BodyLength locate the frame, the checksum is one vectorisable byte sum, and the field index
//! is built with `memchr` SOH scans — no allocation per field, one `Vec` per message. The frame
//! itself is split off the input buffer as a refcounted `Bytes`, so messages are zero-copy.
//!
//! A frame that fails validation is reported once as a [`DecodeError`] and skipped: the decoder
//! resynchronises on the next `8=FIX`, as the FIX session spec asks for garbled messages.

use bytes::{Buf, BytesMut};
use memchr::memmem;

use super::field::Field;
use super::message::{FieldIx, Message};

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
}

impl Decoder {
    pub fn new(limits: DecoderLimits) -> Decoder {
        Decoder {
            buf: BytesMut::with_capacity(8192),
            limits,
            garbled: 0,
        }
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

    pub fn limits(&self) -> DecoderLimits {
        self.limits
    }

    /// Drops at least one byte and everything up to the next `8=FIX`, keeping a possible
    /// partial `8=FI` at the end of the buffer.
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
        self.garbled += 1;
        self.resync();
        Some(Err(e))
    }

    /// The next complete frame: `None` when more bytes are needed, `Some(Err)` once per dropped
    /// garbled frame (decoding continues afterwards).
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
            self.garbled += 1;
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
        if let Err(e) = parse_frame(&buf[..header.total], &header, &self.limits, &mut fields) {
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

/// Where the parts of a frame lie, from BeginString and BodyLength.
struct FrameHeader {
    /// Value range of tag 8.
    begin: (usize, usize),
    /// Value range of tag 9.
    body_length: (usize, usize),
    /// First byte after `9=...SOH`.
    body_start: usize,
    body_len: usize,
    /// Whole frame length.
    total: usize,
}

/// Reads `8=...SOH9=...SOH` at the start of `buf`. `Ok(None)`: incomplete.
fn locate_frame(buf: &[u8], limits: &DecoderLimits) -> Result<Option<FrameHeader>, DecodeError> {
    let search_end = buf.len().min(2 + MAX_BEGIN_STRING + 1);
    let begin_end = match memchr::memchr(SOH, &buf[2..search_end]) {
        Some(i) => 2 + i,
        None if buf.len() < 2 + MAX_BEGIN_STRING + 1 => return Ok(None),
        None => return Err(DecodeError::BeginString),
    };
    let p = begin_end + 1;
    match buf.get(p..p + 2) {
        None => {
            if buf.len() > p && buf[p] != b'9' {
                return Err(DecodeError::BodyLength);
            }
            return Ok(None);
        }
        Some(t) if t != b"9=" => return Err(DecodeError::BodyLength),
        Some(_) => {}
    }
    let vstart = p + 2;
    let mut i = vstart;
    let mut body_len: usize = 0;
    loop {
        let Some(&b) = buf.get(i) else {
            return Ok(None);
        };
        if b == SOH {
            break;
        }
        let d = b.wrapping_sub(b'0');
        if d > 9 || i - vstart >= MAX_BODY_LENGTH_DIGITS {
            return Err(DecodeError::BodyLength);
        }
        body_len = body_len * 10 + d as usize;
        i += 1;
    }
    if i == vstart {
        return Err(DecodeError::BodyLength);
    }
    let body_start = i + 1;
    let total = body_start
        .saturating_add(body_len)
        .saturating_add(b"10=000\x01".len());
    if total > limits.max_message_size {
        return Err(DecodeError::TooLarge {
            size: total,
            max: limits.max_message_size,
        });
    }
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some(FrameHeader {
        begin: (2, begin_end),
        body_length: (vstart, i),
        body_start,
        body_len,
        total,
    }))
}

/// Sum of bytes mod 256, the FIX CheckSum. Written as a plain wrapping fold so it vectorises.
#[inline]
pub fn checksum(bytes: &[u8]) -> u8 {
    // Chunked so the compiler keeps wide accumulators; mod 256 is preserved by wrapping adds.
    let mut acc = [0u8; 32];
    let mut chunks = bytes.chunks_exact(32);
    for c in &mut chunks {
        for (a, &b) in acc.iter_mut().zip(c) {
            *a = a.wrapping_add(b);
        }
    }
    let mut s = acc.iter().fold(0u8, |x, &y| x.wrapping_add(y));
    for &b in chunks.remainder() {
        s = s.wrapping_add(b);
    }
    s
}

/// For a length field, the tag of the data field whose value it measures.
#[inline]
pub fn data_tag_for_length(tag: u32) -> Option<u32> {
    // Keep in sync with LENGTH_TAG_BITS (a unit test checks).
    Some(match tag {
        90 => 91,     // SecureDataLen -> SecureData
        93 => 89,     // SignatureLength -> Signature
        95 => 96,     // RawDataLength -> RawData
        212 => 213,   // XmlDataLen -> XmlData
        348 => 349,   // EncodedIssuerLen
        350 => 351,   // EncodedSecurityDescLen
        352 => 353,   // EncodedListExecInstLen
        354 => 355,   // EncodedTextLen
        356 => 357,   // EncodedSubjectLen
        358 => 359,   // EncodedHeadlineLen
        360 => 361,   // EncodedAllocTextLen
        362 => 363,   // EncodedUnderlyingIssuerLen
        364 => 365,   // EncodedUnderlyingSecurityDescLen
        445 => 446,   // EncodedListStatusTextLen
        618 => 619,   // EncodedLegIssuerLen
        621 => 622,   // EncodedLegSecurityDescLen
        1184 => 1185, // SecurityXMLLen
        1277 => 1278, // DerivativeEncodedIssuerLen
        1401 => 1402, // EncryptedPasswordLen
        1403 => 1404, // EncryptedNewPasswordLen
        _ => return None,
    })
}

/// Length tags as a bitset: one load and shift per field instead of a `match` on every field.
const LENGTH_TAG_BITS: [u64; 24] = {
    let tags = [
        90u32, 93, 95, 212, 348, 350, 352, 354, 356, 358, 360, 362, 364, 445, 618, 621, 1184, 1277,
        1401, 1403,
    ];
    let mut bits = [0u64; 24];
    let mut i = 0;
    while i < tags.len() {
        bits[(tags[i] / 64) as usize] |= 1u64 << (tags[i] % 64);
        i += 1;
    }
    bits
};

#[inline(always)]
fn in_bitset(bits: &[u64; 24], tag: u32) -> bool {
    bits.get((tag / 64) as usize)
        .is_some_and(|w| (w >> (tag % 64)) & 1 == 1)
}

/// Finds SOH bytes 64 at a time: one compare-to-bitmask per block (SSE2), then a
/// trailing-zeros per field, instead of a `memchr` call per short value.
struct SohScanner<'a> {
    hay: &'a [u8],
    base: usize,
    mask: u64,
}

impl<'a> SohScanner<'a> {
    #[inline(always)]
    fn new(hay: &'a [u8], start: usize) -> Self {
        let mut s = SohScanner {
            hay,
            base: start,
            mask: 0,
        };
        s.load(start);
        s
    }

    #[inline(always)]
    fn load(&mut self, at: usize) {
        self.base = at;
        self.mask = block_mask(self.hay.get(at..).unwrap_or(&[]));
    }

    /// Position of the first SOH at or after `from` (callers only move forward).
    #[inline(always)]
    fn next_from(&mut self, from: usize) -> Option<usize> {
        if from >= self.base + 64 {
            self.load(from);
        }
        loop {
            let m = self.mask & (!0u64 << (from.saturating_sub(self.base) & 63));
            if m != 0 {
                return Some(self.base + m.trailing_zeros() as usize);
            }
            let next = self.base + 64;
            if next >= self.hay.len() {
                return None;
            }
            self.load(next);
        }
    }
}

#[inline(always)]
fn block_mask(b: &[u8]) -> u64 {
    match b.first_chunk::<64>() {
        Some(c) => mask_of(c, SOH),
        None => {
            let mut tmp = [0u8; 64];
            tmp[..b.len()].copy_from_slice(b);
            mask_of(&tmp, SOH)
        }
    }
}

/// Bit i set when `c[i] == byte`. SSE2 is part of the x86_64 baseline, so no runtime detection.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(unsafe_code)]
fn mask_of(c: &[u8; 64], byte: u8) -> u64 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    let p = c.as_ptr() as *const __m128i;
    // SAFETY: SSE2 is always available on x86_64; the four unaligned 16-byte loads cover
    // exactly the 64 bytes of `c`.
    unsafe {
        let needle = _mm_set1_epi8(byte as i8);
        let m = |i: usize| {
            _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(p.add(i)), needle)) as u16 as u64
        };
        m(0) | (m(1) << 16) | (m(2) << 32) | (m(3) << 48)
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn mask_of(c: &[u8; 64], byte: u8) -> u64 {
    let mut m = 0u64;
    for (i, &b) in c.iter().enumerate() {
        m |= ((b == byte) as u64) << i;
    }
    m
}

/// The per-field steps of [`parse_frame`], kept small so the hot loop holds its state in
/// registers; the rare cases (CheckSum out of place, length-prefixed data) live in
/// [`FieldParser::special`], out of line.
struct FieldParser<'b, 'f> {
    body: &'b [u8],
    fields: &'f mut Vec<FieldIx>,
    /// `limits.max_fields` less one for CheckSum, which is pushed after the loop.
    room: usize,
    max_fields: usize,
    max_data: usize,
}

impl FieldParser<'_, '_> {
    /// Tag at `pos`: 1..=9 ASCII digits then '='. Returns the tag and where its value starts.
    /// The body ends with SOH, so the loop stops in bounds.
    /// (A byte loop beats SWAR, 4-byte-load, fixed-window and '='-bitmask variants here:
    /// tags are 2-3 digits, the exit is well predicted, and wide loads of bytes just copied
    /// in stall.)
    #[inline(always)]
    fn tag(&self, mut pos: usize) -> Result<(u32, usize), DecodeError> {
        let tag_start = pos;
        let mut tag: u32 = 0;
        loop {
            let b = *self
                .body
                .get(pos)
                .ok_or(DecodeError::Tag { offset: tag_start })?;
            if b == b'=' {
                break;
            }
            let d = b.wrapping_sub(b'0');
            if d > 9 || pos - tag_start >= MAX_TAG_DIGITS {
                return Err(DecodeError::Tag { offset: tag_start });
            }
            tag = tag * 10 + d as u32;
            pos += 1;
        }
        if tag == 0 {
            return Err(DecodeError::Tag { offset: tag_start });
        }
        Ok((tag, pos + 1))
    }

    #[inline(always)]
    fn push(&mut self, tag: u32, start: usize, end: usize) -> Result<(), DecodeError> {
        if self.fields.len() >= self.room {
            return Err(DecodeError::TooManyFields {
                max: self.max_fields,
            });
        }
        self.fields.push(FieldIx {
            tag,
            start: start as u32,
            end: end as u32,
        });
        Ok(())
    }

    /// CheckSum before the end, or a length field: its data field, if it follows, is
    /// taken by length (it may hold SOH) rather than by the SOH scan. Returns where the next
    /// field starts.
    #[cold]
    #[inline(never)]
    fn special(&mut self, tag: u32, vstart: usize, vend: usize) -> Result<usize, DecodeError> {
        if tag == 10 {
            return Err(DecodeError::ChecksumNotLast);
        }
        self.push(tag, vstart, vend)?;
        let Some(data_tag) = data_tag_for_length(tag) else {
            return Ok(vend + 1);
        };
        let len = (self.body.get(vstart..vend))
            .and_then(super::message::parse_u64)
            .filter(|&n| n <= self.max_data as u64)
            .ok_or(DecodeError::DataLength { tag: data_tag })?;
        let next = vend + 1;
        if next >= self.body.len() {
            return Ok(next);
        }
        let (next_tag, dstart) = self.tag(next)?;
        if next_tag != data_tag {
            // Not the data field: the main loop reads it as any other field.
            return Ok(next);
        }
        let dend = dstart
            .checked_add(len as usize)
            .filter(|&e| self.body.get(e) == Some(&SOH))
            .ok_or(DecodeError::DataLength { tag: data_tag })?;
        self.push(data_tag, dstart, dend)?;
        Ok(dend + 1)
    }
}

/// CheckSum (10) and the length tags: one bitset probe per field sends both off the hot path.
const SPECIAL_TAG_BITS: [u64; 24] = {
    let mut bits = LENGTH_TAG_BITS;
    bits[0] |= 1 << 10;
    bits
};

#[inline(always)]
fn is_special_tag(tag: u32) -> bool {
    in_bitset(&SPECIAL_TAG_BITS, tag)
}

/// Validates the located frame and builds its field index.
///
/// Kept out of line: inlined into `decode_next`, the register allocator spilled the tag
/// accumulator of the hot loop to the stack (12% slower on the W sample).
#[inline(never)]
fn parse_frame(
    frame: &[u8],
    h: &FrameHeader,
    limits: &DecoderLimits,
    fields: &mut Vec<FieldIx>,
) -> Result<(), DecodeError> {
    let trailer = h.total - 7;
    let t = &frame[trailer..];
    if &t[..3] != b"10=" || t[6] != SOH {
        return Err(DecodeError::BodyLengthMismatch {
            declared: h.body_len,
        });
    }
    let mut declared: u32 = 0;
    for &b in &t[3..6] {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return Err(DecodeError::ChecksumFormat);
        }
        declared = declared * 10 + d as u32;
    }
    if declared > 255 {
        return Err(DecodeError::ChecksumFormat);
    }
    let computed = checksum(&frame[..trailer]);
    if computed as u32 != declared {
        return Err(DecodeError::Checksum {
            declared: declared as u8,
            computed,
        });
    }
    // The body must end with SOH right before "10=" (BodyLength exact).
    if h.body_len == 0 || frame[trailer - 1] != SOH {
        return Err(DecodeError::BodyLengthMismatch {
            declared: h.body_len,
        });
    }

    fields.push(FieldIx {
        tag: 8,
        start: h.begin.0 as u32,
        end: h.begin.1 as u32,
    });
    fields.push(FieldIx {
        tag: 9,
        start: h.body_length.0 as u32,
        end: h.body_length.1 as u32,
    });

    let body = &frame[..trailer];
    let mut scan = SohScanner::new(body, h.body_start);
    let mut f = FieldParser {
        body,
        fields,
        room: limits.max_fields.saturating_sub(1),
        max_fields: limits.max_fields,
        max_data: limits.max_message_size,
    };
    // MsgType, checked once here rather than on every field of the loop.
    let (tag, vstart) = f.tag(h.body_start)?;
    let vend = scan
        .next_from(vstart)
        .ok_or(DecodeError::Unterminated { tag })?;
    if tag != 35 || vend == vstart {
        return Err(DecodeError::MsgType);
    }
    f.push(tag, vstart, vend)?;
    let mut pos = vend + 1;
    while pos < trailer {
        let (tag, vstart) = f.tag(pos)?;
        let vend = scan
            .next_from(vstart)
            .ok_or(DecodeError::Unterminated { tag })?;
        pos = if is_special_tag(tag) {
            f.special(tag, vstart, vend)?
        } else {
            f.push(tag, vstart, vend)?;
            vend + 1
        };
    }
    fields.push(FieldIx {
        tag: 10,
        start: (trailer + 3) as u32,
        end: (trailer + 6) as u32,
    });
    Ok(())
}

/// Appends `tag=value SOH`.
#[inline]
pub fn put_field(out: &mut Vec<u8>, tag: u32, value: &[u8]) {
    put_uint(out, tag as u64);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(SOH);
}

/// Appends `tag=<decimal n> SOH`.
#[inline]
pub fn put_uint_field(out: &mut Vec<u8>, tag: u32, n: u64) {
    put_uint(out, tag as u64);
    out.push(b'=');
    put_uint(out, n);
    out.push(SOH);
}

/// Appends `n` in decimal without allocating.
#[inline]
pub fn put_uint(out: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

fn uint_len(mut n: u64) -> usize {
    let mut l = 1;
    while n >= 10 {
        n /= 10;
        l += 1;
    }
    l
}

/// Frames a message whose body (starting with `35=`, ending with SOH) is already encoded:
/// writes `8=`, `9=` (exact BodyLength), the body and `10=` (CheckSum) to `out`.
pub fn frame_body(begin_string: &str, body: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.reserve(body.len() + begin_string.len() + 24);
    out.extend_from_slice(b"8=");
    out.extend_from_slice(begin_string.as_bytes());
    out.push(SOH);
    put_uint_field(out, 9, body.len() as u64);
    out.extend_from_slice(body);
    let sum = checksum(&out[start..]);
    out.extend_from_slice(b"10=");
    out.push(b'0' + sum / 100);
    out.push(b'0' + (sum / 10) % 10);
    out.push(b'0' + sum % 10);
    out.push(SOH);
}

/// Encodes one message: `fields` are everything after 35 (rest of the header, then the body),
/// in the order given. BodyLength and CheckSum are computed.
pub fn encode(begin_string: &str, msg_type: &str, fields: &[Field<'_>], out: &mut Vec<u8>) {
    let body_len = 3
        + msg_type.len()
        + 1
        + fields
            .iter()
            .map(|f| uint_len(f.tag as u64) + 2 + f.value.len())
            .sum::<usize>();
    let start = out.len();
    out.reserve(body_len + begin_string.len() + 24);
    out.extend_from_slice(b"8=");
    out.extend_from_slice(begin_string.as_bytes());
    out.push(SOH);
    put_uint_field(out, 9, body_len as u64);
    put_field(out, 35, msg_type.as_bytes());
    for f in fields {
        put_field(out, f.tag, f.value);
    }
    let sum = checksum(&out[start..]);
    out.extend_from_slice(b"10=");
    out.push(b'0' + sum / 100);
    out.push(b'0' + (sum / 10) % 10);
    out.push(b'0' + sum % 10);
    out.push(SOH);
}

/// An encoder bound to one BeginString.
#[derive(Clone, Debug)]
pub struct Encoder {
    begin_string: String,
}

impl Encoder {
    pub fn new(begin_string: impl Into<String>) -> Encoder {
        Encoder {
            begin_string: begin_string.into(),
        }
    }

    pub fn begin_string(&self) -> &str {
        &self.begin_string
    }

    /// See [`encode`].
    pub fn encode(&self, msg_type: &str, fields: &[Field<'_>], out: &mut Vec<u8>) {
        encode(&self.begin_string, msg_type, fields, out)
    }

    /// Encodes into a fresh buffer.
    pub fn to_vec(&self, msg_type: &str, fields: &[Field<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(msg_type, fields, &mut out);
        out
    }
}

/// What an acceptor needs from the first message of a connection to pick the session (and to
/// check the TLS identity binding) before a `Session` exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogonInfo {
    pub begin_string: String,
    /// The peer's SenderCompID (49): our TargetCompID.
    pub sender_comp_id: String,
    /// The peer's TargetCompID (56): our SenderCompID.
    pub target_comp_id: String,
    pub username: Option<String>,
    /// Never printed (see [`Secret`](crate::secret::Secret)).
    pub password: Option<crate::secret::Secret>,
    pub heartbeat_secs: Option<u64>,
    pub reset_seq_num: bool,
    pub default_appl_ver_id: Option<String>,
    pub seq_num: Option<u64>,
}

/// Decodes the first complete frame in `bytes` (leading garbage skipped) and returns its
/// identity if it is a valid Logon (35=A). `None`: incomplete, garbled, or not a Logon.
pub fn peek_logon(bytes: &[u8]) -> Option<LogonInfo> {
    match peek_first(bytes) {
        FirstMessage::Logon(l) => Some(l),
        _ => None,
    }
}

/// What the first complete message of a connection is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FirstMessage {
    /// No complete, valid message yet.
    Incomplete,
    Logon(LogonInfo),
    /// A complete message that is not a usable Logon (its MsgType): the FIX session test
    /// cases say to disconnect at once, without waiting for the logon timeout.
    NotLogon(String),
}

/// Looks at the first complete message in `bytes` (garbled frames before it are skipped, as
/// the session skips them).
pub fn peek_first(bytes: &[u8]) -> FirstMessage {
    let mut d = Decoder::new(DecoderLimits::default());
    d.feed(bytes);
    let Some(msg) = d.find_map(|r| r.ok()) else {
        return FirstMessage::Incomplete;
    };
    if msg.msg_type() != b"A" {
        return FirstMessage::NotLogon(String::from_utf8_lossy(msg.msg_type()).into_owned());
    }
    match logon_info(&msg) {
        Some(l) => FirstMessage::Logon(l),
        None => FirstMessage::NotLogon("A without CompIDs".into()),
    }
}

fn logon_info(msg: &Message) -> Option<LogonInfo> {
    let text = |tag| msg.get_str(tag).map(str::to_owned);
    Some(LogonInfo {
        begin_string: std::str::from_utf8(msg.begin_string()).ok()?.to_owned(),
        sender_comp_id: text(49)?,
        target_comp_id: text(56)?,
        username: text(553),
        password: text(554).map(crate::secret::Secret::new),
        heartbeat_secs: msg.get_u64(108),
        reset_seq_num: msg.get(141).map(|f| f.value == b"Y").unwrap_or(false),
        default_appl_ver_id: text(1137),
        seq_num: msg.seq_num(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(s: &str) -> Vec<u8> {
        s.replace('|', "\x01").into_bytes()
    }

    fn framed(begin: &str, body: &str) -> Vec<u8> {
        let mut out = Vec::new();
        frame_body(begin, &wire(body), &mut out);
        out
    }

    fn decoder() -> Decoder {
        Decoder::new(DecoderLimits::default())
    }

    /// Computed independently (Python: sum of bytes mod 256).
    const HB: &str = "8=FIX.4.4|9=54|35=0|49=VENUE|56=BRIDGE|34=2|52=20261122-09:30:10.846|10=005|";

    #[test]
    fn encoder_matches_known_frame() {
        let mut out = Vec::new();
        encode(
            "FIX.4.4",
            "0",
            &[
                Field::new(49, b"VENUE"),
                Field::new(56, b"BRIDGE"),
                Field::new(34, b"2"),
                Field::new(52, b"20261122-09:30:10.846"),
            ],
            &mut out,
        );
        let body = "35=0|49=VENUE|56=BRIDGE|34=2|52=20261122-09:30:10.846|";
        assert_eq!(out, framed("FIX.4.4", body));
        let cs = checksum(&out[..out.len() - 7]);
        assert_eq!(&out[out.len() - 7..], format!("10={cs:03}\x01").as_bytes());
        assert_eq!(out, wire(HB));
        let mut d = decoder();
        d.feed(&out);
        let m = d.next().unwrap().unwrap();
        assert_eq!(m.msg_type(), b"0");
        assert_eq!(m.seq_num(), Some(2));
        assert_eq!(m.sender_comp_id(), Some(&b"VENUE"[..]));
        assert_eq!(m.target_comp_id(), Some(&b"BRIDGE"[..]));
        assert_eq!(m.as_bytes(), &out[..]);
        let tags: Vec<u32> = m.fields().map(|f| f.tag).collect();
        assert_eq!(tags, vec![8, 9, 35, 49, 56, 34, 52, 10]);
        assert!(d.next().is_none());
    }

    #[test]
    fn partial_reads_byte_by_byte() {
        let a = framed("FIX.4.4", "35=0|49=A|56=B|34=1|52=20260101-00:00:00.000|");
        let b = framed(
            "FIX.4.4",
            "35=1|49=A|56=B|34=2|52=20260101-00:00:00.000|112=x|",
        );
        let all = [a.clone(), b.clone()].concat();
        let mut d = decoder();
        let mut got = Vec::new();
        for byte in &all {
            d.feed(std::slice::from_ref(byte));
            for m in &mut d {
                got.push(m.unwrap());
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].as_bytes(), &a[..]);
        assert_eq!(got[1].as_bytes(), &b[..]);
        assert_eq!(got[1].get_str(112), Some("x"));
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn many_messages_per_read() {
        let mut all = Vec::new();
        for i in 1..=50 {
            all.extend(framed(
                "FIX.4.2",
                &format!("35=D|49=A|56=B|34={i}|52=20260101-00:00:00|11=o{i}|"),
            ));
        }
        let mut d = decoder();
        d.feed(&all);
        let seqs: Vec<u64> = d.map(|m| m.unwrap().seq_num().unwrap()).collect();
        assert_eq!(seqs, (1..=50).collect::<Vec<_>>());
    }

    #[test]
    fn zero_padded_body_length_accepted() {
        let body = wire("35=0|49=A|56=B|34=1|52=20260101-00:00:00.000|");
        let mut raw = format!("8=FIXT.1.1\x019={:06}\x01", body.len()).into_bytes();
        raw.extend_from_slice(&body);
        let cs = checksum(&raw);
        raw.extend_from_slice(format!("10={cs:03}\x01").as_bytes());
        let mut d = decoder();
        d.feed(&raw);
        let m = d.next().unwrap().unwrap();
        assert_eq!(m.begin_string(), b"FIXT.1.1");
        assert_eq!(
            m.get(9).unwrap().value,
            format!("{:06}", body.len()).as_bytes()
        );
    }

    #[test]
    fn length_field_not_followed_by_its_data_field() {
        // 95 then an ordinary field: the length is kept as a field and 96 later is read by SOH.
        let m = decode_one(framed("FIX.4.4", "35=B|95=3|58=abc|96=x|"));
        assert_eq!(m.get_str(95), Some("3"));
        assert_eq!(m.get_str(58), Some("abc"));
        assert_eq!(m.get_str(96), Some("x"));
        // A length field last in the body, and two length fields in a row.
        let m = decode_one(framed("FIX.4.4", "35=B|58=a|95=2|"));
        assert_eq!(m.get_str(95), Some("2"));
        let m = decode_one(framed("FIX.4.4", "35=B|95=2|354=1|355=\x01|96=ab|"));
        assert_eq!(m.get(355).unwrap().value, b"\x01");
        assert_eq!(m.get_str(96), Some("ab"));
    }

    fn decode_one(raw: Vec<u8>) -> Message {
        let mut d = decoder();
        d.feed(&raw);
        d.next().unwrap().unwrap()
    }

    #[test]
    fn binary_data_fields_may_contain_soh_and_equals() {
        let data = b"a\x01b=c\x0110=123\x01\x00\xff";
        let mut body = wire("35=B|49=A|56=B|34=3|52=20260101-00:00:00.000|148=hi|95=");
        body.extend_from_slice(data.len().to_string().as_bytes());
        body.extend_from_slice(b"\x0196=");
        body.extend_from_slice(data);
        body.extend_from_slice(b"\x0110001=z\x01");
        let mut raw = Vec::new();
        frame_body("FIX.4.4", &body, &mut raw);
        let mut d = decoder();
        d.feed(&raw);
        let m = d.next().unwrap().unwrap();
        assert_eq!(m.get(96).unwrap().value, &data[..]);
        assert_eq!(m.get_str(10001), Some("z"));
        // A data length that overruns the frame is a garbled message.
        let mut bad = wire("35=B|49=A|56=B|34=3|52=20260101-00:00:00.000|95=500|96=x|");
        let mut raw = Vec::new();
        frame_body("FIX.4.4", &bad, &mut raw);
        d.feed(&raw);
        assert_eq!(d.next(), Some(Err(DecodeError::DataLength { tag: 96 })));
        bad = wire("35=B|49=A|56=B|34=3|52=20260101-00:00:00.000|95=x|96=x|");
        raw.clear();
        frame_body("FIX.4.4", &bad, &mut raw);
        d.feed(&raw);
        assert_eq!(d.next(), Some(Err(DecodeError::DataLength { tag: 96 })));
    }

    /// Each validation failure is reported once and the next good frame still decodes.
    fn expect_error_then_good(bad: Vec<u8>, want: DecodeError) {
        let good = framed("FIX.4.4", "35=0|49=A|56=B|34=9|52=20260101-00:00:00.000|");
        let mut d = decoder();
        d.feed(&bad);
        d.feed(&good);
        assert_eq!(
            d.next(),
            Some(Err(want)),
            "bad frame {:?}",
            String::from_utf8_lossy(&bad)
        );
        let m = d.next().expect("resynced").expect("good frame");
        assert_eq!(m.seq_num(), Some(9));
        assert!(d.next().is_none());
        assert_eq!(d.garbled_count(), 1);
    }

    fn with_checksum(s: &str) -> Vec<u8> {
        let mut raw = wire(s);
        let cs = checksum(&raw);
        raw.extend_from_slice(format!("10={cs:03}\x01").as_bytes());
        raw
    }

    #[test]
    fn bad_checksum() {
        let mut bad = framed("FIX.4.4", "35=0|49=A|56=B|34=1|52=20260101-00:00:00.000|");
        let n = bad.len();
        let declared = (checksum(&bad[..n - 7]) as u32 + 1) % 256;
        bad[n - 4..n - 1].copy_from_slice(format!("{declared:03}").as_bytes());
        expect_error_then_good(
            bad,
            DecodeError::Checksum {
                declared: declared as u8,
                computed: (declared as u8).wrapping_sub(1),
            },
        );
    }

    #[test]
    fn checksum_not_three_digits() {
        let mut bad = framed("FIX.4.4", "35=0|49=A|56=B|34=1|52=20260101-00:00:00.000|");
        let n = bad.len();
        bad[n - 2] = b'x';
        expect_error_then_good(bad, DecodeError::ChecksumFormat);
    }

    #[test]
    fn body_length_too_short_and_too_long() {
        let body = "35=0|49=A|56=B|34=1|52=20260101-00:00:00.000|";
        let n = body.len();
        for declared in [n - 1, n + 1] {
            let bad = with_checksum(&format!("8=FIX.4.4|9={declared}|{body}"));
            expect_error_then_good(bad, DecodeError::BodyLengthMismatch { declared });
        }
    }

    #[test]
    fn begin_string_must_be_first() {
        let bad = with_checksum("8=FIX.4.4AAAAAAAAAAAAAAAAAAAAAAA|9=5|35=0|");
        expect_error_then_good(bad, DecodeError::BeginString);
    }

    #[test]
    fn body_length_must_be_second() {
        let bad = with_checksum("8=FIX.4.4|35=0|9=5|");
        expect_error_then_good(bad, DecodeError::BodyLength);
        let bad = with_checksum("8=FIX.4.4|9=1x|35=0|");
        expect_error_then_good(bad, DecodeError::BodyLength);
        let bad = with_checksum("8=FIX.4.4|9=|35=0|");
        expect_error_then_good(bad, DecodeError::BodyLength);
    }

    #[test]
    fn msg_type_must_be_third() {
        let body = "49=A|35=0|56=B|34=1|52=20260101-00:00:00.000|";
        let bad = with_checksum(&format!("8=FIX.4.4|9={}|{body}", body.len()));
        expect_error_then_good(bad, DecodeError::MsgType);
        let body = "35=|49=A|56=B|34=1|";
        let bad = with_checksum(&format!("8=FIX.4.4|9={}|{body}", body.len()));
        expect_error_then_good(bad, DecodeError::MsgType);
    }

    #[test]
    fn checksum_must_be_last() {
        let body = "35=0|49=A|10=000|56=B|";
        let bad = with_checksum(&format!("8=FIX.4.4|9={}|{body}", body.len()));
        expect_error_then_good(bad, DecodeError::ChecksumNotLast);
    }

    #[test]
    fn malformed_tags() {
        for body in [
            "35=0|4x9=A|",
            "35=0|=A|",
            "35=0|0=A|",
            "35=0|1234567890=A|",
            "35=0|49A|",
        ] {
            let bad = with_checksum(&format!("8=FIX.4.4|9={}|{body}", body.len()));
            let mut d = decoder();
            d.feed(&bad);
            assert!(
                matches!(d.next(), Some(Err(DecodeError::Tag { .. }))),
                "{body}"
            );
        }
    }

    #[test]
    fn max_message_size_enforced_before_buffering() {
        let mut d = Decoder::new(DecoderLimits {
            max_message_size: 100,
            ..Default::default()
        });
        d.feed(b"8=FIX.4.4\x019=5000\x0135=0");
        assert!(matches!(
            d.next(),
            Some(Err(DecodeError::TooLarge { max: 100, .. }))
        ));
        let good = framed("FIX.4.4", "35=0|49=A|56=B|34=1|");
        d.feed(&good);
        assert_eq!(d.next().unwrap().unwrap().seq_num(), Some(1));
    }

    #[test]
    fn too_many_fields() {
        let mut d = Decoder::new(DecoderLimits {
            max_fields: 6,
            ..Default::default()
        });
        d.feed(&framed("FIX.4.4", "35=0|49=A|56=B|34=1|52=x|"));
        assert_eq!(d.next(), Some(Err(DecodeError::TooManyFields { max: 6 })));
    }

    #[test]
    fn garbage_between_frames_is_skipped_and_reported() {
        let good = framed("FIX.4.4", "35=0|49=A|56=B|34=9|52=20260101-00:00:00.000|");
        let mut d = decoder();
        d.feed(b"hello\r\n");
        d.feed(&good);
        assert_eq!(d.next(), Some(Err(DecodeError::Garbage { skipped: 7 })));
        assert_eq!(d.next().unwrap().unwrap().seq_num(), Some(9));
        // A lone partial prefix waits for more bytes.
        d.feed(b"8=FI");
        assert!(d.next().is_none());
        assert_eq!(d.buffered(), 4);
    }

    #[test]
    fn truncated_frame_followed_by_new_frame_resyncs() {
        let good = framed("FIX.4.4", "35=0|49=A|56=B|34=9|52=20260101-00:00:00.000|");
        let mut d = decoder();
        d.feed(&good[..30]);
        d.feed(&good);
        // The truncated frame's BodyLength reaches into the next one: its trailer is wrong.
        assert!(matches!(d.next(), Some(Err(_))));
        assert_eq!(d.next().unwrap().unwrap().seq_num(), Some(9));
    }

    #[test]
    fn peek_logon_reads_identity_and_hides_password() {
        let raw = framed(
            "FIX.4.4",
            "35=A|49=CLIENT1|56=BRIDGE|34=1|52=20260101-00:00:00.000|98=0|108=30|141=Y|553=user|554=secret|",
        );
        let info = peek_logon(&raw).unwrap();
        assert_eq!(info.sender_comp_id, "CLIENT1");
        assert_eq!(info.target_comp_id, "BRIDGE");
        assert_eq!(info.username.as_deref(), Some("user"));
        assert_eq!(
            info.password.as_ref().map(crate::secret::Secret::expose),
            Some("secret")
        );
        assert_eq!(info.heartbeat_secs, Some(30));
        assert!(info.reset_seq_num);
        assert!(!format!("{info:?}").contains("secret"));
        assert!(peek_logon(&raw[..raw.len() - 1]).is_none());
        let hb = framed("FIX.4.4", "35=0|49=A|56=B|34=1|");
        assert!(peek_logon(&hb).is_none());
    }

    #[test]
    fn length_tag_bitset_matches_the_pairs() {
        for tag in 0..3000 {
            assert_eq!(
                in_bitset(&LENGTH_TAG_BITS, tag),
                data_tag_for_length(tag).is_some(),
                "{tag}"
            );
        }
    }

    #[test]
    fn long_values_cross_scanner_blocks() {
        let long = "x".repeat(200);
        let body = format!("35=0|49=A|56=B|34=1|58={long}|59=0|1={}|", "y".repeat(63));
        let raw = framed("FIX.4.4", &body);
        let mut d = decoder();
        d.feed(&raw);
        let m = d.next().unwrap().unwrap();
        assert_eq!(m.get(58).unwrap().value.len(), 200);
        assert_eq!(m.get_str(59), Some("0"));
        assert_eq!(m.get(1).unwrap().value.len(), 63);
    }

    #[test]
    fn shared_samples_decode() {
        for s in [
            &include_bytes!("testdata/md_w.fix")[..],
            &include_bytes!("testdata/md_x.fix")[..],
            &include_bytes!("testdata/er_8.fix")[..],
        ] {
            let mut d = decoder();
            d.feed(s);
            let m = d.next().unwrap().unwrap();
            assert_eq!(m.as_bytes(), s);
        }
    }
}

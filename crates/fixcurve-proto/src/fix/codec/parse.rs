//! Locating a frame (BeginString, BodyLength) and validating it into a field index in one pass.

use super::scan::{in_bitset, with_block, BlockMasks, SohScanner, LENGTH_TAG_BITS};
use super::*;
use crate::fix::message::FieldIx;

/// Where the parts of a frame lie, from BeginString and BodyLength.
pub(super) struct FrameHeader {
    /// Value range of tag 8.
    begin: (usize, usize),
    /// Value range of tag 9.
    body_length: (usize, usize),
    /// First byte after `9=...SOH`.
    body_start: usize,
    /// BodyLength's value.
    pub(super) body_len: usize,
    /// Whole frame length.
    pub(super) total: usize,
}

/// Reads `8=...SOH9=...SOH` at the start of `buf`. `Ok(None)`: incomplete.
#[allow(clippy::arithmetic_side_effects)] // positions within the buffer; BodyLength has at most MAX_BODY_LENGTH_DIGITS digits
pub(super) fn locate_frame(
    buf: &[u8],
    limits: &DecoderLimits,
) -> Result<Option<FrameHeader>, DecodeError> {
    let search_end = buf.len().min(2 + MAX_BEGIN_STRING + 1);
    // A plain loop: BeginString is 7 or 8 bytes, too short for `memchr`'s setup to pay.
    let begin_end = match buf[2..search_end].iter().position(|&b| b == SOH) {
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
        i = i.saturating_add(1);
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
    #[allow(clippy::arithmetic_side_effects)] // positions within one frame; a tag has at most MAX_TAG_DIGITS digits
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
            pos = pos.saturating_add(1);
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
    #[allow(clippy::arithmetic_side_effects)] // positions within one frame (< max_message_size)
    fn special(&mut self, tag: u32, vstart: usize, vend: usize) -> Result<usize, DecodeError> {
        if tag == 10 {
            return Err(DecodeError::ChecksumNotLast);
        }
        self.push(tag, vstart, vend)?;
        let Some(data_tag) = data_tag_for_length(tag) else {
            return Ok(vend + 1);
        };
        let len = (self.body.get(vstart..vend))
            .and_then(crate::fix::message::parse_u64)
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
#[allow(clippy::arithmetic_side_effects)] // positions within one frame (< max_message_size); CheckSum has three digits
pub(super) fn parse_frame(
    frame: &[u8],
    h: &FrameHeader,
    limits: &DecoderLimits,
    block_pass: BlockPass,
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
    if block_pass != BlockPass::Off
        && index_fast(
            frame,
            h.body_start,
            trailer,
            fields,
            limits.max_fields.saturating_sub(1),
            block_pass,
        )
    {
        fields.push(FieldIx {
            tag: 10,
            start: (trailer + 3) as u32,
            end: (trailer + 6) as u32,
        });
        return Ok(());
    }
    fields.truncate(2);
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

/// The field index of a well-formed body with no length/data fields, 64 bytes per step:
/// every tag of a block is checked at once, so the per-field work is only reading the
/// digits and one push. Returns `false` (fields partly pushed) for anything else — a
/// malformed tag, MsgType not first or empty, tags over 8 digits, CheckSum or a length field
/// inside the body, too many fields — and the byte loop then reads the frame again and
/// names the error.
///
/// Field starts are the bytes after each SOH; adding the start mask to the digit mask
/// carries each start through its run of digits to the first byte that is not one, which
/// must be '=' and must not be the start itself (empty tag). So the k-th '=' found that way
/// and the k-th SOH bound the k-th field: the per-field loop pairs the two masks' lowest
/// bits, and only a field whose SOH lies in a later block is carried over (`pending`).
///
/// Kept out of line (the baseline body is inlined here, the AVX2 one in `index_fast_avx2`).
#[inline(never)]
fn index_fast(
    frame: &[u8],
    body_start: usize,
    trailer: usize,
    fields: &mut Vec<FieldIx>,
    room: usize,
    pass: BlockPass,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if pass == BlockPass::Detect
        && std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("bmi1")
        && std::is_x86_feature_detected!("popcnt")
    {
        // SAFETY: the CPU has AVX2, BMI1 and POPCNT (checked just above), all that
        // `index_fast_avx2` requires.
        #[allow(unsafe_code)]
        return unsafe { index_fast_avx2(frame, body_start, trailer, fields, room) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = pass;
    // SSE2 is part of the x86_64 baseline: any CPU.
    index_fields(
        frame,
        body_start,
        trailer,
        fields,
        room,
        super::scan::masks_of,
    )
}

/// [`index_fast`] compiled for AVX2: the block masks take half the instructions (W sample:
/// eight blocks).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,bmi1,popcnt")]
#[inline(never)]
fn index_fast_avx2(
    frame: &[u8],
    body_start: usize,
    trailer: usize,
    fields: &mut Vec<FieldIx>,
    room: usize,
) -> bool {
    index_fields(frame, body_start, trailer, fields, room, |c| {
        super::scan::masks_of_avx2(c)
    })
}

#[inline(always)]
#[allow(clippy::arithmetic_side_effects)] // positions within one frame (< max_message_size)
fn index_fields(
    frame: &[u8],
    body_start: usize,
    trailer: usize,
    fields: &mut Vec<FieldIx>,
    room: usize,
    masks: impl Fn(&[u8; 64]) -> BlockMasks + Copy,
) -> bool {
    let Some(region) = frame.get(body_start..trailer) else {
        return false;
    };
    let first = fields.len();
    // Start of the field being read and, for one running into a later block, its '='.
    let mut start = body_start;
    let mut pending: Option<usize> = None;
    let mut start_bit: u64 = 1;
    let mut carry = false;
    let mut block = 0;
    while block < region.len() {
        let rest = region.len() - block;
        let m = body_block_masks(frame, body_start + block, trailer, masks);
        let valid = if rest >= 64 { !0 } else { (1u64 << rest) - 1 };
        let starts = ((m.soh << 1) | start_bit) & valid;
        start_bit = m.soh >> 63;
        let (s1, c1) = starts.overflowing_add(m.digit);
        let (sum, c2) = s1.overflowing_add(u64::from(carry));
        carry = c1 | c2;
        let mut ends = sum & !m.digit;
        if (ends & !m.eq) | (ends & starts) != 0 {
            return false;
        }
        let mut sohs = m.soh;
        // One field per SOH: the room check is made once per block, and the block's fields
        // are written straight into the reserved capacity with the length set once after
        // them, so the loop keeps no `Vec` length in memory between fields.
        let n = sohs.count_ones() as usize;
        let len = fields.len();
        if len + n > room {
            return false;
        }
        fields.reserve(n);
        // The loop runs once per slot, `n` of them: one per SOH of the block.
        let Some(slots) = fields.spare_capacity_mut().get_mut(..n) else {
            return false;
        };
        let mut slots = slots.iter_mut();
        let base = body_start + block;
        if let Some(eq) = pending.filter(|_| sohs != 0) {
            let end = base + sohs.trailing_zeros() as usize;
            sohs &= sohs - 1;
            pending = None;
            let (Some(f), Some(slot)) = (fast_field(frame, start, eq, end), slots.next()) else {
                return false;
            };
            slot.write(f);
            start = end + 1;
        }
        for slot in slots {
            let end = base + sohs.trailing_zeros() as usize;
            sohs &= sohs.wrapping_sub(1);
            // With no '=' left, trailing_zeros is 64: past `end`, refused by fast_field.
            let eq = base + ends.trailing_zeros() as usize;
            ends &= ends.wrapping_sub(1);
            let Some(f) = fast_field(frame, start, eq, end) else {
                // The fields written so far are not counted: the caller starts over.
                return false;
            };
            slot.write(f);
            start = end + 1;
        }
        // SAFETY: the capacity past `len` held at least `n` slots (`reserve(n)`), and the
        // loops above wrote each of the first `n` (one per slot, or returned).
        #[allow(unsafe_code)]
        unsafe {
            fields.set_len(len + n)
        };
        // What is left is the '=' of a field whose SOH comes later: at most one.
        if ends != 0 {
            if pending.is_some() || ends & (ends - 1) != 0 {
                return false;
            }
            pending = Some(base + ends.trailing_zeros() as usize);
        }
        block += 64;
    }
    pending.is_none()
        && start == trailer
        && fields
            .get(first)
            .is_some_and(|f| f.tag == 35 && f.end > f.start)
}

/// One field of [`index_fast`]: its tag from the digits at `start..eq`, its value
/// `eq + 1..end`. `None` for what the byte loop must judge: a tag over 8 digits, tag 0,
/// CheckSum or a length tag.
#[inline(always)]
#[allow(clippy::arithmetic_side_effects)] // positions within one frame; shifts by 8 * (8 - len) with len in 1..=8
fn fast_field(frame: &[u8], start: usize, eq: usize, end: usize) -> Option<FieldIx> {
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    let len = eq.wrapping_sub(start);
    // Each start has exactly one first non-digit after it, so `eq` follows `start` and
    // precedes `end`; checked anyway, as everything derived from peer bytes is.
    if len.wrapping_sub(1) >= 8 || end < eq {
        return None;
    }
    let w = frame.get(start..)?.first_chunk::<8>()?;
    // Digit values, most significant in the lowest byte, shifted up so the bytes after the
    // tag fall off; then pairs, quads and the eight combined.
    let mut v = u64::from_le_bytes(*w).wrapping_sub(ZEROS) << (8 * (8 - len));
    v = (v.wrapping_mul(10).wrapping_add(v >> 8)) & 0x00FF_00FF_00FF_00FF;
    v = (v.wrapping_mul(100).wrapping_add(v >> 16)) & 0x0000_FFFF_0000_FFFF;
    v = (v.wrapping_mul(10_000).wrapping_add(v >> 32)) & 0xFFFF_FFFF;
    let tag = v as u32;
    // Tags are 8 digits at most here, so `tag % 2048` is a cheap index; the tags above 2047
    // that alias a refused one go to the byte loop too, which is merely slower.
    let word = FAST_REFUSED_TAG_BITS[((tag >> 6) & 31) as usize];
    if (word >> (tag & 63)) & 1 == 1 {
        return None;
    }
    Some(FieldIx {
        tag,
        start: (eq + 1) as u32,
        end: end as u32,
    })
}

/// The special tags plus tag 0, which the block pass leaves to the byte loop to name, as a
/// 2048-bit set indexed by `tag % 2048` (every special tag is below 2048).
const FAST_REFUSED_TAG_BITS: [u64; 32] = {
    let mut bits = [0u64; 32];
    let mut i = 0;
    while i < SPECIAL_TAG_BITS.len() {
        bits[i] = SPECIAL_TAG_BITS[i];
        i += 1;
    }
    bits[0] |= 1;
    bits
};

/// The masks of the body bytes from `at` (bits past `trailer` clear). A short last block is
/// read as the 64 bytes ending at `trailer`, shifted down, rather than copied out (a copy
/// then reloaded stalls store forwarding); the frame has its header before the body, so that
/// window rarely reaches before the frame.
#[inline(always)]
#[allow(clippy::arithmetic_side_effects)] // at < trailer <= frame.len()
fn body_block_masks(
    frame: &[u8],
    at: usize,
    trailer: usize,
    masks: impl Fn(&[u8; 64]) -> BlockMasks + Copy,
) -> BlockMasks {
    let left = trailer - at;
    if left < 64 && trailer >= 64 {
        if let Some(b) = frame.get(trailer - 64..trailer) {
            let m = with_block(b, masks);
            let drop = 64 - left as u32;
            return BlockMasks {
                soh: m.soh >> drop,
                eq: m.eq >> drop,
                digit: m.digit >> drop,
            };
        }
    }
    with_block(frame.get(at..trailer).unwrap_or(&[]), masks)
}

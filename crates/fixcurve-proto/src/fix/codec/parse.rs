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
    positions: &mut Positions,
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
            positions,
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
/// and the k-th SOH bound the k-th field: [`index_fields`] lists both kinds of position
/// for a segment of blocks, then reads the fields from the two lists, four at a time; only
/// a field whose SOH lies past the segment is carried over.
///
/// Kept out of line (the baseline body is inlined here, the wider ones in `index_fast_avx2`
/// and `index_fast_avx512`, chosen by what the CPU reports).
#[inline(never)]
fn index_fast(
    frame: &[u8],
    body_start: usize,
    trailer: usize,
    fields: &mut Vec<FieldIx>,
    room: usize,
    pass: BlockPass,
    positions: &mut Positions,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if pass == BlockPass::Detect
        && std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512vl")
        && std::is_x86_feature_detected!("avx512vbmi2")
        && std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("bmi1")
        && std::is_x86_feature_detected!("popcnt")
    {
        // SAFETY: the CPU has every feature `index_fast_avx512` is compiled for (checked
        // just above).
        #[allow(unsafe_code)]
        return unsafe { index_fast_avx512(frame, body_start, trailer, fields, room, positions) };
    }
    #[cfg(target_arch = "x86_64")]
    if matches!(pass, BlockPass::Detect | BlockPass::Avx2)
        && std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("bmi1")
        && std::is_x86_feature_detected!("popcnt")
    {
        // SAFETY: the CPU has AVX2, BMI1 and POPCNT (checked just above), all that
        // `index_fast_avx2` requires.
        #[allow(unsafe_code)]
        return unsafe { index_fast_avx2(frame, body_start, trailer, fields, room, positions) };
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
        positions,
        super::scan::masks_of,
        flatten,
        4,
        |f, s, e, n, slots| read_segment(f, s, e, n, slots, tags4_scalar),
    )
}

/// [`index_fast`] compiled for AVX2: the block masks take half the instructions (W sample:
/// eight blocks), and tags are read four at a time in vector lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,bmi1,popcnt")]
#[inline(never)]
fn index_fast_avx2(
    frame: &[u8],
    body_start: usize,
    trailer: usize,
    fields: &mut Vec<FieldIx>,
    room: usize,
    positions: &mut Positions,
) -> bool {
    index_fields(
        frame,
        body_start,
        trailer,
        fields,
        room,
        positions,
        |c| super::scan::masks_of_avx2(c),
        flatten,
        4,
        |f, s, e, n, slots| read_segment_avx2(f, s, e, n, slots),
    )
}

/// [`index_fast`] with AVX-512: one compare per class per block, and each block's
/// positions written by a compress of its bit mask rather than bit by bit.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi2,avx2,bmi1,popcnt")]
#[inline(never)]
fn index_fast_avx512(
    frame: &[u8],
    body_start: usize,
    trailer: usize,
    fields: &mut Vec<FieldIx>,
    room: usize,
    positions: &mut Positions,
) -> bool {
    index_fields(
        frame,
        body_start,
        trailer,
        fields,
        room,
        positions,
        |c| super::scan::masks_of_avx512(c),
        |bits, base, out, at| flatten_avx512(bits, base, out, at),
        8,
        |f, s, e, n, slots| read_segment_avx512(f, s, e, n, slots),
    )
}

/// [`flatten`] with VBMI2: the set bits' indexes compressed into bytes in one instruction,
/// widened to u32 and offset by `base`, sixteen per store. Slots past the last bit get
/// `base`, never read as a field (see [`flatten`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi2")]
#[inline]
#[allow(clippy::arithmetic_side_effects)] // counts below POSITIONS
fn flatten_avx512(bits: u64, base: u32, out: &mut [u32; POSITIONS], at: usize) -> Option<usize> {
    use std::arch::x86_64::*;
    static IOTA: [u8; 64] = {
        let mut a = [0u8; 64];
        let mut i = 0;
        while i < 64 {
            a[i] = i as u8;
            i += 1;
        }
        a
    };
    let n = bits.count_ones() as usize;
    // SAFETY: a 64-byte load of a 64-byte static.
    #[allow(unsafe_code)]
    let iota = unsafe { _mm512_loadu_si512(IOTA.as_ptr().cast()) };
    let packed = _mm512_maskz_compress_epi8(bits, iota);
    let base = _mm512_set1_epi32(base as i32);
    let quarter = |q: usize| {
        let b = match q {
            0 => _mm512_castsi512_si128(packed),
            1 => _mm512_extracti32x4_epi32::<1>(packed),
            2 => _mm512_extracti32x4_epi32::<2>(packed),
            _ => _mm512_extracti32x4_epi32::<3>(packed),
        };
        _mm512_add_epi32(_mm512_cvtepu8_epi32(b), base)
    };
    let mut q = 0;
    while q * 16 < n {
        let dst = out.get_mut(at + q * 16..at + q * 16 + 16)?;
        // SAFETY: `dst` is sixteen u32, the 64 bytes stored.
        #[allow(unsafe_code)]
        unsafe {
            _mm512_storeu_si512(dst.as_mut_ptr().cast(), quarter(q))
        };
        q += 1;
    }
    Some(at + n)
}

/// Fields whose positions [`index_fields`] gathers before it reads their tags: a segment is
/// read once it holds this many (a block adds at most 64 more).
const SEGMENT: usize = 64;
/// Room for a segment's positions: `SEGMENT - 1 + 64` of them, the carried entry, and the
/// slack of the four-wide writes and reads.
const POSITIONS: usize = SEGMENT + 64 + 8;

/// [`index_fields`]' position lists, kept by the decoder from frame to frame: as locals
/// they were zeroed for every frame (a `memset` of 1 KiB, 4% of the W sample's decode).
/// Entries past the counts hold positions of earlier frames, read only by lanes whose
/// results are dropped.
#[derive(Debug)]
pub(super) struct Positions {
    sohs: [u32; POSITIONS],
    eqs: [u32; POSITIONS],
}

impl Default for Positions {
    fn default() -> Self {
        Positions {
            sohs: [0; POSITIONS],
            eqs: [0; POSITIONS],
        }
    }
}

/// Writes `base + i` for each set bit i of `bits` into `out` from `at` on, four per step
/// (one bounds check per four; slots past the last bit get `base + 64`, never read as a
/// field). Returns the new count; `None` if the list were too short, which the segment
/// sizes rule out — stale positions must never be read as fields.
#[inline(always)]
#[allow(clippy::arithmetic_side_effects)] // counts below POSITIONS
fn flatten(mut bits: u64, base: u32, out: &mut [u32; POSITIONS], at: usize) -> Option<usize> {
    let count = at + bits.count_ones() as usize;
    let mut i = at;
    while bits != 0 {
        let dst = out.get_mut(i..i + 4)?;
        for d in dst {
            *d = base.wrapping_add(bits.trailing_zeros());
            bits &= bits.wrapping_sub(1);
        }
        i += 4;
    }
    Some(count)
}

/// Two passes over a segment of the body, as in SIMD JSON parsers: the block masks first
/// give every field's '=' and SOH position (a few instructions per field, no per-field
/// branch), then the tags are read `step` fields at a time (four, or eight with AVX-512)
/// from those positions. Reading the tags block by block instead left most four-wide steps
/// part empty and reloaded positions just stored, which stalls store forwarding.
#[allow(clippy::too_many_arguments)] // the per-CPU steps (masks, flatten, read) come in as closures
#[inline(always)]
#[allow(clippy::arithmetic_side_effects)] // positions within one frame (< max_message_size)
fn index_fields(
    frame: &[u8],
    body_start: usize,
    trailer: usize,
    fields: &mut Vec<FieldIx>,
    room: usize,
    positions: &mut Positions,
    masks: impl Fn(&[u8; 64]) -> BlockMasks + Copy,
    flat: impl Fn(u64, u32, &mut [u32; POSITIONS], usize) -> Option<usize> + Copy,
    step: usize,
    read: impl Fn(&[u8], &[u32; POSITIONS], &[u32; POSITIONS], usize, &mut [Slot]) -> bool + Copy,
) -> bool {
    let Some(region) = frame.get(body_start..trailer) else {
        return false;
    };
    // Positions are u32 in the index (as in `FieldIx`).
    if u32::try_from(trailer).is_err() {
        return false;
    }
    let first = fields.len();
    // `sohs[0]` is the byte before the next field to read, `sohs[1..=n_soh]` the SOHs found
    // since; `eqs[..n_eq]` the '=' after each of those fields' tags (one more when the last
    // field's SOH is still to come).
    let Positions { sohs, eqs } = positions;
    sohs[0] = (body_start as u32).wrapping_sub(1);
    let (mut n_soh, mut n_eq) = (0usize, 0usize);
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
        let ends = sum & !m.digit;
        if (ends & !m.eq) | (ends & starts) != 0 {
            return false;
        }
        let base = (body_start + block) as u32;
        let (Some(e), Some(s)) = (
            flat(ends, base, eqs, n_eq),
            flat(m.soh, base, sohs, n_soh + 1),
        ) else {
            return false;
        };
        (n_eq, n_soh) = (e, s - 1);
        // Each field has one '=' before its SOH: at most one field is open.
        if n_eq < n_soh || n_eq > n_soh + 1 {
            return false;
        }
        block += 64;
        if n_soh >= SEGMENT || block >= region.len() {
            if n_soh > 0 {
                let len = fields.len();
                let Some(slots) = segment_slots(fields, n_soh, room, step) else {
                    return false;
                };
                if !read(frame, sohs, eqs, n_soh, slots) {
                    return false;
                }
                // SAFETY: the capacity past `len` held at least `n_soh` slots
                // (`segment_slots`), and a reader that returns true has written every one
                // of them (see `read_segment`).
                #[allow(unsafe_code)]
                unsafe {
                    fields.set_len(len + n_soh)
                };
            }
            // The open field, if any, carries over: its start and its '='.
            sohs[0] = sohs.get(n_soh).copied().unwrap_or(u32::MAX);
            eqs[0] = eqs.get(n_soh).copied().unwrap_or(u32::MAX);
            n_eq -= n_soh;
            n_soh = 0;
        }
    }
    n_eq == 0
        && sohs[0] as usize + 1 == trailer
        && fields
            .get(first)
            .is_some_and(|f| f.tag == 35 && f.end > f.start)
}

/// The second pass of [`index_fields`]: the `n` fields whose SOHs are `sohs[1..=n]` (the
/// byte before the first at `sohs[0]`) and '=' are `eqs[..n]`, written into `slots` (`n`
/// rounded up to whole steps of four, from [`segment_slots`]). Returns true only with every
/// slot written, which `index_fields` relies on to count them; `false` for what the byte
/// loop must judge: a tag of no digits or more than eight, tag 0, CheckSum or a length tag
/// (`tag % 2048` may alias a refused tag, which is merely slower).
#[inline(always)]
#[allow(clippy::arithmetic_side_effects)] // n < POSITIONS; positions within one frame
fn read_segment(
    frame: &[u8],
    sohs: &[u32; POSITIONS],
    eqs: &[u32; POSITIONS],
    n: usize,
    slots: &mut [Slot],
    tags4: impl Fn(&[u8], [u32; 4], [u32; 4]) -> [u32; 4] + Copy,
) -> bool {
    let mut refused = false;
    for (k, chunk) in slots.chunks_exact_mut(4).enumerate() {
        let at = k * 4;
        let (Some((s, e)), Some(chunk)) =
            (step_positions(sohs, eqs, at), chunk.first_chunk_mut::<4>())
        else {
            return false;
        };
        let from = [s[0], s[1], s[2], s[3]].map(|p| p.wrapping_add(1));
        let lens = [0, 1, 2, 3].map(|i| e[i].wrapping_sub(from[i]));
        let tags = tags4(frame, from, lens);
        for i in 0..4 {
            let tag = tags[i];
            let bad = is_fast_refused(tag) | (lens[i].wrapping_sub(1) >= 8) | (s[i + 1] < e[i]);
            // Lanes past the n-th hold stale positions: their verdicts do not count.
            refused |= bad & (at + i < n);
            chunk[i].write(FieldIx {
                tag,
                start: e[i].wrapping_add(1),
                end: s[i + 1],
            });
        }
    }
    !refused
}

/// One four-wide step's positions in a segment's lists: the SOHs around its four fields
/// (`at..at + 5`, the one before each and the last one after) and their '=' (`at..at + 4`).
/// `None` past the lists, which the segment sizes rule out.
#[inline(always)]
fn step_positions<'p>(
    sohs: &'p [u32; POSITIONS],
    eqs: &'p [u32; POSITIONS],
    at: usize,
) -> Option<(&'p [u32; 5], &'p [u32; 4])> {
    Some((
        sohs.get(at..)?.first_chunk::<5>()?,
        eqs.get(at..)?.first_chunk::<4>()?,
    ))
}

/// An index entry not yet written: the block pass fills reserved capacity directly.
type Slot = std::mem::MaybeUninit<FieldIx>;

/// The reserved slots a segment of `n` fields is written into, in whole four-wide steps
/// (the slots past the n-th are written but not counted). `None`: over `room` fields.
#[inline(always)]
#[allow(clippy::arithmetic_side_effects)] // field counts bounded by room
fn segment_slots(
    fields: &mut Vec<FieldIx>,
    n: usize,
    room: usize,
    step: usize,
) -> Option<&mut [Slot]> {
    if fields.len() + n > room {
        return None;
    }
    let padded = n.next_multiple_of(step);
    fields.reserve(padded);
    fields.spare_capacity_mut().get_mut(..padded)
}

/// [`read_segment`] for AVX2, every step four fields wide: positions loaded as vectors,
/// tags combined in lanes, the checks as lane masks (the refused tags through a filter held
/// in a register), and the four index entries shuffled into place and written as 48 bytes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
#[allow(clippy::arithmetic_side_effects)] // n < POSITIONS; positions within one frame
fn read_segment_avx2(
    frame: &[u8],
    sohs: &[u32; POSITIONS],
    eqs: &[u32; POSITIONS],
    n: usize,
    slots: &mut [Slot],
) -> bool {
    use std::arch::x86_64::*;
    let last = frame.len().saturating_sub(8);
    let one = _mm_set1_epi32(1);
    let lane = _mm_setr_epi32(0, 1, 2, 3);
    let filter = refused_filter();
    let mut bad = _mm_setzero_si128();
    for (k, chunk) in slots.chunks_exact_mut(4).enumerate() {
        let at = k * 4;
        let (Some((s, e)), Some(chunk)) =
            (step_positions(sohs, eqs, at), chunk.first_chunk_mut::<4>())
        else {
            return false;
        };
        // SAFETY: `s` holds 5 u32 and `e` 4: each load reads 16 bytes inside them.
        #[allow(unsafe_code)]
        let (prev, end, eq) = unsafe {
            (
                _mm_loadu_si128(s.as_ptr().cast::<__m128i>()),
                _mm_loadu_si128(s.as_ptr().add(1).cast::<__m128i>()),
                _mm_loadu_si128(e.as_ptr().cast::<__m128i>()),
            )
        };
        let lens = _mm_sub_epi32(eq, _mm_add_epi32(prev, one));
        // A lane past the n-th may point past the frame: clamped (its verdict is dropped).
        let word = |p: u32| {
            frame
                .get((p as usize + 1).min(last)..)
                .and_then(|w| w.first_chunk::<8>())
                .map_or(0, |w| i64::from_le_bytes(*w))
        };
        let v = _mm256_set_epi64x(word(s[3]), word(s[2]), word(s[1]), word(s[0]));
        let tags = tags_in_lanes(v, lens);
        // Refused tags, first through a 256-bit filter held in a register (`tag % 256`):
        // only a step with a live lane in it checks the 2048-bit set, lane by lane.
        let filter_word = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(
            filter,
            _mm256_castsi128_si256(_mm_srli_epi32::<5>(tags)),
        ));
        let hit = _mm_and_si128(
            _mm_srlv_epi32(filter_word, _mm_and_si128(tags, _mm_set1_epi32(31))),
            one,
        );
        let live = _mm_cmpgt_epi32(_mm_set1_epi32((n - at) as i32), lane);
        let mut refused = _mm_setzero_si128();
        if _mm_testz_si128(hit, live) == 0 {
            let t = [
                _mm_cvtsi128_si32(tags) as u32,
                _mm_extract_epi32::<1>(tags) as u32,
                _mm_extract_epi32::<2>(tags) as u32,
                _mm_extract_epi32::<3>(tags) as u32,
            ]
            .map(|t| -i32::from(is_fast_refused(t)));
            refused = _mm_setr_epi32(t[0], t[1], t[2], t[3]);
        }
        // Tags of 1..=8 digits, each '=' before its SOH.
        let lm1 = _mm_sub_epi32(lens, one);
        let len_ok = _mm_cmpeq_epi32(_mm_min_epu32(lm1, _mm_set1_epi32(7)), lm1);
        let start = _mm_add_epi32(eq, one);
        let order_ok = _mm_cmpeq_epi32(_mm_min_epu32(start, end), start);
        let ok = _mm_andnot_si128(refused, _mm_and_si128(len_ok, order_ok));
        bad = _mm_or_si128(bad, _mm_andnot_si128(ok, live));
        // (tag, start, end) × 4: [t0 s0 e0 t1 s1 e1 t2 s2] and [e2 t3 s3 e3].
        let ts = _mm256_set_m128i(start, tags);
        let ee = _mm256_castsi128_si256(end);
        let lo = _mm256_blend_epi32::<0b0010_0100>(
            _mm256_permutevar8x32_epi32(ts, _mm256_setr_epi32(0, 4, 0, 1, 5, 0, 2, 6)),
            _mm256_permutevar8x32_epi32(ee, _mm256_setr_epi32(0, 0, 0, 0, 0, 1, 0, 0)),
        );
        let hi = _mm_blend_epi32::<0b1001>(
            _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(
                ts,
                _mm256_setr_epi32(0, 3, 7, 0, 0, 0, 0, 0),
            )),
            _mm_shuffle_epi32::<0b11_00_00_10>(end),
        );
        // SAFETY: `chunk` is four `FieldIx` slots, 48 bytes (`FieldIx` is `repr(C)`, three
        // u32): the stores write bytes 0..32 and 32..48 of it, unaligned.
        #[allow(unsafe_code)]
        unsafe {
            let p = chunk.as_mut_ptr().cast::<u8>();
            _mm256_storeu_si256(p.cast::<__m256i>(), lo);
            _mm_storeu_si128(p.add(32).cast::<__m128i>(), hi);
        }
    }
    // Every four slots were written in full (48 bytes) above, or the loop returned.
    _mm_testz_si128(bad, bad) != 0
}

/// [`REFUSED_FILTER`] in a register, for the vector readers' `vpermd` probe.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn refused_filter() -> std::arch::x86_64::__m256i {
    // SAFETY: one unaligned 32-byte load of the eight u32 of the filter.
    #[allow(unsafe_code)]
    unsafe {
        std::arch::x86_64::_mm256_loadu_si256(REFUSED_FILTER.as_ptr().cast())
    }
}

/// The `vpermt2d` indexes that interleave eight index entries, (tag, start, end) each, from
/// `[tags | starts]` (indexes 0..16) and `ends` (16..24): the first 16 words in the first
/// half, the last 8 in the second (its tail unused).
const INTERLEAVE8: [i32; 32] = {
    let mut ix = [0i32; 32];
    let mut i = 0;
    while i < 24 {
        let field = (i / 3) as i32;
        ix[i] = match i % 3 {
            0 => field,
            1 => 8 + field,
            _ => 16 + field,
        };
        i += 1;
    }
    ix
};

/// [`read_segment_avx2`] eight fields per step: the eight tag words gathered into one
/// 512-bit vector, positions and checks in 256-bit lanes, and the eight index entries
/// interleaved by two two-source permutes and written as 96 bytes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2")]
#[inline]
#[allow(clippy::arithmetic_side_effects)] // n < POSITIONS; positions within one frame
fn read_segment_avx512(
    frame: &[u8],
    sohs: &[u32; POSITIONS],
    eqs: &[u32; POSITIONS],
    n: usize,
    slots: &mut [Slot],
) -> bool {
    use std::arch::x86_64::*;
    // Every tag word is the eight bytes at a field start, clamped into the frame (a lane
    // past the n-th may point anywhere; its verdict is dropped).
    let Some(last) = frame.len().checked_sub(8) else {
        return false;
    };
    let Ok(last) = i32::try_from(last) else {
        return false;
    };
    let one = _mm256_set1_epi32(1);
    let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let filter = refused_filter();
    // SAFETY: two unaligned 64-byte loads of the 32 i32 of `INTERLEAVE8`.
    #[allow(unsafe_code)]
    let (lo_ix, hi_ix) = unsafe {
        (
            _mm512_loadu_si512(INTERLEAVE8.as_ptr().cast()),
            _mm512_loadu_si512(INTERLEAVE8.as_ptr().add(16).cast()),
        )
    };
    let mut bad = _mm256_setzero_si256();
    for (k, chunk) in slots.chunks_exact_mut(8).enumerate() {
        let at = k * 8;
        let (Some(s), Some(e), Some(chunk)) = (
            sohs.get(at..).and_then(|s| s.first_chunk::<9>()),
            eqs.get(at..).and_then(|e| e.first_chunk::<8>()),
            chunk.first_chunk_mut::<8>(),
        ) else {
            return false;
        };
        // SAFETY: `s` holds 9 u32 and `e` 8: each load reads 32 bytes inside them.
        #[allow(unsafe_code)]
        let (prev, end, eq) = unsafe {
            (
                _mm256_loadu_si256(s.as_ptr().cast::<__m256i>()),
                _mm256_loadu_si256(s.as_ptr().add(1).cast::<__m256i>()),
                _mm256_loadu_si256(e.as_ptr().cast::<__m256i>()),
            )
        };
        let from = _mm256_add_epi32(prev, one);
        let lens = _mm256_sub_epi32(eq, from);
        // Unsigned minimum: a stale lane, whatever it holds, clamps to `last` (at most
        // i32::MAX, so the gather reads it as a positive offset).
        let offs = _mm256_min_epu32(from, _mm256_set1_epi32(last));
        // SAFETY: every offset is at most `frame.len() - 8`, so each gathered u64 lies
        // inside `frame`.
        #[allow(unsafe_code)]
        let v = unsafe { _mm512_i32gather_epi64::<1>(offs, frame.as_ptr().cast()) };
        let tags = tags_in_lanes8(v, lens);
        let filter_word = _mm256_permutevar8x32_epi32(filter, _mm256_srli_epi32::<5>(tags));
        let hit = _mm256_and_si256(
            _mm256_srlv_epi32(filter_word, _mm256_and_si256(tags, _mm256_set1_epi32(31))),
            one,
        );
        let live = _mm256_cmpgt_epi32(_mm256_set1_epi32((n - at) as i32), lane);
        let refused = if _mm256_testz_si256(hit, live) == 0 {
            let mut t = [0u32; 8];
            // SAFETY: `t` is eight u32, the 32 bytes stored.
            #[allow(unsafe_code)]
            unsafe {
                _mm256_storeu_si256(t.as_mut_ptr().cast::<__m256i>(), tags)
            };
            let r = t.map(|t| -i32::from(is_fast_refused(t)));
            // SAFETY: `r` is eight i32, the 32 bytes loaded.
            #[allow(unsafe_code)]
            unsafe {
                _mm256_loadu_si256(r.as_ptr().cast::<__m256i>())
            }
        } else {
            _mm256_setzero_si256()
        };
        // Tags of 1..=8 digits, each '=' before its SOH.
        let lm1 = _mm256_sub_epi32(lens, one);
        let len_ok = _mm256_cmpeq_epi32(_mm256_min_epu32(lm1, _mm256_set1_epi32(7)), lm1);
        let start = _mm256_add_epi32(eq, one);
        let order_ok = _mm256_cmpeq_epi32(_mm256_min_epu32(start, end), start);
        let ok = _mm256_andnot_si256(refused, _mm256_and_si256(len_ok, order_ok));
        bad = _mm256_or_si256(bad, _mm256_andnot_si256(ok, live));
        let ts = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(tags), start);
        let ee = _mm512_castsi256_si512(end);
        let lo = _mm512_permutex2var_epi32(ts, lo_ix, ee);
        let hi = _mm512_castsi512_si256(_mm512_permutex2var_epi32(ts, hi_ix, ee));
        // SAFETY: `chunk` is eight `FieldIx` slots, 96 bytes (`FieldIx` is `repr(C)`, three
        // u32): the stores write bytes 0..64 and 64..96 of it, unaligned.
        #[allow(unsafe_code)]
        unsafe {
            let p = chunk.as_mut_ptr().cast::<u8>();
            _mm512_storeu_si512(p.cast(), lo);
            _mm256_storeu_si256(p.add(64).cast::<__m256i>(), hi);
        }
    }
    // Every eight slots were written in full (96 bytes) above, or the loop returned.
    _mm256_testz_si256(bad, bad) != 0
}

/// [`tags_in_lanes`] for eight fields: the words in 64-bit lanes of `v`, their digit counts
/// in `lens`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
#[inline]
fn tags_in_lanes8(
    v: std::arch::x86_64::__m512i,
    lens: std::arch::x86_64::__m256i,
) -> std::arch::x86_64::__m256i {
    use std::arch::x86_64::*;
    let shift = _mm512_slli_epi64::<3>(_mm512_sub_epi64(
        _mm512_set1_epi64(8),
        _mm512_cvtepu32_epi64(lens),
    ));
    let digits = _mm512_sllv_epi64(_mm512_sub_epi8(v, _mm512_set1_epi8(b'0' as i8)), shift);
    let pairs = _mm512_maddubs_epi16(digits, _mm512_set1_epi16(0x010A));
    let quads = _mm512_madd_epi16(pairs, _mm512_set1_epi32(0x0001_0064));
    let eights = _mm512_add_epi32(
        _mm512_mullo_epi32(quads, _mm512_set1_epi64(10_000)),
        _mm512_srli_epi64::<32>(quads),
    );
    _mm512_cvtepi64_epi32(eights)
}

/// Tags from the eight bytes at each of four field starts (`v`, one per 64-bit lane) and
/// their digit counts (`lens`, 1..=8; other lanes get meaningless tags): less '0', shifted
/// so the last digit is the top byte, then pairs (`vpmaddubsw` ×10), quads (`vpmaddwd`
/// ×100) and the eight (×10,000).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn tags_in_lanes(
    v: std::arch::x86_64::__m256i,
    lens: std::arch::x86_64::__m128i,
) -> std::arch::x86_64::__m128i {
    use std::arch::x86_64::*;
    let shift = _mm256_slli_epi64::<3>(_mm256_sub_epi64(
        _mm256_set1_epi64x(8),
        _mm256_cvtepu32_epi64(lens),
    ));
    let digits = _mm256_sllv_epi64(_mm256_sub_epi8(v, _mm256_set1_epi8(b'0' as i8)), shift);
    let pairs = _mm256_maddubs_epi16(digits, _mm256_set1_epi16(0x010A));
    let quads = _mm256_madd_epi16(pairs, _mm256_set1_epi32(0x0001_0064));
    let eights = _mm256_add_epi32(
        _mm256_mullo_epi32(quads, _mm256_set1_epi64x(10_000)),
        _mm256_srli_epi64::<32>(quads),
    );
    _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(
        eights,
        _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6),
    ))
}

/// The tags of four fields from their digits (`lens[i]` bytes at `starts[i]`, 1..=8 of
/// them), one lane at a time. A lane outside that range gets a meaningless tag: the caller
/// refuses it by its length.
#[inline(always)]
fn tags4_scalar(frame: &[u8], starts: [u32; 4], lens: [u32; 4]) -> [u32; 4] {
    [0, 1, 2, 3].map(|i| tag_digits(frame, starts[i] as usize, lens[i] as usize))
}

/// The value of the `len` (1..=8) ASCII digits at `start`, SWAR: the eight bytes there less
/// '0', shifted up so the bytes after the tag fall off, then pairs, quads and the eight
/// combined. Meaningless (but no panic) for other lengths or bytes.
#[inline(always)]
#[allow(clippy::arithmetic_side_effects)] // shift by 8 * (8 - len) % 64
fn tag_digits(frame: &[u8], start: usize, len: usize) -> u32 {
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    let Some(w) = frame.get(start..).and_then(|s| s.first_chunk::<8>()) else {
        return 0;
    };
    let shift = (8usize.wrapping_sub(len) & 7) * 8;
    let mut v = u64::from_le_bytes(*w).wrapping_sub(ZEROS) << shift;
    v = (v.wrapping_mul(10).wrapping_add(v >> 8)) & 0x00FF_00FF_00FF_00FF;
    v = (v.wrapping_mul(100).wrapping_add(v >> 16)) & 0x0000_FFFF_0000_FFFF;
    v = (v.wrapping_mul(10_000).wrapping_add(v >> 32)) & 0xFFFF_FFFF;
    v as u32
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

/// Whether the block pass leaves a field of this tag to the byte loop (see
/// [`FAST_REFUSED_TAG_BITS`]).
#[inline(always)]
fn is_fast_refused(tag: u32) -> bool {
    let word = FAST_REFUSED_TAG_BITS[((tag >> 6) & 31) as usize];
    (word >> (tag & 63)) & 1 == 1
}

/// [`FAST_REFUSED_TAG_BITS`] folded to 256 bits (`tag % 256`), as eight 32-bit words: small
/// enough for one register, so a step of four tags is filtered without a memory probe.
const REFUSED_FILTER: [u32; 8] = {
    let mut f = [0u32; 8];
    let mut t = 0;
    while t < 2048 {
        if (FAST_REFUSED_TAG_BITS[t / 64] >> (t % 64)) & 1 == 1 {
            f[(t % 256) / 32] |= 1 << (t % 32);
        }
        t += 1;
    }
    f
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The block pass accepts long messages (the differential tests cannot tell a refusal,
    /// which the byte loop then answers, from an acceptance): several segments of positions
    /// with fields open across their ends, on the AVX2 path where the CPU has it and on the
    /// baseline.
    #[test]
    fn block_pass_reads_long_messages_in_segments() {
        // Tags of 2 to 5 digits, none the block pass refuses (`tag % 2048` aliases included).
        let all: Vec<u32> = (0..)
            .map(|i: u32| 11 + i * 37)
            .filter(|&t| !is_fast_refused(t))
            .take(400)
            .collect();
        for count in [63usize, 64, 65, 130, 400] {
            let mut body = b"35=W\x01".to_vec();
            for (i, tag) in all.iter().enumerate().take(count) {
                // Some values longer than a block, so fields straddle blocks and segments.
                let len = if i % 7 == 3 { 90 } else { i % 11 };
                body.extend_from_slice(format!("{tag}=").as_bytes());
                body.extend(std::iter::repeat_n(b'7', len));
                body.push(SOH);
            }
            let mut raw = Vec::new();
            frame_body("FIX.4.4", &body, &mut raw);
            let limits = DecoderLimits::default();
            let Ok(Some(h)) = locate_frame(&raw, &limits) else {
                panic!("frame not located");
            };
            for pass in [BlockPass::Detect, BlockPass::Avx2, BlockPass::Baseline] {
                let mut fields = Vec::new();
                let mut positions = Positions::default();
                let trailer = h.total - 7;
                assert!(
                    index_fast(
                        &raw,
                        h.body_start,
                        trailer,
                        &mut fields,
                        limits.max_fields,
                        pass,
                        &mut positions,
                    ),
                    "{count} fields, {pass:?}"
                );
                assert_eq!(fields.len(), count + 1, "{pass:?}");
                let tags: Vec<u32> = fields.iter().map(|f| f.tag).collect();
                let want: Vec<u32> = std::iter::once(35)
                    .chain(all.iter().copied().take(count))
                    .collect();
                assert_eq!(tags, want, "{pass:?}");
            }
        }
    }
}

//! Byte-level scanning: the CheckSum sum, SOH search 64 bytes at a time, tag bitsets.

use super::*;

/// Sum of bytes mod 256, the FIX CheckSum: `psadbw` sums 16 bytes into two lanes per
/// instruction (SSE2, the x86_64 baseline), and the tail is the last 16 bytes with the ones
/// already counted masked off, instead of up to 15 scalar adds.
#[cfg(target_arch = "x86_64")]
#[inline]
#[allow(unsafe_code)]
pub fn checksum(bytes: &[u8]) -> u8 {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi64, _mm_and_si128, _mm_cvtsi128_si64, _mm_loadu_si128, _mm_sad_epu8,
        _mm_setzero_si128, _mm_unpackhi_epi64,
    };
    let mut chunks = bytes.chunks_exact(16);
    let rest = chunks.remainder();
    // Bytes too short for the masked tail load (a frame is longer; other callers may not be).
    let mut scalar: u64 = 0;
    // SAFETY: SSE2 is always available on x86_64; each load reads 16 bytes of a slice that
    // has at least 16: a chunk of `chunks_exact(16)`, the last 16 bytes of `bytes`, or 16 of
    // the 32-byte `TAIL_MASKS`.
    unsafe {
        let zero = _mm_setzero_si128();
        let mut acc = zero;
        for c in &mut chunks {
            let v = _mm_loadu_si128(c.as_ptr().cast::<__m128i>());
            acc = _mm_add_epi64(acc, _mm_sad_epu8(v, zero));
        }
        let tail = bytes
            .len()
            .checked_sub(16)
            .and_then(|from| bytes.get(from..));
        let keep = TAIL_MASKS.get(rest.len()..);
        match (tail, keep) {
            (Some(tail), Some(keep)) if !rest.is_empty() && keep.len() >= 16 => {
                let v = _mm_and_si128(
                    _mm_loadu_si128(tail.as_ptr().cast::<__m128i>()),
                    _mm_loadu_si128(keep.as_ptr().cast::<__m128i>()),
                );
                acc = _mm_add_epi64(acc, _mm_sad_epu8(v, zero));
            }
            _ => scalar = rest.iter().map(|&b| u64::from(b)).sum(),
        }
        let lo = _mm_cvtsi128_si64(acc) as u64;
        let hi = _mm_cvtsi128_si64(_mm_unpackhi_epi64(acc, acc)) as u64;
        lo.wrapping_add(hi).wrapping_add(scalar) as u8
    }
}

/// `TAIL_MASKS[r..r + 16]` keeps the last `r` of 16 bytes.
#[cfg(target_arch = "x86_64")]
static TAIL_MASKS: [u8; 32] = {
    let mut m = [0u8; 32];
    let mut i = 16;
    while i < 32 {
        m[i] = 0xFF;
        i += 1;
    }
    m
};

/// Sum of bytes mod 256, the FIX CheckSum. Written as a plain wrapping fold so it vectorises.
#[cfg(not(target_arch = "x86_64"))]
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
pub(super) const LENGTH_TAG_BITS: [u64; 24] = {
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
pub(super) fn in_bitset(bits: &[u64; 24], tag: u32) -> bool {
    bits.get((tag / 64) as usize)
        .is_some_and(|w| (w >> (tag % 64)) & 1 == 1)
}

/// Finds SOH bytes 64 at a time: one compare-to-bitmask per block (SSE2), then a
/// trailing-zeros per field, instead of a `memchr` call per short value.
pub(super) struct SohScanner<'a> {
    hay: &'a [u8],
    base: usize,
    mask: u64,
}

impl<'a> SohScanner<'a> {
    #[inline(always)]
    pub(super) fn new(hay: &'a [u8], start: usize) -> Self {
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
    #[allow(clippy::arithmetic_side_effects)] // positions within a buffer bounded by max_message_size
    pub(super) fn next_from(&mut self, from: usize) -> Option<usize> {
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
    with_block(b, |c| mask_of(c, SOH))
}

/// `f` over the 64 bytes at `b`, zero-padded when fewer remain (a zero byte is none of the
/// classes the scanners look for): the block masks use it with [`masks_of`] or, on AVX2
/// CPUs, `masks_of_avx2`.
#[inline(always)]
pub(super) fn with_block<T>(b: &[u8], f: impl FnOnce(&[u8; 64]) -> T) -> T {
    match b.first_chunk::<64>() {
        Some(c) => f(c),
        None => {
            let mut tmp = [0u8; 64];
            let n = b.len().min(64);
            tmp[..n].copy_from_slice(&b[..n]);
            f(&tmp)
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

/// One 64-byte block's SOH, '=' and ASCII-digit masks (bit i for byte i).
pub(super) struct BlockMasks {
    pub(super) soh: u64,
    pub(super) eq: u64,
    pub(super) digit: u64,
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(unsafe_code)]
pub(super) fn masks_of(c: &[u8; 64]) -> BlockMasks {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi8, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_loadu_si128, _mm_movemask_epi8,
        _mm_set1_epi8,
    };
    let p = c.as_ptr() as *const __m128i;
    // SAFETY: SSE2 is always available on x86_64; the four unaligned 16-byte loads cover
    // exactly the 64 bytes of `c`.
    unsafe {
        let soh = _mm_set1_epi8(SOH as i8);
        let eq = _mm_set1_epi8(b'=' as i8);
        // '0'..='9' + 0x50 is 0x80..=0x89, the ten smallest signed bytes.
        let shift = _mm_set1_epi8(0x50);
        let limit = _mm_set1_epi8(-118);
        let mut m = BlockMasks {
            soh: 0,
            eq: 0,
            digit: 0,
        };
        for (i, at) in [0u32, 16, 32, 48].into_iter().enumerate() {
            let v = _mm_loadu_si128(p.add(i));
            m.soh |= (_mm_movemask_epi8(_mm_cmpeq_epi8(v, soh)) as u16 as u64) << at;
            m.eq |= (_mm_movemask_epi8(_mm_cmpeq_epi8(v, eq)) as u16 as u64) << at;
            let d = _mm_cmpgt_epi8(limit, _mm_add_epi8(v, shift));
            m.digit |= (_mm_movemask_epi8(d) as u16 as u64) << at;
        }
        m
    }
}

/// [`masks_of`] with 32-byte compares: half the instructions per block. Only called from
/// code compiled for AVX2 after runtime detection (see `parse::index_fast`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
#[allow(unsafe_code)]
pub(super) fn masks_of_avx2(c: &[u8; 64]) -> BlockMasks {
    use std::arch::x86_64::{
        __m256i, _mm256_add_epi8, _mm256_cmpeq_epi8, _mm256_cmpgt_epi8, _mm256_loadu_si256,
        _mm256_movemask_epi8, _mm256_set1_epi8,
    };
    let p = c.as_ptr() as *const __m256i;
    let soh = _mm256_set1_epi8(SOH as i8);
    let eq = _mm256_set1_epi8(b'=' as i8);
    // As in `masks_of`: '0'..='9' + 0x50 are the ten smallest signed bytes.
    let shift = _mm256_set1_epi8(0x50);
    let limit = _mm256_set1_epi8(-118);
    let mut m = BlockMasks {
        soh: 0,
        eq: 0,
        digit: 0,
    };
    for (i, at) in [0u32, 32].into_iter().enumerate() {
        // SAFETY: the two unaligned 32-byte loads cover exactly the 64 bytes of `c`.
        let v = unsafe { _mm256_loadu_si256(p.add(i)) };
        m.soh |= (_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, soh)) as u32 as u64) << at;
        m.eq |= (_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, eq)) as u32 as u64) << at;
        let d = _mm256_cmpgt_epi8(limit, _mm256_add_epi8(v, shift));
        m.digit |= (_mm256_movemask_epi8(d) as u32 as u64) << at;
    }
    m
}

/// [`masks_of`] with 64-byte compares straight into mask registers. Only called from code
/// compiled for AVX-512BW after runtime detection (see `parse::index_fast`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
#[allow(unsafe_code)]
pub(super) fn masks_of_avx512(c: &[u8; 64]) -> BlockMasks {
    use std::arch::x86_64::{
        _mm512_cmpeq_epi8_mask, _mm512_cmplt_epu8_mask, _mm512_loadu_si512, _mm512_set1_epi8,
        _mm512_sub_epi8,
    };
    // SAFETY: one unaligned 64-byte load of exactly the 64 bytes of `c`.
    let v = unsafe { _mm512_loadu_si512(c.as_ptr().cast()) };
    BlockMasks {
        soh: _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(SOH as i8)),
        eq: _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b'=' as i8)),
        digit: _mm512_cmplt_epu8_mask(
            _mm512_sub_epi8(v, _mm512_set1_epi8(b'0' as i8)),
            _mm512_set1_epi8(10),
        ),
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub(super) fn masks_of(c: &[u8; 64]) -> BlockMasks {
    let mut m = BlockMasks {
        soh: 0,
        eq: 0,
        digit: 0,
    };
    for (i, &b) in c.iter().enumerate() {
        m.soh |= u64::from(b == SOH) << i;
        m.eq |= u64::from(b == b'=') << i;
        m.digit |= u64::from(b.is_ascii_digit()) << i;
    }
    m
}

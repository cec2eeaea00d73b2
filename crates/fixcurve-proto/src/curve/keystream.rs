//! Salsa20 keystream blocks for eight `(nonce, block counter)` pairs under one key, at once.
//!
//! libsodium computes a short keystream one 64-byte block at a time, and one Salsa20 block
//! is a single chain of dependent additions, rotations and XORs: it runs at the latency of
//! that chain (about 110 ns here) with most of the core's vector units idle. A CURVE
//! message is two boxes (topic, then payload) under consecutive nonces and of a few blocks
//! each, so its whole keystream is a handful of independent blocks. Here each of eight
//! lanes computes one of them, and the eight take about the time one block took.
//!
//! The same Salsa20 the specification gives (quarter-rounds, 10 double rounds,
//! feed-forward, little-endian words) is written twice: over 256-bit vectors, one lane per
//! block (AVX2, or AVX-512VL whose rotate is one instruction), chosen from what the CPU
//! reports; and in plain Rust over `[u32; 8]` for other CPUs, where callers keep libsodium
//! ([`is_fast`]). Plain Rust was tried for the vector path first: LLVM either kept the state
//! in memory or did not vectorise it at all (both two to four times slower than
//! libsodium). The state layout is libsodium's `crypto_stream_salsa20` (8-byte nonce in
//! words 6-7, 64-bit block counter in words 8-9), and the tests compare every lane of every
//! path against libsodium.

// Word and lane indices here are small constants (below 16 and 64), and Salsa20's own
// additions wrap by definition (`wrapping_add`).
#![allow(clippy::arithmetic_side_effects)]

/// Blocks computed per pass.
pub const LANES: usize = 8;
/// Bytes per Salsa20 block.
pub const BLOCK: usize = 64;

type Lanes = [u32; LANES];

/// "expand 32-byte k", the constant words of a 256-bit key's state.
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

/// Eight keystream blocks: `out[i]` is block `counters[i]` of the Salsa20 stream under `key`
/// and the 8-byte `nonces[i]`, as `crypto_stream_salsa20(.., nonces[i], key)` would give
/// it at byte `64 * counters[i]`.
pub fn blocks(
    key: &[u8; 32],
    nonces: &[[u8; 8]; LANES],
    counters: &[u64; LANES],
    out: &mut [[u8; BLOCK]; LANES],
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512vl") && std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has just been seen to support AVX-512F and AVX-512VL.
            #[allow(unsafe_code)]
            unsafe {
                blocks_avx512(key, nonces, counters, out)
            };
            return;
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has just been seen to support AVX2.
            #[allow(unsafe_code)]
            unsafe {
                blocks_avx2(key, nonces, counters, out)
            };
            return;
        }
    }
    blocks_generic(key, nonces, counters, out);
}

/// Whether [`blocks`] runs wide on this CPU: without AVX2 eight lanes cost about what
/// libsodium takes for eight blocks one at a time, and callers keep libsodium then.
pub fn is_fast() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The sixteen input words of the state, in any lane representation: `splat` puts one
/// value in every lane, `per_lane` builds a word from each lane's own value.
#[inline(always)]
fn initial_state<V>(
    key: &[u8; 32],
    nonces: &[[u8; 8]; LANES],
    counters: &[u64; LANES],
    splat: impl Fn(u32) -> V,
    per_lane: impl Fn(&dyn Fn(usize) -> u32) -> V,
) -> [V; 16] {
    [
        splat(SIGMA[0]),
        splat(word(key, 0)),
        splat(word(key, 1)),
        splat(word(key, 2)),
        splat(word(key, 3)),
        splat(SIGMA[1]),
        per_lane(&|i| word(&nonces[i], 0)),
        per_lane(&|i| word(&nonces[i], 1)),
        // Low and high halves of the 64-bit block counter.
        per_lane(&|i| counters[i] as u32),
        per_lane(&|i| (counters[i] >> 32) as u32),
        splat(SIGMA[2]),
        splat(word(key, 4)),
        splat(word(key, 5)),
        splat(word(key, 6)),
        splat(word(key, 7)),
        splat(SIGMA[3]),
    ]
}

/// The four steps of a quarter-round on (y0, y1, y2, y3).
macro_rules! quarter {
    ($step:ident; $y0:ident, $y1:ident, $y2:ident, $y3:ident) => {
        $step!($y1, $y0, $y3, 7, 25);
        $step!($y2, $y1, $y0, 9, 23);
        $step!($y3, $y2, $y1, 13, 19);
        $step!($y0, $y3, $y2, 18, 14);
    };
}

/// Salsa20's ten double rounds over the state words `x0`..`x15`, where `$step!(t, a, b, r,
/// 32 - r)` is `t ^= (a + b) <<< r` in the lanes' representation. The words are sixteen
/// locals, not an array: indexed as an array the state stayed in memory, a load and a store
/// around every step (four times slower).
macro_rules! double_rounds {
    ($step:ident; $x0:ident, $x1:ident, $x2:ident, $x3:ident, $x4:ident, $x5:ident,
     $x6:ident, $x7:ident, $x8:ident, $x9:ident, $x10:ident, $x11:ident, $x12:ident,
     $x13:ident, $x14:ident, $x15:ident) => {
        for _ in 0..10 {
            // Column round.
            quarter!($step; $x0, $x4, $x8, $x12);
            quarter!($step; $x5, $x9, $x13, $x1);
            quarter!($step; $x10, $x14, $x2, $x6);
            quarter!($step; $x15, $x3, $x7, $x11);
            // Row round.
            quarter!($step; $x0, $x1, $x2, $x3);
            quarter!($step; $x5, $x6, $x7, $x4);
            quarter!($step; $x10, $x11, $x8, $x9);
            quarter!($step; $x15, $x12, $x13, $x14);
        }
    };
}

#[cfg(target_arch = "x86_64")]
use self::x86::{blocks_avx2, blocks_avx512};

// Unaligned vector loads and stores of our own arrays, each with a SAFETY note.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    use core::arch::x86_64::*;

    use super::{initial_state, BLOCK, LANES};

    /// One vector Salsa20 for each rotate: `$rol!(v, r, 32 - r)`.
    macro_rules! vector_salsa {
        ($name:ident, $features:literal, $rol:ident) => {
            #[target_feature(enable = $features)]
            pub(super) fn $name(
                key: &[u8; 32],
                nonces: &[[u8; 8]; LANES],
                counters: &[u64; LANES],
                out: &mut [[u8; BLOCK]; LANES],
            ) {
                let input = initial_state(
                    key,
                    nonces,
                    counters,
                    |v| _mm256_set1_epi32(v as i32),
                    |f| {
                        let v: [u32; LANES] = core::array::from_fn(f);
                        // SAFETY: an unaligned 32-byte load from a 32-byte array.
                        unsafe { _mm256_loadu_si256(v.as_ptr().cast()) }
                    },
                );
                let [mut x0, mut x1, mut x2, mut x3, mut x4, mut x5, mut x6, mut x7, mut x8, mut x9, mut x10, mut x11, mut x12, mut x13, mut x14, mut x15] =
                    input;
                macro_rules! step {
                    ($t:ident, $a:ident, $b:ident, $r:literal, $l:literal) => {
                        $t = _mm256_xor_si256($t, $rol!(_mm256_add_epi32($a, $b), $r, $l));
                    };
                }
                double_rounds!(step; x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15);
                let x = [
                    x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15,
                ];
                let [lo, hi] = [0usize, 8].map(|w0| {
                    // Feed-forward, then an 8x8 transpose: row w holds word w0 + w of every
                    // lane, and each lane wants its eight words side by side.
                    let r: [__m256i; 8] =
                        core::array::from_fn(|i| _mm256_add_epi32(x[w0 + i], input[w0 + i]));
                    let t0 = _mm256_unpacklo_epi32(r[0], r[1]);
                    let t1 = _mm256_unpackhi_epi32(r[0], r[1]);
                    let t2 = _mm256_unpacklo_epi32(r[2], r[3]);
                    let t3 = _mm256_unpackhi_epi32(r[2], r[3]);
                    let t4 = _mm256_unpacklo_epi32(r[4], r[5]);
                    let t5 = _mm256_unpackhi_epi32(r[4], r[5]);
                    let t6 = _mm256_unpacklo_epi32(r[6], r[7]);
                    let t7 = _mm256_unpackhi_epi32(r[6], r[7]);
                    // u0: words 0-3 of lanes 0 | 4, u1: lanes 1 | 5, u2: 2 | 6, u3: 3 | 7;
                    // u4..u7 the same for words 4-7.
                    let u0 = _mm256_unpacklo_epi64(t0, t2);
                    let u1 = _mm256_unpackhi_epi64(t0, t2);
                    let u2 = _mm256_unpacklo_epi64(t1, t3);
                    let u3 = _mm256_unpackhi_epi64(t1, t3);
                    let u4 = _mm256_unpacklo_epi64(t4, t6);
                    let u5 = _mm256_unpackhi_epi64(t4, t6);
                    let u6 = _mm256_unpacklo_epi64(t5, t7);
                    let u7 = _mm256_unpackhi_epi64(t5, t7);
                    [
                        _mm256_permute2x128_si256::<0x20>(u0, u4),
                        _mm256_permute2x128_si256::<0x20>(u1, u5),
                        _mm256_permute2x128_si256::<0x20>(u2, u6),
                        _mm256_permute2x128_si256::<0x20>(u3, u7),
                        _mm256_permute2x128_si256::<0x31>(u0, u4),
                        _mm256_permute2x128_si256::<0x31>(u1, u5),
                        _mm256_permute2x128_si256::<0x31>(u2, u6),
                        _mm256_permute2x128_si256::<0x31>(u3, u7),
                    ]
                });
                for (block, (l, h)) in out.iter_mut().zip(lo.iter().zip(hi.iter())) {
                    let p = block.as_mut_ptr();
                    // SAFETY: two unaligned 32-byte stores, at bytes 0 and 32 of a 64-byte
                    // block.
                    unsafe {
                        _mm256_storeu_si256(p.cast(), *l);
                        _mm256_storeu_si256(p.add(32).cast(), *h);
                    }
                }
            }
        };
    }

    macro_rules! rol_avx2 {
        ($v:expr, $r:literal, $l:literal) => {{
            let v = $v;
            _mm256_or_si256(_mm256_slli_epi32::<$r>(v), _mm256_srli_epi32::<$l>(v))
        }};
    }

    macro_rules! rol_avx512 {
        ($v:expr, $r:literal, $l:literal) => {
            _mm256_rol_epi32::<$r>($v)
        };
    }

    vector_salsa!(blocks_avx2, "avx2", rol_avx2);
    vector_salsa!(blocks_avx512, "avx2,avx512f,avx512vl", rol_avx512);
}

/// Little-endian word `i` of `bytes` (`i` is a constant after inlining).
#[inline(always)]
fn word<const N: usize>(bytes: &[u8; N], i: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(b) = bytes.get(i * 4..i * 4 + 4) {
        w.copy_from_slice(b);
    }
    u32::from_le_bytes(w)
}

/// `t ^ ((a + b) <<< r)`, lane by lane: one step of a quarter-round.
#[inline(always)]
fn step(t: Lanes, a: Lanes, b: Lanes, r: u32) -> Lanes {
    let mut out = t;
    for i in 0..LANES {
        out[i] ^= a[i].wrapping_add(b[i]).rotate_left(r);
    }
    out
}

#[inline(always)]
fn add(a: Lanes, b: Lanes) -> Lanes {
    let mut out = a;
    for i in 0..LANES {
        out[i] = out[i].wrapping_add(b[i]);
    }
    out
}

#[inline(always)]
fn blocks_generic(
    key: &[u8; 32],
    nonces: &[[u8; 8]; LANES],
    counters: &[u64; LANES],
    out: &mut [[u8; BLOCK]; LANES],
) {
    let input: [Lanes; 16] = initial_state(
        key,
        nonces,
        counters,
        |v| [v; LANES],
        |f| core::array::from_fn(f),
    );
    let [mut x0, mut x1, mut x2, mut x3, mut x4, mut x5, mut x6, mut x7, mut x8, mut x9, mut x10, mut x11, mut x12, mut x13, mut x14, mut x15] =
        input;
    macro_rules! lane_step {
        ($t:ident, $a:ident, $b:ident, $r:literal, $l:literal) => {
            $t = step($t, $a, $b, $r);
        };
    }
    double_rounds!(lane_step; x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15);
    let x = [
        x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15,
    ];
    for (w, (xw, iw)) in x.iter().zip(input.iter()).enumerate() {
        let v = add(*xw, *iw);
        for (lane, block) in out.iter_mut().enumerate() {
            if let Some(dst) = block.get_mut(w * 4..w * 4 + 4) {
                dst.copy_from_slice(&v[lane].to_le_bytes());
            }
        }
    }
}

#[cfg(all(test, feature = "sodium"))]
#[allow(unsafe_code)] // libsodium as the reference, and the per-CPU paths called directly
mod tests {
    use super::*;

    /// What libsodium gives for block `counter` of the stream under (`key`, `nonce`).
    fn sodium_block(key: &[u8; 32], nonce: &[u8; 8], counter: u64) -> [u8; BLOCK] {
        let mut b = [0u8; BLOCK];
        // SAFETY: 64 bytes in and out of a 64-byte array, 8-byte nonce, 32-byte key.
        unsafe {
            libsodium_sys::crypto_stream_salsa20_xor_ic(
                b.as_mut_ptr(),
                b.as_ptr(),
                BLOCK as u64,
                nonce.as_ptr(),
                counter,
                key.as_ptr(),
            );
        }
        b
    }

    /// A small deterministic generator, so a failure names a reproducible case.
    struct Gen(u64);
    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn bytes<const N: usize>(&mut self) -> [u8; N] {
            core::array::from_fn(|_| self.next() as u8)
        }
    }

    type Blocks = fn(&[u8; 32], &[[u8; 8]; LANES], &[u64; LANES], &mut [[u8; BLOCK]; LANES]);

    fn check(path: &str, f: Blocks) {
        let mut g = Gen(0x9E37_79B9_7F4A_7C15);
        for case in 0..2_000 {
            let key: [u8; 32] = g.bytes();
            let nonces: [[u8; 8]; LANES] = core::array::from_fn(|_| g.bytes());
            // Small counters (the box layout), then ones that carry into the high word.
            let counters: [u64; LANES] = core::array::from_fn(|i| match case % 3 {
                0 => i as u64,
                1 => g.next() % 16,
                _ => g.next(),
            });
            let mut out = [[0u8; BLOCK]; LANES];
            f(&key, &nonces, &counters, &mut out);
            for lane in 0..LANES {
                assert_eq!(
                    out[lane],
                    sodium_block(&key, &nonces[lane], counters[lane]),
                    "{path}: case {case}, lane {lane}"
                );
            }
        }
    }

    #[test]
    fn every_lane_is_libsodiums_block() {
        check("dispatch", blocks);
        check("generic", blocks_generic);
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 seen on this CPU.
                check("avx2", |k, n, c, o| unsafe { blocks_avx2(k, n, c, o) });
            }
            if std::is_x86_feature_detected!("avx512vl") && std::is_x86_feature_detected!("avx512f")
            {
                // SAFETY: AVX-512F/VL seen on this CPU.
                check("avx512", |k, n, c, o| unsafe { blocks_avx512(k, n, c, o) });
            }
        }
    }

    #[test]
    fn a_stream_is_its_blocks_in_order() {
        // Eight consecutive blocks of one nonce are libsodium's 512-byte stream.
        let key = [9u8; 32];
        let nonce = [1, 2, 3, 4, 5, 6, 7, 8];
        let mut out = [[0u8; BLOCK]; LANES];
        blocks(
            &key,
            &[nonce; LANES],
            &core::array::from_fn(|i| i as u64),
            &mut out,
        );
        let mut stream = [0u8; BLOCK * LANES];
        // SAFETY: 512 bytes into a 512-byte array, 8-byte nonce, 32-byte key.
        unsafe {
            libsodium_sys::crypto_stream_salsa20(
                stream.as_mut_ptr(),
                stream.len() as u64,
                nonce.as_ptr(),
                key.as_ptr(),
            );
        }
        assert_eq!(out.concat(), stream.to_vec());
    }
}

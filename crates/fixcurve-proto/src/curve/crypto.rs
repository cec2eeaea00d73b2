//! The narrow crypto seam CURVE needs: a precomputed Curve25519-XSalsa20-Poly1305 box that
//! seals and opens in place, and a secretbox for the server cookie.
//!
//! Everything above this file sees only `PrecomputedBox::{seal_detached, open_detached}`, so the
//! XSalsa20Poly1305 backend is chosen here alone: libsodium (the default `sodium` feature,
//! SIMD, what libzmq uses) or RustCrypto (`--no-default-features`, pure Rust, about half the
//! CURVE throughput). Byte layout is libsodium's `crypto_box_easy`: 16-byte Poly1305 tag
//! first, then the ciphertext.

use crypto_box::aead::generic_array::GenericArray;
use crypto_box::aead::{AeadInPlace, KeyInit};
#[cfg(not(feature = "sodium"))]
use crypto_box::SalsaBox;
use crypto_secretbox::XSalsa20Poly1305;
use zeroize::Zeroize;

#[cfg(feature = "sodium")]
use super::keystream::{self, BLOCK, LANES};
use super::CurveError;

/// Poly1305 tag bytes in front of every box.
pub const TAG_LEN: usize = 16;
/// A 24-byte XSalsa20 nonce.
pub type Nonce = [u8; 24];

/// A crypto_box with the X25519 + HSalsa20 key derivation done once.
pub struct PrecomputedBox(Backend);

#[cfg(not(feature = "sodium"))]
type Backend = SalsaBox;

/// libsodium's precomputed key (`crypto_box_beforenm`).
#[cfg(feature = "sodium")]
struct Backend([u8; 32]);

#[cfg(feature = "sodium")]
impl Drop for Backend {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// The libsodium backend (the default `sodium` feature, through libsodium's own maintained bindings,
/// which build the vendored stable release): its SIMD XSalsa20 and Poly1305 are about 3x
/// faster than RustCrypto's on short messages, which is what bounds CURVE PUB/SUB throughput.
/// Same bytes, same interface.
#[cfg(feature = "sodium")]
mod sodium {
    pub(super) use libsodium_sys::{
        crypto_box_beforenm, crypto_box_detached_afternm, crypto_box_open_detached_afternm,
    };

    /// Whether libsodium initialised (0: now, 1: already); -1 means it cannot be used (no
    /// entropy source), and then no box is made rather than an unsafe one.
    pub(crate) fn init() -> bool {
        static READY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        // SAFETY: sodium_init is idempotent and thread-safe; it picks the SIMD implementations.
        *READY.get_or_init(|| unsafe { libsodium_sys::sodium_init() } >= 0)
    }
}

impl PrecomputedBox {
    /// Refuses a peer key whose shared secret is all zeros (a low-order point), as libsodium's
    /// `crypto_box_beforenm` does: such a "key" would make every box forgeable.
    ///
    /// Each backend computes the shared secret once: a handshake makes three of these, and
    /// the scalar multiplication is most of what a handshake costs.
    pub fn new(their_public: &[u8; 32], our_secret: &[u8; 32]) -> Result<Self, CurveError> {
        #[cfg(not(feature = "sodium"))]
        {
            let secret = x25519_dalek::StaticSecret::from(*our_secret);
            let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(*their_public));
            if !shared.was_contributory() {
                return Err(CurveError::WeakKey);
            }
            let pk = crypto_box::PublicKey::from(*their_public);
            let sk = crypto_box::SecretKey::from(*our_secret);
            Ok(PrecomputedBox(SalsaBox::new(&pk, &sk)))
        }
        #[cfg(feature = "sodium")]
        {
            if !sodium::init() {
                return Err(CurveError::CryptoUnavailable);
            }
            let mut k = [0u8; 32];
            // SAFETY: all pointers reference 32-byte arrays, as the C API requires.
            let rc = unsafe {
                sodium::crypto_box_beforenm(
                    k.as_mut_ptr(),
                    their_public.as_ptr(),
                    our_secret.as_ptr(),
                )
            };
            // libsodium's scalar multiplication fails on an all-zero shared secret (a
            // low-order peer key), which is the check the other backend makes by hand.
            if rc != 0 {
                return Err(CurveError::WeakKey);
            }
            Ok(PrecomputedBox(Backend(k)))
        }
    }

    /// Encrypts `buf` in place and returns the tag.
    pub fn seal_detached(&self, nonce: &Nonce, buf: &mut [u8]) -> [u8; TAG_LEN] {
        #[cfg(not(feature = "sodium"))]
        {
            match self
                .0
                .encrypt_in_place_detached(GenericArray::from_slice(nonce), b"", buf)
            {
                Ok(tag) => tag.into(),
                // Only fails for inputs beyond 256 GiB, which no frame limit allows; never let
                // plaintext out in place of ciphertext: the peer rejects the zeroed box.
                Err(_) => {
                    buf.fill(0);
                    [0u8; TAG_LEN]
                }
            }
        }
        #[cfg(feature = "sodium")]
        {
            let mut mac = [0u8; TAG_LEN];
            let p = buf.as_mut_ptr();
            // SAFETY: libsodium allows c == m (in place); lengths come from the slice.
            let rc = unsafe {
                sodium::crypto_box_detached_afternm(
                    p,
                    mac.as_mut_ptr(),
                    p,
                    buf.len() as u64,
                    nonce.as_ptr(),
                    self.0 .0.as_ptr(),
                )
            };
            if rc != 0 {
                // Never let plaintext out in place of ciphertext: the peer rejects this box.
                buf.fill(0);
                return [0u8; TAG_LEN];
            }
            mac
        }
    }

    /// Authenticates and decrypts `buf` in place.
    pub fn open_detached(
        &self,
        nonce: &Nonce,
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CurveError> {
        #[cfg(not(feature = "sodium"))]
        {
            self.0
                .decrypt_in_place_detached(
                    GenericArray::from_slice(nonce),
                    b"",
                    buf,
                    GenericArray::from_slice(tag),
                )
                .map_err(|_| CurveError::BadBox)
        }
        #[cfg(feature = "sodium")]
        {
            let p = buf.as_mut_ptr();
            // SAFETY: in place is allowed; the tag is 16 bytes, the nonce 24, the key 32.
            let rc = unsafe {
                sodium::crypto_box_open_detached_afternm(
                    p,
                    p,
                    tag.as_ptr(),
                    buf.len() as u64,
                    nonce.as_ptr(),
                    self.0 .0.as_ptr(),
                )
            };
            if rc == 0 {
                Ok(())
            } else {
                Err(CurveError::BadBox)
            }
        }
    }

    /// `tag || ciphertext` of `plain` (handshake-sized data only).
    pub fn seal(&self, nonce: &Nonce, plain: &[u8]) -> Vec<u8> {
        seal_with(|n, b| self.seal_detached(n, b), nonce, plain)
    }

    /// Opens `tag || ciphertext`.
    pub fn open(&self, nonce: &Nonce, boxed: &[u8]) -> Result<Vec<u8>, CurveError> {
        open_with(|n, b, t| self.open_detached(n, b, t), nonce, boxed)
    }
}

/// Longest MESSAGE box sealed or opened with one keystream call on the stack; longer ones
/// take libsodium's two-call path (their setup cost is lost in the length).
#[cfg(feature = "sodium")]
const ONE_CALL_MAX: usize = 1024 - 32;

/// A connection's traffic boxes, both directions.
///
/// XSalsa20 begins with HSalsa20 over the key and the nonce's first 16 bytes, and every
/// MESSAGE nonce of one direction shares those 16 bytes ("CurveZMQMESSAGES" or "...C", then
/// the counter). With libsodium the step is done once here, so a message costs Salsa20
/// keystream and one Poly1305: the same bytes as `crypto_box_detached_afternm`, which
/// redoes HSalsa20 for every message and splits the keystream into two calls (three when
/// opening, which generates block 0 twice). On 100-byte messages that was about a third of
/// the crypto time on each side.
///
/// Where the CPU has AVX2 the keystream comes from [`keystream::blocks`], eight blocks per
/// pass: those of this box, and in the lanes left over the first blocks of the next nonce,
/// kept for the next box. A message is a topic box and a payload box under consecutive
/// nonces, so one pass usually serves both: one box's keystream used to take a pass of
/// libsodium's one block at a time (as long as the whole pass here).
pub struct MessageKeys(KeysBackend);

#[cfg(feature = "sodium")]
struct KeysBackend {
    tx: Direction,
    rx: Direction,
}

#[cfg(not(feature = "sodium"))]
struct KeysBackend {
    key: PrecomputedBox,
    tx: [u8; 16],
    rx: [u8; 16],
}

/// One direction's MESSAGE boxes: the Salsa20 key and the last keystream pass.
#[cfg(feature = "sodium")]
struct Direction {
    /// HSalsa20(k, the direction's 16-byte nonce prefix).
    subkey: [u8; 32],
    /// The last eight-lane pass: the blocks of the box it was made for, then the blocks
    /// `ahead` describes. Allocated at the first box: most connections use one direction for
    /// data and the other for a few commands, and a session's handshake states stay small
    /// beside it.
    lanes: Option<Box<[[u8; BLOCK]; LANES]>>,
    ahead: Ahead,
    /// Keystreams from [`keystream::blocks`] (AVX2 seen), else from libsodium alone.
    use_lanes: bool,
}

#[cfg(feature = "sodium")]
impl Drop for Direction {
    fn drop(&mut self) {
        self.subkey.zeroize();
        if let Some(lanes) = &mut self.lanes {
            wipe(lanes.as_flattened_mut());
        }
    }
}

/// Which blocks of the last pass belong to the next nonce.
#[cfg(feature = "sodium")]
#[derive(Default)]
struct Ahead {
    /// Blocks `0..count` of nonce `nonce` sit in lanes `at..at + count`.
    nonce: u64,
    at: usize,
    count: usize,
}

#[cfg(feature = "sodium")]
impl Ahead {
    /// The keystream of nonce `counter` from block 0 in `lanes`, and how many blocks that
    /// is: the blocks kept from the last pass if they are this nonce's, else a new pass with
    /// up to eight blocks of it (enough for `need` bytes) and the rest of the lanes for the
    /// nonce after.
    #[allow(clippy::arithmetic_side_effects)] // lane counts <= LANES
    fn lanes_for<'l>(
        &mut self,
        subkey: &[u8; 32],
        lanes: &'l mut [[u8; BLOCK]; LANES],
        counter: u64,
        need: usize,
    ) -> (&'l mut [u8], usize) {
        let (first, count) = if self.count > 0 && self.nonce == counter {
            let got = (self.at, self.count);
            self.count = 0;
            got
        } else {
            let want = need.div_ceil(BLOCK).clamp(1, LANES);
            let (this, next) = (counter.to_be_bytes(), counter.wrapping_add(1).to_be_bytes());
            let nonces = core::array::from_fn(|i| if i < want { this } else { next });
            let counters = core::array::from_fn(|i| if i < want { i } else { i - want } as u64);
            keystream::blocks(subkey, &nonces, &counters, lanes);
            *self = Ahead {
                nonce: counter.wrapping_add(1),
                at: want,
                count: LANES - want,
            };
            (0, want)
        };
        let used = lanes
            .as_flattened_mut()
            .get_mut(first * BLOCK..(first + count) * BLOCK)
            .unwrap_or_default();
        (used, count)
    }
}

#[cfg(feature = "sodium")]
impl Direction {
    fn new(subkey: [u8; 32]) -> Direction {
        Direction {
            subkey,
            lanes: None,
            ahead: Ahead::default(),
            use_lanes: keystream::is_fast(),
        }
    }

    /// Seals or opens `buf` in place under nonce `counter` from the lanes: `tag` None seals
    /// and returns the tag; Some opens, leaving `buf` untouched if the tag is wrong.
    #[allow(clippy::arithmetic_side_effects)] // offsets within the 512-byte lanes
    fn apply(
        &mut self,
        counter: u64,
        buf: &mut [u8],
        tag: Option<&[u8; TAG_LEN]>,
    ) -> Result<[u8; TAG_LEN], CurveError> {
        let need = buf.len().saturating_add(32);
        let lanes = self
            .lanes
            .get_or_insert_with(|| Box::new([[0; BLOCK]; LANES]));
        let (used, count) = self.ahead.lanes_for(&self.subkey, lanes, counter, need);
        let (poly, stream) = used.split_at_mut(32.min(used.len()));
        let poly: &[u8; 32] = (&*poly).try_into().unwrap_or(&[0u8; 32]);
        let result = match tag {
            Some(tag) if !poly1305_verify(tag, buf, poly) => Err(CurveError::BadBox),
            _ => {
                let (head, tail) = buf.split_at_mut(stream.len().min(buf.len()));
                xor(head, stream);
                if !tail.is_empty() {
                    // Beyond the lanes: libsodium from the next block (its long path).
                    salsa20_xor_from(&self.subkey, &counter.to_be_bytes(), count, tail);
                }
                Ok(match tag {
                    Some(tag) => *tag,
                    None => poly1305(buf, poly),
                })
            }
        };
        wipe(used);
        result
    }

    fn seal(&mut self, counter: u64, buf: &mut [u8]) -> [u8; TAG_LEN] {
        if self.use_lanes {
            // Sealing never fails.
            return self.apply(counter, buf, None).unwrap_or([0u8; TAG_LEN]);
        }
        let n = counter.to_be_bytes();
        let sealed = with_keystream(&self.subkey, &n, buf.len(), |poly, stream| {
            xor(buf, stream);
            poly1305(buf, poly)
        });
        match sealed {
            Some(tag) => tag,
            None => seal_long(&self.subkey, counter, buf),
        }
    }

    fn open(
        &mut self,
        counter: u64,
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CurveError> {
        if self.use_lanes {
            return self.apply(counter, buf, Some(tag)).map(|_| ());
        }
        let n = counter.to_be_bytes();
        let opened = with_keystream(&self.subkey, &n, buf.len(), |poly, stream| {
            if !poly1305_verify(tag, buf, poly) {
                return Err(CurveError::BadBox);
            }
            xor(buf, stream);
            Ok(())
        });
        match opened {
            Some(r) => r,
            None => open_long(&self.subkey, counter, buf, tag),
        }
    }
}

impl MessageKeys {
    /// Traffic keys for nonces `tx_prefix || counter` (ours) and `rx_prefix || counter`
    /// (the peer's).
    pub fn new(key: PrecomputedBox, tx_prefix: &[u8; 16], rx_prefix: &[u8; 16]) -> Self {
        #[cfg(not(feature = "sodium"))]
        {
            MessageKeys(KeysBackend {
                key,
                tx: *tx_prefix,
                rx: *rx_prefix,
            })
        }
        #[cfg(feature = "sodium")]
        {
            let sub = |prefix: &[u8; 16]| {
                let mut out = [0u8; 32];
                // SAFETY: 32-byte output, 16-byte input, 32-byte key; NULL selects the
                // standard "expand 32-byte k" constant, as crypto_box does.
                unsafe {
                    libsodium_sys::crypto_core_hsalsa20(
                        out.as_mut_ptr(),
                        prefix.as_ptr(),
                        key.0 .0.as_ptr(),
                        std::ptr::null(),
                    );
                }
                out
            };
            MessageKeys(KeysBackend {
                tx: Direction::new(sub(tx_prefix)),
                rx: Direction::new(sub(rx_prefix)),
            })
        }
    }

    /// The same keys taking every keystream from libsodium, as on CPUs without AVX2: tests
    /// and benches check that path on machines that would otherwise never take it.
    #[cfg(any(test, feature = "test-support"))]
    pub fn without_lanes(self) -> Self {
        #[cfg(feature = "sodium")]
        {
            let mut keys = self;
            keys.0.tx.use_lanes = false;
            keys.0.rx.use_lanes = false;
            keys
        }
        #[cfg(not(feature = "sodium"))]
        self
    }

    /// Encrypts `buf` in place under nonce `tx_prefix || counter`; returns the tag.
    pub fn seal(&mut self, counter: u64, buf: &mut [u8]) -> [u8; TAG_LEN] {
        #[cfg(not(feature = "sodium"))]
        {
            self.0
                .key
                .seal_detached(&short_nonce(&self.0.tx, counter), buf)
        }
        #[cfg(feature = "sodium")]
        {
            self.0.tx.seal(counter, buf)
        }
    }

    /// Authenticates and decrypts `buf` in place (nonce `rx_prefix || counter`); `buf` is
    /// untouched when the tag does not match.
    pub fn open(
        &mut self,
        counter: u64,
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CurveError> {
        #[cfg(not(feature = "sodium"))]
        {
            self.0
                .key
                .open_detached(&short_nonce(&self.0.rx, counter), buf, tag)
        }
        #[cfg(feature = "sodium")]
        {
            self.0.rx.open(counter, buf, tag)
        }
    }
}

/// Boxes longer than one stack keystream: the same XSalsa20 stream (Salsa20 under the
/// subkey), with block 0 generated alone and the rest in one call from block 1.
#[cfg(feature = "sodium")]
fn seal_long(subkey: &[u8; 32], counter: u64, buf: &mut [u8]) -> [u8; TAG_LEN] {
    let n = counter.to_be_bytes();
    let mut b0 = block0(subkey, &n);
    xor_long(subkey, &n, &b0, buf);
    let tag = poly1305(buf, poly_key(&b0));
    wipe(&mut b0);
    tag
}

#[cfg(feature = "sodium")]
fn open_long(
    subkey: &[u8; 32],
    counter: u64,
    buf: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> Result<(), CurveError> {
    let n = counter.to_be_bytes();
    let mut b0 = block0(subkey, &n);
    let ok = poly1305_verify(tag, buf, poly_key(&b0));
    if ok {
        xor_long(subkey, &n, &b0, buf);
    }
    wipe(&mut b0);
    if ok {
        Ok(())
    } else {
        Err(CurveError::BadBox)
    }
}

/// Wipes keystream: sodium_memzero is a memset the optimizer keeps, where the zeroize
/// crate writes a byte at a time.
#[cfg(feature = "sodium")]
fn wipe(bytes: &mut [u8]) {
    // SAFETY: the length is the slice's own.
    unsafe { libsodium_sys::sodium_memzero(bytes.as_mut_ptr().cast(), bytes.len()) };
}

/// XORs `buf` with the Salsa20 stream under (`subkey`, `n`) from block `block` on.
#[cfg(feature = "sodium")]
fn salsa20_xor_from(subkey: &[u8; 32], n: &[u8; 8], block: usize, buf: &mut [u8]) {
    let p = buf.as_mut_ptr();
    // SAFETY: in place (c == m) is allowed; 8-byte nonce, 32-byte key, the slice's length.
    unsafe {
        libsodium_sys::crypto_stream_salsa20_xor_ic(
            p,
            p,
            buf.len() as u64,
            n.as_ptr(),
            block as u64,
            subkey.as_ptr(),
        );
    }
}

/// Keystream block 0: the Poly1305 key, then the stream for a box's first 32 bytes.
#[cfg(feature = "sodium")]
fn block0(subkey: &[u8; 32], n: &[u8; 8]) -> [u8; 64] {
    let mut b = [0u8; 64];
    // SAFETY: 64 bytes into a 64-byte array; 8-byte nonce, 32-byte key.
    unsafe {
        libsodium_sys::crypto_stream_salsa20(b.as_mut_ptr(), 64, n.as_ptr(), subkey.as_ptr());
    }
    b
}

/// XORs `buf` with the keystream from byte 32 on: its first 32 bytes through block 0, the
/// rest from block 1 in one call.
#[cfg(feature = "sodium")]
fn xor_long(subkey: &[u8; 32], n: &[u8; 8], b0: &[u8; 64], buf: &mut [u8]) {
    let (head, rest) = buf.split_at_mut(32.min(buf.len()));
    xor(head, b0.get(32..).unwrap_or_default());
    if !rest.is_empty() {
        salsa20_xor_from(subkey, n, 1, rest);
    }
}

/// Block 0's first half, the one-time Poly1305 key.
#[cfg(feature = "sodium")]
fn poly_key(b0: &[u8; 64]) -> &[u8; 32] {
    let (key, _) = b0.split_first_chunk::<32>().unwrap_or((&[0u8; 32], &[]));
    key
}

/// The Poly1305 tag of `msg` under a one-time key.
#[cfg(feature = "sodium")]
fn poly1305(msg: &[u8], key: &[u8; 32]) -> [u8; TAG_LEN] {
    let mut tag = [0u8; TAG_LEN];
    // SAFETY: tag is 16 bytes, the key 32; the length is the slice's.
    unsafe {
        libsodium_sys::crypto_onetimeauth_poly1305(
            tag.as_mut_ptr(),
            msg.as_ptr(),
            msg.len() as u64,
            key.as_ptr(),
        );
    }
    tag
}

/// Whether `tag` authenticates `msg` (constant-time compare, in libsodium).
#[cfg(feature = "sodium")]
fn poly1305_verify(tag: &[u8; TAG_LEN], msg: &[u8], key: &[u8; 32]) -> bool {
    // SAFETY: tag is 16 bytes, the key 32; the length is the slice's.
    let rc = unsafe {
        libsodium_sys::crypto_onetimeauth_poly1305_verify(
            tag.as_ptr(),
            msg.as_ptr(),
            msg.len() as u64,
            key.as_ptr(),
        )
    };
    rc == 0
}

/// Runs `f(Poly1305 key, stream)` over one Salsa20 keystream for a box of `len` bytes,
/// generated in one call into a stack buffer and wiped after; None when `len` is beyond
/// the one-call size.
#[cfg(feature = "sodium")]
fn with_keystream<R>(
    subkey: &[u8; 32],
    n: &[u8; 8],
    len: usize,
    f: impl FnOnce(&[u8; 32], &[u8]) -> R,
) -> Option<R> {
    const BUF: usize = ONE_CALL_MAX + 32;
    if len > ONE_CALL_MAX {
        return None;
    }
    let need = len.saturating_add(32);
    let generated = keystream_len(need).clamp(need, BUF);
    // Left uninitialised: libsodium writes every byte it is asked for, and only those are
    // read (a 1 KiB memset per message showed in the fan-out profile).
    let mut buf = std::mem::MaybeUninit::<[u8; BUF]>::uninit();
    let p = buf.as_mut_ptr().cast::<u8>();
    // SAFETY: writes `generated` <= BUF bytes at p; 8-byte nonce, 32-byte key.
    unsafe {
        libsodium_sys::crypto_stream_salsa20(p, generated as u64, n.as_ptr(), subkey.as_ptr());
    }
    // SAFETY: the call above initialised the first `generated` >= `need` bytes.
    let ks = unsafe { std::slice::from_raw_parts(p, need) };
    // `need` is at least 32, so the split always succeeds.
    let (poly, stream) = ks.split_first_chunk::<32>()?;
    let r = f(poly, stream);
    // SAFETY: wipes the `need` bytes that keyed this box (the rest was never used for
    // anything); sodium_memzero is a memset the optimizer keeps, where the zeroize crate
    // writes a byte at a time.
    unsafe { libsodium_sys::sodium_memzero(p.cast(), need) };
    Some(r)
}

#[cfg(feature = "sodium")]
fn xor(buf: &mut [u8], stream: &[u8]) {
    for (b, k) in buf.iter_mut().zip(stream) {
        *b ^= k;
    }
}

/// Keystream lengths libsodium can be asked for in one call, up to the stack buffer.
#[cfg(feature = "sodium")]
const KEYSTREAM_SIZES: [usize; 5] = [64, 128, 256, 512, ONE_CALL_MAX + 32];

/// How many keystream bytes to generate when a box needs `need`: the cheapest of the
/// [`KEYSTREAM_SIZES`] that covers it.
///
/// libsodium's Salsa20 runs 4, 8 or 16 blocks at once only for long enough requests and
/// computes a short tail a block at a time, so a longer request can cost less: on an
/// AVX-512 machine 1,024 bytes took 220 ns and 133 bytes 425 ns. Which length wins depends
/// on the implementation libsodium picked for this CPU, so it is measured once per process
/// (about a millisecond); the bytes a box uses are the same whatever is generated.
#[cfg(feature = "sodium")]
fn keystream_len(need: usize) -> usize {
    static BEST: std::sync::OnceLock<[usize; KEYSTREAM_SIZES.len()]> = std::sync::OnceLock::new();
    let best = BEST.get_or_init(|| {
        let cost = KEYSTREAM_SIZES.map(|len| {
            let mut buf = [0u8; ONE_CALL_MAX + 32];
            let (k, n) = ([7u8; 32], [0u8; 8]);
            (0..3)
                .map(|_| {
                    let t = std::time::Instant::now();
                    for _ in 0..64 {
                        // SAFETY: len <= buf.len(); 8-byte nonce, 32-byte key.
                        unsafe {
                            libsodium_sys::crypto_stream_salsa20(
                                buf.as_mut_ptr(),
                                len as u64,
                                n.as_ptr(),
                                k.as_ptr(),
                            );
                        }
                    }
                    t.elapsed()
                })
                .min()
                .unwrap_or_default()
        });
        // For each size class: the cheapest size at least as long.
        core::array::from_fn(|i| {
            (i..KEYSTREAM_SIZES.len())
                .min_by_key(|&j| cost.get(j).copied().unwrap_or_default())
                .and_then(|j| KEYSTREAM_SIZES.get(j).copied())
                .unwrap_or(ONE_CALL_MAX + 32)
        })
    });
    KEYSTREAM_SIZES
        .iter()
        .position(|&size| need <= size)
        .and_then(|i| best.get(i).copied())
        .unwrap_or(need)
}

/// The short-lived symmetric key that seals the server cookie; wiped when dropped.
pub struct CookieKey {
    key: [u8; 32],
}

impl CookieKey {
    /// A cookie key from 32 secret bytes (fresh per server and minute in production).
    pub fn new(key: [u8; 32]) -> Self {
        CookieKey { key }
    }

    fn cipher(&self) -> XSalsa20Poly1305 {
        XSalsa20Poly1305::new(GenericArray::from_slice(&self.key))
    }

    /// Seals `plain` under `nonce`: tag then ciphertext, as the CURVE commands carry it.
    pub fn seal(&self, nonce: &Nonce, plain: &[u8]) -> Vec<u8> {
        let c = self.cipher();
        seal_with(
            |n, b| match c.encrypt_in_place_detached(GenericArray::from_slice(n), b"", b) {
                Ok(t) => t.into(),
                Err(_) => [0u8; TAG_LEN],
            },
            nonce,
            plain,
        )
    }

    /// Opens a box sealed by `seal`; fails if it was tampered with or sealed under another key.
    pub fn open(&self, nonce: &Nonce, boxed: &[u8]) -> Result<Vec<u8>, CurveError> {
        let c = self.cipher();
        open_with(
            |n, b, t| {
                c.decrypt_in_place_detached(
                    GenericArray::from_slice(n),
                    b"",
                    b,
                    GenericArray::from_slice(t),
                )
                .map_err(|_| CurveError::BadBox)
            },
            nonce,
            boxed,
        )
    }
}

impl Drop for CookieKey {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

#[allow(clippy::arithmetic_side_effects)] // lengths of in-memory buffers plus a 16-byte tag
fn seal_with(
    f: impl Fn(&Nonce, &mut [u8]) -> [u8; TAG_LEN],
    nonce: &Nonce,
    plain: &[u8],
) -> Vec<u8> {
    let mut out = vec![0u8; TAG_LEN + plain.len()];
    out[TAG_LEN..].copy_from_slice(plain);
    let tag = f(nonce, &mut out[TAG_LEN..]);
    out[..TAG_LEN].copy_from_slice(&tag);
    out
}

fn open_with(
    f: impl Fn(&Nonce, &mut [u8], &[u8; TAG_LEN]) -> Result<(), CurveError>,
    nonce: &Nonce,
    boxed: &[u8],
) -> Result<Vec<u8>, CurveError> {
    if boxed.len() < TAG_LEN {
        return Err(CurveError::BadBox);
    }
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&boxed[..TAG_LEN]);
    let mut out = boxed[TAG_LEN..].to_vec();
    f(nonce, &mut out, &tag)?;
    Ok(out)
}

/// A 24-byte nonce from a 16-byte prefix and a 64-bit big-endian counter.
pub fn short_nonce(prefix: &[u8; 16], counter: u64) -> Nonce {
    let mut n = [0u8; 24];
    n[..16].copy_from_slice(prefix);
    n[16..].copy_from_slice(&counter.to_be_bytes());
    n
}

/// A 24-byte nonce from an 8-byte prefix and 16 bytes (random, from the wire).
#[allow(clippy::arithmetic_side_effects)] // indices bounded by the 24-byte nonce
pub fn long_nonce(prefix: &[u8; 8], tail: &[u8]) -> Nonce {
    let mut n = [0u8; 24];
    n[..8].copy_from_slice(prefix);
    let k = tail.len().min(16);
    n[8..8 + k].copy_from_slice(&tail[..k]);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference bytes from libsodium 1.0.18 `crypto_box_easy` (via ctypes), secret keys
    /// 1..=32 (client) and 33..=64 (server), nonce 0..24, message "fixcurve".
    #[test]
    fn matches_libsodium_crypto_box_easy() {
        let a: [u8; 32] = core::array::from_fn(|i| i as u8 + 1);
        let b: [u8; 32] = core::array::from_fn(|i| i as u8 + 33);
        let b_pub = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(b)).to_bytes();
        let a_pub = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(a)).to_bytes();
        let nonce: Nonce = core::array::from_fn(|i| i as u8);
        let sealed = PrecomputedBox::new(&b_pub, &a)
            .unwrap()
            .seal(&nonce, b"fixcurve");
        assert_eq!(hex::encode(&sealed), LIBSODIUM_BOX_HEX);
        let opened = PrecomputedBox::new(&a_pub, &b)
            .unwrap()
            .open(&nonce, &sealed)
            .unwrap();
        assert_eq!(opened, b"fixcurve");
        let mut tampered = sealed.clone();
        tampered[20] ^= 1;
        assert_eq!(
            PrecomputedBox::new(&a_pub, &b)
                .unwrap()
                .open(&nonce, &tampered),
            Err(CurveError::BadBox)
        );
        let key = CookieKey::new(a);
        let sb = key.seal(&nonce, b"fixcurve");
        assert_eq!(hex::encode(&sb), LIBSODIUM_SECRETBOX_HEX);
        assert_eq!(key.open(&nonce, &sb).unwrap(), b"fixcurve");
        assert!(key.open(&nonce, &sb[..10]).is_err());
    }

    const LIBSODIUM_BOX_HEX: &str = "51bcbf455d0988b39741956f559957e7749ca33a2f4f0bb7";
    const LIBSODIUM_SECRETBOX_HEX: &str = "9475036846e88a8b14536f250822517aa4e4af2ad19a040a";

    /// Server-side and client-side traffic keys of one connection, each taking its
    /// keystreams from the eight-lane pass or from libsodium alone, and a `crypto_box`
    /// reference for the server's direction.
    fn traffic_keys(
        ours_lanes: bool,
        theirs_lanes: bool,
    ) -> (MessageKeys, MessageKeys, PrecomputedBox) {
        let a: [u8; 32] = core::array::from_fn(|i| i as u8 + 1);
        let b: [u8; 32] = core::array::from_fn(|i| i as u8 + 33);
        let b_pub = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(b)).to_bytes();
        let a_pub = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(a)).to_bytes();
        let keys = |lanes: bool, k: MessageKeys| if lanes { k } else { k.without_lanes() };
        let ours = MessageKeys::new(
            PrecomputedBox::new(&b_pub, &a).unwrap(),
            b"CurveZMQMESSAGES",
            b"CurveZMQMESSAGEC",
        );
        let theirs = MessageKeys::new(
            PrecomputedBox::new(&a_pub, &b).unwrap(),
            b"CurveZMQMESSAGEC",
            b"CurveZMQMESSAGES",
        );
        (
            keys(ours_lanes, ours),
            keys(theirs_lanes, theirs),
            PrecomputedBox::new(&b_pub, &a).unwrap(),
        )
    }

    /// Both keystream sources, and each sealing for the other.
    const PATHS: [(bool, bool); 4] = [(true, true), (false, false), (true, false), (false, true)];

    /// The one-HSalsa20-per-connection path gives crypto_box's bytes at every length: across
    /// the 32-byte head of block 0, block edges, and the one-call limit into the long path.
    #[test]
    fn message_keys_match_crypto_box() {
        for (ours_lanes, theirs_lanes) in PATHS {
            let (mut ours, mut theirs, reference) = traffic_keys(ours_lanes, theirs_lanes);
            message_keys_case(&mut ours, &mut theirs, &reference);
        }
    }

    fn message_keys_case(
        ours: &mut MessageKeys,
        theirs: &mut MessageKeys,
        reference: &PrecomputedBox,
    ) {
        for len in [
            0usize, 1, 31, 32, 33, 63, 64, 65, 100, 127, 128, 991, 992, 993, 1500, 70_000,
        ] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            for counter in [1u64, 258, u64::MAX - 1] {
                let mut buf = plain.clone();
                let tag = ours.seal(counter, &mut buf);
                let mut expect = plain.clone();
                let expect_tag = reference
                    .seal_detached(&short_nonce(b"CurveZMQMESSAGES", counter), &mut expect);
                assert_eq!(
                    (tag, &buf),
                    (expect_tag, &expect),
                    "length {len}, counter {counter}"
                );
                theirs.open(counter, &mut buf, &tag).unwrap();
                assert_eq!(buf, plain, "length {len}");
                if len > 0 {
                    let mut bad = expect.clone();
                    bad[len - 1] ^= 1;
                    let before = bad.clone();
                    assert_eq!(
                        theirs.open(counter, &mut bad, &tag),
                        Err(CurveError::BadBox)
                    );
                    assert_eq!(bad, before, "a refused box is left as it was");
                }
                let mut wrong_dir = expect.clone();
                assert!(
                    ours.open(counter, &mut wrong_dir, &tag).is_err(),
                    "direction keys differ"
                );
            }
        }
    }

    /// Boxes under consecutive nonces, as a connection sends them: the keystream kept from
    /// one box's pass for the next must be exactly that nonce's, whatever the lengths (the
    /// next box shorter, as long as, or longer than what was kept; past eight blocks;
    /// empty), on both sides, and a refused box must not upset the boxes after it.
    #[test]
    fn consecutive_boxes_match_crypto_box() {
        for (ours_lanes, theirs_lanes) in PATHS {
            let (mut ours, mut theirs, reference) = traffic_keys(ours_lanes, theirs_lanes);
            consecutive_case(&mut ours, &mut theirs, &reference);
        }
    }

    fn consecutive_case(
        ours: &mut MessageKeys,
        theirs: &mut MessageKeys,
        reference: &PrecomputedBox,
    ) {
        // Topic/payload pairs, then lengths around the seven blocks a one-block box leaves
        // for the next (7 * 64 - 32 = 416 bytes), around eight, beyond, and empty ones.
        let mut lengths = vec![21usize, 250, 21, 250, 3, 416, 3, 417, 3, 480, 0, 481, 0, 0];
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..400 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            lengths.push(match x % 4 {
                0 => (x >> 8) as usize % 64,
                1 => (x >> 8) as usize % 600,
                2 => 20 + (x >> 8) as usize % 8,
                _ => (x >> 8) as usize % 2_000,
            });
        }
        for (i, &len) in lengths.iter().enumerate() {
            let counter = 7 + i as u64;
            let plain: Vec<u8> = (0..len).map(|j| (j * 31 + i) as u8).collect();
            let mut buf = plain.clone();
            let tag = ours.seal(counter, &mut buf);
            let mut expect = plain.clone();
            let expect_tag =
                reference.seal_detached(&short_nonce(b"CurveZMQMESSAGES", counter), &mut expect);
            assert_eq!((tag, &buf), (expect_tag, &expect), "box {i}: length {len}");
            if i % 50 == 25 && len > 0 {
                // A forged box under this nonce is refused and left as it was; the genuine
                // one after it (same nonce) and the next nonce still open.
                let mut forged = buf.clone();
                forged[0] ^= 1;
                assert_eq!(
                    theirs.open(counter, &mut forged, &tag),
                    Err(CurveError::BadBox)
                );
                assert_eq!(forged[0], buf[0] ^ 1);
            }
            theirs.open(counter, &mut buf, &tag).unwrap();
            assert_eq!(buf, plain, "box {i}: length {len}");
        }
    }

    #[test]
    fn refuses_low_order_keys() {
        let s = [7u8; 32];
        assert!(matches!(
            PrecomputedBox::new(&[0u8; 32], &s),
            Err(CurveError::WeakKey)
        ));
        let mut one = [0u8; 32];
        one[0] = 1;
        assert!(matches!(
            PrecomputedBox::new(&one, &s),
            Err(CurveError::WeakKey)
        ));
    }

    #[test]
    fn nonces() {
        let n = short_nonce(b"CurveZMQMESSAGES", 258);
        assert_eq!(&n[..16], b"CurveZMQMESSAGES");
        assert_eq!(&n[16..], &[0, 0, 0, 0, 0, 0, 1, 2]);
        let n = long_nonce(b"WELCOME-", &[9u8; 16]);
        assert_eq!(&n[..8], b"WELCOME-");
        assert_eq!(&n[8..], &[9u8; 16]);
    }
}

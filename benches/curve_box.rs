//! One CURVE MESSAGE box, sealed and opened: the traffic path (`MessageKeys`: HSalsa20 once
//! per connection, keystreams from eight-lane passes) against the same keys taking each
//! keystream from libsodium in one call (`message_keys_libsodium`, the path of CPUs without
//! AVX2 and the one the lanes replaced) and against libsodium's `crypto_box_detached_afternm`
//! with the full 24-byte nonce. The boxes go under consecutive nonces, as a connection's
//! do, so with the lanes a 101-byte box finds its keystream kept from the previous box's
//! pass every other time (a message's topic and payload boxes share one pass the same way).
//! Same bytes every way (unit tests in `curve::crypto` compare them).
//!
//! Run: `cargo bench --bench curve_box`.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use fixcurve::curve::crypto::{short_nonce, MessageKeys, PrecomputedBox};
use fixcurve::curve::prefix;
use fixcurve::keys::Keypair;

fn boxes() -> (MessageKeys, MessageKeys, PrecomputedBox) {
    let a = Keypair::generate();
    let b = Keypair::generate();
    let server = MessageKeys::new(
        PrecomputedBox::new(b.public.as_bytes(), a.secret.as_bytes()).unwrap(),
        prefix::MESSAGE_S,
        prefix::MESSAGE_C,
    );
    let client = MessageKeys::new(
        PrecomputedBox::new(a.public.as_bytes(), b.secret.as_bytes()).unwrap(),
        prefix::MESSAGE_C,
        prefix::MESSAGE_S,
    );
    (
        server,
        client,
        PrecomputedBox::new(b.public.as_bytes(), a.secret.as_bytes()).unwrap(),
    )
}

fn bench(c: &mut Criterion) {
    let (mut server, mut client, crypto_box) = boxes();
    let mut sodium_only = boxes().0.without_lanes();
    // 101: a 100-byte payload plus the inner flags byte, as the fan-out bench sends.
    for len in [101usize, 1001] {
        let mut g = c.benchmark_group(format!("curve_box/{len}B"));
        let mut buf = vec![7u8; len];
        let mut n = 0u64;
        g.bench_function(BenchmarkId::new("seal", "message_keys"), |bn| {
            bn.iter(|| {
                n += 1;
                black_box(server.seal(n, &mut buf))
            })
        });
        g.bench_function(BenchmarkId::new("seal", "message_keys_libsodium"), |bn| {
            bn.iter(|| {
                n += 1;
                black_box(sodium_only.seal(n, &mut buf))
            })
        });
        g.bench_function(BenchmarkId::new("seal", "crypto_box_afternm"), |bn| {
            bn.iter(|| {
                n += 1;
                black_box(crypto_box.seal_detached(&short_nonce(prefix::MESSAGE_S, n), &mut buf))
            })
        });
        let plain = vec![7u8; len];
        g.bench_function(BenchmarkId::new("open", "message_keys"), |bn| {
            bn.iter_batched_ref(
                || {
                    n += 1;
                    let mut b = plain.clone();
                    let tag = server.seal(n, &mut b);
                    (n, b, tag)
                },
                |(n, b, tag)| client.open(*n, b, tag).unwrap(),
                criterion::BatchSize::SmallInput,
            )
        });
        g.finish();
    }
}

/// Eight Salsa20 blocks in one pass (`curve::keystream`), what a topic box and a payload box
/// of up to seven blocks cost together.
fn lanes(c: &mut Criterion) {
    use fixcurve::curve::keystream::{blocks, BLOCK, LANES};
    let key = [7u8; 32];
    let mut out = [[0u8; BLOCK]; LANES];
    let mut n = 0u64;
    c.bench_function("curve_keystream/8_blocks", |bn| {
        bn.iter(|| {
            n += 1;
            let nonce = n.to_be_bytes();
            blocks(
                black_box(&key),
                &[nonce; LANES],
                &core::array::from_fn(|i| i as u64),
                &mut out,
            );
            black_box(out[7][63])
        })
    });
}

criterion_group!(benches, bench, lanes);
criterion_main!(benches);

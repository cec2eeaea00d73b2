//! The subscriber library's per-message work after decryption: a `[topic, envelope]` message
//! decoded into an [`Update`] (MessagePack envelope, gap check), for the Quote the end-to-end
//! bench sends, plus the envelope's encoding on the bridge side.
//!
//! Run: `cargo bench --bench envelope`.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::str::FromStr;

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use fixcurve::client::FrameDecoder;
use fixcurve::envelope::{Envelope, VERSION};
use fixcurve::normalize::{Event, Quote};
use rust_decimal::Decimal;

fn quote_envelope(seq: u64) -> Envelope {
    let d = |s: &str| Decimal::from_str(s).ok();
    Envelope {
        version: VERSION,
        epoch: 1_764_979_200_000_000_000,
        seq,
        received_ns: 1_764_979_260_123_456_789,
        venue: "bench".into(),
        session: "BRIDGE->VENUE".into(),
        fix_seq: Some(seq + 1),
        event: Event::Quote(Quote {
            symbol: "EUR/USD".into(),
            quote_id: Some("1764979260123400000".into()),
            bid_px: d("1.08763"),
            offer_px: d("1.08774"),
            bid_size: d("1000000"),
            offer_size: d("2000000"),
            transact_time: None,
            valid_until: None,
        }),
    }
}

fn bench(c: &mut Criterion) {
    let env = quote_envelope(1);
    let payload = env.encode().unwrap();
    let mut g = c.benchmark_group("envelope/quote");
    g.throughput(Throughput::Bytes(payload.len() as u64));
    g.bench_function("encode", |b| b.iter(|| black_box(&env).encode().unwrap()));
    g.bench_function("decode", |b| {
        b.iter(|| Envelope::decode(black_box(&payload)).unwrap())
    });
    // What `Subscriber::recv` does per message: envelope, gap check, the update.
    g.bench_function("subscriber_push", |b| {
        let topic = Bytes::from_static(b"md.bench.EUR/USD");
        let mut d = FrameDecoder::new();
        let mut out = Vec::with_capacity(4);
        let mut seq = 0u64;
        b.iter_batched(
            || {
                seq += 1;
                vec![
                    topic.clone(),
                    Bytes::from(quote_envelope(seq).encode().unwrap()),
                ]
            },
            |frames| {
                out.clear();
                d.push(&frames, &mut out);
                black_box(out.len())
            },
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

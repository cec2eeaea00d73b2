//! FIX decode throughput on the shared reference samples (`../shared/bench/fix-samples/*.fix`
//! beside the checkout, the same files QuickFIX's reference bench parses), falling back to
//! identical copies kept in the crate when that folder is absent.
//!
//! Run: `cargo bench --bench fix_decode`. Compare with the QuickFIX C++ figure for the same
//! file (see the README's FIX engine section).

use std::path::Path;

use criterion::{black_box, criterion_group, criterion_main, Bencher, Criterion, Throughput};
use fixcurve::fix::codec::{Decoder, DecoderLimits};
use fixcurve::fix::Message;

// The allocator the `fixcurve` binary runs with, so the figure is the daemon's.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn samples() -> Vec<(String, Vec<u8>)> {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench/fix-samples");
    let mut out = Vec::new();
    if let Ok(dir) = std::fs::read_dir(&shared) {
        let mut paths: Vec<_> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "fix"))
            .collect();
        paths.sort();
        for p in paths {
            if let Ok(b) = std::fs::read(&p) {
                let name = p.file_stem().map(|s| s.to_string_lossy().into_owned());
                out.push((name.unwrap_or_default(), b));
            }
        }
    }
    if out.is_empty() {
        out = vec![
            (
                "er_8".into(),
                include_bytes!("../crates/fixcurve-proto/src/fix/testdata/er_8.fix").to_vec(),
            ),
            (
                "md_w".into(),
                include_bytes!("../crates/fixcurve-proto/src/fix/testdata/md_w.fix").to_vec(),
            ),
            (
                "md_x".into(),
                include_bytes!("../crates/fixcurve-proto/src/fix/testdata/md_x.fix").to_vec(),
            ),
        ];
    }
    out
}

/// The market-data group's entries and each one's price, as the normalizer reads them.
fn walk_book(m: &Message) -> usize {
    let mut n = 0usize;
    if let Ok(Some(grp)) = fixcurve::fix::groups::group(m, 268) {
        for e in grp.entries() {
            n += e.get(270).map(|f| f.value.len()).unwrap_or(0);
        }
    }
    n
}

/// Feeds `raw` to `d` and runs `then` on the message, moved out of what `decode_next`
/// returns (`let m = ..unwrap().unwrap()`), once per iteration.
fn decode_then(b: &mut Bencher<'_>, mut d: Decoder, raw: &[u8], then: impl Fn(&Message) -> usize) {
    b.iter(|| {
        d.feed(black_box(raw));
        let m = d.decode_next().unwrap().unwrap();
        black_box(then(&m))
    })
}

fn bench(c: &mut Criterion) {
    for (name, raw) in samples() {
        let mut g = c.benchmark_group(format!("fix_decode/{name}"));
        g.throughput(Throughput::Bytes(raw.len() as u64));
        // One message per read: feed, validate (BodyLength, CheckSum, tags), index fields.
        let new = || Decoder::new(DecoderLimits::default());
        g.bench_function("one_per_read", |b| {
            decode_then(b, new(), &raw, |m| m.msg_type().len())
        });
        // Plus a walk of the market-data repeating group, as the normalizer does, on the
        // message where the decoder returned it (QuickFIX's bench parses into one message
        // object, too).
        g.bench_function("with_groups", |b| {
            let mut d = new();
            b.iter(|| {
                d.feed(black_box(&raw));
                match d.decode_next() {
                    Some(Ok(ref m)) => black_box(walk_book(m)),
                    _ => unreachable!("the sample decodes"),
                }
            })
        });
        // The same with the message moved out of the `Option<Result<..>>` first: copying a
        // message whose words were stored a moment ago costs a store-forwarding stall (see
        // the README).
        g.bench_function("with_groups_moved", |b| {
            decode_then(b, new(), &raw, walk_book)
        });
        // The group walk alone, on a message decoded once (no stores of the index pending).
        g.bench_function("walk_only", |b| {
            let mut d = new();
            d.feed(&raw);
            let m = d.decode_next().unwrap().unwrap();
            b.iter(|| black_box(walk_book(black_box(&m))))
        });
        // `one_per_read` and `with_groups_moved` with the byte loop alone (no block pass; its
        // index written by scalar stores): the walk's extra cost straight after a decode
        // does not follow the vector stores (it is the move; see the README).
        g.bench_function("byte_loop_one", |b| {
            decode_then(b, new().without_block_pass(), &raw, |m| m.msg_type().len())
        });
        g.bench_function("byte_loop_groups", |b| {
            decode_then(b, new().without_block_pass(), &raw, walk_book)
        });
        g.finish();

        // 64 messages per read, the shape of a busy feed.
        let batch: Vec<u8> = raw.repeat(64);
        let mut g = c.benchmark_group(format!("fix_decode/{name}"));
        g.throughput(Throughput::Bytes(batch.len() as u64));
        g.bench_function("64_per_read", |b| {
            let mut d = new();
            b.iter(|| {
                d.feed(black_box(&batch));
                let mut n = 0;
                for m in &mut d {
                    n += m.unwrap().field_count();
                }
                black_box(n)
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

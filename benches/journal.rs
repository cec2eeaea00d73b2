//! The journal alone: append rate (write + one flush per 256 records, as the publishing task
//! batches) and replay rate from a warm journal (what the replay endpoint serves from).
//!
//! Run: `cargo bench --bench journal` (`JOURNAL_BENCH_RECORDS` records, default 1,000,000, of
//! an execution envelope's size, ~300 bytes).

use std::time::Instant;

use fixcurve::journal::{Journal, JournalConfig};

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let n: u64 = if quick {
        10_000
    } else {
        std::env::var("JOURNAL_BENCH_RECORDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000)
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = JournalConfig::new(dir.path().join("journal"));
    let mut j = Journal::open(cfg, 1).expect("journal");
    let payload = vec![0x5a_u8; 300];
    let topics: Vec<String> = (0..16).map(|i| format!("exec.BENCH.ACC{i}")).collect();
    let t = Instant::now();
    for i in 0..n {
        let topic = &topics[(i % 16) as usize];
        let key = format!("BENCH/E-{i}");
        j.append(topic, i / 16 + 1, Some(&key), &payload);
        if i % 256 == 255 {
            j.flush().expect("flush");
        }
    }
    j.sync().expect("sync");
    let append = t.elapsed();
    let reader = j.reader();
    let t = Instant::now();
    let (mut from, mut got) = (0u64, 0u64);
    loop {
        let b = reader.read(from, &|_| true, 10_000, 4 << 20);
        got += b.records.len() as u64;
        from = b.next;
        if b.end {
            break;
        }
    }
    let replay = t.elapsed();
    assert_eq!(got, n, "every record read back");
    // One topic of sixteen: what a gap fill or `--since` on one account reads.
    let t = Instant::now();
    let (mut from, mut one) = (0u64, 0u64);
    loop {
        let b = reader.read_topics(
            from,
            Some((b"exec.BENCH.ACC3", 1)),
            &|r| r.topic == "exec.BENCH.ACC3",
            10_000,
            4 << 20,
        );
        one += b.records.len() as u64;
        from = b.next;
        if b.end {
            break;
        }
    }
    let filtered = t.elapsed();
    let rate = |k: u64, d: std::time::Duration| k as f64 / d.as_secs_f64();
    println!(
        "journal: {n} records of {} B: append {:.0} rec/s ({:.0} MB/s, flush every 256, one final fdatasync); replay all {:.0} rec/s; one topic of 16 ({one} records) {:.0} rec/s scanned-journal {:.0} rec/s",
        payload.len(),
        rate(n, append),
        rate(n, append) * 330.0 / 1e6,
        rate(n, replay),
        rate(one, filtered),
        rate(n, filtered),
    );
    if quick {
        println!("(smoke run under `cargo test`: use `cargo bench --bench journal` for figures)");
    }
}

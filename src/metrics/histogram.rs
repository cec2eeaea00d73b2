//! A fixed-bucket latency histogram in the Prometheus text format, lock-free to observe.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in microseconds (250 µs to 1 s: disk syncs and cluster acks).
const BUCKETS_US: [u64; 10] = [
    250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 1_000_000,
];

#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; 10],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        for (i, le) in BUCKETS_US.iter().enumerate() {
            if us <= *le {
                if let Some(b) = self.buckets.get(i) {
                    b.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Observations so far and their mean in microseconds (`None` before the first).
    pub fn count_and_mean_us(&self) -> Option<(u64, f64)> {
        let n = self.count.load(Ordering::Relaxed);
        (n > 0).then(|| (n, self.sum_us.load(Ordering::Relaxed) as f64 / n as f64))
    }

    /// Writes `# HELP`, `# TYPE` and the series of `name` (in seconds).
    pub fn render(&self, out: &mut String, name: &str, help: &str) {
        let g = |v: &AtomicU64| v.load(Ordering::Relaxed);
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (i, le) in BUCKETS_US.iter().enumerate() {
            let c = self.buckets.get(i).map(g).unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{le=\"{}\"}} {c}", *le as f64 / 1e6);
        }
        let count = g(&self.count);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", g(&self.sum_us) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

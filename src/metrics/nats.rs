//! JetStream figures: the sink's acknowledged/resent envelopes and ack latency (what the
//! cluster costs each execution), the edge's consumed/skipped/malformed envelopes.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use super::histogram::Histogram;

#[derive(Debug, Default)]
pub struct NatsMetrics {
    pub enabled: AtomicU64,
    /// 1 while connected with the stream checked.
    pub up: AtomicU64,
    pub published: AtomicU64,
    pub acked: AtomicU64,
    pub resent: AtomicU64,
    pub duplicates: AtomicU64,
    pub reconciles: AtomicU64,
    pub inflight: AtomicU64,
    pub consumed: AtomicU64,
    pub skipped: AtomicU64,
    pub malformed: AtomicU64,
    pub ack_latency: Histogram,
}

impl NatsMetrics {
    pub(super) fn render(&self, out: &mut String) {
        if self.enabled.load(Ordering::Relaxed) == 0 {
            return;
        }
        let g = |v: &AtomicU64| v.load(Ordering::Relaxed);
        let rows: [(&str, &str, &str, u64); 10] = [
            (
                "fixcurve_nats_up",
                "gauge",
                "connected to JetStream with the stream checked",
                g(&self.up),
            ),
            (
                "fixcurve_nats_published_total",
                "counter",
                "envelopes sent to the stream (sink)",
                g(&self.published),
            ),
            (
                "fixcurve_nats_acked_total",
                "counter",
                "envelopes the stream acknowledged (sink)",
                g(&self.acked),
            ),
            (
                "fixcurve_nats_resent_total",
                "counter",
                "envelopes sent again after a lost acknowledgement (sink)",
                g(&self.resent),
            ),
            (
                "fixcurve_nats_duplicates_total",
                "counter",
                "envelopes the stream already held (sink)",
                g(&self.duplicates),
            ),
            (
                "fixcurve_nats_reconciles_total",
                "counter",
                "times the sink re-read the stream's end after an error",
                g(&self.reconciles),
            ),
            (
                "fixcurve_nats_inflight",
                "gauge",
                "envelopes sent and not yet acknowledged (sink)",
                g(&self.inflight),
            ),
            (
                "fixcurve_nats_consumed_total",
                "counter",
                "envelopes read from the stream (edge)",
                g(&self.consumed),
            ),
            (
                "fixcurve_nats_skipped_total",
                "counter",
                "envelopes already served, skipped (edge)",
                g(&self.skipped),
            ),
            (
                "fixcurve_nats_malformed_total",
                "counter",
                "stream messages that are not valid envelopes, skipped (edge)",
                g(&self.malformed),
            ),
        ];
        for (name, ty, help, v) in rows {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {ty}\n{name} {v}");
        }
        self.ack_latency.render(
            out,
            "fixcurve_nats_publish_ack_seconds",
            "from publish to the stream's acknowledgement (sink)",
        );
    }
}

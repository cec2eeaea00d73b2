//! Journal and replay figures: gauges set by the publishing task after each commit, counters
//! bumped by the replay endpoint, and the journal's `fdatasync` latency as a histogram (the
//! figure that says what durability costs on this disk).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::histogram::Histogram;
use crate::journal::JournalStats;

#[derive(Debug, Default)]
pub struct JournalMetrics {
    pub enabled: AtomicU64,
    pub bytes: AtomicU64,
    pub records: AtomicU64,
    pub oldest_record: AtomicU64,
    pub newest_record: AtomicU64,
    pub damaged_bytes: AtomicU64,
    pub torn_bytes: AtomicU64,
    pub duplicates_dropped: AtomicU64,
    pub replay_requests: AtomicU64,
    pub replay_records: AtomicU64,
    pub replay_refused: AtomicU64,
    pub snapshot_requests: AtomicU64,
    fsync: Histogram,
}

impl JournalMetrics {
    pub fn set(&self, s: &JournalStats) {
        self.enabled.store(1, Ordering::Relaxed);
        self.bytes.store(s.bytes, Ordering::Relaxed);
        self.records.store(s.records, Ordering::Relaxed);
        self.oldest_record.store(s.oldest_record, Ordering::Relaxed);
        self.newest_record.store(s.newest_record, Ordering::Relaxed);
        self.damaged_bytes.store(s.damaged_bytes, Ordering::Relaxed);
        self.torn_bytes.store(s.torn_bytes, Ordering::Relaxed);
        self.duplicates_dropped
            .store(s.duplicates_dropped, Ordering::Relaxed);
    }

    pub fn observe_fsync(&self, d: Duration) {
        self.fsync.observe(d);
    }

    pub(super) fn render(&self, out: &mut String) {
        if self.enabled.load(Ordering::Relaxed) == 0 {
            return;
        }
        let g = |v: &AtomicU64| v.load(Ordering::Relaxed);
        let rows: [(&str, &str, &str, u64); 11] = [
            (
                "fixcurve_journal_bytes",
                "gauge",
                "bytes held in journal segments",
                g(&self.bytes),
            ),
            (
                "fixcurve_journal_records",
                "gauge",
                "records held",
                g(&self.records),
            ),
            (
                "fixcurve_journal_oldest_record",
                "gauge",
                "number of the oldest record still held",
                g(&self.oldest_record),
            ),
            (
                "fixcurve_journal_newest_record",
                "gauge",
                "number of the newest record",
                g(&self.newest_record),
            ),
            (
                "fixcurve_journal_damaged_bytes_total",
                "counter",
                "bytes of damaged records skipped and quarantined",
                g(&self.damaged_bytes),
            ),
            (
                "fixcurve_journal_torn_bytes_total",
                "counter",
                "bytes of an incomplete last record cut off at start",
                g(&self.torn_bytes),
            ),
            (
                "fixcurve_journal_duplicates_dropped_total",
                "counter",
                "executions received again and not republished",
                g(&self.duplicates_dropped),
            ),
            (
                "fixcurve_replay_requests_total",
                "counter",
                "replay requests answered",
                g(&self.replay_requests),
            ),
            (
                "fixcurve_replay_records_total",
                "counter",
                "records served by replay",
                g(&self.replay_records),
            ),
            (
                "fixcurve_replay_refused_total",
                "counter",
                "replay or snapshot requests refused (malformed, revoked, outside the ACL)",
                g(&self.replay_refused),
            ),
            (
                "fixcurve_snapshot_requests_total",
                "counter",
                "snapshot requests answered",
                g(&self.snapshot_requests),
            ),
        ];
        for (name, ty, help, v) in rows {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {ty}\n{name} {v}");
        }
        self.fsync.render(
            out,
            "fixcurve_journal_fsync_seconds",
            "journal fdatasync latency",
        );
    }
}

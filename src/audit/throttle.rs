//! Refusals under a flood: the first few of each kind in a window are logged and audited one
//! by one; the rest are counted and reported as one summary line per kind at the end of the
//! window (how many, from how many addresses, the busiest ones). A flood of thousands of
//! connections a second then writes a bounded number of lines instead of one each, while the
//! counters (metrics) still see every refusal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{AuditLog, AuditRecord, Side};

/// Addresses remembered per kind and window for the summary; beyond this only the total grows.
const MAX_PEERS: usize = 256;
/// Busiest addresses named in a summary line.
const TOP_PEERS: usize = 5;

#[derive(Default)]
struct Kind {
    shown: u32,
    suppressed: u64,
    peers: HashMap<String, u64>,
    other_peers: u64,
    reason: String,
}

struct State {
    started: Instant,
    kinds: HashMap<&'static str, Kind>,
    flush_scheduled: bool,
}

/// Shared by every connection task of one listener side.
#[derive(Clone)]
pub struct Throttle {
    side: Side,
    audit: AuditLog,
    window: Duration,
    burst: u32,
    state: Arc<Mutex<State>>,
}

/// One refusal: what happened (`event` in the audit), to whom, and why.
pub struct Refused<'a> {
    pub event: &'static str,
    pub peer: &'a str,
    pub reason: &'a str,
    pub key: Option<crate::keys::PublicKey>,
}

impl Throttle {
    /// `burst` individual lines per event kind per `window`.
    pub fn new(side: Side, audit: AuditLog, window: Duration, burst: u32) -> Throttle {
        Throttle {
            side,
            audit,
            window,
            burst,
            state: Arc::new(Mutex::new(State {
                started: Instant::now(),
                kinds: HashMap::new(),
                flush_scheduled: false,
            })),
        }
    }

    pub fn refuse(&self, r: Refused<'_>) {
        let show = {
            let mut st = match self.state.lock() {
                Ok(s) => s,
                Err(p) => p.into_inner(),
            };
            if st.started.elapsed() >= self.window {
                self.flush_locked(&mut st);
            }
            let burst = self.burst;
            let kind = st.kinds.entry(r.event).or_default();
            if kind.shown < burst {
                kind.shown += 1;
                true
            } else {
                kind.suppressed += 1;
                if kind.reason.is_empty() {
                    kind.reason = r.reason.to_string();
                }
                let host = host_of(r.peer);
                if let Some(n) = kind.peers.get_mut(host) {
                    *n += 1;
                } else if kind.peers.len() < MAX_PEERS {
                    kind.peers.insert(host.to_string(), 1);
                } else {
                    kind.other_peers += 1;
                }
                if !st.flush_scheduled {
                    st.flush_scheduled = true;
                    self.schedule_flush(st.started + self.window);
                }
                false
            }
        };
        if show {
            tracing::warn!(event = r.event, peer = r.peer, reason = r.reason, "refused");
            let mut rec = AuditRecord::new(self.side, r.event, false).reason(r.reason.to_string());
            rec.peer = Some(r.peer.to_string());
            if let Some(k) = r.key {
                rec = rec.key(k);
            }
            self.audit.record(rec);
        }
    }

    /// Writes the summaries of the current window now (also called at window end).
    pub fn flush(&self) {
        let mut st = match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        self.flush_locked(&mut st);
    }

    fn flush_locked(&self, st: &mut State) {
        let window = st.started.elapsed();
        for (event, kind) in st.kinds.drain() {
            if kind.suppressed == 0 {
                continue;
            }
            let mut peers: Vec<(String, u64)> = kind.peers.into_iter().collect();
            peers.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            let distinct = peers.len() as u64 + kind.other_peers.min(1);
            let top: Vec<String> = peers
                .iter()
                .take(TOP_PEERS)
                .map(|(p, n)| format!("{p} x{n}"))
                .collect();
            let text = format!(
                "{} more refused in {:.1} s ({}), from {}{} addresses; busiest: {}",
                kind.suppressed,
                window.as_secs_f64(),
                kind.reason,
                if kind.other_peers > 0 { "over " } else { "" },
                distinct,
                top.join(", ")
            );
            tracing::warn!(event, summary = %text, "refusals summarised");
            self.audit.record(
                AuditRecord::new(self.side, format!("{event}_summary"), false).reason(text),
            );
        }
        st.started = Instant::now();
        st.flush_scheduled = false;
    }

    fn schedule_flush(&self, at: Instant) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return; // flushed at the next refusal after the window instead
        };
        let me = self.clone();
        rt.spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            let mut st = match me.state.lock() {
                Ok(s) => s,
                Err(p) => p.into_inner(),
            };
            if st.flush_scheduled {
                me.flush_locked(&mut st);
            }
        });
    }
}

/// `tcp://1.2.3.4:5678` and `tcp://[::1]:5678` to the address alone: a flood comes from
/// ever new ports of the same few hosts.
fn host_of(peer: &str) -> &str {
    let Some(rest) = peer.strip_prefix("tcp://") else {
        return peer;
    };
    let host = rest.rsplit_once(':').map_or(rest, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_becomes_a_bounded_number_of_lines() {
        let audit = AuditLog::memory();
        let t = Throttle::new(Side::Curve, audit.clone(), Duration::from_secs(3600), 3);
        for i in 0..10_000u32 {
            let peer = format!("tcp://127.0.0.{}:{}", i % 200, 1000 + i);
            t.refuse(Refused {
                event: "connection_refused",
                peer: &peer,
                reason: "per-IP cap",
                key: None,
            });
        }
        t.refuse(Refused {
            event: "handshake_failed",
            peer: "tcp://127.0.0.1:1",
            reason: "timeout",
            key: None,
        });
        assert_eq!(audit.records().len(), 4);
        t.flush();
        let recs = audit.records();
        assert_eq!(recs.len(), 5);
        let summary = &recs[4];
        assert_eq!(summary.event, "connection_refused_summary");
        let text = summary.reason.clone().unwrap_or_default();
        assert!(text.starts_with("9997 more refused"), "{text}");
        assert!(text.contains("from 200 addresses"), "{text}");
        assert!(text.contains("127.0.0.1"), "{text}");
        assert_eq!(host_of("tcp://[::1]:9"), "::1");
        assert_eq!(host_of("ipc:///x.sock"), "ipc:///x.sock");
        // nothing more to say: no second summary
        t.flush();
        assert_eq!(audit.records().len(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn the_summary_is_written_when_the_window_ends_even_if_the_flood_stops() {
        let audit = AuditLog::memory();
        let t = Throttle::new(Side::Curve, audit.clone(), Duration::from_secs(10), 1);
        for _ in 0..3 {
            t.refuse(Refused {
                event: "handshake_failed",
                peer: "tcp://127.0.0.1:9",
                reason: "timeout",
                key: None,
            });
        }
        assert_eq!(audit.records().len(), 1);
        tokio::time::sleep(Duration::from_secs(11)).await;
        let recs = audit.records();
        assert_eq!(recs.len(), 2, "{recs:?}");
        assert!(recs[1]
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("2 more refused"));
    }
}

//! Prometheus text exposition of per-session and per-subscriber counters.

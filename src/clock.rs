//! The one place the wall clock is read for timestamps that go on the wire or in events
//! (`received_ns`, the publisher epoch); the protocol cores take time as an argument.

/// Nanoseconds since the Unix epoch (0 before 1970, saturating in 2554).
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

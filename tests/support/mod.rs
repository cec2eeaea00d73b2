//! Helpers shared by the integration tests that run over real sockets. (The sans-IO helpers
//! (SOH text, deterministic clock, the store-work driver) are `fixcurve_proto::testing`.)

#![allow(dead_code)] // each test binary uses its own subset

use std::time::Duration;

/// Longest any single wait in these tests may take before it counts as a failure.
pub const WAIT: Duration = Duration::from_secs(10);

/// A bound on a retry loop (waiting for something asynchronous, such as a subscription
/// reaching the publisher, without sleeping): `check` panics naming what was awaited once
/// [`WAIT`] has passed, so a test can never hang.
pub struct Deadline {
    at: tokio::time::Instant,
    what: String,
}

impl Deadline {
    /// Starts the clock for `what`.
    pub fn new(what: impl Into<String>) -> Deadline {
        Deadline {
            at: tokio::time::Instant::now() + WAIT,
            what: what.into(),
        }
    }

    /// Panics if the deadline has passed.
    pub fn check(&self) {
        assert!(
            tokio::time::Instant::now() < self.at,
            "{}: not within {} s",
            self.what,
            WAIT.as_secs()
        );
    }
}

//! Operator and test tools built on the library, kept apart from the daemon's own modules:
//! the FIX venue simulator (`demo`, benches) and the certificate tools (`certs dev`, `certs
//! check`, `certs probe`).

pub mod certs_check;
pub mod certs_dev;
pub mod probe;
pub mod simulator;

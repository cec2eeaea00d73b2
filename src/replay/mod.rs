//! Getting back what was missed: the replay and snapshot endpoint (`server`), its frames
//! (`protocol`), the market-data snapshot store it serves (`snapshots`) and a client
//! (`client`) the Rust subscriber and `fixcurve sub --since` use.

pub mod client;
pub mod protocol;
pub mod server;
pub mod snapshots;

pub use client::{ReplayClient, ReplayError};
pub use server::{ReplayServer, ReplaySources};
pub use snapshots::Snapshots;

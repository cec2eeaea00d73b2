//! The daemon: wires FIX sessions through the normalizer into the CURVE publisher.

pub mod daemon;
pub mod keys;
pub mod pipeline;
pub mod simulator;

pub use daemon::{Bridge, PublishKeys, Totals};
pub use pipeline::{now_ns, Outgoing, Pipeline, SessionCtx};

//! The daemon: wires FIX sessions through the normalizer into the CURVE publisher.

pub mod pipeline;
pub mod simulator;

pub use pipeline::{now_ns, Outgoing, Pipeline, SessionCtx};

//! The daemon: wires FIX sessions through the normalizer into the CURVE publisher.

pub mod daemon;
pub mod keys;
pub mod pipeline;
pub mod router;

pub use daemon::{Bridge, PublishKeys};
pub use pipeline::{now_ns, Outgoing, Pipeline, SessionCtx};
pub use router::{Router, Totals};

//! The subscriber API for downstream Rust applications.
//!
//! Connect with the publisher's public key and your keypair, subscribe by topic prefix, and
//! receive typed events ([`crate::normalize::Event`] inside an [`crate::envelope::Envelope`])
//! with sequence gaps reported per topic. The connection layer reconnects with back-off and
//! resubscribes by itself; a reconnect shows up as `Disconnected` then `Connected`, and any
//! messages missed meanwhile as a `Gap` on the topics that lost them.

mod decode;

pub use decode::{FrameDecoder, Received, Update};

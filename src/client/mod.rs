//! The subscriber API for downstream Rust applications.
//!
//! Connect with the publisher's public key and your keypair, subscribe by topic prefix, and
//! receive typed events ([`crate::normalize::Event`] inside an [`crate::envelope::Envelope`])
//! with sequence gaps reported per topic. The connection layer reconnects with back-off and
//! resubscribes by itself; a reconnect shows up as `Disconnected` then `Connected`, and any
//! messages missed meanwhile as a `Gap` on the topics that lost them.

mod decode;
mod format;
mod subscriber;

pub use decode::{FrameDecoder, Received, Update};
pub use format::{json_line, text_line};
pub use subscriber::{Options, Subscriber};

use std::path::Path;

use crate::keys::{Keypair, PublicKey};

/// The publisher's public key from a ZPL certificate file (`keys/server/server.key`).
pub fn read_server_key(path: &Path) -> anyhow::Result<PublicKey> {
    Ok(crate::keys::cert::read_public(path)?.key)
}

/// This subscriber's keypair from its `.key_secret` ZPL certificate (refused if readable by
/// group or others).
pub fn read_client_keypair(path: &Path) -> anyhow::Result<Keypair> {
    Ok(crate::keys::cert::read_secret(path)?)
}

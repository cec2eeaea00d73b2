//! The FIX side: codec, session layer, sequence store and the TLS transports.
//!
//! Everything here except `transport` is sans-IO: bytes and time in, bytes and events out.

pub mod codec;
pub mod dictionary;
pub mod field;
pub mod groups;
pub mod message;
pub mod session;
pub mod store;
pub mod transport;

pub use field::Field;
pub use message::Message;

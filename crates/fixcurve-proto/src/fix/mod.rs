//! The FIX side, sans-IO: codec, messages, groups, dictionaries and the session layer.

pub mod codec;
pub mod dictionary;
pub mod field;
pub mod groups;
pub mod message;
pub mod session;
pub mod tag;

pub use field::Field;
pub use message::Message;

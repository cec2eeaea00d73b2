//! The FIX side. The codec, messages, groups, dictionaries and the session state machine are
//! the sans-IO ones of `fixcurve-proto`; this crate adds what touches disk and sockets: the
//! sequence store, dictionary files and the TLS transports.

pub use fixcurve_proto::fix::{codec, field, groups, message, session, tag, Field, Message};

pub mod dictionary;
pub mod store;
pub mod transport;

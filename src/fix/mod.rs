//! The FIX side: codec, session layer, sequence store and the TLS transports.

pub mod field;

pub use field::Field;

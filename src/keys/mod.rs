//! CURVE key material. The key types and their Z85 text are `fixcurve-proto`'s; this crate
//! adds their files: ZPL certificates and the permission-checked file helpers.

pub use fixcurve_proto::keys::*;

pub mod cert;
pub mod fsutil;

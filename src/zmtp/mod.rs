//! ZMTP 3.x (RFC 23/37) wire codec: greeting, frames, commands, metadata (sans-IO).

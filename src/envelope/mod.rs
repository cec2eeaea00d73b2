//! The MessagePack envelope every published payload is wrapped in.

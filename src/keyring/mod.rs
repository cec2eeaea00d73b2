//! The directory keyring (`keys/`): authorized and revoked CURVE keys, watched live.

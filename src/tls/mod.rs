//! TLS policy for the FIX side (rustls): verification, pinning, CRLs, identities, tooling.

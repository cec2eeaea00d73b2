//! FIX application messages to typed, lossless events (sans-IO).

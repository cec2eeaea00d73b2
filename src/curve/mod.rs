//! CurveZMQ (RFC 26) and ZMTP-CURVE (RFC 25): sans-IO handshake and message boxes.

//! The 64-byte ZMTP 3 greeting.
//!
//! libzmq writes the first 11 bytes (signature + major version), waits for the peer's first
//! 11, and only then sends the rest. So a peer must send its whole greeting at once and must
//! never wait for the complete peer greeting before writing its own: `encode` gives all 64
//! bytes to write immediately, and `check_prefix` validates a partial greeting as it arrives
//! so garbage is refused after its first byte rather than after 64.

use super::ZmtpError;

/// Every ZMTP 3 greeting is 64 bytes.
pub const GREETING_LEN: usize = 64;
/// Signature + major version: what libzmq reads before it sends the rest of its greeting.
pub const GREETING_PREFIX_LEN: usize = 11;

/// What a peer's greeting says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// ZMTP major version (3).
    pub major: u8,
    /// ZMTP minor version (0 or 1).
    pub minor: u8,
    /// Mechanism name, NUL padding removed.
    pub mechanism: String,
    /// libzmq ignores this byte; we record it only for diagnostics.
    pub as_server: bool,
}

/// Our greeting: ZMTP 3.1 with `mechanism` (e.g. "CURVE").
pub fn encode(mechanism: &str, as_server: bool) -> [u8; GREETING_LEN] {
    encode_version(3, 1, mechanism, as_server)
}

/// A greeting with an explicit version; tests use 3.0 to play an old peer.
#[allow(clippy::arithmetic_side_effects)] // a mechanism name cut to 20 bytes
pub fn encode_version(
    major: u8,
    minor: u8,
    mechanism: &str,
    as_server: bool,
) -> [u8; GREETING_LEN] {
    let mut g = [0u8; GREETING_LEN];
    g[0] = 0xFF;
    g[8] = 0x01; // libzmq puts 1 in the last padding byte (a v1 "length"); harmless and identical.
    g[9] = 0x7F;
    g[10] = major;
    g[11] = minor;
    let name = mechanism.as_bytes();
    let n = name.len().min(20);
    g[12..12 + n].copy_from_slice(&name[..n]);
    g[32] = u8::from(as_server);
    g
}

/// Validates as much of a peer greeting as has arrived (fewer than 64 bytes is fine).
pub fn check_prefix(bytes: &[u8]) -> Result<(), ZmtpError> {
    if let Some(&b) = bytes.first() {
        if b != 0xFF {
            return Err(ZmtpError::BadSignature);
        }
    }
    if let Some(&b) = bytes.get(9) {
        if b & 0x01 != 0x01 {
            return Err(ZmtpError::BadSignature);
        }
    }
    if let Some(&major) = bytes.get(10) {
        if major < 3 {
            return Err(ZmtpError::UnsupportedVersion(
                major,
                bytes.get(11).copied().unwrap_or(0),
            ));
        }
    }
    Ok(())
}

/// Parses a complete greeting.
pub fn parse(bytes: &[u8]) -> Result<Greeting, ZmtpError> {
    check_prefix(bytes)?;
    let g = bytes.get(..GREETING_LEN).ok_or(ZmtpError::BadSignature)?;
    let mech_raw = &g[12..32];
    let end = mech_raw
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(mech_raw.len());
    if mech_raw[end..].iter().any(|&b| b != 0) {
        return Err(ZmtpError::WrongMechanism(
            String::from_utf8_lossy(mech_raw).into_owned(),
        ));
    }
    Ok(Greeting {
        major: g[10],
        minor: g[11],
        mechanism: String::from_utf8_lossy(&mech_raw[..end]).into_owned(),
        as_server: g[32] != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What libzmq 4.3.5 (pyzmq 27) sends as a CURVE client, captured on the wire.
    pub(super) const LIBZMQ_CURVE_CLIENT_GREETING: [u8; 64] = [
        0xff, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x7f, 0x03, 0x01, b'C', b'U', b'R', b'V', b'E', 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn encodes_like_libzmq() {
        assert_eq!(encode("CURVE", false), LIBZMQ_CURVE_CLIENT_GREETING);
        let mut server = LIBZMQ_CURVE_CLIENT_GREETING;
        server[32] = 1;
        assert_eq!(encode("CURVE", true), server);
    }

    #[test]
    fn parses_and_rejects() {
        let g = parse(&LIBZMQ_CURVE_CLIENT_GREETING).unwrap();
        assert_eq!(
            (g.major, g.minor, g.mechanism.as_str(), g.as_server),
            (3, 1, "CURVE", false)
        );
        let g = parse(&encode_version(3, 0, "NULL", true)).unwrap();
        assert_eq!(
            (g.minor, g.mechanism.as_str(), g.as_server),
            (0, "NULL", true)
        );
        assert_eq!(
            check_prefix(b"GET / HTTP/1.1"),
            Err(ZmtpError::BadSignature)
        );
        assert_eq!(
            check_prefix(&[0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0x7F, 2]),
            Err(ZmtpError::UnsupportedVersion(2, 0))
        );
        assert_eq!(check_prefix(&[0xFF, 0, 0]), Ok(()));
        let mut bad = LIBZMQ_CURVE_CLIENT_GREETING;
        bad[9] = 0x00;
        assert_eq!(parse(&bad), Err(ZmtpError::BadSignature));
        let mut junk = LIBZMQ_CURVE_CLIENT_GREETING;
        junk[20] = b'X';
        assert!(matches!(parse(&junk), Err(ZmtpError::WrongMechanism(_))));
        assert_eq!(
            parse(&LIBZMQ_CURVE_CLIENT_GREETING[..40]),
            Err(ZmtpError::BadSignature)
        );
    }
}

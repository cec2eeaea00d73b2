//! ZMTP commands: a 1-byte name length, the name, then command data.
//!
//! Only the commands fixcurve speaks are typed; anything else is `Unknown` so the caller
//! decides (libzmq ignores unknown commands after the handshake; so do we).

use super::ZmtpError;

/// A parsed ZMTP command, borrowing its data from the frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// READY with its metadata.
    Ready(&'a [u8]),
    /// ERROR with its reason.
    Error(&'a [u8]),
    /// SUBSCRIBE (ZMTP 3.1) with the topic prefix.
    Subscribe(&'a [u8]),
    /// CANCEL (ZMTP 3.1) with the topic prefix.
    Cancel(&'a [u8]),
    /// TTL in deciseconds and up to 16 bytes of context.
    Ping {
        /// Time to live, in deciseconds.
        ttl: u16,
        /// Up to 16 bytes the PONG must echo.
        context: &'a [u8],
    },
    /// PONG with the PING's context.
    Pong(&'a [u8]),
    /// CURVE HELLO body.
    Hello(&'a [u8]),
    /// CURVE WELCOME body.
    Welcome(&'a [u8]),
    /// CURVE INITIATE body.
    Initiate(&'a [u8]),
    /// CURVE MESSAGE body.
    Message(&'a [u8]),
    /// A command this implementation does not know (ignored, as the RFC says).
    Unknown {
        /// Its name.
        name: &'a [u8],
        /// Its data.
        data: &'a [u8],
    },
}

/// Splits a command body into (name, data).
pub fn split(body: &[u8]) -> Result<(&[u8], &[u8]), ZmtpError> {
    let (&n, rest) = body.split_first().ok_or(ZmtpError::MalformedCommand)?;
    let n = usize::from(n);
    if n == 0 || rest.len() < n {
        return Err(ZmtpError::MalformedCommand);
    }
    Ok(rest.split_at(n))
}

/// Parses a command frame body (name length, name, data).
pub fn parse(body: &[u8]) -> Result<Command<'_>, ZmtpError> {
    let (name, data) = split(body)?;
    Ok(match name {
        b"READY" => Command::Ready(data),
        b"ERROR" => {
            let (&len, rest) = data.split_first().ok_or(ZmtpError::MalformedCommand)?;
            let reason = rest
                .get(..usize::from(len))
                .ok_or(ZmtpError::MalformedCommand)?;
            Command::Error(reason)
        }
        b"SUBSCRIBE" => Command::Subscribe(data),
        b"CANCEL" => Command::Cancel(data),
        b"PING" => {
            if data.len() < 2 || data.len() > 2 + 16 {
                return Err(ZmtpError::MalformedCommand);
            }
            Command::Ping {
                ttl: u16::from_be_bytes([data[0], data[1]]),
                context: &data[2..],
            }
        }
        b"PONG" => {
            if data.len() > 16 {
                return Err(ZmtpError::MalformedCommand);
            }
            Command::Pong(data)
        }
        b"HELLO" => Command::Hello(data),
        b"WELCOME" => Command::Welcome(data),
        b"INITIATE" => Command::Initiate(data),
        b"MESSAGE" => Command::Message(data),
        _ => Command::Unknown { name, data },
    })
}

/// Appends a command body (name length, name, data) to `out`.
pub fn encode_into(out: &mut Vec<u8>, name: &[u8], data: &[u8]) {
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(data);
}

/// A command frame body from its name and data.
#[allow(clippy::arithmetic_side_effects)] // a command name of at most 255 bytes and data held in memory
pub fn encode(name: &[u8], data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(1 + name.len() + data.len());
    encode_into(&mut v, name, data);
    v
}

/// ERROR body: reason truncated to 255 bytes.
#[allow(clippy::arithmetic_side_effects)] // a reason of at most 255 bytes
pub fn error(reason: &str) -> Vec<u8> {
    let r = &reason.as_bytes()[..reason.len().min(255)];
    let mut data = Vec::with_capacity(1 + r.len());
    data.push(r.len() as u8);
    data.extend_from_slice(r);
    encode(b"ERROR", &data)
}

/// PING body with a TTL in deciseconds and a context (at most 16 bytes are kept).
pub fn ping(ttl_deciseconds: u16, context: &[u8]) -> Vec<u8> {
    let mut data = ttl_deciseconds.to_be_bytes().to_vec();
    data.extend_from_slice(&context[..context.len().min(16)]);
    encode(b"PING", &data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors() {
        assert_eq!(encode(b"SUBSCRIBE", b"md."), b"\x09SUBSCRIBEmd.");
        assert_eq!(
            parse(b"\x09SUBSCRIBEmd.").unwrap(),
            Command::Subscribe(b"md.")
        );
        assert_eq!(parse(b"\x06CANCEL").unwrap(), Command::Cancel(b""));
        assert_eq!(error("400"), b"\x05ERROR\x03400");
        assert_eq!(parse(b"\x05ERROR\x03400").unwrap(), Command::Error(b"400"));
        assert_eq!(ping(30, b"ab"), b"\x04PING\x00\x1eab");
        assert_eq!(
            parse(b"\x04PING\x00\x1eab").unwrap(),
            Command::Ping {
                ttl: 30,
                context: b"ab"
            }
        );
        assert_eq!(parse(b"\x04PONGab").unwrap(), Command::Pong(b"ab"));
        assert!(matches!(
            parse(b"\x03FOOx").unwrap(),
            Command::Unknown {
                name: b"FOO",
                data: b"x"
            }
        ));
    }

    #[test]
    fn malformed() {
        for bad in [
            &b""[..],
            b"\x00",
            b"\x09SUB",
            b"\x05ERROR",
            b"\x05ERROR\x05ab",
            b"\x04PING\x00",
            &[
                4, b'P', b'O', b'N', b'G', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}

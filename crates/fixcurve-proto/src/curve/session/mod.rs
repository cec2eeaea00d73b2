//! One CURVE connection as a byte-level state machine: greeting, handshake frames, then
//! sealed traffic. The caller reads socket bytes into `input()`, calls `poll(out)` until it
//! returns `Ok(None)`, and writes whatever landed in `out`. No sockets, no clocks: timers
//! (handshake deadline, heartbeats) belong to the driver, which calls `send_ping` and closes
//! on its own deadlines.

use bytes::{Buf, BytesMut};

use super::CurveError;
use crate::zmtp::{command, frame, greeting, Command, FrameDecoder, Greeting, Metadata, ZmtpError};

mod client;
mod server;

pub use self::client::{ClientEvent, ClientSession};
pub use self::server::{ServerEvent, ServerSession};

/// Why a ZMTP/CURVE connection failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
// Each variant is documented by its `#[error]` text, which is what users read.
#[allow(missing_docs)]
pub enum SessionError {
    #[error(transparent)]
    Zmtp(#[from] ZmtpError),
    #[error(transparent)]
    Curve(#[from] CurveError),
    #[error("protocol violation: {0}")]
    Protocol(String),
    #[error("incompatible peer socket type {0:?}")]
    SocketType(String),
    #[error("message of more than {0} bytes")]
    MessageTooLarge(usize),
    #[error("connection already closed")]
    Closed,
}

/// Greeting and framing shared by both sides.
pub(super) struct Link {
    pub(super) input: BytesMut,
    decoder: FrameDecoder,
    peer: Option<Greeting>,
}

impl Link {
    pub(super) fn new(max_frame: usize) -> Self {
        Link {
            input: BytesMut::with_capacity(8192),
            decoder: FrameDecoder::new(max_frame),
            peer: None,
        }
    }

    /// True once the peer's greeting is complete and acceptable.
    pub(super) fn greeting_done(&mut self) -> Result<bool, SessionError> {
        if self.peer.is_some() {
            return Ok(true);
        }
        greeting::check_prefix(&self.input)?;
        if self.input.len() < greeting::GREETING_LEN {
            return Ok(false);
        }
        let g = greeting::parse(&self.input)?;
        if g.mechanism != "CURVE" {
            return Err(ZmtpError::WrongMechanism(g.mechanism).into());
        }
        self.input.advance(greeting::GREETING_LEN);
        self.peer = Some(g);
        Ok(true)
    }

    pub(super) fn next_frame(&mut self) -> Result<Option<frame::Frame>, SessionError> {
        if !self.greeting_done()? {
            return Ok(None);
        }
        Ok(self.decoder.decode(&mut self.input)?)
    }

    pub(super) fn minor(&self) -> u8 {
        self.peer.as_ref().map(|g| g.minor).unwrap_or(0)
    }
}

pub(super) fn expect_command(f: &frame::Frame, expected: &'static str) -> Result<(), SessionError> {
    if f.command {
        Ok(())
    } else {
        Err(SessionError::Protocol(format!(
            "data frame while expecting {expected}"
        )))
    }
}

/// Seals a PING (`ttl` deciseconds, empty context): both sides heartbeat the same way.
pub(super) fn seal_ping(codec: &mut crate::curve::MessageCodec, ttl: u16, out: &mut BytesMut) {
    codec.seal_into(out, false, true, &command::ping(ttl, b""));
}

/// Answers a PING with a PONG echoing its context.
pub(super) fn seal_pong(
    codec: &mut crate::curve::MessageCodec,
    context: &[u8],
    out: &mut BytesMut,
) {
    codec.seal_into(out, false, true, &command::encode(b"PONG", context));
}

pub(super) fn put_command(out: &mut BytesMut, name: &[u8], data: &[u8]) {
    let body = command::encode(name, data);
    frame::put_frame(out, false, true, &body);
}

pub(super) fn check_socket_type(md: &Metadata, allowed: &[&str]) -> Result<(), SessionError> {
    let t = md.get("Socket-Type").unwrap_or(b"");
    if allowed.iter().any(|a| a.as_bytes() == t) {
        Ok(())
    } else {
        Err(SessionError::SocketType(
            String::from_utf8_lossy(t).into_owned(),
        ))
    }
}

pub(super) fn unexpected(c: &Command<'_>, expected: &'static str) -> SessionError {
    let got = match c {
        Command::Error(reason) => {
            return SessionError::Curve(CurveError::Refused(
                String::from_utf8_lossy(reason).into_owned(),
            ))
        }
        Command::Ready(_) => "READY",
        Command::Subscribe(_) => "SUBSCRIBE",
        Command::Cancel(_) => "CANCEL",
        Command::Ping { .. } => "PING",
        Command::Pong(_) => "PONG",
        Command::Hello(_) => "HELLO",
        Command::Welcome(_) => "WELCOME",
        Command::Initiate(_) => "INITIATE",
        Command::Message(_) => "MESSAGE",
        Command::Unknown { .. } => "unknown",
    };
    SessionError::Curve(CurveError::Unexpected {
        got: got.into(),
        expected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curve::os_rng;
    use crate::keys::Keypair;
    use bytes::Bytes;

    /// Moves bytes between the two sides until neither has anything to say.
    fn pump(
        s: &mut ServerSession,
        c: &mut ClientSession,
        s_out: &mut BytesMut,
        c_out: &mut BytesMut,
    ) -> (Vec<ServerEvent>, Vec<ClientEvent>) {
        let mut se = Vec::new();
        let mut ce = Vec::new();
        loop {
            let moved = !s_out.is_empty() || !c_out.is_empty();
            c.input().extend_from_slice(&s_out.split());
            s.input().extend_from_slice(&c_out.split());
            while let Some(e) = s.poll(s_out).unwrap() {
                if let ServerEvent::Authenticate { .. } = e {
                    s.accept(s_out).unwrap();
                }
                se.push(e);
            }
            while let Some(e) = c.poll(c_out).unwrap() {
                ce.push(e);
            }
            if !moved && s_out.is_empty() && c_out.is_empty() {
                return (se, ce);
            }
        }
    }

    fn connected(minor: u8) -> (ServerSession, ClientSession, Keypair) {
        let server = Keypair::generate();
        let client = Keypair::generate();
        let mut s = ServerSession::new(server.clone(), 1 << 20, os_rng());
        let mut c = ClientSession::new(client.clone(), server.public, 1 << 20, os_rng());
        let mut s_out = BytesMut::from(&s.greeting()[..]);
        let mut c_out = BytesMut::from(&c.greeting_version(minor)[..]);
        let (se, ce) = pump(&mut s, &mut c, &mut s_out, &mut c_out);
        assert!(
            matches!(&se[0], ServerEvent::Authenticate { client_key, .. } if *client_key == client.public)
        );
        assert!(
            matches!(&ce[0], ClientEvent::Ready(md) if md.get("Socket-Type") == Some(&b"PUB"[..]))
        );
        (s, c, client)
    }

    #[test]
    fn subscribe_publish_ping_31_and_30() {
        for minor in [1u8, 0] {
            let (mut s, mut c, _) = connected(minor);
            let mut s_out = BytesMut::new();
            let mut c_out = BytesMut::new();
            c.subscribe(b"md.", &mut c_out).unwrap();
            c.cancel(b"x", &mut c_out).unwrap();
            c.send_ping(10, &mut c_out).unwrap();
            let (se, _) = pump(&mut s, &mut c, &mut s_out, &mut c_out);
            assert_eq!(
                se,
                vec![
                    ServerEvent::Subscribe(Bytes::from_static(b"md.")),
                    ServerEvent::Cancel(Bytes::from_static(b"x"))
                ]
            );
            s.send_part(true, b"md.A", &mut s_out).unwrap();
            s.send_part(false, b"payload", &mut s_out).unwrap();
            s.send_ping(0, &mut s_out).unwrap();
            let (_, ce) = pump(&mut s, &mut c, &mut s_out, &mut c_out);
            assert_eq!(
                ce,
                vec![ClientEvent::Message(vec![
                    Bytes::from_static(b"md.A"),
                    Bytes::from_static(b"payload")
                ])]
            );
        }
    }

    #[test]
    fn deny_sends_error_and_client_reports_refusal() {
        let server = Keypair::generate();
        let mut s = ServerSession::new(server.clone(), 1 << 20, os_rng());
        let mut c = ClientSession::new(Keypair::generate(), server.public, 1 << 20, os_rng());
        let mut s_out = BytesMut::from(&s.greeting()[..]);
        let mut c_out = BytesMut::from(&c.greeting()[..]);
        for _ in 0..8 {
            c.input().extend_from_slice(&s_out.split());
            s.input().extend_from_slice(&c_out.split());
            if let Ok(Some(ServerEvent::Authenticate { .. })) = s.poll(&mut s_out) {
                s.deny("400", &mut s_out);
            }
            if let Err(e) = c.poll(&mut c_out) {
                assert_eq!(e, SessionError::Curve(CurveError::Refused("400".into())));
                return;
            }
        }
        panic!("client never saw the ERROR");
    }

    #[test]
    fn hostile_greetings() {
        let server = Keypair::generate();
        let mut s = ServerSession::new(server.clone(), 1 << 20, os_rng());
        s.input().extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(
            s.poll(&mut BytesMut::new()),
            Err(SessionError::Zmtp(ZmtpError::BadSignature))
        );
        let mut s = ServerSession::new(server.clone(), 1 << 20, os_rng());
        s.input()
            .extend_from_slice(&greeting::encode("NULL", false));
        assert_eq!(
            s.poll(&mut BytesMut::new()),
            Err(SessionError::Zmtp(ZmtpError::WrongMechanism("NULL".into())))
        );
        let mut s = ServerSession::new(server.clone(), 1000, os_rng());
        s.input()
            .extend_from_slice(&greeting::encode("CURVE", false));
        s.input()
            .extend_from_slice(&[0x06, 0, 0, 0, 0, 0, 0, 0x10, 0]);
        assert!(matches!(
            s.poll(&mut BytesMut::new()),
            Err(SessionError::Zmtp(ZmtpError::FrameTooLarge { .. }))
        ));
        // A data frame where HELLO belongs.
        let mut s = ServerSession::new(server, 1000, os_rng());
        s.input()
            .extend_from_slice(&greeting::encode("CURVE", false));
        s.input().extend_from_slice(b"\x00\x03abc");
        assert!(matches!(
            s.poll(&mut BytesMut::new()),
            Err(SessionError::Protocol(_))
        ));
    }

    #[test]
    fn replayed_and_tampered_messages_close() {
        let (mut s, mut c, _) = connected(1);
        let mut c_out = BytesMut::new();
        c.subscribe(b"a", &mut c_out).unwrap();
        let replay = c_out.clone();
        s.input().extend_from_slice(&c_out.split());
        let mut s_out = BytesMut::new();
        assert!(s.poll(&mut s_out).unwrap().is_some());
        s.input().extend_from_slice(&replay);
        assert!(matches!(
            s.poll(&mut s_out),
            Err(SessionError::Curve(CurveError::Replay { .. }))
        ));
        let (mut s, mut c, _) = connected(1);
        c.subscribe(b"a", &mut c_out).unwrap();
        let n = c_out.len();
        c_out[n - 1] ^= 1;
        s.input().extend_from_slice(&c_out.split());
        assert_eq!(
            s.poll(&mut s_out),
            Err(SessionError::Curve(CurveError::BadBox))
        );
        assert_eq!(s.poll(&mut s_out), Err(SessionError::Closed));
    }

    #[test]
    fn peer_socket_type_checked() {
        let server = Keypair::generate();
        let mut s = ServerSession::new(server.clone(), 1 << 20, os_rng());
        let mut c = ClientSession::new(Keypair::generate(), server.public, 1 << 20, os_rng());
        c.socket_type = "REQ";
        let mut s_out = BytesMut::from(&s.greeting()[..]);
        let mut c_out = BytesMut::from(&c.greeting()[..]);
        for _ in 0..4 {
            c.input().extend_from_slice(&s_out.split());
            s.input().extend_from_slice(&c_out.split());
            if let Err(e) = s.poll(&mut s_out) {
                assert_eq!(e, SessionError::SocketType("REQ".into()));
                return;
            }
            c.poll(&mut c_out).unwrap();
        }
        panic!("REQ client accepted");
    }
}

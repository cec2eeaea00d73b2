//! One CURVE connection as a byte-level state machine: greeting, handshake frames, then
//! sealed traffic. The caller reads socket bytes into `input()`, calls `poll(out)` until it
//! returns `Ok(None)`, and writes whatever landed in `out`. No sockets, no clocks: timers
//! (handshake deadline, heartbeats) belong to the driver, which calls `send_ping` and closes
//! on its own deadlines.

use bytes::{Buf, Bytes, BytesMut};

use super::handshake::{ClientHandshake, ServerHandshake};
use super::message::{MessageCodec, INNER_COMMAND, INNER_MORE};
use super::{CurveError, Rng};
use crate::keys::{Keypair, PublicKey};
use crate::zmtp::{command, frame, greeting, Command, FrameDecoder, Greeting, Metadata, ZmtpError};

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
struct Link {
    input: BytesMut,
    decoder: FrameDecoder,
    peer: Option<Greeting>,
}

impl Link {
    fn new(max_frame: usize) -> Self {
        Link {
            input: BytesMut::with_capacity(8192),
            decoder: FrameDecoder::new(max_frame),
            peer: None,
        }
    }

    /// True once the peer's greeting is complete and acceptable.
    fn greeting_done(&mut self) -> Result<bool, SessionError> {
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

    fn next_frame(&mut self) -> Result<Option<frame::Frame>, SessionError> {
        if !self.greeting_done()? {
            return Ok(None);
        }
        Ok(self.decoder.decode(&mut self.input)?)
    }

    fn minor(&self) -> u8 {
        self.peer.as_ref().map(|g| g.minor).unwrap_or(0)
    }
}

fn expect_command(f: &frame::Frame, expected: &'static str) -> Result<(), SessionError> {
    if f.command {
        Ok(())
    } else {
        Err(SessionError::Protocol(format!(
            "data frame while expecting {expected}"
        )))
    }
}

fn put_command(out: &mut BytesMut, name: &[u8], data: &[u8]) {
    let body = command::encode(name, data);
    frame::put_frame(out, false, true, &body);
}

fn check_socket_type(md: &Metadata, allowed: &[&str]) -> Result<(), SessionError> {
    let t = md.get("Socket-Type").unwrap_or(b"");
    if allowed.iter().any(|a| a.as_bytes() == t) {
        Ok(())
    } else {
        Err(SessionError::SocketType(
            String::from_utf8_lossy(t).into_owned(),
        ))
    }
}

/// Events the publisher side reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// INITIATE and vouch verified: decide, then call `accept` or `deny`.
    Authenticate {
        /// The client's long-term key (vouch verified).
        client_key: PublicKey,
        /// The client's ZMTP metadata.
        metadata: Metadata,
        /// Which of our long-term keys the client addressed.
        server_key: PublicKey,
    },
    /// The peer subscribed to this topic prefix.
    Subscribe(Bytes),
    /// The peer cancelled this topic prefix.
    Cancel(Bytes),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Greeting,
    ExpectHello,
    ExpectInitiate,
    Deciding,
    Ready,
    Closed,
}

/// The server (publisher) side of one connection.
pub struct ServerSession {
    link: Link,
    hs: ServerHandshake,
    codec: Option<MessageCodec>,
    phase: Phase,
    socket_type: &'static str,
    /// Skipping the rest of a multipart data message a subscriber sent (PUB ignores them).
    skipping: bool,
    /// TTL the peer announced in its last PING (deciseconds; 0 = none).
    peer_ttl_ds: u16,
}

impl ServerSession {
    /// A server connection answering to `server`, refusing frames over `max_frame` bytes.
    pub fn new(server: Keypair, max_frame: usize, rng: Rng) -> Self {
        Self::with_keys(vec![server], max_frame, rng)
    }

    /// A server answering to several long-term keys (current first, then one being retired).
    pub fn with_keys(keys: Vec<Keypair>, max_frame: usize, rng: Rng) -> Self {
        ServerSession {
            link: Link::new(max_frame),
            hs: ServerHandshake::with_keys(keys, rng),
            codec: None,
            phase: Phase::Greeting,
            socket_type: "PUB",
            skipping: false,
            peer_ttl_ds: 0,
        }
    }

    /// Our whole greeting: write it as soon as the connection is up.
    pub fn greeting(&self) -> [u8; greeting::GREETING_LEN] {
        greeting::encode("CURVE", true)
    }

    /// Where the driver appends bytes read from the socket.
    pub fn input(&mut self) -> &mut BytesMut {
        &mut self.link.input
    }

    /// The TTL from the peer's last PING: ZMTP 3.1 asks us to close if nothing arrives from
    /// it for that long. The driver owns the clock, so it enforces this.
    pub fn peer_ttl(&self) -> Option<std::time::Duration> {
        (self.peer_ttl_ds > 0)
            .then(|| std::time::Duration::from_millis(u64::from(self.peer_ttl_ds) * 100))
    }

    /// The handshake is complete and messages may flow.
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// The peer's ZMTP minor version (0 for 3.0, which has no PING).
    pub fn peer_minor(&self) -> u8 {
        self.link.minor()
    }

    /// Processes buffered input; replies (WELCOME, PONG) are appended to `out`.
    pub fn poll(&mut self, out: &mut BytesMut) -> Result<Option<ServerEvent>, SessionError> {
        loop {
            match self.phase {
                Phase::Closed => return Err(SessionError::Closed),
                Phase::Deciding => return Ok(None),
                Phase::Greeting => {
                    if !self.link.greeting_done()? {
                        return Ok(None);
                    }
                    self.phase = Phase::ExpectHello;
                }
                _ => {}
            }
            let Some(f) = self.link.next_frame()? else {
                return Ok(None);
            };
            match self.step(f, out) {
                Ok(Some(ev)) => return Ok(Some(ev)),
                Ok(None) => {}
                Err(e) => {
                    self.phase = Phase::Closed;
                    return Err(e);
                }
            }
        }
    }

    fn step(
        &mut self,
        f: frame::Frame,
        out: &mut BytesMut,
    ) -> Result<Option<ServerEvent>, SessionError> {
        match self.phase {
            Phase::ExpectHello => {
                expect_command(&f, "HELLO")?;
                match command::parse(&f.body)? {
                    Command::Hello(data) => {
                        let welcome = self.hs.on_hello(data)?;
                        put_command(out, b"WELCOME", &welcome);
                        self.phase = Phase::ExpectInitiate;
                        Ok(None)
                    }
                    other => Err(unexpected(&other, "HELLO")),
                }
            }
            Phase::ExpectInitiate => {
                expect_command(&f, "INITIATE")?;
                match command::parse(&f.body)? {
                    Command::Initiate(data) => {
                        let init = self.hs.on_initiate(data)?;
                        check_socket_type(&init.metadata, &["SUB", "XSUB"])?;
                        self.phase = Phase::Deciding;
                        Ok(Some(ServerEvent::Authenticate {
                            client_key: init.client_key,
                            metadata: init.metadata,
                            server_key: init.server_key,
                        }))
                    }
                    other => Err(unexpected(&other, "INITIATE")),
                }
            }
            Phase::Ready => {
                let codec = self.codec.as_mut().ok_or(SessionError::Closed)?;
                let (flags, payload) = codec.open(f.body)?;
                if flags & INNER_COMMAND != 0 {
                    match command::parse(&payload)? {
                        Command::Subscribe(p) => {
                            Ok(Some(ServerEvent::Subscribe(Bytes::copy_from_slice(p))))
                        }
                        Command::Cancel(p) => {
                            Ok(Some(ServerEvent::Cancel(Bytes::copy_from_slice(p))))
                        }
                        Command::Ping { ttl, context } => {
                            self.peer_ttl_ds = ttl;
                            let pong = command::encode(b"PONG", context);
                            codec.seal_into(out, false, true, &pong);
                            Ok(None)
                        }
                        _ => Ok(None),
                    }
                } else if self.skipping || flags & INNER_MORE != 0 {
                    self.skipping = flags & INNER_MORE != 0;
                    Ok(None)
                } else {
                    // ZMTP 3.0 subscriptions: a one-part message starting 0x01 / 0x00.
                    let payload = payload.freeze();
                    match payload.first() {
                        Some(1) => Ok(Some(ServerEvent::Subscribe(payload.slice(1..)))),
                        Some(0) => Ok(Some(ServerEvent::Cancel(payload.slice(1..)))),
                        _ => Ok(None),
                    }
                }
            }
            Phase::Greeting | Phase::Deciding | Phase::Closed => Err(SessionError::Closed),
        }
    }

    /// The authorizer allowed the client: READY goes into `out`.
    pub fn accept(&mut self, out: &mut BytesMut) -> Result<(), SessionError> {
        if self.phase != Phase::Deciding {
            return Err(SessionError::Protocol(
                "accept outside the decision point".into(),
            ));
        }
        let (ready, codec) = self.hs.ready(&Metadata::socket_type(self.socket_type))?;
        put_command(out, b"READY", &ready);
        self.codec = Some(codec);
        self.phase = Phase::Ready;
        Ok(())
    }

    /// Refuses the client with an ERROR command (libzmq sends the ZAP status, e.g. "400")
    /// and closes. The reason sent is deliberately terse: unauthenticated peers learn nothing.
    pub fn deny(&mut self, status: &str, out: &mut BytesMut) {
        frame::put_frame(out, false, true, &command::error(status));
        self.phase = Phase::Closed;
        self.codec = None;
    }

    /// Seals one message part into `out`.
    pub fn send_part(
        &mut self,
        more: bool,
        payload: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), SessionError> {
        let codec = self.codec.as_mut().ok_or(SessionError::Closed)?;
        codec.seal_into(out, more, false, payload);
        Ok(())
    }

    /// Queues a ZMTP 3.1 PING (heartbeat) with `ttl` deciseconds and `context`.
    pub fn send_ping(
        &mut self,
        ttl_deciseconds: u16,
        out: &mut BytesMut,
    ) -> Result<(), SessionError> {
        let codec = self.codec.as_mut().ok_or(SessionError::Closed)?;
        codec.seal_into(out, false, true, &command::ping(ttl_deciseconds, b""));
        Ok(())
    }
}

fn unexpected(c: &Command<'_>, expected: &'static str) -> SessionError {
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

/// Events the subscriber side reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// Handshake complete; subscriptions may be sent now.
    Ready(Metadata),
    /// A complete (possibly multipart) message.
    Message(Vec<Bytes>),
}

/// The client (subscriber) side of one connection.
pub struct ClientSession {
    link: Link,
    hs: ClientHandshake,
    codec: Option<MessageCodec>,
    phase: Phase,
    socket_type: &'static str,
    parts: Vec<Bytes>,
    parts_size: usize,
    max_message: usize,
    peer_ttl_ds: u16,
}

impl ClientSession {
    /// A client connection with `client`'s key towards `server_key`.
    pub fn new(client: Keypair, server_key: PublicKey, max_frame: usize, rng: Rng) -> Self {
        ClientSession {
            link: Link::new(max_frame),
            hs: ClientHandshake::new(client, server_key, rng),
            codec: None,
            phase: Phase::Greeting,
            socket_type: "SUB",
            parts: Vec::new(),
            parts_size: 0,
            max_message: max_frame.saturating_mul(4),
            peer_ttl_ds: 0,
        }
    }

    /// Speak as a ZMTP 3.0 client (hand-made old peer in tests).
    pub fn greeting_version(&self, minor: u8) -> [u8; greeting::GREETING_LEN] {
        greeting::encode_version(3, minor, "CURVE", false)
    }

    /// The 64-byte greeting to send first.
    pub fn greeting(&self) -> [u8; greeting::GREETING_LEN] {
        greeting::encode("CURVE", false)
    }

    /// The buffer to append bytes read from the socket to; then call `poll`.
    pub fn input(&mut self) -> &mut BytesMut {
        &mut self.link.input
    }

    /// The TTL from the peer's last PING: ZMTP 3.1 asks us to close if nothing arrives from
    /// it for that long. The driver owns the clock, so it enforces this.
    pub fn peer_ttl(&self) -> Option<std::time::Duration> {
        (self.peer_ttl_ds > 0)
            .then(|| std::time::Duration::from_millis(u64::from(self.peer_ttl_ds) * 100))
    }

    /// The handshake is complete and messages may flow.
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// Advances on buffered input: handshake replies go to `out`; returns the next event.
    pub fn poll(&mut self, out: &mut BytesMut) -> Result<Option<ClientEvent>, SessionError> {
        let r = self.poll_inner(out);
        if r.is_err() {
            self.phase = Phase::Closed;
        }
        r
    }

    fn poll_inner(&mut self, out: &mut BytesMut) -> Result<Option<ClientEvent>, SessionError> {
        loop {
            match self.phase {
                Phase::Closed => return Err(SessionError::Closed),
                Phase::Greeting => {
                    if !self.link.greeting_done()? {
                        return Ok(None);
                    }
                    let hello = self.hs.hello()?;
                    put_command(out, b"HELLO", &hello);
                    self.phase = Phase::ExpectHello; // here: expecting WELCOME
                }
                _ => {}
            }
            let Some(f) = self.link.next_frame()? else {
                return Ok(None);
            };
            match self.phase {
                Phase::ExpectHello => {
                    expect_command(&f, "WELCOME")?;
                    match command::parse(&f.body)? {
                        Command::Welcome(data) => {
                            let initiate = self
                                .hs
                                .on_welcome(data, &Metadata::socket_type(self.socket_type))?;
                            put_command(out, b"INITIATE", &initiate);
                            self.phase = Phase::ExpectInitiate; // here: expecting READY
                        }
                        other => return Err(unexpected(&other, "WELCOME")),
                    }
                }
                Phase::ExpectInitiate => {
                    expect_command(&f, "READY")?;
                    match command::parse(&f.body)? {
                        Command::Ready(data) => {
                            let (md, codec) = self.hs.on_ready(data)?;
                            check_socket_type(&md, &["PUB", "XPUB"])?;
                            self.codec = Some(codec);
                            self.phase = Phase::Ready;
                            return Ok(Some(ClientEvent::Ready(md)));
                        }
                        other => return Err(unexpected(&other, "READY")),
                    }
                }
                Phase::Ready => {
                    let codec = self.codec.as_mut().ok_or(SessionError::Closed)?;
                    let (flags, payload) = codec.open(f.body)?;
                    if flags & INNER_COMMAND != 0 {
                        if let Command::Ping { ttl, context } = command::parse(&payload)? {
                            self.peer_ttl_ds = ttl;
                            let pong = command::encode(b"PONG", context);
                            codec.seal_into(out, false, true, &pong);
                        }
                        continue;
                    }
                    self.parts_size = self.parts_size.saturating_add(payload.len());
                    if self.parts_size > self.max_message {
                        return Err(SessionError::MessageTooLarge(self.max_message));
                    }
                    self.parts.push(payload.freeze());
                    if flags & INNER_MORE == 0 {
                        self.parts_size = 0;
                        return Ok(Some(ClientEvent::Message(std::mem::take(&mut self.parts))));
                    }
                }
                _ => return Err(SessionError::Closed),
            }
        }
    }

    /// SUBSCRIBE as a ZMTP 3.1 command, or the 3.0 `0x01 + prefix` message for old peers.
    pub fn subscribe(&mut self, prefix: &[u8], out: &mut BytesMut) -> Result<(), SessionError> {
        self.subscription(true, prefix, out)
    }

    /// Cancels a subscription to `prefix`.
    pub fn cancel(&mut self, prefix: &[u8], out: &mut BytesMut) -> Result<(), SessionError> {
        self.subscription(false, prefix, out)
    }

    #[allow(clippy::arithmetic_side_effects)] // a topic of at most the frame limit plus one byte
    fn subscription(
        &mut self,
        on: bool,
        prefix: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), SessionError> {
        let minor = self.link.minor();
        let codec = self.codec.as_mut().ok_or(SessionError::Closed)?;
        if minor >= 1 {
            let name: &[u8] = if on { b"SUBSCRIBE" } else { b"CANCEL" };
            codec.seal_into(out, false, true, &command::encode(name, prefix));
        } else {
            let mut body = Vec::with_capacity(1 + prefix.len());
            body.push(u8::from(on));
            body.extend_from_slice(prefix);
            codec.seal_into(out, false, false, &body);
        }
        Ok(())
    }

    /// Queues a ZMTP 3.1 PING (heartbeat) with `ttl` deciseconds and `context`.
    pub fn send_ping(
        &mut self,
        ttl_deciseconds: u16,
        out: &mut BytesMut,
    ) -> Result<(), SessionError> {
        let codec = self.codec.as_mut().ok_or(SessionError::Closed)?;
        codec.seal_into(out, false, true, &command::ping(ttl_deciseconds, b""));
        Ok(())
    }

    /// Seals a raw part (tests use this to play hostile or old peers).
    pub fn send_part(
        &mut self,
        more: bool,
        command: bool,
        payload: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), SessionError> {
        let codec = self.codec.as_mut().ok_or(SessionError::Closed)?;
        codec.seal_into(out, more, command, payload);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curve::os_rng;

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

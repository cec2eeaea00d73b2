//! The server (publisher) side of one connection.

use bytes::{Bytes, BytesMut};

use super::{check_socket_type, expect_command, put_command, unexpected, Link, SessionError};
use crate::curve::handshake::{Deciding, ExpectHello, ExpectInitiate};
use crate::curve::message::{MessageCodec, INNER_COMMAND, INNER_MORE};
use crate::curve::Rng;
use crate::keys::{Keypair, PublicKey};
use crate::zmtp::{command, frame, greeting, Command, Metadata};

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
    /// A whole (multipart) message from a DEALER or REQ peer (ROUTER mode only).
    Message(Vec<Bytes>),
}

/// Most parts of one request (ROUTER mode): requests are a handful of frames.
const MAX_PARTS: usize = 64;

/// Where a server connection stands; each handshake state is the type that accepts the next
/// command, so a command out of order has nowhere to go.
enum Phase {
    /// Waiting for the peer's greeting.
    Greeting(ExpectHello),
    Hello(ExpectHello),
    Initiate(ExpectInitiate),
    /// The caller decides (`accept` / `deny`); input waits.
    Deciding(Deciding),
    Traffic(MessageCodec),
    Closed,
}

/// The server (publisher) side of one connection.
pub struct ServerSession {
    link: Link,
    phase: Phase,
    socket_type: &'static str,
    /// ROUTER mode: data messages are delivered (PUB ignores them).
    router: bool,
    parts: Vec<Bytes>,
    parts_size: usize,
    max_message: usize,
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
            phase: Phase::Greeting(ExpectHello::with_keys(keys, rng)),
            socket_type: "PUB",
            router: false,
            parts: Vec::new(),
            parts_size: 0,
            max_message: max_frame,
            skipping: false,
            peer_ttl_ds: 0,
        }
    }

    /// A ROUTER endpoint for request/reply peers (DEALER, REQ): their messages come out as
    /// [`ServerEvent::Message`], at most `max_frame` bytes in all.
    pub fn router(keys: Vec<Keypair>, max_frame: usize, rng: Rng) -> Self {
        let mut s = Self::with_keys(keys, max_frame, rng);
        s.socket_type = "ROUTER";
        s.router = true;
        s
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
        matches!(self.phase, Phase::Traffic(_))
    }

    /// The peer's ZMTP minor version (0 for 3.0, which has no PING).
    pub fn peer_minor(&self) -> u8 {
        self.link.minor()
    }

    /// Processes buffered input; replies (WELCOME, PONG) are appended to `out`. An error
    /// closes the connection.
    pub fn poll(&mut self, out: &mut BytesMut) -> Result<Option<ServerEvent>, SessionError> {
        loop {
            match &self.phase {
                Phase::Closed => return Err(SessionError::Closed),
                Phase::Deciding(_) => return Ok(None),
                Phase::Greeting(_) => {
                    if !self.link.greeting_done()? {
                        return Ok(None);
                    }
                    if let Phase::Greeting(hs) = std::mem::replace(&mut self.phase, Phase::Closed) {
                        self.phase = Phase::Hello(hs);
                    }
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

    /// One frame in the current phase; the phase stays `Closed` unless the step succeeds.
    fn step(
        &mut self,
        f: frame::Frame,
        out: &mut BytesMut,
    ) -> Result<Option<ServerEvent>, SessionError> {
        match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Hello(hs) => {
                expect_command(&f, "HELLO")?;
                match command::parse(&f.body)? {
                    Command::Hello(data) => {
                        let (welcome, next) = hs.on_hello(data)?;
                        put_command(out, b"WELCOME", &welcome);
                        self.phase = Phase::Initiate(next);
                        Ok(None)
                    }
                    other => Err(unexpected(&other, "HELLO")),
                }
            }
            Phase::Initiate(hs) => {
                expect_command(&f, "INITIATE")?;
                match command::parse(&f.body)? {
                    Command::Initiate(data) => {
                        let (init, deciding) = hs.on_initiate(data)?;
                        let peers: &[&str] = if self.router {
                            &["DEALER", "REQ", "ROUTER"]
                        } else {
                            &["SUB", "XSUB"]
                        };
                        check_socket_type(&init.metadata, peers)?;
                        self.phase = Phase::Deciding(deciding);
                        Ok(Some(ServerEvent::Authenticate {
                            client_key: init.client_key,
                            metadata: init.metadata,
                            server_key: init.server_key,
                        }))
                    }
                    other => Err(unexpected(&other, "INITIATE")),
                }
            }
            Phase::Traffic(mut codec) => {
                let r = self.traffic(&mut codec, f, out);
                self.phase = Phase::Traffic(codec);
                r
            }
            Phase::Greeting(_) | Phase::Deciding(_) | Phase::Closed => Err(SessionError::Closed),
        }
    }

    fn traffic(
        &mut self,
        codec: &mut MessageCodec,
        f: frame::Frame,
        out: &mut BytesMut,
    ) -> Result<Option<ServerEvent>, SessionError> {
        let (flags, payload) = codec.open(f.body)?;
        if flags & INNER_COMMAND != 0 {
            match command::parse(&payload)? {
                Command::Subscribe(p) => {
                    Ok(Some(ServerEvent::Subscribe(Bytes::copy_from_slice(p))))
                }
                Command::Cancel(p) => Ok(Some(ServerEvent::Cancel(Bytes::copy_from_slice(p)))),
                Command::Ping { ttl, context } => {
                    self.peer_ttl_ds = ttl;
                    super::seal_pong(codec, context, out);
                    Ok(None)
                }
                _ => Ok(None),
            }
        } else if self.router {
            self.parts_size = self.parts_size.saturating_add(payload.len());
            if self.parts_size > self.max_message || self.parts.len() >= MAX_PARTS {
                return Err(SessionError::MessageTooLarge(self.max_message));
            }
            self.parts.push(payload.freeze());
            if flags & INNER_MORE != 0 {
                return Ok(None);
            }
            self.parts_size = 0;
            Ok(Some(ServerEvent::Message(std::mem::take(&mut self.parts))))
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

    /// The authorizer allowed the client: READY goes into `out`.
    pub fn accept(&mut self, out: &mut BytesMut) -> Result<(), SessionError> {
        match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Deciding(d) => {
                let (ready, codec) = d.ready(&Metadata::socket_type(self.socket_type));
                put_command(out, b"READY", &ready);
                self.phase = Phase::Traffic(codec);
                Ok(())
            }
            other => {
                self.phase = other;
                Err(SessionError::Protocol(
                    "accept outside the decision point".into(),
                ))
            }
        }
    }

    /// Refuses the client with an ERROR command (libzmq sends the ZAP status, e.g. "400")
    /// and closes. The reason sent is deliberately terse: unauthenticated peers learn nothing.
    pub fn deny(&mut self, status: &str, out: &mut BytesMut) {
        frame::put_frame(out, false, true, &command::error(status));
        self.phase = Phase::Closed;
    }

    fn codec(&mut self) -> Result<&mut MessageCodec, SessionError> {
        match &mut self.phase {
            Phase::Traffic(codec) => Ok(codec),
            _ => Err(SessionError::Closed),
        }
    }

    /// Seals one message part into `out`.
    pub fn send_part(
        &mut self,
        more: bool,
        payload: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), SessionError> {
        self.codec()?.seal_into(out, more, false, payload);
        Ok(())
    }

    /// Queues a ZMTP 3.1 PING (heartbeat) with `ttl` deciseconds and `context`.
    pub fn send_ping(
        &mut self,
        ttl_deciseconds: u16,
        out: &mut BytesMut,
    ) -> Result<(), SessionError> {
        super::seal_ping(self.codec()?, ttl_deciseconds, out);
        Ok(())
    }
}

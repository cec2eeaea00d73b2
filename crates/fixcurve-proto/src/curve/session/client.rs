//! The client (subscriber) side of one connection.

use bytes::{Bytes, BytesMut};

use super::{check_socket_type, expect_command, put_command, unexpected, Link, SessionError};
use crate::curve::handshake::{ClientStart, ExpectReady, ExpectWelcome};
use crate::curve::message::{MessageCodec, INNER_COMMAND, INNER_MORE};
use crate::curve::Rng;
use crate::keys::{Keypair, PublicKey};
use crate::zmtp::{command, greeting, Command, Metadata};

/// Events the subscriber side reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// Handshake complete; subscriptions may be sent now.
    Ready(Metadata),
    /// A complete (possibly multipart) message.
    Message(Vec<Bytes>),
}

/// Where a client connection stands; each handshake state is the type that accepts the next
/// command.
enum Phase {
    /// Waiting for the peer's greeting before sending HELLO.
    Greeting(ClientStart),
    Welcome(ExpectWelcome),
    Ready(ExpectReady),
    Traffic(MessageCodec),
    Closed,
}

/// The client (subscriber) side of one connection.
pub struct ClientSession {
    link: Link,
    phase: Phase,
    pub(super) socket_type: &'static str,
    /// Socket types the server may announce.
    peer_types: &'static [&'static str],
    rx: Reassembly,
}

/// Message parts being put together, and what the peer's PINGs said.
struct Reassembly {
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
            phase: Phase::Greeting(ClientStart::new(client, server_key, rng)),
            socket_type: "SUB",
            peer_types: &["PUB", "XPUB"],
            rx: Reassembly {
                parts: Vec::new(),
                parts_size: 0,
                max_message: max_frame.saturating_mul(4),
                peer_ttl_ds: 0,
            },
        }
    }

    /// A DEALER towards a ROUTER (the replay endpoint): requests go out with `send_part`,
    /// replies come back as [`ClientEvent::Message`].
    pub fn dealer(client: Keypair, server_key: PublicKey, max_frame: usize, rng: Rng) -> Self {
        let mut s = Self::new(client, server_key, max_frame, rng);
        s.socket_type = "DEALER";
        s.peer_types = &["ROUTER"];
        s
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
        (self.rx.peer_ttl_ds > 0)
            .then(|| std::time::Duration::from_millis(u64::from(self.rx.peer_ttl_ds) * 100))
    }

    /// The handshake is complete and messages may flow.
    pub fn is_ready(&self) -> bool {
        matches!(self.phase, Phase::Traffic(_))
    }

    /// Advances on buffered input: handshake replies go to `out`; returns the next event.
    /// An error closes the connection.
    pub fn poll(&mut self, out: &mut BytesMut) -> Result<Option<ClientEvent>, SessionError> {
        let r = self.poll_inner(out);
        if r.is_err() {
            self.phase = Phase::Closed;
        }
        r
    }

    fn poll_inner(&mut self, out: &mut BytesMut) -> Result<Option<ClientEvent>, SessionError> {
        loop {
            match &self.phase {
                Phase::Closed => return Err(SessionError::Closed),
                Phase::Greeting(_) => {
                    if !self.link.greeting_done()? {
                        return Ok(None);
                    }
                    if let Phase::Greeting(hs) = std::mem::replace(&mut self.phase, Phase::Closed) {
                        let (hello, next) = hs.hello()?;
                        put_command(out, b"HELLO", &hello);
                        self.phase = Phase::Welcome(next);
                    }
                }
                _ => {}
            }
            let Some(f) = self.link.next_frame()? else {
                return Ok(None);
            };
            // Traffic, the hot path, works on the codec in place.
            if let Phase::Traffic(codec) = &mut self.phase {
                if let Some(ev) = self.rx.frame(codec, f, out)? {
                    return Ok(Some(ev));
                }
                continue;
            }
            match std::mem::replace(&mut self.phase, Phase::Closed) {
                Phase::Welcome(hs) => {
                    expect_command(&f, "WELCOME")?;
                    match command::parse(&f.body)? {
                        Command::Welcome(data) => {
                            let md = Metadata::socket_type(self.socket_type);
                            let (initiate, next) = hs.on_welcome(data, &md)?;
                            put_command(out, b"INITIATE", &initiate);
                            self.phase = Phase::Ready(next);
                        }
                        other => return Err(unexpected(&other, "WELCOME")),
                    }
                }
                Phase::Ready(hs) => {
                    expect_command(&f, "READY")?;
                    match command::parse(&f.body)? {
                        Command::Ready(data) => {
                            let (md, codec) = hs.on_ready(data)?;
                            check_socket_type(&md, self.peer_types)?;
                            self.phase = Phase::Traffic(codec);
                            return Ok(Some(ClientEvent::Ready(md)));
                        }
                        other => return Err(unexpected(&other, "READY")),
                    }
                }
                Phase::Traffic(_) | Phase::Greeting(_) | Phase::Closed => {
                    return Err(SessionError::Closed)
                }
            }
        }
    }

    fn codec(&mut self) -> Result<&mut MessageCodec, SessionError> {
        match &mut self.phase {
            Phase::Traffic(codec) => Ok(codec),
            _ => Err(SessionError::Closed),
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
        let codec = self.codec()?;
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
        super::seal_ping(self.codec()?, ttl_deciseconds, out);
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
        self.codec()?.seal_into(out, more, command, payload);
        Ok(())
    }
}

impl Reassembly {
    /// One sealed frame: a PING answered, a part kept, a whole message returned.
    fn frame(
        &mut self,
        codec: &mut MessageCodec,
        f: crate::zmtp::frame::Frame,
        out: &mut BytesMut,
    ) -> Result<Option<ClientEvent>, SessionError> {
        let (flags, payload) = codec.open(f.body)?;
        if flags & INNER_COMMAND != 0 {
            if let Command::Ping { ttl, context } = command::parse(&payload)? {
                self.peer_ttl_ds = ttl;
                super::seal_pong(codec, context, out);
            }
            return Ok(None);
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
        Ok(None)
    }
}

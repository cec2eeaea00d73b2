//! A client of the replay endpoint: a CURVE DEALER that sends one request at a time and
//! reads its reply. Used by the Rust subscriber to fill gaps and by `fixcurve sub --since`.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::curve::{os_rng, ClientEvent, ClientSession};
use crate::keys::{Keypair, PublicKey};
use crate::pubsub::endpoint::Endpoint;

/// Replies are a few MB at most (`protocol::MAX_REPLY_BYTES` plus topics).
const MAX_FRAME: usize = 8 << 20;
/// Connect + handshake, and each reply.
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("replay endpoint {endpoint}: {source}")]
    Io {
        endpoint: String,
        #[source]
        source: std::io::Error,
    },
    #[error("replay endpoint {0}: no answer in time")]
    Timeout(String),
    #[error("replay endpoint {endpoint}: {reason}")]
    Protocol { endpoint: String, reason: String },
    /// The endpoint refused the request (`code` as in the protocol: `forbidden`,
    /// `unknown-topic`, `range`, `malformed`, `unavailable`).
    #[error("replay endpoint {endpoint} refused: {code}: {text}")]
    Refused {
        endpoint: String,
        code: String,
        text: String,
    },
}

/// One reply to REPLAY.
#[derive(Debug, Default)]
pub struct Batch {
    /// `(topic, envelope bytes)` in journal order.
    pub records: Vec<(String, Bytes)>,
    /// The `from` of the next request.
    pub next: u64,
    /// Nothing more journaled yet.
    pub end: bool,
    /// The oldest record number the journal still holds.
    pub oldest: u64,
}

pub struct ReplayClient {
    endpoint: String,
    stream: TcpStream,
    session: ClientSession,
    out: BytesMut,
}

impl ReplayClient {
    /// Connects and completes the CURVE handshake.
    pub async fn connect(
        endpoint: &str,
        server_key: PublicKey,
        client: Keypair,
    ) -> Result<ReplayClient, ReplayError> {
        let ep = endpoint.to_owned();
        let proto = |reason: String| ReplayError::Protocol {
            endpoint: ep.clone(),
            reason,
        };
        let hp = Endpoint::parse(endpoint)
            .ok()
            .and_then(|e| e.host_port())
            .ok_or_else(|| proto("not a tcp:// endpoint".into()))?;
        let stream = tokio::time::timeout(TIMEOUT, TcpStream::connect(&hp))
            .await
            .map_err(|_| ReplayError::Timeout(ep.clone()))?
            .map_err(|source| ReplayError::Io {
                endpoint: ep.clone(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let session = ClientSession::dealer(client, server_key, MAX_FRAME, os_rng());
        let out = BytesMut::from(&session.greeting()[..]);
        let mut c = ReplayClient {
            endpoint: ep.clone(),
            stream,
            session,
            out,
        };
        match tokio::time::timeout(TIMEOUT, c.next_event()).await {
            Ok(Ok(ClientEvent::Ready(_))) => Ok(c),
            Ok(Ok(_)) => Err(ReplayError::Protocol {
                endpoint: ep,
                reason: "message before the handshake completed".into(),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ReplayError::Timeout(c.endpoint.clone())),
        }
    }

    async fn next_event(&mut self) -> Result<ClientEvent, ReplayError> {
        loop {
            if !self.out.is_empty() {
                self.stream
                    .write_all(&self.out)
                    .await
                    .map_err(|source| self.io(source))?;
                self.out.clear();
            }
            match self.session.poll(&mut self.out) {
                Ok(Some(ev)) => return Ok(ev),
                Ok(None) => {}
                Err(e) => {
                    return Err(ReplayError::Protocol {
                        endpoint: self.endpoint.clone(),
                        reason: e.to_string(),
                    })
                }
            }
            if !self.out.is_empty() {
                continue;
            }
            self.session.input().reserve(64 * 1024);
            let n = self
                .stream
                .read_buf(self.session.input())
                .await
                .map_err(|source| self.io(source))?;
            if n == 0 {
                return Err(self.io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }

    fn io(&self, source: std::io::Error) -> ReplayError {
        ReplayError::Io {
            endpoint: self.endpoint.clone(),
            source,
        }
    }

    /// Sends one request and returns the reply's frames (an `ERROR` reply is an error).
    pub async fn request(&mut self, frames: &[&[u8]]) -> Result<Vec<Bytes>, ReplayError> {
        let last = frames.len().saturating_sub(1);
        for (i, f) in frames.iter().enumerate() {
            self.session
                .send_part(i < last, false, f, &mut self.out)
                .map_err(|e| ReplayError::Protocol {
                    endpoint: self.endpoint.clone(),
                    reason: e.to_string(),
                })?;
        }
        let reply = loop {
            match tokio::time::timeout(TIMEOUT, self.next_event()).await {
                Ok(Ok(ClientEvent::Message(parts))) => break parts,
                Ok(Ok(ClientEvent::Ready(_))) => continue,
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(ReplayError::Timeout(self.endpoint.clone())),
            }
        };
        if reply.first().map(|f| &f[..]) == Some(b"ERROR") {
            let text = |i: usize| {
                reply
                    .get(i)
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .unwrap_or_default()
            };
            return Err(ReplayError::Refused {
                endpoint: self.endpoint.clone(),
                code: text(1),
                text: text(2),
            });
        }
        Ok(reply)
    }

    /// One REPLAY batch: topics under `prefix`, each from seq `since`, scanning from record `from`.
    pub async fn replay(
        &mut self,
        prefix: &str,
        since: u64,
        from: u64,
    ) -> Result<Batch, ReplayError> {
        let (s, f) = (since.to_string(), from.to_string());
        let reply = self
            .request(&[b"REPLAY", prefix.as_bytes(), s.as_bytes(), f.as_bytes()])
            .await?;
        self.parse_ok(reply)
    }

    /// The snapshots of the market-data topics under `prefix`: `(topic, envelope)`.
    pub async fn snapshot(&mut self, prefix: &str) -> Result<Vec<(String, Bytes)>, ReplayError> {
        let reply = self.request(&[b"SNAPSHOT", prefix.as_bytes()]).await?;
        Ok(self.parse_ok(reply)?.records)
    }

    fn parse_ok(&self, reply: Vec<Bytes>) -> Result<Batch, ReplayError> {
        let bad = |reason: &str| ReplayError::Protocol {
            endpoint: self.endpoint.clone(),
            reason: reason.into(),
        };
        if reply.first().map(|f| &f[..]) != Some(b"OK")
            || reply.len() < 4
            || !reply.len().is_multiple_of(2)
        {
            return Err(bad("malformed reply"));
        }
        let num = |i: usize| {
            reply
                .get(i)
                .and_then(|f| std::str::from_utf8(f).ok())
                .and_then(|t| t.parse::<u64>().ok())
        };
        let end = reply.get(1).map(|f| &f[..]) == Some(b"END");
        let (Some(next), Some(oldest)) = (num(2), num(3)) else {
            return Err(bad("malformed reply header"));
        };
        let mut records = Vec::with_capacity((reply.len() - 4) / 2);
        let mut it = reply.into_iter().skip(4);
        while let (Some(t), Some(p)) = (it.next(), it.next()) {
            records.push((String::from_utf8_lossy(&t).into_owned(), p));
        }
        Ok(Batch {
            records,
            next,
            end,
            oldest,
        })
    }
}

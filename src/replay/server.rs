//! The replay endpoint: a CURVE ROUTER on `[publish] replay_bind` answering REPLAY and
//! SNAPSHOT requests (`protocol`) from stock DEALER/REQ clients. Same keyring as the PUB
//! side: the handshake is authorized by the same authorizer, every request is authorized
//! again (a key revoked since connecting gets nothing more), and only topics its ACL grants
//! are served.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::protocol::{self, Refusal, Request};
use super::snapshots::Snapshots;
use crate::audit::{AuditLog, AuditRecord, Side};
use crate::auth::{Authorizer, Decision, PeerAddr, TopicAcl};
use crate::curve::{os_rng, ServerEvent, ServerSession};
use crate::journal::JournalReader;
use crate::keys::{Keypair, PublicKey};
use crate::metrics::Registry;
use crate::pubsub::endpoint::Endpoint;

/// Largest request accepted (a few short frames).
const MAX_REQUEST: usize = 64 * 1024;
/// From TCP accept to a completed handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// Connections served at once.
const MAX_CONNECTIONS: usize = 64;
/// A connection with no request for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// What the endpoint serves from.
#[derive(Clone)]
pub struct ReplaySources {
    /// `None`: no journal (REPLAY is refused as `unavailable`).
    pub journal: Option<JournalReader>,
    pub snapshots: Arc<Snapshots>,
}

struct Inner {
    server: Keypair,
    authorizer: Arc<dyn Authorizer>,
    sources: ReplaySources,
    registry: Arc<Registry>,
    audit: AuditLog,
    permits: Arc<Semaphore>,
}

/// A running replay endpoint.
pub struct ReplayServer {
    local: Vec<String>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ReplayServer {
    /// Binds every endpoint (`tcp://host:port`; port 0 picks one).
    pub async fn bind(
        endpoints: &[String],
        server: Keypair,
        authorizer: Arc<dyn Authorizer>,
        sources: ReplaySources,
        registry: Arc<Registry>,
        audit: AuditLog,
    ) -> anyhow::Result<ReplayServer> {
        let inner = Arc::new(Inner {
            server,
            authorizer,
            sources,
            registry,
            audit,
            permits: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        });
        let mut local = Vec::new();
        let mut tasks = Vec::new();
        for ep in endpoints {
            let parsed =
                Endpoint::parse(ep).map_err(|e| anyhow::anyhow!("replay_bind {ep}: {e}"))?;
            let Some(hp) = parsed.host_port() else {
                anyhow::bail!("replay_bind {ep}: only tcp:// endpoints are served");
            };
            let l = crate::admission::listen_tcp(&hp)
                .await
                .map_err(|e| anyhow::anyhow!("replay_bind {ep}: {e}"))?;
            let addr = l.local_addr()?;
            local.push(format!("tcp://{addr}"));
            tasks.push(tokio::spawn(accept_loop(inner.clone(), l)));
        }
        Ok(ReplayServer { local, tasks })
    }

    /// The bound endpoints, with real ports.
    pub fn local_endpoints(&self) -> Vec<String> {
        self.local.clone()
    }
}

impl Drop for ReplayServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn accept_loop(inner: Arc<Inner>, l: TcpListener) {
    loop {
        let Ok((stream, addr)) = l.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok(permit) = inner.permits.clone().try_acquire_owned() else {
            // Full: close at once rather than queue unauthenticated peers.
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let inner = inner.clone();
        tokio::spawn(async move {
            let peer = PeerAddr::Tcp(addr);
            let (mut rd, mut wr) = stream.into_split();
            let reason = serve(&inner, &peer, &mut rd, &mut wr).await;
            tracing::debug!(%peer, %reason, "replay connection closed");
            drop(permit);
        });
    }
}

fn server_keys(inner: &Inner) -> Vec<Keypair> {
    inner
        .authorizer
        .server_keys()
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| vec![inner.server.clone()])
}

async fn serve<R, W>(inner: &Inner, peer: &PeerAddr, rd: &mut R, wr: &mut W) -> String
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut session = ServerSession::router(server_keys(inner), MAX_REQUEST, os_rng());
    let mut out = BytesMut::from(&session.greeting()[..]);
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        loop {
            if flush(wr, &mut out).await.is_err() {
                return Err("write failed".to_string());
            }
            session.input().reserve(4096);
            match rd.read_buf(session.input()).await {
                Ok(0) | Err(_) => return Err("closed during the handshake".to_string()),
                Ok(_) => {}
            }
            loop {
                match session.poll(&mut out) {
                    Ok(None) => break,
                    Ok(Some(ServerEvent::Authenticate { client_key, .. })) => {
                        return match inner.authorizer.authorize(&client_key, peer) {
                            Decision::Allow(_) => {
                                session.accept(&mut out).map_err(|e| e.to_string())?;
                                flush(wr, &mut out).await.map_err(|e| e.to_string())?;
                                Ok(client_key)
                            }
                            Decision::Deny(reason) => {
                                session.deny("400", &mut out);
                                let _ = flush(wr, &mut out).await;
                                inner.audit.record(
                                    AuditRecord::new(Side::Curve, "replay_denied", false)
                                        .peer(peer)
                                        .key(client_key)
                                        .reason(&reason),
                                );
                                Err(format!("denied: {reason}"))
                            }
                        };
                    }
                    Ok(Some(_)) => {}
                    Err(e) => return Err(format!("handshake: {e}")),
                }
            }
        }
    })
    .await;
    let key = match handshake {
        Ok(Ok(k)) => k,
        Ok(Err(reason)) => return reason,
        Err(_) => return "handshake timeout".into(),
    };
    loop {
        let read = tokio::time::timeout(IDLE_TIMEOUT, async {
            session.input().reserve(4096);
            rd.read_buf(session.input()).await
        })
        .await;
        match read {
            Err(_) => return "idle".into(),
            Ok(Ok(0)) => return "closed by peer".into(),
            Ok(Err(e)) => return format!("read: {e}"),
            Ok(Ok(_)) => {}
        }
        loop {
            match session.poll(&mut out) {
                Ok(None) => break,
                Ok(Some(ServerEvent::Message(parts))) => {
                    let reply = answer(inner, peer, &key, &parts).await;
                    let last = reply.len().saturating_sub(1);
                    for (i, part) in reply.iter().enumerate() {
                        if session.send_part(i < last, part, &mut out).is_err() {
                            return "closed".into();
                        }
                        if out.len() > 256 * 1024 && flush(wr, &mut out).await.is_err() {
                            return "write failed".into();
                        }
                    }
                }
                Ok(Some(_)) => {}
                Err(e) => return format!("protocol: {e}"),
            }
        }
        if flush(wr, &mut out).await.is_err() {
            return "write failed".into();
        }
    }
}

async fn flush<W: AsyncWrite + Unpin>(wr: &mut W, out: &mut BytesMut) -> std::io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    wr.write_all(out).await?;
    out.clear();
    wr.flush().await
}

/// One request's reply frames (with the REQ delimiter echoed first when there was one).
async fn answer(inner: &Inner, peer: &PeerAddr, key: &PublicKey, parts: &[Bytes]) -> Vec<Bytes> {
    let m = &inner.registry.journal;
    let (mut reply, req) = protocol::parse(parts);
    let result = match req {
        Err(r) => Err(r),
        Ok(req) => match inner.authorizer.authorize(key, peer) {
            Decision::Deny(reason) => {
                inner.audit.record(
                    AuditRecord::new(Side::Curve, "replay_denied", false)
                        .peer(peer)
                        .key(*key)
                        .reason(&reason),
                );
                Err(Refusal::new("forbidden", "key not authorized"))
            }
            Decision::Allow(grant) => serve_request(inner, req, grant.topics).await,
        },
    };
    match result {
        Ok(frames) => reply.extend(frames),
        Err(r) => {
            m.replay_refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            reply.extend(r.frames());
        }
    }
    reply
}

async fn serve_request(inner: &Inner, req: Request, acl: TopicAcl) -> Result<Vec<Bytes>, Refusal> {
    use std::sync::atomic::Ordering::Relaxed;
    let m = &inner.registry.journal;
    match req {
        Request::Snapshot { prefix } => {
            if !acl.may_overlap(&prefix) {
                return Err(Refusal::new(
                    "forbidden",
                    "no topic under this prefix is granted to this key",
                ));
            }
            m.snapshot_requests.fetch_add(1, Relaxed);
            let snaps = inner
                .sources
                .snapshots
                .matching(&prefix, &acl, protocol::MAX_BATCH);
            let mut frames = protocol::ok_header(true, 0, 0);
            for (t, env) in snaps {
                frames.push(Bytes::from(t.into_bytes()));
                frames.push(env);
            }
            Ok(frames)
        }
        Request::Replay {
            prefix,
            since,
            from,
            max,
        } => {
            let Some(reader) = inner.sources.journal.clone() else {
                return Err(Refusal::new(
                    "unavailable",
                    "the journal is off on this bridge",
                ));
            };
            if !acl.may_overlap(&prefix) {
                return Err(Refusal::new(
                    "forbidden",
                    "no topic under this prefix is granted to this key",
                ));
            }
            if !reader.knows_prefix(&prefix) {
                return Err(Refusal::new(
                    "unknown-topic",
                    "no journaled topic starts with this prefix",
                ));
            }
            m.replay_requests.fetch_add(1, Relaxed);
            let batch = tokio::task::spawn_blocking(move || {
                let keep = |r: &crate::journal::Record| {
                    r.seq >= since
                        && r.topic.as_bytes().starts_with(&prefix)
                        && acl.allows(r.topic.as_bytes())
                };
                reader.read_topics(
                    from,
                    Some((&prefix, since)),
                    &keep,
                    max,
                    protocol::MAX_REPLY_BYTES,
                )
            })
            .await
            .map_err(|e| Refusal::new("unavailable", format!("journal read failed: {e}")))?;
            m.replay_records
                .fetch_add(batch.records.len() as u64, Relaxed);
            let mut frames = protocol::ok_header(batch.end, batch.next, batch.oldest);
            for r in batch.records {
                frames.push(Bytes::from(r.topic.into_bytes()));
                frames.push(r.payload);
            }
            Ok(frames)
        }
    }
}

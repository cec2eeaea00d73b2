//! A TLS listener for FIX initiators. Per connection, in order: IP allow-list and caps (before
//! any TLS byte), TLS handshake under a timeout, the first message must be a Logon naming a
//! configured session, the certificate (or, in one-way TLS, Username/Password) must be bound
//! to that session — only then does a session task start. Every refusal is audited with the
//! peer address and tells the peer nothing about the configuration.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, UnixTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::credentials::Credentials;
use super::drive::{self, FixEvent, Outbox};
use super::refuse;
use super::TransportError;
use crate::audit::{AuditLog, AuditRecord, Side};
use crate::fix::codec::{peek_first, FirstMessage, LogonInfo};
use crate::fix::session::SessionConfig;
use crate::tls::ServerTlsSettings;
use crate::tls::{AllowList, ConnectionLimits, PeerIdentity, PreHandshake, ReloadableServer};

/// Largest first message we wait for before deciding it is not a Logon.
const MAX_LOGON_BYTES: usize = 8 * 1024;

/// One session that may log on through an acceptor.
#[derive(Clone, Debug)]
pub struct SessionBinding {
    /// The VENUE part of published topics.
    pub venue: String,
    pub session: SessionConfig,
    /// Certificate CN / DNS SAN, or `sha256:<hex>`, allowed to log on as this session.
    pub tls_identity: Option<String>,
    /// Logon Username/Password check (required on one-way TLS acceptors).
    pub credentials: Option<Credentials>,
}

impl SessionBinding {
    fn matches(&self, logon: &LogonInfo) -> bool {
        self.session.begin_string == logon.begin_string
            && self.session.sender_comp_id == logon.target_comp_id
            && self.session.target_comp_id == logon.sender_comp_id
    }

    fn id(&self) -> String {
        format!(
            "{}->{}",
            self.session.sender_comp_id, self.session.target_comp_id
        )
    }
}

#[derive(Clone, Debug)]
pub struct AcceptorConfig {
    pub name: String,
    pub listen: SocketAddr,
    pub tls: ServerTlsSettings,
    pub allow_ips: AllowList,
    pub limits: ConnectionLimits,
    pub sessions: Vec<SessionBinding>,
    /// From the end of the TLS handshake to a complete Logon.
    pub logon_timeout: Duration,
    /// Whether a session hands the bridge its next batch while the last still awaits the
    /// bridge's acknowledgement (see `drive::Env::read_ahead`): off behind a JetStream sink.
    pub read_ahead: bool,
}

impl AcceptorConfig {
    fn validate(&self) -> Result<(), TransportError> {
        let bad = |reason: String| TransportError::Config {
            name: format!("acceptor:{}", self.name),
            reason,
        };
        self.tls.validate().map_err(|e| bad(e.to_string()))?;
        for s in &self.sessions {
            if !self.tls.mutual() && s.credentials.is_none() {
                return Err(bad(format!(
                    "session {} needs credentials: the acceptor has no client_ca or pins (one-way TLS)",
                    s.id()
                )));
            }
            if self.tls.mutual() && s.tls_identity.is_none() {
                return Err(bad(format!(
                    "session {} needs a tls_identity: every client certificate is bound to the CompIDs it may log on as",
                    s.id()
                )));
            }
        }
        Ok(())
    }
}

/// Shared by the listener's connection tasks.
struct Ctx {
    name: String,
    sessions: Vec<SessionBinding>,
    logon_timeout: Duration,
    read_ahead: bool,
    audit: AuditLog,
    out: mpsc::Sender<FixEvent>,
    state_dir: PathBuf,
    shutdown: watch::Receiver<bool>,
    /// Sessions with a live connection: a second Logon for one of them is refused.
    active: Mutex<HashSet<String>>,
    outbox: Outbox,
    /// The TLS settings, to check live sessions' certificates again after each reload.
    tls: ServerTlsSettings,
    reloads: watch::Receiver<u64>,
}

/// Removes a session from `active` when its connection ends.
struct ActiveGuard<'a>(&'a Ctx, String);
impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut a) = self.0.active.lock() {
            a.remove(&self.1);
        }
    }
}

/// Runs the listener until `shutdown` turns true; then every session sends its Logout and
/// the call returns once they have ended. Prints `listening: acceptor:<name> <addr>` on
/// stderr once bound.
pub async fn run_acceptor(
    cfg: AcceptorConfig,
    state_dir: PathBuf,
    audit: AuditLog,
    out: mpsc::Sender<FixEvent>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), TransportError> {
    run_acceptor_with(cfg, state_dir, audit, out, shutdown, Outbox::default()).await
}

/// As [`run_acceptor`], with an [`Outbox`] through which the caller can send application
/// messages on the acceptor's sessions.
pub async fn run_acceptor_with(
    cfg: AcceptorConfig,
    state_dir: PathBuf,
    audit: AuditLog,
    out: mpsc::Sender<FixEvent>,
    mut shutdown: watch::Receiver<bool>,
    outbox: Outbox,
) -> Result<(), TransportError> {
    cfg.validate()?;
    let label = format!("acceptor:{}", cfg.name);
    let tls = ReloadableServer::server(label.clone(), cfg.tls.clone()).map_err(|source| {
        TransportError::Tls {
            name: label.clone(),
            source,
        }
    })?;
    let listener = crate::admission::listen_tcp(cfg.listen)
        .await
        .map_err(|source| TransportError::Bind {
            name: label.clone(),
            addr: cfg.listen,
            source,
        })?;
    let local = listener.local_addr().unwrap_or(cfg.listen);
    eprintln!("listening: {label} {local}");
    tracing::info!(acceptor = %cfg.name, addr = %local, "FIX acceptor listening");
    let reload_task = tls.spawn_watch(audit.clone(), shutdown.clone());

    let gate = PreHandshake::new(cfg.allow_ips.clone(), cfg.limits.clone());
    let ctx = Arc::new(Ctx {
        name: cfg.name.clone(),
        sessions: cfg.sessions.clone(),
        logon_timeout: cfg.logon_timeout,
        read_ahead: cfg.read_ahead,
        audit: audit.clone(),
        out,
        state_dir,
        shutdown: shutdown.clone(),
        active: Mutex::new(HashSet::new()),
        outbox,
        tls: cfg.tls.clone(),
        reloads: tls.reloads(),
    });
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            r = listener.accept() => {
                let (tcp, peer) = match r {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(acceptor = %cfg.name, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let admitted = match gate.admit(peer.ip()) {
                    Ok(a) => a,
                    Err(refusal) => {
                        audit.record(
                            AuditRecord::new(Side::Tls, "connection_refused", false)
                                .peer(peer)
                                .name(&label)
                                .reason(refusal.reason()),
                        );
                        drop(tcp);
                        continue;
                    }
                };
                let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
                let timeout = gate.limits().handshake_timeout();
                let ctx = ctx.clone();
                conns.spawn(async move {
                    let (_ip_slot, permit) = admitted;
                    handle(ctx, tcp, peer, acceptor, timeout, permit).await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = shutdown.changed() => {
                if *shutdown.borrow() { break; }
            }
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
    reload_task.abort();
    Ok(())
}

async fn handle(
    ctx: Arc<Ctx>,
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    handshake_timeout: Duration,
    permit: crate::tls::HandshakePermit,
) {
    let label = format!("acceptor:{}", ctx.name);
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            ctx.audit.record(
                AuditRecord::new(Side::Tls, "tls_rejected", false)
                    .peer(peer)
                    .name(&label)
                    .reason(e.to_string()),
            );
            tracing::info!(acceptor = %ctx.name, %peer, error = %e, "TLS handshake refused");
            return;
        }
        Err(_) => {
            ctx.audit.record(
                AuditRecord::new(Side::Tls, "tls_rejected", false)
                    .peer(peer)
                    .name(&label)
                    .reason("handshake timeout"),
            );
            return;
        }
    };
    drop(permit);
    let identity = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| PeerIdentity::from_der(c));
    let id_text = identity
        .as_ref()
        .map(|i| i.to_string())
        .unwrap_or_else(|| "(no client certificate)".into());
    let conn = tls.get_ref().1;
    let chain: Vec<CertificateDer<'static>> = conn
        .peer_certificates()
        .map(|c| c.iter().map(|d| d.clone().into_owned()).collect())
        .unwrap_or_default();
    let negotiated = format!(
        "{} {}",
        conn.protocol_version()
            .and_then(|v| v.as_str())
            .unwrap_or("?"),
        conn.negotiated_cipher_suite()
            .and_then(|s| s.suite().as_str())
            .unwrap_or("?")
    );
    ctx.audit.record(
        AuditRecord::new(Side::Tls, "tls_accepted", true)
            .peer(peer)
            .name(&label)
            .identity(&id_text)
            .tls(negotiated),
    );
    let mut tls = tls;

    // Wait for the Logon.
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let logon = tokio::time::timeout(ctx.logon_timeout, async {
        loop {
            match peek_first(&buf) {
                FirstMessage::Logon(l) => return Ok(l),
                FirstMessage::NotLogon(_) => return Err("first message is not a Logon"),
                FirstMessage::Incomplete => {}
            }
            if buf.len() > MAX_LOGON_BYTES {
                return Err("first message is not a Logon");
            }
            match tls.read(&mut chunk).await {
                Ok(0) | Err(_) => return Err("disconnected before Logon"),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .unwrap_or(Err("no Logon within the logon timeout"));
    let logon = match logon {
        Ok(l) => l,
        Err(reason) => {
            ctx.audit.record(
                AuditRecord::new(Side::Fix, "logon_refused", false)
                    .peer(peer)
                    .name(&label)
                    .identity(&id_text)
                    .reason(reason),
            );
            let _ = tls.shutdown().await;
            return;
        }
    };

    let decision = decide(&ctx, &logon, identity.as_ref());
    let binding = match decision {
        Ok(b) => b,
        Err(reason) => {
            ctx.audit.record(
                AuditRecord::new(Side::Fix, "logon_refused", false)
                    .peer(peer)
                    .name(&label)
                    .identity(&id_text)
                    .comp_id(&logon.sender_comp_id)
                    .reason(reason),
            );
            tracing::warn!(acceptor = %ctx.name, %peer, comp_id = %logon.sender_comp_id,
                identity = %id_text, reason, "Logon refused");
            // CompIDs no session has: disconnect without a word (the FIX session test cases
            // say so, and a Logout would have to be sent *as* a CompID we do not own).
            let silent = reason == NO_SESSION;
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                if !silent {
                    let _ = tls.write_all(&refuse::logout_for(&logon)).await;
                    let _ = tls.flush().await;
                }
                let _ = tls.shutdown().await;
            })
            .await;
            return;
        }
    };
    let sid = binding.id();
    let inserted = match ctx.active.lock() {
        Ok(mut active) => active.insert(sid.clone()),
        Err(_) => false,
    };
    {
        if !inserted {
            ctx.audit.record(
                AuditRecord::new(Side::Fix, "logon_refused", false)
                    .peer(peer)
                    .name(&label)
                    .identity(&id_text)
                    .comp_id(&logon.sender_comp_id)
                    .reason("session already connected"),
            );
            // A second Logon for a live session: disconnect it without a word, and leave
            // the live one alone.
            let _ = tls.shutdown().await;
            return;
        }
    }
    let _guard = ActiveGuard(&ctx, sid.clone());
    ctx.audit.record(
        AuditRecord::new(Side::Fix, "logon_accepted", true)
            .peer(peer)
            .name(format!("{}:{}", binding.venue, sid))
            .identity(&id_text)
            .comp_id(&logon.sender_comp_id),
    );
    let (stop_tx, stop_rx) = watch::channel(None);
    let recheck = (!chain.is_empty()).then(|| {
        tokio::spawn(watch_certificate(
            ctx.clone(),
            chain,
            stop_tx,
            peer,
            id_text.clone(),
            format!("{}:{}", binding.venue, sid),
        ))
    });
    drive::serve(
        drive::Conn {
            stream: tls,
            buffered: buf,
            peer: peer.to_string(),
        },
        &binding.session,
        drive::Env {
            venue: &binding.venue,
            state_dir: &ctx.state_dir,
            out: &ctx.out,
            shutdown: ctx.shutdown.clone(),
            outbox: &ctx.outbox,
            audit: &ctx.audit,
            after_logon: Vec::new(),
            stop: Some(stop_rx),
            read_ahead: ctx.read_ahead,
        },
    )
    .await;
    if let Some(task) = recheck {
        task.abort();
    }
}

/// How often a live session's certificate is checked again with no reload (it may expire).
const RECHECK_EVERY: Duration = Duration::from_secs(3600);

/// Checks a live session's client certificate again after every reload of the acceptor's
/// TLS material (and hourly): a CRL that now revokes it, a CA that no longer vouches for
/// it, or its expiry ends the session with a Logout, audited, within the reload's latency.
async fn watch_certificate(
    ctx: Arc<Ctx>,
    chain: Vec<CertificateDer<'static>>,
    stop: watch::Sender<Option<String>>,
    peer: SocketAddr,
    identity: String,
    session: String,
) {
    let mut reloads = ctx.reloads.clone();
    loop {
        tokio::select! {
            r = reloads.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(RECHECK_EVERY) => {}
        }
        let settings = ctx.tls.clone();
        let chain = chain.clone();
        let verdict = tokio::task::spawn_blocking(move || -> Result<Result<(), String>, String> {
            let verifier = crate::tls::server::client_verifier(&settings)
                .map_err(|e| format!("cannot load TLS material: {e}"))?;
            let Some(v) = verifier else { return Ok(Ok(())) };
            let Some((leaf, intermediates)) = chain.split_first() else {
                return Ok(Ok(()));
            };
            Ok(v.verify_client_cert(leaf, intermediates, UnixTime::now())
                .map(|_| ())
                .map_err(|e| e.to_string()))
        })
        .await;
        let reason = match verdict {
            Ok(Ok(Ok(()))) => continue,
            // Material that does not load is the reload's problem (audited there); the
            // established session keeps the decision it was accepted with.
            Ok(Err(load_error)) => {
                tracing::warn!(%peer, error = %load_error, "live certificate not re-checked");
                continue;
            }
            Ok(Ok(Err(reason))) => reason,
            Err(_) => return,
        };
        ctx.audit.record(
            AuditRecord::new(Side::Tls, "certificate_revoked_disconnect", false)
                .peer(peer)
                .name(&session)
                .identity(&identity)
                .reason(format!("certificate no longer accepted: {reason}")),
        );
        tracing::warn!(%peer, %session, %identity, %reason, "live session's certificate no longer accepted; logging out");
        let _ = stop.send(Some("certificate revoked or no longer trusted".into()));
        return;
    }
}

const NO_SESSION: &str = "no session configured for these CompIDs";

/// The session this Logon may log on as, or why not (for the audit line only).
fn decide<'a>(
    ctx: &'a Ctx,
    logon: &LogonInfo,
    identity: Option<&PeerIdentity>,
) -> Result<&'a SessionBinding, &'static str> {
    let binding = ctx
        .sessions
        .iter()
        .find(|b| b.matches(logon))
        .ok_or(NO_SESSION)?;
    if let Some(spec) = &binding.tls_identity {
        match identity {
            Some(id) if id.matches(spec) => {}
            Some(_) => return Err("certificate not bound to these CompIDs"),
            None => return Err("session requires a client certificate"),
        }
    }
    if let Some(c) = &binding.credentials {
        let password = logon.password.as_ref().map(|p| p.expose().as_str());
        if !c.verify(logon.username.as_deref(), password) {
            return Err("bad Username/Password");
        }
    }
    Ok(binding)
}

//! Hot reload of TLS material: on SIGHUP or when a watched file changes, rebuild the rustls
//! config and swap it in for the *next* handshake. Established sessions keep the config they
//! were accepted with (rustls holds its own `Arc`), so nothing is dropped. A broken new file
//! keeps the old material and says why, in the log and the audit trail.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use rustls::{ClientConfig, ServerConfig};

use super::config::{ClientTlsSettings, ServerTlsSettings};
use super::TlsError;
use crate::audit::{AuditLog, AuditRecord, Side};

type Build<T> = Box<dyn Fn() -> Result<Arc<T>, TlsError> + Send + Sync>;

/// A rustls config that can be rebuilt from its files while in use.
pub struct Reloadable<T> {
    name: String,
    files: Vec<PathBuf>,
    build: Build<T>,
    current: RwLock<Arc<T>>,
    /// Ticks after each successful reload, so that established connections can be checked
    /// against the new material (a CRL that now revokes a live session's certificate).
    generation: tokio::sync::watch::Sender<u64>,
}

pub type ReloadableServer = Reloadable<ServerConfig>;
pub type ReloadableClient = Reloadable<ClientConfig>;

impl Reloadable<ServerConfig> {
    /// Loads now (start-up fails on bad material); `name` labels log and audit lines.
    pub fn server(name: impl Into<String>, s: ServerTlsSettings) -> Result<Arc<Self>, TlsError> {
        let files = s.watched_files();
        Self::new(
            name.into(),
            files,
            Box::new(move || super::build_server_config(&s)),
        )
    }
}

impl Reloadable<ClientConfig> {
    pub fn client(name: impl Into<String>, s: ClientTlsSettings) -> Result<Arc<Self>, TlsError> {
        let files = s.watched_files();
        Self::new(
            name.into(),
            files,
            Box::new(move || super::build_client_config(&s)),
        )
    }
}

impl<T: Send + Sync + 'static> Reloadable<T> {
    fn new(name: String, files: Vec<PathBuf>, build: Build<T>) -> Result<Arc<Self>, TlsError> {
        let first = build()?;
        Ok(Arc::new(Reloadable {
            name,
            files,
            build,
            current: RwLock::new(first),
            generation: tokio::sync::watch::channel(0).0,
        }))
    }

    /// Changes after every successful reload.
    pub fn reloads(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// The config the next handshake uses.
    pub fn current(&self) -> Arc<T> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Rebuilds from disk; on error the current config stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = (self.build)()?;
        match self.current.write() {
            Ok(mut g) => *g = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        self.generation.send_modify(|g| *g += 1);
        Ok(())
    }

    fn reload_logged(&self, audit: &AuditLog, why: &str) {
        match self.reload() {
            Ok(()) => {
                tracing::info!(listener = %self.name, trigger = why, "TLS material reloaded");
                audit.record(
                    AuditRecord::new(Side::Tls, "tls_reloaded", true)
                        .name(&self.name)
                        .reason(why),
                );
            }
            Err(e) => {
                tracing::error!(listener = %self.name, trigger = why, error = %e,
                    "TLS reload failed; keeping the previous certificates");
                audit.record(
                    AuditRecord::new(Side::Tls, "tls_reload_failed", false)
                        .name(&self.name)
                        .reason(e.to_string()),
                );
            }
        }
    }

    /// Reloads on SIGHUP and on changes to the watched files (their folders are watched, so
    /// editors' and deploy tools' rename-into-place is seen). Runs until `shutdown` fires.
    pub fn spawn_watch(
        self: &Arc<Self>,
        audit: AuditLog,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
            let files: Vec<PathBuf> = this
                .files
                .iter()
                .map(|f| std::fs::canonicalize(f).unwrap_or_else(|_| f.clone()))
                .collect();
            let names: Vec<std::ffi::OsString> = files
                .iter()
                .filter_map(|f| f.file_name().map(|n| n.to_os_string()))
                .collect();
            let watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
                if let Ok(ev) = ev {
                    if ev.kind.is_access() {
                        return;
                    }
                    let relevant = ev.paths.iter().any(|p| {
                        p.file_name()
                            .map(|n| names.iter().any(|m| m == n))
                            .unwrap_or(false)
                    });
                    if relevant {
                        let _ = tx.try_send(());
                    }
                }
            });
            let _watcher = match watcher {
                Ok(mut w) => {
                    let mut dirs: Vec<PathBuf> = files
                        .iter()
                        .filter_map(|f| f.parent().map(|p| p.to_path_buf()))
                        .collect();
                    dirs.sort();
                    dirs.dedup();
                    for d in dirs {
                        if let Err(e) = w.watch(&d, RecursiveMode::NonRecursive) {
                            tracing::warn!(dir = %d.display(), error = %e,
                                "cannot watch folder; SIGHUP still reloads");
                        }
                    }
                    Some(w)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "file watching unavailable; SIGHUP still reloads");
                    None
                }
            };
            let mut hup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            loop {
                let why = tokio::select! {
                    _ = shutdown.changed() => return,
                    Some(()) = rx.recv() => {
                        // Let a burst of events (write + rename, cert then key) settle.
                        tokio::time::sleep(Duration::from_millis(150)).await;
                        while rx.try_recv().is_ok() {}
                        "file change"
                    }
                    Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => "SIGHUP",
                };
                this.reload_logged(&audit, why);
            }
        })
    }
}

//! The directory keyring (`keys/`): authorized and revoked CURVE keys, watched live.
//!
//! ```text
//! keys/server/server.key, server.key_secret   the publisher's long-term keypair
//! keys/authorized/NAME.key                    public keys allowed to subscribe
//! keys/revoked/NAME.key                       revoked: denied even if also authorized
//! keys/clients/                               client keypairs generated for handing out
//! ```
//!
//! The `Keyring` is the publisher's `Authorizer`. A file watcher (plus a periodic rescan as a
//! safety net for file systems that drop events) rebuilds the snapshot and, when its content
//! changed, swaps it in whole and ticks `changes()`; the publisher then re-asks every live
//! connection, so a revocation closes connections within milliseconds of the file move.

pub mod checks;
pub mod server;
pub mod snapshot;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::audit::{AuditLog, AuditRecord, Side};
use crate::auth::{Authorizer, Decision, PeerAddr};
use crate::keys::cert::CertError;
use crate::keys::{fsutil, Keypair, PublicKey};

pub use server::{
    load_or_create_server_keypair, load_server_keypair, load_server_keys, ServerKeys,
};
pub use snapshot::{Entry, Snapshot, Status};

/// How often the directories are rescanned even without file events.
pub const RESCAN_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("keyring {root}: {reason}")]
    Root { root: PathBuf, reason: String },
    #[error(transparent)]
    Cert(#[from] CertError),
    #[error(transparent)]
    Fs(#[from] fsutil::FsError),
}

pub struct Keyring {
    root: PathBuf,
    snapshot: RwLock<Arc<Snapshot>>,
    /// The publisher's own keys (current, and the previous one during a rotation's overlap);
    /// `None` where the keyring has no server keypair (tools that only read client keys).
    server: RwLock<Option<Arc<ServerKeys>>>,
    /// The previous server key whose retirement has been audited.
    retired: std::sync::Mutex<Option<PublicKey>>,
    changes: tokio::sync::watch::Sender<u64>,
    audit: AuditLog,
}

impl Keyring {
    /// Scans `root` and starts watching it (needs a tokio runtime). `authorized/` and
    /// `revoked/` are created if missing so that they can be watched.
    pub fn open(root: &Path, audit: AuditLog) -> Result<Arc<Keyring>, KeyringError> {
        if !root.is_dir() {
            return Err(KeyringError::Root {
                root: root.to_path_buf(),
                reason: "not a directory".into(),
            });
        }
        for sub in ["authorized", "revoked"] {
            std::fs::create_dir_all(root.join(sub)).map_err(|e| KeyringError::Root {
                root: root.to_path_buf(),
                reason: format!("{sub}/: {e}"),
            })?;
        }
        let keyring = Arc::new(Self::load(root, audit));
        watch::spawn(Arc::downgrade(&keyring), root)?;
        Ok(keyring)
    }

    /// A scanned keyring with no watcher (for one-shot tools and tests).
    pub fn load(root: &Path, audit: AuditLog) -> Keyring {
        let snap = Snapshot::scan(root, None);
        let keyring = Keyring {
            root: root.to_path_buf(),
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            server: RwLock::new(load_server_keys(root).ok().map(Arc::new)),
            retired: std::sync::Mutex::new(None),
            changes: tokio::sync::watch::channel(0).0,
            audit,
        };
        keyring.install(snap, "initial load");
        keyring
    }

    /// The server keys in force (see `server`), if the keyring has a server keypair.
    pub fn server_keys(&self) -> Option<Arc<ServerKeys>> {
        match self.server.read() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The next moment decisions change with no file changing: a key's `expires`, or the
    /// end of a server key rotation's overlap.
    pub(crate) fn next_deadline(
        &self,
        now: std::time::SystemTime,
    ) -> Option<std::time::SystemTime> {
        let keys = self.snapshot().next_expiry(now);
        let server = self.server_keys().and_then(|s| s.retires_at(now));
        keys.into_iter().chain(server).min()
    }

    /// Rereads server/: a rotation (or a restored key) takes effect without a restart; live
    /// connections are re-checked, so those on a key no longer served are closed.
    fn reload_server(&self, why: &str) -> bool {
        let Some(current) = self.server_keys() else {
            return false; // no server keypair: nothing to follow
        };
        let next = match load_server_keys(&self.root) {
            Ok(n) => n,
            Err(e) => {
                // Half-written during a rotation, or broken: keep serving what we have.
                tracing::warn!(error = %e, "server keys not reloaded; the previous ones stay in force");
                return false;
            }
        };
        if next.fingerprint() == current.fingerprint() {
            return false;
        }
        let mut rec =
            AuditRecord::new(Side::Keyring, "server_keys_changed", true).key(next.current.public);
        if let Some((old, t)) = &next.previous {
            rec = rec.reason(format!(
                "{why}: previous key {} served until {}",
                old.public,
                snapshot::rfc3339(time::OffsetDateTime::from(*t))
            ));
        } else {
            rec = rec.reason(format!("{why}: one server key"));
        }
        tracing::info!(current = %next.current.public, previous = ?next.previous.as_ref().map(|p| p.0.public), "server keys changed");
        self.audit.record(rec);
        match self.server.write() {
            Ok(mut g) => *g = Some(Arc::new(next)),
            Err(p) => *p.into_inner() = Some(Arc::new(next)),
        }
        self.changes.send_modify(|g| *g += 1);
        true
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Rescans now (SIGHUP, file events, the periodic timer). Returns whether anything
    /// changed.
    pub fn reload(&self, why: &str) -> bool {
        let current = self.snapshot();
        if current.unchanged_on_disk(&self.root) {
            return false;
        }
        let server_changed = self.reload_server(why);
        let next = Snapshot::scan(&self.root, Some(&current));
        if next == *current {
            // Same content, fresher read cache: keep it so the next rescan can skip the reads.
            *self.write_guard() = Arc::new(next);
            return server_changed;
        }
        self.install(next, why);
        true
    }

    fn write_guard(&self) -> std::sync::RwLockWriteGuard<'_, Arc<Snapshot>> {
        match self.snapshot.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// An authorized key's `expires` time has passed: nothing on disk changed, but decisions
    /// did, so live connections are asked again (and the expired key's are closed).
    pub(crate) fn expired(&self) {
        self.changes.send_modify(|g| *g += 1);
        let now = std::time::SystemTime::now();
        let retired = self.server_keys().and_then(|s| {
            s.previous
                .as_ref()
                .filter(|(_, t)| *t <= now)
                .map(|(k, _)| k.public)
        });
        if let Some(old) = retired {
            let mut done = match self.retired.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            if *done != Some(old) {
                *done = Some(old);
                tracing::info!(retired = %old, "previous server key retired: no longer served");
                self.audit.record(
                    AuditRecord::new(Side::Keyring, "server_key_retired", true)
                        .key(old)
                        .reason("rotation overlap ended; connections on this key are closed"),
                );
                return;
            }
        }
        self.audit.record(
            AuditRecord::new(Side::Keyring, "key_expired", true)
                .reason("an authorized key's expires time passed; live connections re-checked"),
        );
    }

    fn install(&self, next: Snapshot, why: &str) {
        let next = Arc::new(next);
        let previous = std::mem::replace(&mut *self.write_guard(), next.clone());
        self.changes.send_modify(|g| *g += 1);
        let added: Vec<&str> = next
            .authorized
            .iter()
            .filter(|(p, e)| previous.authorized.get(*p) != Some(e))
            .map(|(_, e)| e.name.as_str())
            .collect();
        let revoked: Vec<&str> = next
            .revoked
            .iter()
            .filter(|(p, _)| !previous.revoked.contains_key(*p))
            .map(|(_, e)| e.name.as_str())
            .collect();
        for problem in next
            .problems
            .iter()
            .filter(|p| !previous.problems.contains(p))
        {
            tracing::warn!(%problem, "keyring: file skipped");
        }
        tracing::info!(
            why,
            authorized = next.authorized.len(),
            revoked = next.revoked.len(),
            effective = next.effective_count(),
            problems = next.problems.len(),
            changed = %names(&added),
            newly_revoked = %names(&revoked),
            "keyring loaded"
        );
        let mut rec = AuditRecord::new(Side::Keyring, "keyring_reloaded", true).reason(format!(
            "{why}: {} authorized, {} revoked, {} effective, {} problem files",
            next.authorized.len(),
            next.revoked.len(),
            next.effective_count(),
            next.problems.len()
        ));
        if !next.problems.is_empty() {
            rec = rec.name(next.problems.join("; "));
        }
        self.audit.record(rec);
    }
}

/// A bounded list of key names for a log line (a first load of 1,000 keys is one line).
fn names(list: &[&str]) -> String {
    const SHOWN: usize = 10;
    let mut out = list
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if list.len() > SHOWN {
        out.push_str(&format!(" and {} more", list.len() - SHOWN));
    }
    out
}

impl Authorizer for Keyring {
    fn authorize(&self, key: &PublicKey, _peer: &PeerAddr) -> Decision {
        self.snapshot().decide(key, std::time::SystemTime::now())
    }

    fn server_keys(&self) -> Option<Vec<Keypair>> {
        Keyring::server_keys(self).map(|s| s.active(std::time::SystemTime::now()))
    }

    fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

#[cfg(test)]
mod tests;

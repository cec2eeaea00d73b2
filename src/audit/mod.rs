//! Append-only JSON-lines audit trail of every authentication and authorization decision,
//! on both the FIX/TLS side and the CURVE side. One writer shared by the whole daemon.
//!
//! Each record is one `write` of one line on an `O_APPEND` file, so lines from concurrent
//! tasks never interleave and a crash leaves at most a torn last line. Records carry public
//! identities only (Z85 public keys, certificate names, fingerprints): never secrets.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;

pub mod throttle;

/// Which side of the bridge made the decision.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// CURVE handshake and subscription decisions on the publisher.
    Curve,
    /// Keyring changes (reloads, revocations).
    Keyring,
    /// TLS handshake and pre-handshake (IP allow-list) decisions.
    Tls,
    /// FIX Logon decisions (CompID binding, credentials).
    Fix,
}

/// One audit line. Optional fields are omitted when empty.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct AuditRecord {
    /// RFC 3339 UTC timestamp with nanoseconds; filled in by `AuditLog::record` if empty.
    pub ts: String,
    pub side: Option<Side>,
    /// What happened, e.g. `handshake_allowed`, `handshake_denied`, `revoked_disconnect`,
    /// `subscription_denied`, `keyring_reloaded`, `tls_rejected`, `logon_refused`.
    pub event: String,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// Z85 public key (CURVE side).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Key or session name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// TLS identity: subject CN / SAN and `sha256:<hex>` of the leaf.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comp_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Negotiated TLS protocol and cipher suite, e.g. `TLSv1_2 TLS13_AES_128_GCM_SHA256`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
}

impl AuditRecord {
    pub fn new(side: Side, event: impl Into<String>, allowed: bool) -> Self {
        AuditRecord {
            side: Some(side),
            event: event.into(),
            allowed,
            ..Default::default()
        }
    }
    pub fn peer(mut self, peer: impl ToString) -> Self {
        self.peer = Some(peer.to_string());
        self
    }
    pub fn key(mut self, key: impl ToString) -> Self {
        self.key = Some(key.to_string());
        self
    }
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    pub fn identity(mut self, identity: impl Into<String>) -> Self {
        self.identity = Some(identity.into());
        self
    }
    pub fn comp_id(mut self, comp_id: impl Into<String>) -> Self {
        self.comp_id = Some(comp_id.into());
        self
    }
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
    pub fn tls(mut self, tls: impl Into<String>) -> Self {
        self.tls = Some(tls.into());
        self
    }
}

enum Sink {
    File { path: PathBuf, file: Mutex<File> },
    Memory(Mutex<Vec<AuditRecord>>),
    Discard,
}

/// Cheap to clone; every clone writes to the same sink.
#[derive(Clone)]
pub struct AuditLog(Arc<Sink>);

impl AuditLog {
    /// Opens (creating, mode 0640) `path` for appending; parent folders are created.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o640);
        let file = options.open(path)?;
        Ok(AuditLog(Arc::new(Sink::File {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })))
    }

    /// Keeps records in memory; for tests.
    pub fn memory() -> Self {
        AuditLog(Arc::new(Sink::Memory(Mutex::new(Vec::new()))))
    }

    pub fn discard() -> Self {
        AuditLog(Arc::new(Sink::Discard))
    }

    /// Records kept by a `memory()` log (empty for other sinks).
    pub fn records(&self) -> Vec<AuditRecord> {
        match &*self.0 {
            Sink::Memory(m) => m.lock().map(|v| v.clone()).unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Appends one record. Failure to write is logged, never fatal: the audit trail must not
    /// become a way to stop the feed.
    pub fn record(&self, mut rec: AuditRecord) {
        if rec.ts.is_empty() {
            rec.ts = now_rfc3339();
        }
        match &*self.0 {
            Sink::Discard => {}
            Sink::Memory(m) => {
                if let Ok(mut v) = m.lock() {
                    v.push(rec);
                }
            }
            Sink::File { path, file } => {
                let mut line = match serde_json::to_vec(&rec) {
                    Ok(line) => line,
                    Err(e) => {
                        tracing::error!(error = %e, "audit record not serializable");
                        return;
                    }
                };
                line.push(b'\n');
                let result = match file.lock() {
                    Ok(mut f) => f.write_all(&line),
                    Err(_) => Err(std::io::Error::other("audit writer poisoned")),
                };
                if let Err(e) = result {
                    tracing::error!(path = %path.display(), error = %e, "audit write failed");
                }
            }
        }
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_lines_are_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        log.record(
            AuditRecord::new(Side::Curve, "handshake_denied", false)
                .peer("tcp://127.0.0.1:5")
                .reason("unknown key"),
        );
        log.clone()
            .record(AuditRecord::new(Side::Fix, "logon_accepted", true).comp_id("CLIENT1"));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["event"], "handshake_denied");
        assert_eq!(lines[0]["side"], "curve");
        assert_eq!(lines[0]["allowed"], false);
        assert!(lines[0].get("key").is_none());
        assert_eq!(lines[1]["comp_id"], "CLIENT1");
        assert!(lines[1]["ts"].as_str().unwrap().ends_with('Z'));
    }
}

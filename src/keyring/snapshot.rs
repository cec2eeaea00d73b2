//! One consistent view of the keyring directories, built by reading every key file.
//!
//! Snapshots are compared by content (keys, names, topics, files), never by mtime or size,
//! so a same-size rewrite of a certificate is seen. A file that fails to parse is reported
//! and skipped; if the same path held a good certificate before, that entry is kept, so a
//! half-written or corrupted file can neither empty the keyring nor drop a subscriber.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::auth::{Decision, Grant, TopicAcl};
use crate::keys::cert;
use crate::keys::PublicKey;

/// More files than this in one directory are not read (a runaway directory must not stall
/// or exhaust the daemon).
pub const MAX_FILES: usize = 100_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: PublicKey,
    /// Metadata `name`, else the file stem.
    pub name: String,
    pub topics: Option<Vec<String>>,
    pub file: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Authorized,
    Revoked,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// By file path (sorted), so output and precedence are deterministic.
    pub authorized: BTreeMap<PathBuf, Entry>,
    pub revoked: BTreeMap<PathBuf, Entry>,
    /// Files skipped, with why (also logged).
    pub problems: Vec<String>,
}

impl Snapshot {
    /// Reads `root/authorized` and `root/revoked`. `previous` supplies the last good entry for
    /// files that no longer parse.
    pub fn scan(root: &Path, previous: Option<&Snapshot>) -> Snapshot {
        let mut snap = Snapshot::default();
        let authorized = scan_dir(
            &root.join("authorized"),
            previous.map(|p| &p.authorized),
            &mut snap.problems,
        );
        let revoked = scan_dir(
            &root.join("revoked"),
            previous.map(|p| &p.revoked),
            &mut snap.problems,
        );
        snap.authorized = authorized;
        snap.revoked = revoked;
        snap
    }

    pub fn find_revoked(&self, key: &PublicKey) -> Option<&Entry> {
        self.revoked.values().find(|e| &e.key == key)
    }

    pub fn find_authorized(&self, key: &PublicKey) -> Option<&Entry> {
        self.authorized.values().find(|e| &e.key == key)
    }

    /// Deny wins: a revoked key is refused even if also authorized.
    pub fn decide(&self, key: &PublicKey) -> Decision {
        if let Some(e) = self.find_revoked(key) {
            return Decision::Deny(format!("key revoked ({})", e.name));
        }
        match self.find_authorized(key) {
            Some(e) => Decision::Allow(Grant {
                name: e.name.clone(),
                topics: TopicAcl(e.topics.clone()),
            }),
            None => Decision::Deny("key not authorized".into()),
        }
    }

    /// Every entry with its status, authorized first.
    pub fn entries(&self) -> impl Iterator<Item = (Status, &Entry)> {
        self.authorized
            .values()
            .map(|e| (Status::Authorized, e))
            .chain(self.revoked.values().map(|e| (Status::Revoked, e)))
    }

    /// Authorized keys that are not revoked.
    pub fn effective_count(&self) -> usize {
        self.authorized
            .values()
            .filter(|e| self.find_revoked(&e.key).is_none())
            .count()
    }
}

fn scan_dir(
    dir: &Path,
    previous: Option<&BTreeMap<PathBuf, Entry>>,
    problems: &mut Vec<String>,
) -> BTreeMap<PathBuf, Entry> {
    let mut out = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return out,
        Err(e) => {
            problems.push(format!("{}: {e}", dir.display()));
            // an unreadable directory keeps what it held
            return previous.cloned().unwrap_or_default();
        }
    };
    for (n, entry) in entries.flatten().enumerate() {
        if n >= MAX_FILES {
            problems.push(format!(
                "{}: more than {MAX_FILES} files; the rest not read",
                dir.display()
            ));
            break;
        }
        let path = entry.path();
        let Some(file_name) = path.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        if file_name.starts_with('.') {
            continue; // temporary files of atomic writes, editors' swap files
        }
        if file_name.ends_with(".key_secret") {
            let msg = format!(
                "{}: a secret key file does not belong here; ignored (move it out of the keyring)",
                path.display()
            );
            tracing::warn!("{msg}");
            problems.push(msg);
            continue;
        }
        let Some(stem) = file_name.strip_suffix(".key") else {
            continue;
        };
        match cert::read_public(&path) {
            Ok(c) => {
                let name = c.name.unwrap_or_else(|| stem.to_string());
                out.insert(
                    path.clone(),
                    Entry {
                        key: c.key,
                        name,
                        topics: c.topics,
                        file: path,
                    },
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "keyring: certificate skipped");
                problems.push(e.to_string());
                if let Some(old) = previous.and_then(|p| p.get(&path)) {
                    out.insert(path, old.clone());
                }
            }
        }
    }
    out
}

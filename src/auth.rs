//! The seam between the CURVE publisher and whoever decides which client keys may subscribe.
//!
//! The publisher asks at handshake time and again every time `changes()` ticks, so a keyring
//! that revokes a key or narrows its topics reaches live connections without a restart.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::keys::PublicKey;

/// Where a connection came from: a TCP peer address, or an IPC endpoint path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerAddr {
    Tcp(SocketAddr),
    Ipc(String),
}

impl std::fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerAddr::Tcp(a) => write!(f, "tcp://{a}"),
            PeerAddr::Ipc(p) => write!(f, "ipc://{p}"),
        }
    }
}

/// The topics a key may receive, from its `topics` metadata. `None` means every topic.
///
/// An entry ending in `.` grants every topic below it (`md.`, `exec.VENUE1.`); any other
/// entry grants exactly that topic, so `exec.VENUE1.ACC1` does not grant `exec.VENUE1.ACC10`.
/// Topic components escape `.` (see `normalize::topic`), so a trailing `.` can only ever
/// match at a component boundary: entries cannot leak across accounts or symbols.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TopicAcl(pub Option<Vec<String>>);

/// Whether one ACL entry grants `topic`.
fn entry_allows(entry: &[u8], topic: &[u8]) -> bool {
    if entry.ends_with(b".") {
        topic.starts_with(entry)
    } else {
        topic == entry
    }
}

impl TopicAcl {
    pub fn all() -> Self {
        TopicAcl(None)
    }

    pub fn allows(&self, topic: &[u8]) -> bool {
        match &self.0 {
            None => true,
            Some(entries) => entries.iter().any(|e| entry_allows(e.as_bytes(), topic)),
        }
    }

    /// Whether any topic under `subscription` (a prefix) could pass this ACL; used to audit
    /// a subscription that can never deliver anything.
    pub fn may_overlap(&self, subscription: &[u8]) -> bool {
        match &self.0 {
            None => true,
            Some(entries) => entries.iter().any(|e| {
                let e = e.as_bytes();
                e.starts_with(subscription) || (e.ends_with(b".") && subscription.starts_with(e))
            }),
        }
    }
}

/// What an allowed key is granted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Human name of the key (certificate metadata `name`, else the file stem).
    pub name: String,
    pub topics: TopicAcl,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow(Grant),
    /// Denied, with a reason for the audit log (never sent to the peer).
    Deny(String),
}

pub trait Authorizer: Send + Sync + 'static {
    fn authorize(&self, key: &PublicKey, peer: &PeerAddr) -> Decision;

    /// Ticks (the value is a generation counter) whenever decisions may have changed; live
    /// connections re-ask `authorize` then and close if no longer allowed.
    fn changes(&self) -> tokio::sync::watch::Receiver<u64>;

    /// The publisher's long-term keys to answer to, current first (more than one during a
    /// server key rotation). `None`: the publisher's configured keypair only. Asked at each
    /// handshake and on every `changes()` tick, so a connection made with a key that is no
    /// longer served is closed.
    fn server_keys(&self) -> Option<Vec<crate::keys::Keypair>> {
        None
    }
}

/// Allows a fixed set of keys with fixed ACLs; for tests and simple setups.
pub struct StaticAuthorizer {
    allowed: Vec<(PublicKey, Grant)>,
    changes: tokio::sync::watch::Sender<u64>,
}

impl StaticAuthorizer {
    pub fn new(allowed: Vec<(PublicKey, Grant)>) -> Arc<Self> {
        Arc::new(StaticAuthorizer {
            allowed,
            changes: tokio::sync::watch::channel(0).0,
        })
    }
}

impl Authorizer for StaticAuthorizer {
    fn authorize(&self, key: &PublicKey, _peer: &PeerAddr) -> Decision {
        match self.allowed.iter().find(|(k, _)| k == key) {
            Some((_, grant)) => Decision::Allow(grant.clone()),
            None => Decision::Deny("key not authorized".into()),
        }
    }

    fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_prefixes() {
        let acl = TopicAcl(Some(vec!["md.".into()]));
        assert!(acl.allows(b"md.VENUE1.EUR/USD"));
        assert!(!acl.allows(b"exec.VENUE1.ACC"));
        assert!(acl.may_overlap(b""));
        assert!(acl.may_overlap(b"md.V"));
        assert!(!acl.may_overlap(b"exec."));
        assert!(TopicAcl::all().allows(b"anything"));
    }

    #[test]
    fn acl_entries_match_whole_components() {
        let acl = TopicAcl(Some(vec!["exec.V.ACC1".into(), "md.V.".into()]));
        assert!(acl.allows(b"exec.V.ACC1"));
        assert!(!acl.allows(b"exec.V.ACC10"));
        assert!(!acl.allows(b"exec.V.ACC1%2EX"));
        assert!(!acl.allows(b"exec.V.ACC"));
        assert!(acl.allows(b"md.V.EUR/USD"));
        assert!(acl.allows(b"md.V.BRK%2EB"));
        assert!(!acl.allows(b"md.V"));
        assert!(!acl.allows(b"md.VV.X"));
        // a subscription prefix overlaps an exact entry only if the entry starts with it
        assert!(acl.may_overlap(b"exec.V.ACC"));
        assert!(acl.may_overlap(b"exec.V.ACC1"));
        assert!(!acl.may_overlap(b"exec.V.ACC10"));
        assert!(acl.may_overlap(b"md.V.EUR"));
        assert!(!acl.may_overlap(b"md.W."));
    }
}

//! Where the bridge gets its CURVE keys: the keyring directory (server keypair and the
//! authorizer), and for the demo an extra in-memory key allowed next to the keyring's.

use std::path::Path;
use std::sync::Arc;

use crate::audit::AuditLog;
use crate::auth::{Authorizer, Decision, Grant, PeerAddr, StaticAuthorizer, TopicAcl};
use crate::keyring::Keyring;
use crate::keys::{Keypair, PublicKey};

use super::daemon::PublishKeys;

/// The keyring at `root`: its server keypair (generated, and audited, if absent) and the
/// live keyring as the authorizer (it watches its folders itself; `Keyring::reload` is what
/// SIGHUP calls).
pub fn open(root: &Path, audit: AuditLog) -> anyhow::Result<(PublishKeys, Arc<Keyring>)> {
    let server = crate::keyring::load_or_create_server_keypair(root, &audit)?;
    let keyring = Keyring::open(root, audit)?;
    Ok((
        PublishKeys {
            server,
            authorizer: keyring.clone(),
        },
        keyring,
    ))
}

/// The keyring's decisions, plus extra keys allowed on top (the demo's own subscriber).
/// A key the keyring denies is still allowed if it is one of the extras, since extras are
/// never on disk and so cannot be revoked there.
pub struct WithExtra {
    pub base: Arc<dyn Authorizer>,
    pub extra: Vec<(PublicKey, Grant)>,
}

impl Authorizer for WithExtra {
    fn authorize(&self, key: &PublicKey, peer: &PeerAddr) -> Decision {
        if let Some((_, g)) = self.extra.iter().find(|(k, _)| k == key) {
            return Decision::Allow(g.clone());
        }
        self.base.authorize(key, peer)
    }

    fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.base.changes()
    }

    fn server_keys(&self) -> Option<Vec<Keypair>> {
        self.base.server_keys()
    }
}

/// A throw-away keypair allowed on every topic under `name`.
pub fn extra_client(name: &str) -> (Keypair, (PublicKey, Grant)) {
    let kp = Keypair::generate();
    let grant = Grant {
        name: name.to_owned(),
        topics: TopicAcl::all(),
    };
    let public = kp.public;
    (kp, (public, grant))
}

/// An authorizer that allows nothing (an empty keyring).
pub fn deny_all() -> Arc<dyn Authorizer> {
    StaticAuthorizer::new(Vec::new())
}

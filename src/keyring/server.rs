//! The publisher's own long-term CURVE keys: the current keypair (`server/server.key*`) and,
//! for a while after a rotation, the previous one (`server/previous.key*`, metadata
//! `retire-after`). During that overlap the publisher answers to both, so subscribers still
//! configured with the old public key keep working while the new one is handed out; after
//! it the old key is refused and its remaining connections are closed.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use time::OffsetDateTime;

use super::KeyringError;
use crate::audit::{AuditLog, AuditRecord, Side};
use crate::keys::cert;
use crate::keys::{fsutil, Keypair, PublicKey};

/// Metadata on `previous.key*`: when the previous key stops being served.
pub const RETIRE_AFTER: &str = "retire-after";
/// Metadata on server keys we generate: when.
pub const CREATED: &str = "created";

/// The current keypair and, during an overlap, the previous one with its retirement time.
#[derive(Clone)]
pub struct ServerKeys {
    pub current: Keypair,
    pub previous: Option<(Keypair, SystemTime)>,
}

impl ServerKeys {
    /// The keys served at `now`, current first.
    pub fn active(&self, now: SystemTime) -> Vec<Keypair> {
        let mut keys = vec![self.current.clone()];
        if let Some((kp, retire)) = &self.previous {
            if *retire > now && kp.public != self.current.public {
                keys.push(kp.clone());
            }
        }
        keys
    }

    /// When the previous key retires, if that is still ahead.
    pub fn retires_at(&self, now: SystemTime) -> Option<SystemTime> {
        self.previous.as_ref().map(|(_, t)| *t).filter(|t| *t > now)
    }

    /// Public keys and retirement only: what decides whether anything changed.
    pub fn fingerprint(&self) -> (PublicKey, Option<(PublicKey, SystemTime)>) {
        (
            self.current.public,
            self.previous.as_ref().map(|(k, t)| (k.public, *t)),
        )
    }
}

pub(crate) fn paths(root: &Path, stem: &str) -> (PathBuf, PathBuf) {
    let dir = root.join("server");
    (
        dir.join(format!("{stem}.key")),
        dir.join(format!("{stem}.key_secret")),
    )
}

fn rfc3339(t: OffsetDateTime) -> String {
    super::snapshot::rfc3339(t)
}

/// The publisher's current long-term keypair from `root/server/server.key_secret`.
pub fn load_server_keypair(root: &Path) -> Result<Keypair, KeyringError> {
    Ok(cert::read_secret(&paths(root, "server").1)?)
}

/// The current keypair and the previous one if a rotation is in its overlap. A previous
/// key whose `retire-after` is missing or unreadable is not served (fail closed).
pub fn load_server_keys(root: &Path) -> Result<ServerKeys, KeyringError> {
    let current = load_server_keypair(root)?;
    let (_, prev_secret) = paths(root, "previous");
    let previous = if prev_secret.exists() {
        let kp = cert::read_secret(&prev_secret)?;
        let meta = cert::read_public(&prev_secret)?.metadata;
        let retire = meta
            .iter()
            .find(|(k, _)| k == RETIRE_AFTER)
            .and_then(|(_, v)| {
                OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339).ok()
            })
            .map(SystemTime::from);
        match retire {
            Some(t) => Some((kp, t)),
            None => {
                tracing::warn!(file = %prev_secret.display(), "previous server key without a valid {RETIRE_AFTER}; not served");
                None
            }
        }
    } else {
        None
    };
    Ok(ServerKeys { current, previous })
}

/// Generates a server keypair into `root/server/` (0700) as `stem`.
fn generate(root: &Path, stem: &str) -> Result<Keypair, KeyringError> {
    let dir = root.join("server");
    fsutil::create_dir_mode(&dir, 0o700)?;
    let keypair = Keypair::generate();
    cert::write_keypair(
        &dir,
        stem,
        &keypair,
        &[
            ("name".into(), "server".into()),
            (CREATED.into(), rfc3339(OffsetDateTime::now_utc())),
        ],
    )?;
    Ok(keypair)
}

/// As `load_server_keypair`, generating the keypair (server/ 0700, secret 0600) if absent,
/// and auditing that it did. An existing but unreadable or loose secret is an error, never
/// silently replaced.
pub fn load_or_create_server_keypair(
    root: &Path,
    audit: &AuditLog,
) -> Result<Keypair, KeyringError> {
    let (_, secret) = paths(root, "server");
    if std::fs::symlink_metadata(&secret).is_ok() {
        return load_server_keypair(root);
    }
    if !root.is_dir() {
        fsutil::create_dir_mode(root, 0o755)?;
    }
    let keypair = generate(root, "server")?;
    tracing::info!(public = %keypair.public, "generated the server keypair");
    audit.record(
        AuditRecord::new(Side::Keyring, "server_key_created", true)
            .key(keypair.public)
            .reason(format!(
                "no server keypair in {}; generated one",
                root.join("server").display()
            )),
    );
    Ok(keypair)
}

/// What a rotation did.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub new: PublicKey,
    pub old: PublicKey,
    pub retire_at: SystemTime,
}

/// Makes the current keypair the previous one (served until `now + overlap`) and generates
/// a new current keypair. Refused while an earlier rotation is still in its overlap, unless
/// `force` (which retires that older key at once).
pub fn rotate(root: &Path, overlap: Duration, force: bool) -> Result<Rotation, KeyringError> {
    let keys = load_server_keys(root)?;
    let now = SystemTime::now();
    if let Some(t) = keys.retires_at(now) {
        if !force {
            return Err(KeyringError::Root {
                root: root.to_path_buf(),
                reason: format!(
                    "the previous server key is still served until {}; rotating again now \
                     would retire it early (pass --force to do so)",
                    rfc3339(OffsetDateTime::from(t))
                ),
            });
        }
    }
    let retire_at = now + overlap;
    let old = keys.current;
    // The previous key is written first: a daemon reading in between sees the old key
    // twice, never a moment without it.
    let dir = root.join("server");
    cert::write_keypair(
        &dir,
        "previous",
        &old,
        &[
            ("name".into(), "server-previous".into()),
            (
                RETIRE_AFTER.into(),
                rfc3339(OffsetDateTime::from(retire_at)),
            ),
        ],
    )?;
    let new = generate(root, "server")?;
    Ok(Rotation {
        new: new.public,
        old: old.public,
        retire_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_the_old_key_for_the_overlap_then_not() {
        let dir = tempfile::tempdir().unwrap();
        let audit = AuditLog::memory();
        let first = load_or_create_server_keypair(dir.path(), &audit).unwrap();
        let r = rotate(dir.path(), Duration::from_secs(3600), false).unwrap();
        assert_eq!(r.old, first.public);
        let keys = load_server_keys(dir.path()).unwrap();
        assert_eq!(keys.current.public, r.new);
        let now = SystemTime::now();
        let active: Vec<_> = keys.active(now).iter().map(|k| k.public).collect();
        assert_eq!(active, vec![r.new, r.old]);
        let later = now + Duration::from_secs(3601);
        let active: Vec<_> = keys.active(later).iter().map(|k| k.public).collect();
        assert_eq!(active, vec![r.new]);
        // a second rotation inside the overlap is refused unless forced
        let e = rotate(dir.path(), Duration::from_secs(60), false)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("--force"), "{e}");
        let r2 = rotate(dir.path(), Duration::from_secs(60), true).unwrap();
        assert_eq!(r2.old, r.new);
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&paths(dir.path(), "previous").1), 0o600);
        assert_eq!(mode(&paths(dir.path(), "server").1), 0o600);
    }

    #[test]
    fn a_previous_key_without_retirement_is_not_served() {
        let dir = tempfile::tempdir().unwrap();
        load_or_create_server_keypair(dir.path(), &AuditLog::discard()).unwrap();
        let kp = Keypair::generate();
        cert::write_keypair(&dir.path().join("server"), "previous", &kp, &[]).unwrap();
        let keys = load_server_keys(dir.path()).unwrap();
        assert!(keys.previous.is_none());
        assert_eq!(keys.active(SystemTime::now()).len(), 1);
    }
}

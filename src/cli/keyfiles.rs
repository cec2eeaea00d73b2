//! Stand-in key file loading for `pub` and `sub` until the keyring module lands
//! (`keys::cert::read_public/read_secret`, `keyring::Keyring`); kept minimal on purpose.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};

use crate::audit::AuditLog;
use crate::auth::{Authorizer, Grant, StaticAuthorizer, TopicAcl};
use crate::keys::{Keypair, PublicKey, SecretKey};

fn field(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.trim().split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
    })
}

pub fn read_public(path: &Path) -> anyhow::Result<PublicKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let z =
        field(&text, "public-key").with_context(|| format!("{}: no public-key", path.display()))?;
    PublicKey::from_z85(&z).with_context(|| format!("{}: public-key", path.display()))
}

pub fn read_secret(path: &Path) -> anyhow::Result<Keypair> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("reading {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "{}: secret key file is accessible by group or others (mode {:o}); chmod 600 it",
                path.display(),
                mode & 0o777
            );
        }
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let z =
        field(&text, "secret-key").with_context(|| format!("{}: no secret-key", path.display()))?;
    let secret =
        SecretKey::from_z85(&z).with_context(|| format!("{}: secret-key", path.display()))?;
    Ok(Keypair::from_secret(secret))
}

pub fn load_server_keypair(root: &Path) -> anyhow::Result<Keypair> {
    read_secret(&root.join("server").join("server.key_secret"))
}

pub fn open_authorizer(root: &Path, _audit: AuditLog) -> anyhow::Result<Arc<dyn Authorizer>> {
    let mut allowed = Vec::new();
    let revoked: Vec<PublicKey> = keys_in(&root.join("revoked"))?
        .into_iter()
        .map(|(k, _, _)| k)
        .collect();
    for (key, name, topics) in keys_in(&root.join("authorized"))? {
        if !revoked.contains(&key) {
            allowed.push((key, Grant { name, topics }));
        }
    }
    Ok(StaticAuthorizer::new(allowed))
}

fn keys_in(dir: &Path) -> anyhow::Result<Vec<(PublicKey, String, TopicAcl)>> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(out);
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("key") {
            continue;
        }
        let text = std::fs::read_to_string(&p)?;
        let key = read_public(&p)?;
        let name = field(&text, "name").unwrap_or_else(|| {
            p.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        let topics = field(&text, "topics").map(|t| {
            t.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        });
        out.push((key, name, TopicAcl(topics)));
    }
    Ok(out)
}

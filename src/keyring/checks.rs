//! `fixcurve keys audit`: what an operator should fix in a keyring before an attacker finds
//! it. Each check is a pure function of what is on disk; findings carry the file and a fix.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use time::OffsetDateTime;

use super::server::{self, CREATED, RETIRE_AFTER};
use super::snapshot::{rfc3339, Snapshot};
use crate::keys::cert;

/// One thing to fix.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// Which check found it (stable, for scripts).
    pub check: &'static str,
    pub path: PathBuf,
    pub message: String,
}

/// What the audit needs besides the keyring.
pub struct Options {
    pub now: SystemTime,
    /// A server key older than this is reported.
    pub max_server_key_age: Duration,
    /// More secret files to check (TLS keys, Logon password files).
    pub extra_secrets: Vec<PathBuf>,
}

fn finding(check: &'static str, path: &Path, message: String) -> Finding {
    Finding {
        check,
        path: path.to_path_buf(),
        message,
    }
}

fn mode(path: &Path) -> Option<u32> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

/// The work tree that `path` lies in, if any (a `.git` in it or an ancestor).
fn git_work_tree(path: &Path) -> Option<PathBuf> {
    let start = std::fs::canonicalize(path).ok()?;
    start
        .ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(suffix) && !n.starts_with('.'))
        })
        .take(super::snapshot::MAX_FILES)
        .collect();
    out.sort();
    out
}

/// Every finding for the keyring at `root`, in a stable order.
pub fn audit(root: &Path, opts: &Options) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut secrets: Vec<PathBuf> = ["server", "clients"]
        .iter()
        .flat_map(|d| files(&root.join(d), ".key_secret"))
        .collect();
    secrets.extend(opts.extra_secrets.iter().cloned());

    // File modes: secrets private, private folders private, the ACL folders not writable by
    // anyone but the owner (whoever can write authorized/ can authorize themselves).
    for s in &secrets {
        match mode(s) {
            None => out.push(finding("missing", s, "cannot be read".into())),
            Some(m) if m & 0o077 != 0 => out.push(finding(
                "secret_mode",
                s,
                format!("secret file is mode {m:04o}: group/others can access it; chmod 600"),
            )),
            Some(_) => {}
        }
    }
    for d in ["server", "clients"] {
        let p = root.join(d);
        if let Some(m) = mode(&p).filter(|m| m & 0o077 != 0) {
            out.push(finding(
                "dir_mode",
                &p,
                format!("folder holding secret keys is mode {m:04o}; chmod 700"),
            ));
        }
    }
    for d in [".", "authorized", "revoked", "server"] {
        let p = root.join(d);
        if let Some(m) = mode(&p).filter(|m| m & 0o022 != 0) {
            out.push(finding(
                "writable",
                &p,
                format!("mode {m:04o}: group/others can add or replace keys here; chmod go-w"),
            ));
        }
    }
    for f in files(&root.join("authorized"), ".key")
        .into_iter()
        .chain(files(&root.join("revoked"), ".key"))
    {
        if let Some(m) = mode(&f).filter(|m| m & 0o022 != 0) {
            out.push(finding(
                "writable",
                &f,
                format!("mode {m:04o}: group/others can change this key or its topics; chmod 644"),
            ));
        }
    }

    // Secrets inside a git work tree are one `git add .` away from a repository.
    for s in &secrets {
        if let Some(tree) = git_work_tree(s) {
            out.push(finding(
                "secret_in_git",
                s,
                format!(
                    "secret key inside the git work tree {}; keep secrets outside repositories",
                    tree.display()
                ),
            ));
        }
    }

    let snap = Snapshot::scan(root, None);
    for p in &snap.problems {
        out.push(finding("unreadable", root, p.clone()));
    }
    let now = opts.now;
    let mut seen: HashMap<crate::keys::PublicKey, &Path> = HashMap::new();
    for e in snap.authorized.values() {
        if let Some(r) = snap.find_revoked(&e.key) {
            out.push(finding(
                "authorized_and_revoked",
                &e.file,
                format!(
                    "also revoked ({}): denied; remove one of the two to say what is meant",
                    r.file.display()
                ),
            ));
        }
        if let Some(first) = seen.get(&e.key) {
            out.push(finding(
                "duplicate_key",
                &e.file,
                format!("the same public key as {}", first.display()),
            ));
        } else {
            seen.insert(e.key, &e.file);
        }
        if e.expired_at(now) {
            out.push(finding(
                "expired",
                &e.file,
                format!(
                    "expired {}: refused; revoke or remove it",
                    e.expires.map(rfc3339).unwrap_or_default()
                ),
            ));
        }
        let named = cert::read_public(&e.file)
            .map(|c| c.name.is_some())
            .unwrap_or(true);
        if !named {
            out.push(finding(
                "no_name",
                &e.file,
                "no `name` metadata: audit lines and metrics show only the file name".into(),
            ));
        }
    }

    // The server key: its age, and a retired previous key still on disk.
    let (public, secret) = server::paths(root, "server");
    if secret.exists() {
        let meta = cert::read_public(&public)
            .or_else(|_| cert::read_public(&secret))
            .map(|c| c.metadata)
            .unwrap_or_default();
        let created = meta
            .iter()
            .find(|(k, _)| k == CREATED)
            .and_then(|(_, v)| {
                OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339).ok()
            })
            .map(SystemTime::from)
            .or_else(|| std::fs::metadata(&secret).and_then(|m| m.modified()).ok());
        if let Some(age) = created.and_then(|c| now.duration_since(c).ok()) {
            if age > opts.max_server_key_age {
                out.push(finding(
                    "server_key_age",
                    &secret,
                    format!(
                        "server key is {} days old; rotate it (`fixcurve keys rotate-server`)",
                        age.as_secs() / 86_400
                    ),
                ));
            }
        }
    } else {
        out.push(finding(
            "missing",
            &secret,
            "no server keypair (`fixcurve run` creates one)".into(),
        ));
    }
    let (_, previous) = server::paths(root, "previous");
    if previous.exists() {
        let retire = cert::read_public(&previous)
            .ok()
            .and_then(|c| {
                c.metadata
                    .into_iter()
                    .find(|(k, _)| k == RETIRE_AFTER)
                    .map(|(_, v)| v)
            })
            .and_then(|v| {
                OffsetDateTime::parse(&v, &time::format_description::well_known::Rfc3339).ok()
            })
            .map(SystemTime::from);
        if retire.is_none_or(|t| t <= now) {
            out.push(finding(
                "retired_server_key",
                &previous,
                "a retired server key is still on disk; delete previous.key and previous.key_secret"
                    .into(),
            ));
        }
    }
    out
}

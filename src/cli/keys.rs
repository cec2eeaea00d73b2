//! `fixcurve keys ...`: key generation and keyring management.
//!
//! Every change is a single atomic file operation (write to a temporary file and rename, or
//! rename between `authorized/` and `revoked/`), so a daemon watching the keyring sees the
//! old state or the new one, never a half-written file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args as ClapArgs, Subcommand};

use crate::keyring::{Snapshot, Status};
use crate::keys::cert::{self, check_name};
use crate::keys::{fsutil, Keypair, PublicKey};

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write DIR/NAME.key (public, 0644) and DIR/NAME.key_secret (0600) as ZPL certificates.
    Gen {
        name: String,
        #[arg(long)]
        dir: PathBuf,
        /// DIR is a keyring root: write into DIR/clients/ (created 0700), for handing out.
        #[arg(long)]
        client: bool,
        /// Comma-separated topic prefixes to record in the certificate metadata.
        #[arg(long, value_delimiter = ',')]
        topics: Option<Vec<String>>,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// Authorize a subscriber key: writes authorized/NAME.key (takes effect live).
    Authorize {
        #[arg(long)]
        keys: PathBuf,
        #[arg(long)]
        name: String,
        /// The public key in Z85 (40 characters).
        #[arg(long, conflicts_with = "from", required_unless_present = "from")]
        public: Option<String>,
        /// A certificate file holding the public key (.key or .key_secret, ours, pyzmq's or CZMQ's).
        #[arg(long)]
        from: Option<PathBuf>,
        /// Comma-separated topics this key may receive (default: all). An entry ending in `.`
        /// grants every topic below it (`md.`, `exec.VENUE1.`); any other entry exactly that
        /// topic. Components are written escaped, as published (`md.VENUE1.BRK%2EB`).
        #[arg(long, value_delimiter = ',')]
        topics: Option<Vec<String>>,
        /// RFC 3339 time after which the key is refused (and its connections closed).
        #[arg(long)]
        expires: Option<String>,
        /// Replace an existing entry with the same name or key.
        #[arg(long)]
        force: bool,
    },
    /// Revoke a key by name or Z85 public key: moves it to revoked/ (live connections close).
    Revoke {
        #[arg(long)]
        keys: PathBuf,
        name: String,
    },
    /// Undo a revocation: moves revoked/NAME.key back to authorized/.
    Restore {
        #[arg(long)]
        keys: PathBuf,
        name: String,
    },
    /// Rotate the publisher's keypair: the current one becomes server/previous.key* and is
    /// still served for --overlap (so subscribers on it keep working), a new server.key* is
    /// generated. A running daemon follows at once; after the overlap the old key is refused
    /// and its connections closed.
    RotateServer {
        #[arg(long)]
        keys: PathBuf,
        /// How long the old key stays served, e.g. 24h, 7d, 90m.
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        overlap: std::time::Duration,
        /// Rotate even though an earlier rotation is still in its overlap (its old key is
        /// then retired at once).
        #[arg(long)]
        force: bool,
    },
    /// Check the keyring for what to fix: file modes, secrets in a git work tree, keys both
    /// authorized and revoked, unnamed, duplicated or expired keys, an old server key. Exits
    /// 1 when anything is found.
    Audit {
        #[arg(long)]
        keys: PathBuf,
        /// More secret files to check the same way (TLS keys, Logon password files).
        paths: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
        /// Report a server key older than this.
        #[arg(long, default_value = "365d", value_parser = humantime::parse_duration)]
        max_server_key_age: std::time::Duration,
    },
    /// List authorized and revoked keys.
    List {
        #[arg(long)]
        keys: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(args: Args) -> super::Outcome {
    // All of it is small, synchronous file work.
    tokio::task::spawn_blocking(move || match args.command {
        KeysCommand::Gen {
            name,
            dir,
            client,
            topics,
            force,
        } => gen(&name, &dir, client, topics, force),
        KeysCommand::Authorize {
            keys,
            name,
            public,
            from,
            topics,
            expires,
            force,
        } => authorize(&keys, &name, public, from, topics, expires, force),
        KeysCommand::Revoke { keys, name } => revoke(&keys, &name),
        KeysCommand::Restore { keys, name } => restore(&keys, &name),
        KeysCommand::List { keys, json } => list(&keys, json),
        KeysCommand::Audit {
            keys,
            paths,
            json,
            max_server_key_age,
        } => audit(&keys, paths, json, max_server_key_age),
        KeysCommand::RotateServer {
            keys,
            overlap,
            force,
        } => rotate_server(&keys, overlap, force),
    })
    .await?
}

fn metadata(name: &str, topics: &Option<Vec<String>>) -> Vec<(String, String)> {
    let mut meta = vec![("name".to_string(), name.to_string())];
    if let Some(t) = topics {
        meta.push(("topics".into(), t.join(",")));
    }
    meta
}

fn gen(
    name: &str,
    dir: &Path,
    client: bool,
    topics: Option<Vec<String>>,
    force: bool,
) -> super::Outcome {
    check_name(name)?;
    let dir = if client {
        let d = dir.join("clients");
        fsutil::create_dir_mode(&d, 0o700)?;
        d
    } else {
        // A folder made to hold a secret key is private (server/ included), as ssh's ~/.ssh.
        if !dir.is_dir() {
            fsutil::create_dir_mode(dir, 0o700)?;
        }
        dir.to_path_buf()
    };
    let secret = dir.join(format!("{name}.key_secret"));
    if secret.exists() && !force {
        bail!("{} exists; pass --force to replace it", secret.display());
    }
    let keypair = Keypair::generate();
    let (public, secret) = cert::write_keypair(&dir, name, &keypair, &metadata(name, &topics))?;
    println!("{}", keypair.public);
    eprintln!("wrote {} and {}", public.display(), secret.display());
    Ok(ExitCode::SUCCESS)
}

fn authorize(
    root: &Path,
    name: &str,
    public: Option<String>,
    from: Option<PathBuf>,
    topics: Option<Vec<String>>,
    expires: Option<String>,
    force: bool,
) -> super::Outcome {
    check_name(name)?;
    for t in topics.iter().flatten() {
        if let Some(b) = t.bytes().find(|b| *b < 0x21) {
            bail!(
                "--topics entry {t:?} contains byte 0x{b:02X}, which never appears in a topic; \
                 write it escaped as published (%{b:02X})"
            );
        }
    }
    let mut meta = metadata(name, &topics);
    if let Some(e) = expires {
        let at = time::OffsetDateTime::parse(&e, &time::format_description::well_known::Rfc3339)
            .with_context(|| format!("--expires {e:?}: not an RFC 3339 time"))?;
        if at <= time::OffsetDateTime::now_utc() {
            bail!("--expires {e:?} is in the past");
        }
        meta.push(("expires".into(), e));
    }
    let key = match (public, from) {
        (Some(z85), _) => PublicKey::from_z85(&z85).context("--public")?,
        (None, Some(path)) => cert::read_public(&path)?.key,
        (None, None) => bail!("give --public Z85 or --from FILE"),
    };
    let snap = Snapshot::scan(root, None);
    let target = root.join("authorized").join(format!("{name}.key"));
    if !force {
        if target.exists() {
            bail!("{} exists; pass --force to replace it", target.display());
        }
        if let Some(e) = snap.find_authorized(&key) {
            bail!(
                "this key is already authorized as {:?} ({}); pass --force to add it again",
                e.name,
                e.file.display()
            );
        }
    }
    if let Some(e) = snap.find_revoked(&key) {
        eprintln!(
            "warning: this key is revoked ({}); revocation wins until `fixcurve keys restore`",
            e.file.display()
        );
    }
    std::fs::create_dir_all(root.join("authorized"))
        .with_context(|| format!("creating {}", root.join("authorized").display()))?;
    cert::write_public(&target, &key, &meta)?;
    eprintln!("authorized {name} ({key}) in {}", target.display());
    Ok(ExitCode::SUCCESS)
}

/// Finds keyring entries by name (metadata name or file stem) or by Z85 public key.
fn matches(entry: &crate::keyring::Entry, what: &str) -> bool {
    entry.name == what
        || entry.file.file_stem().and_then(|s| s.to_str()) == Some(what)
        || entry.key.to_z85() == what
}

fn revoke(root: &Path, what: &str) -> super::Outcome {
    let snap = Snapshot::scan(root, None);
    let revoked_dir = root.join("revoked");
    std::fs::create_dir_all(&revoked_dir)
        .with_context(|| format!("creating {}", revoked_dir.display()))?;
    let found: Vec<_> = snap
        .authorized
        .values()
        .filter(|e| matches(e, what))
        .collect();
    if found.is_empty() {
        if let Some(e) = snap.revoked.values().find(|e| matches(e, what)) {
            eprintln!("{what} is already revoked ({})", e.file.display());
            return Ok(ExitCode::SUCCESS);
        }
        // An unknown Z85 key can still be revoked ahead of time.
        let key = PublicKey::from_z85(what).map_err(|_| {
            anyhow::anyhow!(
                "no key named {what:?} in {}",
                root.join("authorized").display()
            )
        })?;
        let stem = format!("key-{}", hex::encode(&key.as_bytes()[..8]));
        let path = revoked_dir.join(format!("{stem}.key"));
        cert::write_public(&path, &key, &[("name".into(), stem)])?;
        eprintln!("revoked {key} ahead of use: {}", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    for e in found {
        let file_name = e.file.file_name().context("key file without a name")?;
        let to = revoked_dir.join(file_name);
        std::fs::rename(&e.file, &to)
            .with_context(|| format!("moving {} to {}", e.file.display(), to.display()))?;
        eprintln!("revoked {} ({}): {}", e.name, e.key, to.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn restore(root: &Path, what: &str) -> super::Outcome {
    let snap = Snapshot::scan(root, None);
    let found: Vec<_> = snap.revoked.values().filter(|e| matches(e, what)).collect();
    if found.is_empty() {
        bail!(
            "no revoked key named {what:?} in {}",
            root.join("revoked").display()
        );
    }
    let authorized_dir = root.join("authorized");
    std::fs::create_dir_all(&authorized_dir)
        .with_context(|| format!("creating {}", authorized_dir.display()))?;
    for e in found {
        let file_name = e.file.file_name().context("key file without a name")?;
        let to = authorized_dir.join(file_name);
        if to.exists() {
            bail!("{} exists; remove one of the two first", to.display());
        }
        std::fs::rename(&e.file, &to)
            .with_context(|| format!("moving {} to {}", e.file.display(), to.display()))?;
        eprintln!("restored {} ({}): {}", e.name, e.key, to.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn audit(
    root: &Path,
    extra_secrets: Vec<PathBuf>,
    json: bool,
    max_server_key_age: std::time::Duration,
) -> super::Outcome {
    if !root.is_dir() {
        bail!("{}: not a keyring directory", root.display());
    }
    let findings = crate::keyring::checks::audit(
        root,
        &crate::keyring::checks::Options {
            now: std::time::SystemTime::now(),
            max_server_key_age,
            extra_secrets,
        },
    );
    if json {
        println!("{}", serde_json::to_string_pretty(&findings)?);
    } else if findings.is_empty() {
        println!("{}: no findings", root.display());
    } else {
        for f in &findings {
            println!("{:<22} {}: {}", f.check, f.path.display(), f.message);
        }
    }
    Ok(if findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn rotate_server(root: &Path, overlap: std::time::Duration, force: bool) -> super::Outcome {
    let r = crate::keyring::server::rotate(root, overlap, force)?;
    let until = crate::keyring::snapshot::rfc3339(time::OffsetDateTime::from(r.retire_at));
    println!("{}", r.new);
    eprintln!(
        "new server key {} in {}\nold server key {} still served until {until} ({})\n\
         hand out {} to subscribers; list both keys in clients until then",
        r.new,
        root.join("server/server.key").display(),
        r.old,
        root.join("server/previous.key").display(),
        root.join("server/server.key").display(),
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(serde::Serialize)]
struct Row<'a> {
    name: &'a str,
    public_key: String,
    status: Status,
    /// Revoked keys that are also still in authorized/ show as revoked there too.
    effective: bool,
    topics: Option<&'a [String]>,
    file: String,
}

fn list(root: &Path, json: bool) -> super::Outcome {
    if !root.is_dir() {
        bail!("{}: not a keyring directory", root.display());
    }
    let snap = Snapshot::scan(root, None);
    let rows: Vec<Row> = snap
        .entries()
        .map(|(status, e)| Row {
            name: &e.name,
            public_key: e.key.to_z85(),
            status,
            effective: status == Status::Authorized && snap.find_revoked(&e.key).is_none(),
            topics: e.topics.as_deref(),
            file: e.file.display().to_string(),
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        for r in &rows {
            let status = match (r.status, r.effective) {
                (Status::Authorized, true) => "authorized",
                (Status::Authorized, false) => "authorized (revoked)",
                (Status::Revoked, _) => "revoked",
            };
            let topics = r.topics.map_or_else(|| "*".to_string(), |t| t.join(","));
            println!(
                "{:<20} {:<21} {} topics={} {}",
                r.name, status, r.public_key, topics, r.file
            );
        }
    }
    for p in &snap.problems {
        eprintln!("warning: {p}");
    }
    Ok(ExitCode::SUCCESS)
}

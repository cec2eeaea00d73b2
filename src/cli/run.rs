//! `fixcurve run --config FILE`: the fan-out daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args as ClapArgs;
use tokio::signal::unix::{signal, SignalKind};

use crate::audit::AuditLog;
use crate::bridge::{keys, Bridge};
use crate::config::Config;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// The configuration file (see config/fixcurve.example.toml).
    #[arg(long)]
    pub config: PathBuf,
    /// Check the configuration and exit.
    #[arg(long)]
    pub check: bool,
}

/// The audit log and the keyring of `cfg` (the bridge's and an edge's).
pub(super) fn open_audit_and_keys(
    cfg: &Config,
) -> anyhow::Result<(
    AuditLog,
    crate::bridge::PublishKeys,
    std::sync::Arc<crate::keyring::Keyring>,
)> {
    if let Some(dir) = cfg.audit.path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("audit dir {}", dir.display()))?;
    }
    let audit = AuditLog::open(&cfg.audit.path)
        .with_context(|| format!("audit log {}", cfg.audit.path.display()))?;
    let (keys, keyring) = keys::open(&cfg.publish.keys, audit.clone())
        .with_context(|| format!("keyring {}", cfg.publish.keys.display()))?;
    Ok((audit, keys, keyring))
}

pub async fn run(args: Args) -> super::Outcome {
    let cfg = Config::load(&args.config)?;
    if cfg.source.nats.is_some() {
        anyhow::bail!(
            "{}: [source.nats] is an edge's configuration: run it with `fixcurve edge --config`",
            args.config.display()
        );
    }
    if args.check {
        println!("{}: ok", args.config.display());
        return Ok(ExitCode::SUCCESS);
    }
    let (audit, keys, keyring) = open_audit_and_keys(&cfg)?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut bridge = Bridge::start(&cfg, keys, audit.clone()).await?;
    tracing::info!(sessions = cfg.session.len(), "bridge running");
    let failure = loop {
        tokio::select! {
            _ = int.recv() => break None,
            _ = term.recv() => break None,
            // TLS material reloads itself on SIGHUP (each listener listens for it); the
            // keyring (which also watches its folders) is rescanned here, and live
            // connections are re-checked against it if anything changed.
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading TLS material and keyring");
                let keyring = keyring.clone();
                let _ = tokio::task::spawn_blocking(move || keyring.reload("SIGHUP")).await;
            }
            e = bridge.failed() => break Some(e),
        }
    };
    tracing::info!("shutting down: Logout to FIX peers, flushing subscribers");
    let totals = bridge.stop().await;
    tracing::info!(
        fix_messages = totals.fix_messages,
        events = totals.events_published,
        "stopped"
    );
    match failure {
        Some(e) => Err(e),
        None => Ok(ExitCode::SUCCESS),
    }
}

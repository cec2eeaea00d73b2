//! `fixcurve edge --config FILE`: serve CURVE subscribers from the bridge's JetStream stream
//! (see `nats::edge`), with the edge's own keyring.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args as ClapArgs;
use tokio::signal::unix::{signal, SignalKind};

use crate::audit::AuditLog;
use crate::bridge::keys;
use crate::config::Config;
use crate::nats::edge::Edge;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// The edge's configuration file: [source.nats], [publish], [journal], [state].
    #[arg(long)]
    pub config: PathBuf,
    /// Check the configuration and exit.
    #[arg(long)]
    pub check: bool,
}

pub async fn run(args: Args) -> super::Outcome {
    let cfg = Config::load(&args.config)?;
    if cfg.source.nats.is_none() {
        anyhow::bail!(
            "{}: an edge needs a [source.nats] section (the stream it serves)",
            args.config.display()
        );
    }
    if args.check {
        println!("{}: ok", args.config.display());
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(dir) = cfg.audit.path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("audit dir {}", dir.display()))?;
    }
    let audit = AuditLog::open(&cfg.audit.path)
        .with_context(|| format!("audit log {}", cfg.audit.path.display()))?;
    let (keys, keyring) = keys::open(&cfg.publish.keys, audit.clone())
        .with_context(|| format!("keyring {}", cfg.publish.keys.display()))?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let edge = Edge::start(&cfg, keys, audit).await?;
    loop {
        tokio::select! {
            _ = int.recv() => break,
            _ = term.recv() => break,
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading the keyring");
                let keyring = keyring.clone();
                let _ = tokio::task::spawn_blocking(move || keyring.reload("SIGHUP")).await;
            }
        }
    }
    tracing::info!("edge shutting down");
    edge.stop().await;
    Ok(ExitCode::SUCCESS)
}

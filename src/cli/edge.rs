//! `fixcurve edge --config FILE`: serve CURVE subscribers from the bridge's JetStream stream
//! (see `nats::edge`), with the edge's own keyring.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args as ClapArgs;
use tokio::signal::unix::{signal, SignalKind};

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
    let (audit, keys, keyring) = super::run::open_audit_and_keys(&cfg)?;
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

//! `fixcurve sub`: a command-line CURVE subscriber printing one event per line.

use std::path::PathBuf;

use clap::Args as ClapArgs;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Publisher endpoint, e.g. tcp://127.0.0.1:5556
    #[arg(long)]
    pub connect: String,
    /// The publisher's public key file (ZPL certificate).
    #[arg(long)]
    pub server_key: PathBuf,
    /// This subscriber's secret key file (ZPL `.key_secret`).
    #[arg(long)]
    pub key: PathBuf,
    /// Topic prefix to subscribe to (repeatable; default: everything).
    #[arg(long)]
    pub topic: Vec<String>,
    /// Print events as JSON lines.
    #[arg(long)]
    pub json: bool,
    /// Print topic and payload as hex, for payloads that are not fixcurve envelopes.
    #[arg(long)]
    pub raw: bool,
    /// Exit after N messages.
    #[arg(long)]
    pub count: Option<u64>,
}

pub async fn run(_args: Args) -> super::Outcome {
    super::not_yet("sub")
}

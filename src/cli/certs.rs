//! `fixcurve certs ...`: development PKI and mTLS onboarding checks.

use std::path::PathBuf;

use clap::{Args as ClapArgs, Subcommand};

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    pub command: CertsCommand,
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// A development CA with server and client certificates (and a combined client PEM).
    Dev {
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a certificate (and key, CA, CRL) the way mTLS onboarding troubleshooting does.
    Check {
        #[arg(long)]
        cert: PathBuf,
        #[arg(long)]
        key: Option<PathBuf>,
        #[arg(long)]
        ca: Option<PathBuf>,
        #[arg(long)]
        crl: Option<PathBuf>,
    },
}

pub async fn run(_args: Args) -> super::Outcome {
    super::not_yet("certs")
}

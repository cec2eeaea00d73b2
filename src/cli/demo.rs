//! `fixcurve demo`: the whole bridge in one command, with throw-away PKI and a venue simulator.

use std::path::PathBuf;

use clap::Args as ClapArgs;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Use this keyring (creating the server keypair if absent) and accept its authorized keys.
    #[arg(long)]
    pub keys: Option<PathBuf>,
    /// Where subscribers connect.
    #[arg(long, default_value = "tcp://127.0.0.1:5556")]
    pub bind: String,
    /// FIX messages per second from the simulator.
    #[arg(long, default_value_t = 10)]
    pub rate: u32,
    /// Exit 0 after this many seconds, printing a one-line summary.
    #[arg(long)]
    pub duration: Option<u64>,
}

pub async fn run(_args: Args) -> super::Outcome {
    super::not_yet("demo")
}

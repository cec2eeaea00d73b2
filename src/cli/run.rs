//! `fixcurve run --config FILE`: the fan-out daemon.

use std::path::PathBuf;

use clap::Args as ClapArgs;

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[arg(long)]
    pub config: PathBuf,
}

pub async fn run(_args: Args) -> super::Outcome {
    super::not_yet("run")
}

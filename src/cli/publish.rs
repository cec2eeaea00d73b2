//! `fixcurve pub`: publishes each line of standard input as one `[topic, line]` message.

use std::path::PathBuf;

use clap::Args as ClapArgs;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Endpoint to bind, e.g. tcp://127.0.0.1:5556 (repeatable).
    #[arg(long, required = true)]
    pub bind: Vec<String>,
    /// Keyring root (server/, authorized/, revoked/).
    #[arg(long)]
    pub keys: PathBuf,
    /// Topic frame for every line.
    #[arg(long, default_value = "")]
    pub topic: String,
}

pub async fn run(_args: Args) -> super::Outcome {
    super::not_yet("pub")
}

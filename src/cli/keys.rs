//! `fixcurve keys ...`: key generation and keyring management.

use std::path::PathBuf;

use clap::{Args as ClapArgs, Subcommand};

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
    },
    /// Authorize a subscriber key: writes authorized/NAME.key.
    Authorize {
        #[arg(long)]
        keys: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long, conflicts_with = "from", required_unless_present = "from")]
        public: Option<String>,
        #[arg(long)]
        from: Option<PathBuf>,
        /// Comma-separated topic prefixes this key may receive (default: all).
        #[arg(long, value_delimiter = ',')]
        topics: Option<Vec<String>>,
    },
    /// Revoke a key by name or Z85 public key: moves it to revoked/.
    Revoke {
        #[arg(long)]
        keys: PathBuf,
        name: String,
    },
    /// List authorized and revoked keys.
    List {
        #[arg(long)]
        keys: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(_args: Args) -> super::Outcome {
    super::not_yet("keys")
}

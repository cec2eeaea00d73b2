use std::process::ExitCode;

/// mimalloc rather than glibc's malloc: the daemon's tasks hand buffers between workers, and
/// cross-thread frees were a tenth of the end-to-end profile (see Cargo.toml).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand, ValueEnum};
use fixcurve::cli;

/// FIX over mTLS in, CURVE-secured ZeroMQ PUB/SUB out.
#[derive(Debug, Parser)]
#[command(name = "fixcurve", version, about)]
struct Cli {
    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the fan-out daemon from a configuration file.
    Run(cli::run::Args),
    /// Serve CURVE subscribers from the bridge's JetStream stream (no FIX side).
    Edge(cli::edge::Args),
    /// Run the whole bridge with throw-away keys, a FIX venue simulator and a subscriber.
    Demo(cli::demo::Args),
    /// Generate and manage CURVE keys and the keyring.
    Keys(cli::keys::Args),
    /// Development certificates and mTLS onboarding checks.
    Certs(cli::certs::Args),
    /// Subscribe to a publisher and print what arrives.
    Sub(cli::sub::Args),
    /// Publish standard input, one message per line.
    Pub(cli::publish::Args),
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fixcurve: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Run(a) => cli::run::run(a).await,
            Command::Edge(a) => cli::edge::run(a).await,
            Command::Demo(a) => cli::demo::run(a).await,
            Command::Keys(a) => cli::keys::run(a).await,
            Command::Certs(a) => cli::certs::run(a).await,
            Command::Sub(a) => cli::sub::run(a).await,
            Command::Pub(a) => cli::publish::run(a).await,
        }
    });
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fixcurve: {e:#}");
            ExitCode::FAILURE
        }
    }
}

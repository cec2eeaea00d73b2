//! Subcommands of the `fixcurve` binary. Each file owns one subcommand's arguments and its
//! `run`, so `main.rs` is only dispatch.

pub mod certs;
pub mod demo;
pub mod edge;
pub mod keys;
pub mod publish;
pub mod run;
pub mod sub;

/// What every subcommand returns: the process exit code, or an error printed by `main`.
pub type Outcome = anyhow::Result<std::process::ExitCode>;

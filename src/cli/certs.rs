//! `fixcurve certs ...`: development PKI and mTLS onboarding checks.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand};

use rustls::pki_types::UnixTime;

use crate::tls::ClientTlsSettings;
use crate::tools::certs_check::{check, CheckInput, Verdict};
use crate::tools::certs_dev::{generate, DevOptions};
use crate::tools::probe::probe;

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
        /// RSA-2048 keys (for peers such as QuickFIX 1.15 that load only RSA/DSA keys).
        #[arg(long)]
        rsa: bool,
        /// Validity of the server and client certificates, in days.
        #[arg(long, default_value_t = 365)]
        days: u32,
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
        /// Host name or IP address the certificate must be valid for.
        #[arg(long)]
        host: Option<String>,
    },
    /// Handshake with a TLS server like `openssl s_client` and report what was negotiated.
    Probe {
        /// HOST:PORT
        target: String,
        #[arg(long)]
        cert: Option<PathBuf>,
        #[arg(long)]
        key: Option<PathBuf>,
        #[arg(long)]
        ca: Option<PathBuf>,
        /// Name to verify (default: the host part of the target).
        #[arg(long)]
        server_name: Option<String>,
    },
}

pub async fn run(args: Args) -> super::Outcome {
    match args.command {
        CertsCommand::Dev { out, rsa, days } => {
            let pki = generate(&out, &DevOptions { rsa, days })?;
            println!("CA certificate:        {}", pki.ca.display());
            println!("server certificate:    {}", pki.server_cert.display());
            println!("server key:            {}", pki.server_key.display());
            println!(
                "client certificate:    {}  (CN=client1)",
                pki.client_cert.display()
            );
            println!("client key:            {}", pki.client_key.display());
            println!("client combined PEM:   {}", pki.client_combined.display());
            println!(
                "second client (CN=client2): {}",
                pki.client2_combined.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        CertsCommand::Check {
            cert,
            key,
            ca,
            crl,
            host,
        } => {
            let input = CheckInput {
                cert,
                key,
                ca,
                crl,
                host,
            };
            let checks = check(&input, UnixTime::now());
            let mut failed = 0;
            for c in &checks {
                println!("{c}");
                if c.verdict == Verdict::Fail {
                    failed += 1;
                }
            }
            if failed > 0 {
                println!("{failed} check(s) failed");
                Ok(ExitCode::FAILURE)
            } else {
                println!("all checks passed");
                Ok(ExitCode::SUCCESS)
            }
        }
        CertsCommand::Probe {
            target,
            cert,
            key,
            ca,
            server_name,
        } => {
            let s = ClientTlsSettings {
                cert,
                key,
                ca,
                server_name,
                ..Default::default()
            };
            let r = probe(&target, &s).await?;
            println!("target: {target}");
            println!(
                "protocol: {}",
                r.protocol.as_deref().unwrap_or("(no handshake)")
            );
            println!("cipher suite: {}", r.suite.as_deref().unwrap_or("-"));
            println!("peer chain: {} certificate(s)", r.chain.len());
            for c in &r.chain {
                println!("  {c}");
            }
            match &r.verification {
                Some(Ok(())) => println!("verification: OK"),
                Some(Err(e)) => println!("verification: FAILED: {e}"),
                None => println!("verification: not checked (no --ca)"),
            }
            if let Some(why) = &r.refused_after_handshake {
                println!("refused: {why}");
            }
            Ok(if r.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

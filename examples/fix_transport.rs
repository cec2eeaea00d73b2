//! Runs only the FIX side of a configuration file — its acceptors and initiators — and
//! prints every session event on stdout, so FIX connectivity (certificates, CompID
//! bindings, sequence numbers) can be exercised without the ZeroMQ side. The interop tests
//! drive it; operators can use it to rehearse onboarding a counterparty.
//!
//!     cargo run --example fix_transport -- --config fixcurve.toml
//!
//! stdout: `LOGON <session>`, `APP <session> <message with | separators>`,
//! `EVENT <session> <event>`, `DISCONNECT <session> <reason>`.
//! stdin: `send <SENDER->TARGET> <MsgType> tag=value|tag=value...`, `quit`.

use std::path::PathBuf;

use fixcurve::audit::AuditLog;
use fixcurve::config::Config;
use fixcurve::fix::session::SessionEvent;
use fixcurve::fix::transport::{
    acceptor::run_acceptor_with, from_config, initiator::run_initiator_with, OutboundApp, Outbox,
};
use tokio::io::AsyncBufReadExt;
use tokio::sync::{mpsc, watch};

fn pretty(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).replace('\x01', "|")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    let path = match args.iter().position(|a| a == "--config") {
        Some(i) => PathBuf::from(args.get(i + 1).cloned().unwrap_or_default()),
        None => anyhow::bail!("usage: fix_transport --config FILE"),
    };
    let cfg = Config::load(&path)?;
    let audit = AuditLog::open(&cfg.audit.path)?;
    let (tx, mut rx) = mpsc::channel(1024);
    let (stop_tx, stop_rx) = watch::channel(false);
    let outbox = Outbox::default();
    let mut tasks = tokio::task::JoinSet::new();
    for a in &cfg.acceptor {
        let ac = from_config::acceptor_config(&cfg, a)?;
        tasks.spawn(run_acceptor_with(
            ac,
            cfg.state.dir.clone(),
            audit.clone(),
            tx.clone(),
            stop_rx.clone(),
            outbox.clone(),
        ));
    }
    for i in &cfg.initiator {
        let ic = from_config::initiator_config(&cfg, i)?;
        tasks.spawn(run_initiator_with(
            ic,
            cfg.state.dir.clone(),
            audit.clone(),
            tx.clone(),
            stop_rx.clone(),
            outbox.clone(),
        ));
    }
    drop(tx);
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut stdin_open = true;
    loop {
        tokio::select! {
            ev = rx.recv() => {
                let Some(ev) = ev else { break };
                match &ev.event {
                    SessionEvent::LoggedOn { .. } => println!("LOGON {}", ev.session),
                    SessionEvent::App(m) => println!("APP {} {}", ev.session, pretty(m.as_bytes())),
                    SessionEvent::Disconnect { reason } => println!("DISCONNECT {} {reason}", ev.session),
                    other => println!("EVENT {} {other:?}", ev.session),
                }
            }
            line = stdin.next_line(), if stdin_open => match line {
                Ok(Some(l)) => {
                    let mut parts = l.splitn(4, ' ');
                    match (parts.next(), parts.next(), parts.next(), parts.next()) {
                        (Some("send"), Some(sid), Some(t), rest) => {
                            match OutboundApp::parse(t, rest.unwrap_or("")) {
                                Some(m) => match outbox.send(sid, m) {
                                    Ok(()) => println!("QUEUED {sid}"),
                                    Err(e) => println!("ERROR {e}"),
                                },
                                None => println!("ERROR bad fields"),
                            }
                        }
                        (Some("quit"), ..) => { let _ = stop_tx.send(true); }
                        _ => println!("ERROR unknown command"),
                    }
                }
                _ => stdin_open = false,
            },
            _ = tokio::signal::ctrl_c() => { let _ = stop_tx.send(true); }
            _ = term.recv() => { let _ = stop_tx.send(true); }
            r = tasks.join_next(), if !tasks.is_empty() => {
                if let Some(Ok(Err(e))) = r {
                    eprintln!("error: {e}");
                    let _ = stop_tx.send(true);
                    std::process::exit(1);
                }
            }
        }
    }
    while tasks.join_next().await.is_some() {}
    println!("STOPPED");
    // tokio's stdin reader sits in a blocking thread the runtime would wait for forever.
    std::process::exit(0)
}

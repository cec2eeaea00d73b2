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
//!
//! `--echo` makes it the counterpart QuickFIX's acceptance tests expect (their `at` server):
//! NewOrderSingle (D, deduplicated by ClOrdID when PossResend), SecurityDefinition (d) and
//! Email (C) are sent back as they came; any other application message gets a
//! BusinessMessageReject. A test harness only: the bridge never echoes.

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

/// What the acceptance tests' `at` server sends back.
const ECHOED: &[&str] = &["D", "d", "C"];

/// Header and trailer tags: the echo carries the body only (the session writes its own header).
const NOT_ECHOED: &[u32] = &[
    8, 9, 35, 49, 56, 34, 52, 43, 122, 10, 115, 128, 116, 129, 144, 145,
];

fn echo_back(
    outbox: &Outbox,
    session: &str,
    m: &fixcurve::fix::Message,
    seen: &mut std::collections::HashSet<(String, Vec<u8>)>,
) {
    let msg_type = String::from_utf8_lossy(m.msg_type()).into_owned();
    if msg_type == "D" {
        let cl_ord_id = m.get(11).map(|f| f.value.to_vec()).unwrap_or_default();
        let poss_resend = m.get(97).is_some_and(|f| f.value == b"Y");
        let fresh = seen.insert((session.to_owned(), cl_ord_id));
        if poss_resend && !fresh {
            return;
        }
    }
    let fields = m
        .fields()
        .filter(|f| !NOT_ECHOED.contains(&f.tag))
        .map(|f| (f.tag, f.value.to_vec()))
        .collect();
    if let Err(e) = outbox.send(session, OutboundApp { msg_type, fields }) {
        println!("ERROR echo: {e}");
    }
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
    let echo = args.iter().any(|a| a == "--echo");
    let cfg = Config::load(&path)?;
    let mut echoed: std::collections::HashSet<(String, Vec<u8>)> = Default::default();
    let audit = AuditLog::open(&cfg.audit.path)?;
    let (tx, mut rx) = mpsc::channel(1024);
    let (stop_tx, stop_rx) = watch::channel(false);
    let outbox = Outbox::default();
    let mut tasks = tokio::task::JoinSet::new();
    for a in &cfg.acceptor {
        let mut ac = from_config::acceptor_config(&cfg, a)?;
        if echo {
            for b in &mut ac.sessions {
                b.session.app_msg_types = Some(ECHOED.iter().map(|t| (*t).to_owned()).collect());
                b.session.normalize_app = None;
            }
        }
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
                let Some(mut ev) = ev else { break };
                // No journal here: acknowledge at once.
                if let Some(a) = ev.ack.take() {
                    let _ = a.done.send(());
                }
                let Some(event) = &ev.event else { continue };
                match event {
                    SessionEvent::LoggedOn { .. } => {
                        // As the acceptance tests' `at` server: PossResend memory per logon.
                        echoed.retain(|(s, _)| s.as_str() != &*ev.session);
                        println!("LOGON {}", ev.session)
                    }
                    SessionEvent::App { msg: m, .. } => {
                        println!("APP {} {}", ev.session, pretty(m.as_bytes()));
                        if echo {
                            echo_back(&outbox, &ev.session, m, &mut echoed);
                        }
                    }
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

//! A downstream application receiving fixcurve events with the Rust subscriber API.
//!
//! ```sh
//! cargo run --example subscribe -- tcp://127.0.0.1:5556 keys/server/server.key \
//!     keys/clients/me.key_secret md.VENUE1. exec.
//! ```
//!
//! `--json` prints each event as one JSON line (the envelope plus its topic) instead.

use fixcurve::client::{Subscriber, Update};
use fixcurve::normalize::Event;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    args.retain(|a| a != "--json");
    let [endpoint, server_key, client_secret, prefixes @ ..] = args.as_slice() else {
        anyhow::bail!("usage: subscribe ENDPOINT SERVER.key CLIENT.key_secret [PREFIX...]");
    };
    let server = fixcurve::client::read_server_key(server_key.as_ref())?;
    let me = fixcurve::client::read_client_keypair(client_secret.as_ref())?;
    let prefixes: Vec<&str> = prefixes.iter().map(String::as_str).collect();
    let mut sub = Subscriber::connect(endpoint, server, me, &prefixes)?;
    while let Some(update) = sub.recv().await {
        match update {
            Update::Event(r) if json => println!("{}", fixcurve::client::json_line(&r)),
            Update::Event(r) => match &r.envelope.event {
                // Prices are rust_decimal::Decimal: exact, as the venue sent them.
                Event::Execution(x) => println!(
                    "{} {} {} {:?}@{:?} (order {})",
                    r.topic, x.exec_type, x.side, x.last_qty, x.last_px, x.order_id
                ),
                Event::Quote(q) => {
                    println!("{} bid {:?} offer {:?}", q.symbol, q.bid_px, q.offer_px)
                }
                other => println!("{} #{} {}", r.topic, r.envelope.seq, other.kind()),
            },
            Update::Gap {
                topic,
                expected,
                missing,
            } => eprintln!("GAP on {topic}: {missing} message(s) from seq {expected} lost"),
            Update::Restart { topic } => eprintln!("publisher restarted ({topic})"),
            Update::Connected => eprintln!("connected"),
            Update::Disconnected { reason } => eprintln!("disconnected ({reason}); reconnecting"),
            Update::Undecodable { topic, error } => eprintln!("skipping {topic}: {error}"),
        }
    }
    Ok(())
}

//! The Rust subscriber API against the real publisher on loopback: typed events, prefix
//! subscriptions, gap reports, and a publisher restart seen as disconnect → reconnect →
//! resubscribe → `Restart` (new epoch) rather than a gap.

use std::time::Duration;

use bytes::Bytes;
use fixcurve::audit::AuditLog;
use fixcurve::auth::{Grant, StaticAuthorizer, TopicAcl};
use fixcurve::client::{Options, Subscriber, Update};
use fixcurve::envelope::{Envelope, VERSION};
use fixcurve::keys::Keypair;
use fixcurve::normalize::{Event, TradingSessionStatus};
use fixcurve::pubsub::{Publisher, PublisherConfig};
use tokio::time::timeout;

mod support;
use support::{Deadline, WAIT};

fn envelope(epoch: u64, seq: u64, text: &str) -> Bytes {
    Bytes::from(
        Envelope {
            version: VERSION,
            epoch,
            seq,
            received_ns: 1,
            venue: "V".into(),
            session: "A->B".into(),
            fix_seq: Some(seq),
            event: Event::TradingSessionStatus(TradingSessionStatus {
                trading_session_id: "DAY".into(),
                status: "2".into(),
                text: Some(text.into()),
            }),
        }
        .encode()
        .unwrap(),
    )
}

/// `client` may connect and read every topic.
fn grant_all(client: &Keypair) -> std::sync::Arc<StaticAuthorizer> {
    StaticAuthorizer::new(vec![(
        client.public,
        Grant {
            name: "c".into(),
            topics: TopicAcl::all(),
        },
    )])
}

async fn bind(server: &Keypair, client: &Keypair, ep: &str) -> Publisher {
    let auth = grant_all(client);
    Publisher::bind(
        PublisherConfig::new(vec![ep.into()], server.clone()),
        auth,
        AuditLog::discard(),
    )
    .await
    .unwrap()
}

/// Next update that is not a connection-state change.
async fn next_data(sub: &mut Subscriber) -> Update {
    loop {
        match timeout(WAIT, sub.recv()).await.expect("update in time") {
            Some(Update::Connected) | Some(Update::Disconnected { .. }) => continue,
            Some(u) => return u,
            None => panic!("subscriber ended"),
        }
    }
}

/// Publishes seq 1 of `topic` until the subscriber sees it (subscriptions propagate
/// asynchronously; no sleeping).
async fn sync(p: &Publisher, sub: &mut Subscriber, topic: &'static str, epoch: u64) {
    let deadline = Deadline::new(format!("a delivery on {topic}"));
    loop {
        deadline.check();
        p.publish(
            Bytes::from_static(topic.as_bytes()),
            envelope(epoch, 1, "sync"),
        );
        if let Ok(Some(Update::Event(r))) = timeout(Duration::from_millis(100), sub.recv()).await {
            if r.topic == topic {
                return;
            }
        }
    }
}

#[tokio::test]
async fn typed_events_prefixes_gaps_and_restart() {
    let server = Keypair::generate();
    let client = Keypair::generate();
    let p = bind(&server, &client, "tcp://127.0.0.1:0").await;
    let ep = p.local_endpoints()[0].clone();
    let opts = Options {
        reconnect_min: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(200),
        ..Options::default()
    };
    let mut sub =
        Subscriber::connect_with(&ep, server.public, client.clone(), &["status.V"], opts).unwrap();
    sync(&p, &mut sub, "status.V", 7).await;

    // Not subscribed: never delivered. Then 2, (3, 4 lost), 5 on the subscribed topic.
    p.publish(Bytes::from_static(b"md.V.X"), envelope(7, 1, "other"));
    p.publish(Bytes::from_static(b"status.V"), envelope(7, 2, "two"));
    p.publish(Bytes::from_static(b"status.V"), envelope(7, 5, "five"));
    match next_data(&mut sub).await {
        Update::Event(r) => {
            assert_eq!((r.topic.as_str(), r.envelope.seq), ("status.V", 2));
            let Event::TradingSessionStatus(h) = &r.envelope.event else {
                panic!("{:?}", r.envelope.event)
            };
            assert_eq!(h.text.as_deref(), Some("two"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        next_data(&mut sub).await,
        Update::Gap {
            topic: "status.V".into(),
            expected: 3,
            missing: 2
        }
    );
    assert!(matches!(next_data(&mut sub).await, Update::Event(r) if r.envelope.seq == 5));

    // Restart the publisher on the same port with a new epoch: the subscriber reconnects,
    // resubscribes by itself, and reports a restart, not a gap.
    let port_ep = ep.clone();
    p.shutdown().await;
    drop(p);
    let saw_disconnect = loop {
        match timeout(WAIT, sub.recv()).await.unwrap() {
            Some(Update::Disconnected { .. }) => break true,
            Some(_) => continue,
            None => break false,
        }
    };
    assert!(saw_disconnect);
    let p2 = bind(&server, &client, &port_ep).await;
    loop {
        match timeout(WAIT, sub.recv()).await.unwrap() {
            Some(Update::Connected) => break,
            Some(_) => continue,
            None => panic!("ended"),
        }
    }
    loop {
        p2.publish(Bytes::from_static(b"status.V"), envelope(8, 1, "again"));
        match timeout(Duration::from_millis(100), sub.recv()).await {
            Ok(Some(Update::Restart { topic })) => {
                assert_eq!(topic, "status.V");
                break;
            }
            Ok(Some(Update::Gap { .. })) => panic!("a restart must not look like a gap"),
            _ => continue,
        }
    }
    p2.shutdown().await;
}

/// Forwards one connection to `to`, but holds what the client sends after its CURVE
/// handshake (greeting, HELLO, INITIATE) until `release` is notified: the subscription is
/// then known to be on its way and not yet in effect, the window a `since` replay must cover.
async fn relay_holding_subscriptions(
    listener: tokio::net::TcpListener,
    to: String,
    release: std::sync::Arc<tokio::sync::Notify>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (client, _) = listener.accept().await.unwrap();
    let server = tokio::net::TcpStream::connect(to.trim_start_matches("tcp://"))
        .await
        .unwrap();
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut sr, &mut cw).await;
    });
    // ZMTP: a 64-byte greeting, then frames of flags (0x02 long, 0x04 command) and a size.
    // Forwarded as they complete, up to the end of the second command (INITIATE).
    let mut held = Vec::new();
    let mut sent = 0usize;
    let mut pos = 64usize;
    let mut commands = 0;
    let mut buf = vec![0u8; 4096];
    while commands < 2 {
        let n = cr.read(&mut buf).await.unwrap();
        assert!(n > 0, "client closed during the handshake");
        held.extend_from_slice(&buf[..n]);
        let mut upto = held.len().min(64);
        while commands < 2 && held.len() >= pos {
            upto = pos;
            let Some(&flags) = held.get(pos) else { break };
            let (len, head) = if flags & 0x02 != 0 {
                let Some(b) = held.get(pos + 1..pos + 9) else {
                    break;
                };
                (u64::from_be_bytes(b.try_into().unwrap()) as usize, 9)
            } else {
                let Some(&b) = held.get(pos + 1) else { break };
                (b as usize, 2)
            };
            if held.len() < pos + head + len {
                break;
            }
            assert!(flags & 0x04 != 0, "a message frame inside the handshake");
            pos += head + len;
            commands += 1;
            upto = pos;
        }
        if upto > sent {
            sw.write_all(&held[sent..upto]).await.unwrap();
            sent = upto;
        }
    }
    let rest = held.split_off(sent);
    release.notified().await;
    sw.write_all(&rest).await.unwrap();
    let _ = tokio::io::copy(&mut cr, &mut sw).await;
}

/// `since` replays the journal when the handshake completes, before the subscription reaches
/// the publisher (ZMTP does not acknowledge it). An event on a new topic published in that
/// window is in neither the replay nor the live stream, and no later event on its topic shows
/// it missing: the subscriber must still deliver it, from the journal, before the first live
/// event, with no gap and nothing twice.
#[tokio::test]
async fn since_covers_events_published_before_the_subscription_took_effect() {
    subscription_window(true).await;
}

/// The same window with nothing published after it: the client's idle check reads it.
#[tokio::test]
async fn since_covers_the_window_when_nothing_live_follows() {
    subscription_window(false).await;
}

/// An event on a new topic published while the subscription is held back; then, if `live`,
/// live events until one arrives. Asserts the window's event arrives once, before any live
/// one, with no gap.
async fn subscription_window(live: bool) {
    use fixcurve::journal::{Journal, JournalConfig};
    use fixcurve::replay::{ReplayServer, ReplaySources, Snapshots};
    use std::sync::Arc;

    let server = Keypair::generate();
    let client = Keypair::generate();
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(JournalConfig::new(dir.path().join("journal")), 7).unwrap();
    let replay = ReplayServer::bind(
        &["tcp://127.0.0.1:0".to_string()],
        server.clone(),
        grant_all(&client),
        ReplaySources {
            journal: Some(journal.reader()),
            snapshots: Arc::new(Snapshots::new()),
        },
        Arc::new(fixcurve::metrics::Registry::default()),
        AuditLog::discard(),
    )
    .await
    .unwrap();
    let p = bind(&server, &client, "tcp://127.0.0.1:0").await;
    // As the bridge does: journaled (and flushed) first, then published.
    let mut publish = |topic: &'static str, seq: u64, text: &str| {
        let env = envelope(7, seq, text);
        journal.append(topic, seq, None, &env);
        journal.flush().unwrap();
        p.publish(Bytes::from_static(topic.as_bytes()), env);
    };
    publish("exec.V.A", 1, "before");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_ep = format!("tcp://{}", listener.local_addr().unwrap());
    let release = Arc::new(tokio::sync::Notify::new());
    tokio::spawn(relay_holding_subscriptions(
        listener,
        p.local_endpoints()[0].clone(),
        release.clone(),
    ));
    let opts = Options {
        replay: Some(replay.local_endpoints()[0].clone()),
        since: Some(1),
        ..Options::default()
    };
    let mut sub =
        Subscriber::connect_with(&relay_ep, server.public, client, &["exec."], opts).unwrap();
    // The replay has run when `Connected` is delivered, and what it read follows it: A #1.
    let next = |u: Option<Option<Update>>| u.expect("an update in time").expect("subscriber ended");
    assert_eq!(
        next(timeout(WAIT, sub.recv()).await.ok()),
        Update::Connected
    );
    let mut got = Vec::new();
    match next(timeout(WAIT, sub.recv()).await.ok()) {
        Update::Event(r) => got.push((r.topic.clone(), r.envelope.seq)),
        other => panic!("{other:?}"),
    }
    assert_eq!(got, [("exec.V.A".to_string(), 1)]);
    // In the window: journaled and published while the subscription is held back.
    publish("exec.V.B", 1, "in the window");
    release.notify_one();
    if !live {
        // Nothing follows: only the idle check (after a second without messages) can find it.
        loop {
            match timeout(WAIT, sub.recv())
                .await
                .expect("the window's event in time")
            {
                Some(Update::Event(r)) => {
                    got.push((r.topic.clone(), r.envelope.seq));
                    if r.topic == "exec.V.B" {
                        break;
                    }
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got.last(), Some(&("exec.V.B".to_string(), 1)), "{got:?}");
        p.shutdown().await;
        return;
    }
    // Live from here; published until one arrives (the subscription lands when it lands).
    let deadline = Deadline::new("a live event after the subscription landed");
    let mut seq = 1;
    'live: loop {
        deadline.check();
        publish("exec.V.C", seq, "live");
        seq += 1;
        while let Ok(Some(u)) = timeout(Duration::from_millis(100), sub.recv()).await {
            match u {
                Update::Event(r) => {
                    got.push((r.topic.clone(), r.envelope.seq));
                    if r.topic == "exec.V.C" {
                        break 'live;
                    }
                }
                Update::Connected | Update::Disconnected { .. } => {}
                other => panic!("{other:?}"),
            }
        }
    }
    let want_prefix = [("exec.V.B".to_string(), 1)];
    let b_at = got.iter().position(|e| e.0 == "exec.V.B");
    assert!(
        b_at.is_some(),
        "the event published in the window never arrived: {got:?}"
    );
    assert_eq!(
        got.iter().filter(|e| e.0 == "exec.V.B").count(),
        1,
        "{got:?}"
    );
    assert_eq!(
        got.get(b_at.unwrap()..b_at.unwrap() + 1),
        Some(&want_prefix[..])
    );
    // It came before the first live event, and C starts at 1 (the replayed C's first, if any).
    let c_first = got.iter().position(|e| e.0 == "exec.V.C").unwrap();
    assert!(b_at.unwrap() < c_first, "{got:?}");
    assert_eq!(got[c_first].1, 1, "{got:?}");
    p.shutdown().await;
}

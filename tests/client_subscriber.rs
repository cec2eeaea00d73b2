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

async fn bind(server: &Keypair, client: &Keypair, ep: &str) -> Publisher {
    let auth = StaticAuthorizer::new(vec![(
        client.public,
        Grant {
            name: "c".into(),
            topics: TopicAcl::all(),
        },
    )]);
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

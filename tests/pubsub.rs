//! The tokio Publisher and Subscriber end to end on loopback: hostile peers, a hand-made
//! ZMTP 3.0 peer, revocation, live ACL changes, overflow, multipart. Interop with libzmq is
//! in tests/python/test_curve_interop.py.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use fixcurve::audit::AuditLog;
use fixcurve::auth::{Authorizer, Decision, Grant, PeerAddr, StaticAuthorizer, TopicAcl};
use fixcurve::curve::{os_rng, ClientEvent, ClientSession};
use fixcurve::keys::{Keypair, PublicKey};
use fixcurve::pubsub::{Publisher, PublisherConfig, SubEvent, Subscriber, SubscriberConfig};
use fixcurve::zmtp::greeting;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

mod support;
use support::{Deadline, WAIT};

fn grant(name: &str) -> Grant {
    Grant {
        name: name.into(),
        topics: TopicAcl::all(),
    }
}

async fn publisher(
    server: &Keypair,
    auth: Arc<dyn Authorizer>,
    tune: impl FnOnce(&mut PublisherConfig),
) -> (Publisher, String, AuditLog) {
    let mut cfg = PublisherConfig::new(vec!["tcp://127.0.0.1:0".into()], server.clone());
    tune(&mut cfg);
    let audit = AuditLog::memory();
    let p = Publisher::bind(cfg, auth, audit.clone()).await.unwrap();
    let ep = p.local_endpoints()[0].clone();
    (p, ep, audit)
}

fn subscriber(ep: &str, server: &Keypair, client: &Keypair, topics: &[&str]) -> Subscriber {
    let mut cfg = SubscriberConfig::new(ep, server.public, client.clone());
    cfg.subscriptions = topics
        .iter()
        .map(|t| Bytes::copy_from_slice(t.as_bytes()))
        .collect();
    cfg.reconnect_min = Duration::from_millis(20);
    Subscriber::connect(cfg).unwrap()
}

/// Publishes `[topic, marker]` until `sub` delivers that marker: proves the path is live
/// without sleeping (subscriptions propagate asynchronously).
async fn sync(p: &Publisher, sub: &mut Subscriber, topic: &str, marker: &str) {
    let deadline = Deadline::new(format!("a delivery of {marker}"));
    loop {
        deadline.check();
        p.publish(
            Bytes::copy_from_slice(topic.as_bytes()),
            Bytes::copy_from_slice(marker.as_bytes()),
        );
        match timeout(Duration::from_millis(20), sub.recv()).await {
            Ok(Some(SubEvent::Message(parts))) if parts[1] == marker.as_bytes() => return,
            Ok(None) => panic!("subscriber ended"),
            _ => {}
        }
    }
}

async fn expect_closed(mut s: TcpStream) {
    let mut buf = vec![0u8; 4096];
    let r = timeout(WAIT, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(r.is_ok(), "connection not closed");
}

/// A hand-driven client: greeting (ZMTP 3.`minor`) and the CURVE handshake over raw TCP.
async fn raw_client(
    ep: &str,
    server: &PublicKey,
    client: &Keypair,
    minor: u8,
) -> (TcpStream, ClientSession) {
    raw_client_buf(ep, server, client, minor, None).await
}

async fn raw_client_buf(
    ep: &str,
    server: &PublicKey,
    client: &Keypair,
    minor: u8,
    rcvbuf: Option<u32>,
) -> (TcpStream, ClientSession) {
    let addr: std::net::SocketAddr = ep.trim_start_matches("tcp://").parse().unwrap();
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(n) = rcvbuf {
        sock.set_recv_buffer_size(n).unwrap();
    }
    let mut s = sock.connect(addr).await.unwrap();
    let mut c = ClientSession::new(client.clone(), *server, 1 << 20, os_rng());
    s.write_all(&c.greeting_version(minor)).await.unwrap();
    let mut out = BytesMut::new();
    loop {
        c.input().reserve(4096);
        assert!(
            s.read_buf(c.input()).await.unwrap() > 0,
            "closed during handshake"
        );
        let ev = c.poll(&mut out).unwrap();
        s.write_all(&out.split()).await.unwrap();
        if let Some(ClientEvent::Ready(_)) = ev {
            return (s, c);
        }
    }
}

#[tokio::test]
async fn hostile_peers_are_closed_without_disturbing_others() {
    let server = Keypair::generate();
    let good = Keypair::generate();
    let auth = StaticAuthorizer::new(vec![(good.public, grant("good"))]);
    let (p, ep, _audit) = publisher(&server, auth, |c| {
        c.handshake_timeout = Duration::from_millis(300);
        c.max_frame = 4096;
        c.max_handshakes_per_ip = 5;
    })
    .await;
    let addr = ep.trim_start_matches("tcp://").to_string();
    let mut sub = subscriber(&ep, &server, &good, &[""]);
    sync(&p, &mut sub, "t", "start").await;

    // bad greeting
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    expect_closed(s).await;
    sync(&p, &mut sub, "t", "after-bad-greeting").await;

    // wrong mechanism
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(&greeting::encode("NULL", false)).await.unwrap();
    expect_closed(s).await;
    sync(&p, &mut sub, "t", "after-null").await;

    // oversized frame (the header alone is refused)
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(&greeting::encode("CURVE", false))
        .await
        .unwrap();
    s.write_all(&[0x06, 0, 0, 0, 0, 0x40, 0, 0, 0])
        .await
        .unwrap();
    expect_closed(s).await;
    sync(&p, &mut sub, "t", "after-oversized").await;

    // tampered box after a valid handshake
    let (mut s, mut c) = raw_client(&ep, &server.public, &good, 1).await;
    let mut out = BytesMut::new();
    c.subscribe(b"t", &mut out).unwrap();
    let n = out.len();
    out[n - 2] ^= 0x40;
    s.write_all(&out.split()).await.unwrap();
    expect_closed(s).await;
    sync(&p, &mut sub, "t", "after-tamper").await;

    // replayed nonce
    let (mut s, mut c) = raw_client(&ep, &server.public, &good, 1).await;
    c.subscribe(b"t", &mut out).unwrap();
    let frame = out.split();
    s.write_all(&frame).await.unwrap();
    s.write_all(&frame).await.unwrap();
    expect_closed(s).await;
    sync(&p, &mut sub, "t", "after-replay").await;

    // handshake stall: greeting, then silence
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(&greeting::encode("CURVE", false))
        .await
        .unwrap();
    expect_closed(s).await;
    sync(&p, &mut sub, "t", "after-stall").await;

    // connection flood: beyond max_handshakes_per_ip, new connections are closed at once
    let mut flood = Vec::new();
    for _ in 0..12 {
        flood.push(TcpStream::connect(&addr).await.unwrap());
    }
    let mut closed = 0;
    for mut s in flood {
        let mut b = [0u8; 128];
        // Open ones send their greeting and wait; refused ones read EOF right away.
        if let Ok(Ok(0)) = timeout(Duration::from_millis(200), async {
            loop {
                match s.read(&mut b).await {
                    Ok(0) => return Ok(0),
                    Ok(_) => continue,
                    Err(e) => return Err(e),
                }
            }
        })
        .await
        {
            closed += 1;
        }
    }
    assert!(closed >= 7, "only {closed} of 12 flood connections refused");
    sync(&p, &mut sub, "t", "after-flood").await;

    let c = p.counters();
    assert!(c.refused_per_ip >= 7, "{c:?}");
    let per_ip = c
        .samples()
        .into_iter()
        .find(|s| s.label == Some(("reason", "per_ip_cap")))
        .map(|s| (s.name, s.value));
    assert_eq!(
        per_ip,
        Some(("fixcurve_curve_connections_refused_total", c.refused_per_ip))
    );
    assert!(c.handshakes_failed >= 4, "{c:?}");
    assert!(c.protocol_errors >= 5, "{c:?}");
    assert_eq!(p.stats().len(), 1, "only the good subscriber remains");
}

#[tokio::test]
async fn zmtp_30_peer_subscribes_with_message_frames() {
    let server = Keypair::generate();
    let old = Keypair::generate();
    let auth = StaticAuthorizer::new(vec![(old.public, grant("old"))]);
    let (p, ep, _) = publisher(&server, auth, |_| {}).await;
    let (mut s, mut c) = raw_client(&ep, &server.public, &old, 0).await;
    let mut out = BytesMut::new();
    c.subscribe(b"md.", &mut out).unwrap();
    // ZMTP 3.0: subscription is a data message 0x01 + prefix, not a SUBSCRIBE command.
    s.write_all(&out.split()).await.unwrap();
    let got = timeout(WAIT, async {
        loop {
            p.publish(Bytes::from_static(b"exec.X"), Bytes::from_static(b"no"));
            p.publish(Bytes::from_static(b"md.X"), Bytes::from_static(b"yes"));
            let _ = timeout(Duration::from_millis(20), s.read_buf(c.input())).await;
            if let Some(ClientEvent::Message(parts)) = c.poll(&mut out).unwrap() {
                return parts;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(
        got,
        vec![Bytes::from_static(b"md.X"), Bytes::from_static(b"yes")]
    );
    assert_eq!(p.stats()[0].subscriptions, vec!["md.".to_string()]);
}

/// An authorizer tests flip at will.
struct Switch {
    key: PublicKey,
    allowed: AtomicBool,
    topics: Mutex<TopicAcl>,
    tx: tokio::sync::watch::Sender<u64>,
}

impl Authorizer for Switch {
    fn authorize(&self, key: &PublicKey, _peer: &PeerAddr) -> Decision {
        if *key == self.key && self.allowed.load(Ordering::SeqCst) {
            Decision::Allow(Grant {
                name: "sw".into(),
                topics: self.topics.lock().unwrap().clone(),
            })
        } else {
            Decision::Deny("revoked".into())
        }
    }
    fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.tx.subscribe()
    }
}

#[tokio::test]
async fn live_acl_change_and_revocation() {
    let server = Keypair::generate();
    let client = Keypair::generate();
    let sw = Arc::new(Switch {
        key: client.public,
        allowed: AtomicBool::new(true),
        topics: Mutex::new(TopicAcl::all()),
        tx: tokio::sync::watch::channel(0).0,
    });
    let (p, ep, audit) = publisher(&server, sw.clone(), |_| {}).await;
    let mut sub = subscriber(&ep, &server, &client, &[""]);
    sync(&p, &mut sub, "exec.A", "x1").await;
    // Narrow the ACL to md.: exec. stops, md. flows.
    *sw.topics.lock().unwrap() = TopicAcl(Some(vec!["md.".into()]));
    sw.tx.send_modify(|g| *g += 1);
    sync(&p, &mut sub, "md.A", "m1").await;
    p.publish(Bytes::from_static(b"exec.A"), Bytes::from_static(b"hidden"));
    p.publish(Bytes::from_static(b"md.A"), Bytes::from_static(b"m2"));
    loop {
        match timeout(WAIT, sub.recv()).await.unwrap().unwrap() {
            SubEvent::Message(parts) => {
                assert_ne!(&parts[1][..], b"hidden");
                if &parts[1][..] == b"m2" {
                    break;
                }
            }
            other => panic!("{other:?}"),
        }
    }
    // Revoke: the connection closes.
    sw.allowed.store(false, Ordering::SeqCst);
    let t0 = std::time::Instant::now();
    sw.tx.send_modify(|g| *g += 1);
    loop {
        match timeout(WAIT, sub.recv()).await.unwrap().unwrap() {
            SubEvent::Disconnected { .. } => break,
            _ => continue,
        }
    }
    let elapsed = t0.elapsed();
    eprintln!("revocation to disconnect: {elapsed:?}");
    let recs = audit.records();
    assert!(recs.iter().any(|r| r.event == "revoked_disconnect"
        && r.key.as_deref() == Some(&client.public.to_z85()[..])));
    // Reconnection attempts are now denied with ERROR.
    loop {
        if let SubEvent::Disconnected { reason } = timeout(WAIT, sub.recv()).await.unwrap().unwrap()
        {
            if reason.contains("400") {
                break;
            }
        }
    }
    assert!(audit
        .records()
        .iter()
        .any(|r| r.event == "handshake_denied"));
    assert_eq!(p.counters().revoked_disconnects, 1);
}

#[tokio::test]
async fn slow_subscriber_drops_only_its_own_messages() {
    let server = Keypair::generate();
    let fast = Keypair::generate();
    let slow = Keypair::generate();
    let auth = StaticAuthorizer::new(vec![
        (fast.public, grant("fast")),
        (slow.public, grant("slow")),
    ]);
    let (p, ep, _) = publisher(&server, auth, |c| c.queue_capacity = 8).await;
    // The slow one completes the handshake and subscribes, then never reads.
    let (mut s, mut c) = raw_client_buf(&ep, &server.public, &slow, 1, Some(4096)).await;
    let mut out = BytesMut::new();
    c.subscribe(b"", &mut out).unwrap();
    s.write_all(&out.split()).await.unwrap();
    let mut sub = subscriber(&ep, &server, &fast, &[""]);
    sync(&p, &mut sub, "t", "go").await;
    while p
        .stats()
        .iter()
        .any(|st| st.name == "slow" && st.subscriptions.is_empty())
    {
        tokio::task::yield_now().await;
    }
    let payload = Bytes::from(vec![7u8; 4 * 1024]);
    let mut received = 0usize;
    let slow_dropped = || {
        p.stats()
            .iter()
            .find(|s| s.name == "slow")
            .map(|s| s.dropped)
            .unwrap_or(0)
    };
    for i in 0..20_000u32 {
        if slow_dropped() > 0 && i > 64 {
            break;
        }
        p.publish(Bytes::from_static(b"t"), payload.clone());
        if i % 4 == 0 {
            // Keep the fast subscriber drained.
            while let Ok(Some(SubEvent::Message(_))) =
                timeout(Duration::from_millis(1), sub.recv()).await
            {
                received += 1;
            }
        }
    }
    let stats = p.stats();
    let slow_stats = stats.iter().find(|s| s.name == "slow").unwrap();
    assert!(slow_stats.dropped > 0, "{stats:?}");
    assert!(slow_stats.queue_depth <= 8);
    assert!(received > 0);
    sync(&p, &mut sub, "t", "still-flowing").await;
    drop(s);
}

#[tokio::test]
async fn multipart_and_denied_client() {
    let server = Keypair::generate();
    let ok = Keypair::generate();
    let bad = Keypair::generate();
    let auth = StaticAuthorizer::new(vec![(ok.public, grant("ok"))]);
    let (p, ep, audit) = publisher(&server, auth, |_| {}).await;
    let mut sub = subscriber(&ep, &server, &ok, &["m"]);
    sync(&p, &mut sub, "m", "go").await;
    let parts = vec![
        Bytes::from_static(b"m.1"),
        Bytes::from_static(b""),
        Bytes::from(vec![1u8; 300_000]),
    ];
    p.publish_parts(parts.clone());
    loop {
        if let SubEvent::Message(got) = timeout(WAIT, sub.recv()).await.unwrap().unwrap() {
            if got.len() == 3 {
                assert_eq!(got, parts);
                break;
            }
        }
    }
    let mut denied = subscriber(&ep, &server, &bad, &[""]);
    loop {
        if let SubEvent::Disconnected { reason } =
            timeout(WAIT, denied.recv()).await.unwrap().unwrap()
        {
            assert!(reason.contains("400"), "{reason}");
            break;
        }
    }
    let recs = audit.records();
    let d = recs.iter().find(|r| r.event == "handshake_denied").unwrap();
    assert_eq!(d.key.as_deref(), Some(&bad.public.to_z85()[..]));
    assert!(d.peer.as_deref().unwrap().starts_with("tcp://127.0.0.1:"));
}

#[tokio::test]
async fn ipc_endpoint_and_shutdown_flush() {
    let dir = tempfile::tempdir().unwrap();
    let server = Keypair::generate();
    let ok = Keypair::generate();
    let path = dir.path().join("pub.sock");
    let cfg = PublisherConfig::new(vec![format!("ipc://{}", path.display())], server.clone());
    let p = Publisher::bind(
        cfg,
        StaticAuthorizer::new(vec![(ok.public, grant("ok"))]),
        AuditLog::discard(),
    )
    .await
    .unwrap();
    let ep = p.local_endpoints()[0].clone();
    assert!(ep.starts_with("ipc://"));
    let mut sub = subscriber(&ep, &server, &ok, &[""]);
    sync(&p, &mut sub, "t", "ipc").await;
    for i in 0..100 {
        p.publish(Bytes::from_static(b"t"), Bytes::from(format!("n{i}")));
    }
    p.shutdown().await;
    let mut last = String::new();
    while let Ok(Some(SubEvent::Message(parts))) = timeout(Duration::from_secs(2), sub.recv()).await
    {
        last = String::from_utf8_lossy(&parts[1]).into_owned();
    }
    assert_eq!(last, "n99", "queued messages flushed at shutdown");
}

#[tokio::test]
async fn disconnect_policy_closes_only_the_slow_subscriber() {
    let server = Keypair::generate();
    let fast = Keypair::generate();
    let slow = Keypair::generate();
    let auth = StaticAuthorizer::new(vec![
        (fast.public, grant("fast")),
        (slow.public, grant("slow")),
    ]);
    let (p, ep, _) = publisher(&server, auth, |c| {
        c.queue_capacity = 4;
        c.overflow = fixcurve::pubsub::OverflowPolicy::Disconnect;
    })
    .await;
    let (mut s, mut c) = raw_client_buf(&ep, &server.public, &slow, 1, Some(4096)).await;
    let mut out = BytesMut::new();
    c.subscribe(b"", &mut out).unwrap();
    s.write_all(&out.split()).await.unwrap();
    let mut sub = subscriber(&ep, &server, &fast, &[""]);
    sync(&p, &mut sub, "t", "go").await;
    while p
        .stats()
        .iter()
        .any(|st| st.name == "slow" && st.subscriptions.is_empty())
    {
        tokio::task::yield_now().await;
    }
    let payload = Bytes::from(vec![7u8; 4 * 1024]);
    for _ in 0..20_000u32 {
        if p.counters().overflow_disconnects > 0 {
            break;
        }
        p.publish(Bytes::from_static(b"t"), payload.clone());
        while let Ok(Some(_)) = timeout(Duration::from_micros(10), sub.recv()).await {}
    }
    assert_eq!(p.counters().overflow_disconnects, 1);
    expect_closed(s).await;
    sync(&p, &mut sub, "t", "fast-still-served").await;
    assert!(p.stats().iter().all(|st| st.name == "fast"));
}

/// Serves whichever server keys the test sets (a rotation seen from the publisher).
struct Rotating {
    keys: Mutex<Vec<Keypair>>,
    tx: tokio::sync::watch::Sender<u64>,
}

impl Authorizer for Rotating {
    fn authorize(&self, _key: &PublicKey, _peer: &PeerAddr) -> Decision {
        Decision::Allow(grant("any"))
    }
    fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.tx.subscribe()
    }
    fn server_keys(&self) -> Option<Vec<Keypair>> {
        Some(self.keys.lock().unwrap().clone())
    }
}

#[tokio::test]
async fn server_key_rotation_moves_a_subscriber_with_fallback_keys() {
    let old = Keypair::generate();
    let new = Keypair::generate();
    let client = Keypair::generate();
    let auth = Arc::new(Rotating {
        keys: Mutex::new(vec![new.clone(), old.clone()]),
        tx: tokio::sync::watch::channel(0).0,
    });
    let (p, ep, _audit) = publisher(&old, auth.clone(), |_| {}).await;
    // configured with the old key first, the new one as fallback
    let mut cfg = SubscriberConfig::new(&ep, old.public, client.clone());
    cfg.fallback_server_keys = vec![new.public];
    cfg.subscriptions = vec![Bytes::new()];
    cfg.reconnect_min = Duration::from_millis(20);
    let mut sub = Subscriber::connect(cfg).unwrap();
    sync(&p, &mut sub, "t", "overlap").await;
    // a subscriber that knows only the new key gets in too
    let mut fresh = subscriber(&ep, &new, &client, &[""]);
    sync(&p, &mut fresh, "t", "fresh").await;
    // the old key retires: the connection on it closes, the subscriber moves to the new key
    *auth.keys.lock().unwrap() = vec![new.clone()];
    auth.tx.send_modify(|g| *g += 1);
    loop {
        match timeout(WAIT, sub.recv()).await.unwrap().unwrap() {
            SubEvent::Disconnected { reason } => {
                assert!(!reason.contains("400"), "{reason}");
                break;
            }
            _ => continue,
        }
    }
    sync(&p, &mut sub, "t", "after").await;
    sync(&p, &mut fresh, "t", "after-fresh").await;
    // a subscriber with only the retired key never gets in
    let mut stale = subscriber(&ep, &old, &client, &[""]);
    let end = tokio::time::Instant::now() + Duration::from_millis(300);
    let mut attempts = 0;
    while let Ok(Some(ev)) = tokio::time::timeout_at(end, stale.recv()).await {
        p.publish(Bytes::from_static(b"t"), Bytes::from_static(b"x"));
        match ev {
            SubEvent::Message(m) => panic!("retired key received {m:?}"),
            SubEvent::Connected => panic!("retired key completed a handshake"),
            SubEvent::Disconnected { .. } => attempts += 1,
        }
    }
    assert!(attempts > 0, "the stale subscriber never even tried");
}

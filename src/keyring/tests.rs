use std::path::Path;
use std::time::Duration;

use super::*;
use crate::auth::TopicAcl;
use crate::keys::cert;

fn peer() -> PeerAddr {
    PeerAddr::Ipc("test".into())
}

fn authorize(root: &Path, name: &str, topics: Option<&str>) -> Keypair {
    let kp = Keypair::generate();
    let mut meta = vec![("name".to_string(), name.to_string())];
    if let Some(t) = topics {
        meta.push(("topics".into(), t.into()));
    }
    cert::write_public(
        &root.join("authorized").join(format!("{name}.key")),
        &kp.public,
        &meta,
    )
    .unwrap();
    kp
}

fn root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("authorized")).unwrap();
    std::fs::create_dir_all(dir.path().join("revoked")).unwrap();
    dir
}

/// Waits (bounded) for the next tick of `changes()`.
async fn next_tick(rx: &mut tokio::sync::watch::Receiver<u64>) {
    tokio::time::timeout(Duration::from_secs(3), rx.changed())
        .await
        .expect("keyring did not notice the change")
        .unwrap();
}

#[tokio::test]
async fn watch_sees_authorize_revoke_and_removal() {
    let dir = root();
    let keyring = Keyring::open(dir.path(), AuditLog::discard()).unwrap();
    let mut changes = keyring.changes();
    let alice = authorize(dir.path(), "alice", Some("md."));
    next_tick(&mut changes).await;
    match keyring.authorize(&alice.public, &peer()) {
        Decision::Allow(g) => {
            assert_eq!(g.name, "alice");
            assert_eq!(g.topics, TopicAcl(Some(vec!["md.".into()])));
        }
        d => panic!("{d:?}"),
    }
    // revoke = rename into revoked/ (what `keys revoke` does)
    std::fs::rename(
        dir.path().join("authorized/alice.key"),
        dir.path().join("revoked/alice.key"),
    )
    .unwrap();
    next_tick(&mut changes).await;
    while matches!(
        keyring.authorize(&alice.public, &peer()),
        Decision::Allow(_)
    ) {
        next_tick(&mut changes).await;
    }
    let bob = authorize(dir.path(), "bob", None);
    next_tick(&mut changes).await;
    while !matches!(keyring.authorize(&bob.public, &peer()), Decision::Allow(_)) {
        next_tick(&mut changes).await;
    }
    std::fs::remove_file(dir.path().join("authorized/bob.key")).unwrap();
    while matches!(keyring.authorize(&bob.public, &peer()), Decision::Allow(_)) {
        next_tick(&mut changes).await;
    }
}

#[test]
fn deny_wins_and_broken_files_are_skipped() {
    let dir = root();
    let carol = authorize(dir.path(), "carol", None);
    let dave = authorize(dir.path(), "dave", None);
    // carol also revoked: denied
    std::fs::copy(
        dir.path().join("authorized/carol.key"),
        dir.path().join("revoked/carol.key"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("authorized/broken.key"),
        "curve\n    public-key = \"nope\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("authorized/x.key_secret"), "whatever").unwrap();
    let audit = AuditLog::memory();
    let keyring = Keyring::load(dir.path(), audit.clone());
    assert!(
        matches!(keyring.authorize(&carol.public, &peer()), Decision::Deny(r) if r.contains("revoked"))
    );
    assert!(matches!(
        keyring.authorize(&dave.public, &peer()),
        Decision::Allow(_)
    ));
    let snap = keyring.snapshot();
    assert_eq!(snap.problems.len(), 2, "{:?}", snap.problems);
    assert_eq!(snap.effective_count(), 1);
    let recs = audit.records();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].event, "keyring_reloaded");

    // dave's file gets corrupted: his last good entry stays in force
    std::fs::write(dir.path().join("authorized/dave.key"), "garbage").unwrap();
    assert!(keyring.reload("test"));
    assert!(matches!(
        keyring.authorize(&dave.public, &peer()),
        Decision::Allow(_)
    ));
}

#[test]
fn same_size_rewrite_is_seen() {
    let dir = root();
    let path = dir.path().join("authorized/eve.key");
    let kp = Keypair::generate();
    let meta = |t: &str| {
        vec![
            ("name".to_string(), "eve".to_string()),
            ("topics".to_string(), t.to_string()),
        ]
    };
    cert::write_public(&path, &kp.public, &meta("md.A")).unwrap();
    let keyring = Keyring::load(dir.path(), AuditLog::discard());
    let len = std::fs::metadata(&path).unwrap().len();
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("md.A", "md.B");
    std::fs::write(&path, &text).unwrap();
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(mtime).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
    assert!(keyring.reload("test"));
    match keyring.authorize(&kp.public, &peer()) {
        Decision::Allow(g) => assert_eq!(g.topics, TopicAcl(Some(vec!["md.B".into()]))),
        d => panic!("{d:?}"),
    }
    assert!(!keyring.reload("test"), "no change, no tick");
}

#[test]
fn thousand_keys_load() {
    let dir = root();
    let keys: Vec<Keypair> = (0..1000)
        .map(|i| authorize(dir.path(), &format!("k{i:04}"), None))
        .collect();
    let keyring = Keyring::load(dir.path(), AuditLog::discard());
    assert_eq!(keyring.snapshot().effective_count(), 1000);
    assert!(keys
        .iter()
        .all(|k| matches!(keyring.authorize(&k.public, &peer()), Decision::Allow(_))));
}

#[test]
fn server_keypair_created_private_and_loose_one_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = root();
    let audit = AuditLog::memory();
    let kp = load_or_create_server_keypair(dir.path(), &audit).unwrap();
    assert_eq!(audit.records()[0].event, "server_key_created");
    assert_eq!(
        load_or_create_server_keypair(dir.path(), &audit)
            .unwrap()
            .public,
        kp.public
    );
    assert_eq!(audit.records().len(), 1);
    assert_eq!(load_server_keypair(dir.path()).unwrap().public, kp.public);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.path().join("server")), 0o700);
    let secret = dir.path().join("server/server.key_secret");
    assert_eq!(mode(&secret), 0o600);
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).unwrap();
    let err = load_server_keypair(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("server.key_secret") && err.contains("0640"),
        "{err}"
    );
}

#[test]
fn expired_keys_are_refused_and_bad_expiry_is_a_problem() {
    let dir = root();
    let kp = Keypair::generate();
    let write = |name: &str, expires: &str| {
        cert::write_public(
            &dir.path().join("authorized").join(format!("{name}.key")),
            &kp.public,
            &[
                ("name".to_string(), name.to_string()),
                ("expires".to_string(), expires.to_string()),
            ],
        )
        .unwrap();
    };
    write("old", "2020-01-01T00:00:00Z");
    let keyring = Keyring::load(dir.path(), AuditLog::discard());
    match keyring.authorize(&kp.public, &peer()) {
        Decision::Deny(r) => assert!(r.contains("expired") && r.contains("2020-01-01"), "{r}"),
        d => panic!("{d:?}"),
    }
    let snap = keyring.snapshot();
    let future = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(4_102_444_800); // 2100
    std::fs::remove_file(dir.path().join("authorized/old.key")).unwrap();
    write("later", "2100-01-01T00:00:00Z");
    assert!(keyring.reload("test"));
    assert!(matches!(
        keyring.authorize(&kp.public, &peer()),
        Decision::Allow(_)
    ));
    assert!(matches!(
        keyring.snapshot().decide(&kp.public, future),
        Decision::Deny(_)
    ));
    assert_eq!(
        keyring.snapshot().next_expiry(std::time::SystemTime::now()),
        Some(future)
    );
    assert!(snap.next_expiry(std::time::SystemTime::now()).is_none());
    write("bad", "next tuesday");
    keyring.reload("test");
    let problems = keyring.snapshot().problems.join("\n");
    assert!(problems.contains("next tuesday"), "{problems}");
}

#[test]
fn fresh_files_are_not_trusted_by_stamp_and_new_keys_are_seen() {
    let dir = root();
    authorize(dir.path(), "old", None);
    // Age the file past the racy window so its stamps can be trusted.
    let past = std::time::SystemTime::now() - Duration::from_secs(10);
    let path = dir.path().join("authorized/old.key");
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(past)
        .unwrap();
    let keyring = Keyring::load(dir.path(), AuditLog::discard());
    // ctime is still fresh (set_modified changed it): the listing is not trusted yet.
    assert!(!keyring.snapshot().unchanged_on_disk(dir.path()));
    let fresh = authorize(dir.path(), "fresh", None);
    assert!(keyring.reload("test"));
    assert!(matches!(
        keyring.authorize(&fresh.public, &peer()),
        Decision::Allow(_)
    ));
}

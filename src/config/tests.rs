use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(
        text,
        Path::new("/etc/fc/fixcurve.toml"),
        Path::new("/etc/fc"),
    )
}

const MINIMAL: &str = r#"
[publish]
bind = ["tcp://127.0.0.1:0"]

[[acceptor]]
name = "edge"
listen = "127.0.0.1:0"
cert = "certs/server.crt"
client_ca = "/abs/ca.crt"

[[session]]
venue = "VENUE1"
acceptor = "edge"
begin_string = "FIX.4.4"
sender_comp_id = "BRIDGE"
target_comp_id = "CLIENT1"
tls_identity = "client1"
"#;

#[test]
fn example_file_in_repo_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/fixcurve.example.toml");
    let cfg = Config::load(&path).unwrap();
    assert_eq!(cfg.session.len(), 2);
    assert_eq!(cfg.session[0].id(), "BRIDGE->CLIENT1");
    assert_eq!(cfg.metrics.unwrap().listen.port(), 9464);
    assert_eq!(cfg.publish.slow_policy, SlowPolicy::Drop);
    // Relative to the file's folder, not the working directory.
    assert_eq!(cfg.publish.keys, path.parent().unwrap().join("keys"));
}

#[test]
fn defaults_and_relative_paths() {
    let cfg = parse(MINIMAL).unwrap();
    assert_eq!(cfg.publish.keys, PathBuf::from("/etc/fc/keys"));
    assert_eq!(cfg.state.dir, PathBuf::from("/etc/fc/state"));
    assert_eq!(cfg.audit.path, PathBuf::from("/etc/fc/state/audit.jsonl"));
    assert_eq!(
        cfg.acceptor[0].cert,
        PathBuf::from("/etc/fc/certs/server.crt")
    );
    assert_eq!(
        cfg.acceptor[0].client_ca,
        Some(PathBuf::from("/abs/ca.crt"))
    );
    assert_eq!(cfg.publish.queue, 10_000);
    assert_eq!(cfg.session[0].heartbeat_secs, 30);
    assert_eq!(cfg.session[0].inbound_sync_ms, 50);
    assert!(cfg.metrics.is_none());
    assert!(cfg.acceptor[0].tls().mutual());
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let e = err(&MINIMAL.replace("tls_identity", "heartbeat_sec = 5\ntls_identity"));
    assert!(e.contains("heartbeat_sec"), "{e}");
    assert!(e.contains("line"), "{e}");
}

#[test]
fn wrong_type_is_named() {
    let e = err(&MINIMAL.replace("listen = \"127.0.0.1:0\"", "listen = \"nowhere\""));
    assert!(e.contains("listen") || e.contains("nowhere"), "{e}");
    assert!(e.contains("line"), "{e}");
}

#[test]
fn cross_references_are_checked() {
    let e = err(&MINIMAL.replace("acceptor = \"edge\"", "acceptor = \"edg\""));
    assert!(
        e.contains("`session[0].acceptor`") && e.contains("\"edg\""),
        "{e}"
    );
    let e = err(&MINIMAL.replace("tls_identity = \"client1\"", ""));
    assert!(e.contains("`session[0].tls_identity`"), "{e}");
    let e = err(&MINIMAL.replace("VENUE1", "VEN.UE"));
    assert!(e.contains("`session[0].venue`"), "{e}");
    let e = err(&MINIMAL.replace("FIX.4.4", "FIX.9"));
    assert!(e.contains("`session[0].begin_string`"), "{e}");
    let e = err(&MINIMAL.replace("tcp://127.0.0.1:0", "udp://x"));
    assert!(e.contains("`publish.bind[0]`"), "{e}");
    let e = err(&MINIMAL.replace(
        "client_ca = \"/abs/ca.crt\"",
        "allow_ips = [\"10.0.0.0/33\"]\nclient_ca = \"/a\"",
    ));
    assert!(e.contains("`acceptor[0].allow_ips`"), "{e}");
    let twice = format!("{MINIMAL}\n[[session]]\nvenue = \"V2\"\nacceptor = \"edge\"\nbegin_string = \"FIX.4.4\"\nsender_comp_id = \"BRIDGE\"\ntarget_comp_id = \"CLIENT1\"\ntls_identity = \"x\"\n");
    let e = err(&twice);
    assert!(e.contains("`session[1].target_comp_id`"), "{e}");
}

#[test]
fn one_way_tls_needs_fix_layer_password() {
    let oneway = MINIMAL.replace("client_ca = \"/abs/ca.crt\"", "");
    let e = err(&oneway);
    assert!(e.contains("`session[0].password_file`"), "{e}");
    let ok = oneway.replace(
        "tls_identity = \"client1\"",
        "username = \"u\"\npassword_file = \"secret/pw\"",
    );
    let cfg = parse(&ok).unwrap();
    assert_eq!(
        cfg.session[0].password_file,
        Some(PathBuf::from("/etc/fc/secret/pw"))
    );
}

#[test]
fn missing_file_names_the_path() {
    let e = Config::load(Path::new("/nonexistent/fixcurve.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/fixcurve.toml"), "{e}");
}

#[test]
fn inbound_sync_is_bounded_and_reaches_the_session() {
    let strict = MINIMAL.replace("tls_identity", "inbound_sync_ms = 0\ntls_identity");
    let cfg = parse(&strict).unwrap();
    let s = crate::fix::transport::from_config::session_config(
        &cfg.session[0],
        crate::fix::session::Role::Acceptor,
    )
    .unwrap();
    assert!(s.inbound_sync_after.is_zero());
    let e = err(&MINIMAL.replace("tls_identity", "inbound_sync_ms = 60000\ntls_identity"));
    assert!(
        e.contains("inbound_sync_ms") && e.contains("0 and 10000"),
        "{e}"
    );
}

#[test]
fn schedule_keys_are_checked_and_reach_the_session() {
    let weekly = MINIMAL.replace(
        "tls_identity",
        "start_time = \"17:00:00\"\nend_time = \"17:00:00\"\nstart_day = \"Sun\"\nend_day = \"Fri\"\ntime_zone = \"America/New_York\"\ntls_identity",
    );
    let cfg = parse(&weekly).unwrap();
    let s = crate::fix::transport::from_config::session_config(
        &cfg.session[0],
        crate::fix::session::Role::Acceptor,
    )
    .unwrap();
    assert!(s.schedule.is_some() && s.reset_each_period);
    for (bad, says) in [
        (
            "start_time = \"8am\"\nend_time = \"17:00:00\"",
            "start_time",
        ),
        ("start_time = \"08:00:00\"", "go together"),
        (
            "start_time = \"08:00:00\"\nend_time = \"17:00:00\"\ntime_zone = \"Nowhere/Land\"",
            "time_zone",
        ),
    ] {
        let e = err(&MINIMAL.replace("tls_identity", &format!("{bad}\ntls_identity")));
        assert!(
            e.contains("session[0].start_time") && e.contains(says),
            "{e}"
        );
    }
}

#[test]
fn edge_example_parses_and_nats_blocks_are_checked() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/edge.example.toml");
    let cfg = Config::load(&path).unwrap();
    let n = cfg.source.nats.unwrap();
    assert_eq!(n.servers.len(), 3);
    assert_eq!(n.consumer, Some(ConsumerKind::Ordered));

    let sink = format!(
        "{MINIMAL}\n[sink.nats]\nservers = [\"nats://127.0.0.1:4222\"]\nnkey = \"nk\"\nreplicas = 3\n"
    );
    let cfg = parse(&sink).unwrap();
    let n = cfg.sink.nats.unwrap();
    assert_eq!(n.nkey, Some(PathBuf::from("/etc/fc/nk")));
    assert_eq!(
        (n.stream.as_str(), n.subject_prefix.as_str()),
        ("FIXCURVE", "fixcurve")
    );

    for (extra, key) in [
        ("servers = [\"127.0.0.1:4222\"]", "sink.nats.servers[0]"),
        (
            "servers = [\"nats://h:1\"]\nreplicas = 2",
            "sink.nats.replicas",
        ),
        (
            "servers = [\"nats://h:1\"]\nstream = \"a.b\"",
            "sink.nats.stream",
        ),
        (
            "servers = [\"nats://h:1\"]\nsubject_prefix = \"a.*\"",
            "sink.nats.subject_prefix",
        ),
        (
            "servers = [\"nats://h:1\"]\nconsumer = \"ordered\"",
            "sink.nats.consumer",
        ),
        (
            "servers = [\"nats://h:1\"]\nnkey = \"a\"\ncredentials = \"b\"",
            "sink.nats.nkey",
        ),
    ] {
        let e = parse(&format!("{MINIMAL}\n[sink.nats]\n{extra}\n")).unwrap_err();
        assert!(e.to_string().contains(key), "{extra}: {e}");
    }
    // An edge has no FIX side.
    let e = parse(&format!(
        "{MINIMAL}\n[source.nats]\nservers = [\"nats://h:1\"]\n"
    ))
    .unwrap_err();
    assert!(e.to_string().contains("no FIX side"), "{e}");
    let e = parse("[publish]\nbind = [\"tcp://127.0.0.1:0\"]\n[source.nats]\nservers = [\"nats://h:1\"]\nconsumer = \"durable\"\n").unwrap_err();
    assert!(e.to_string().contains("durable_name"), "{e}");
}

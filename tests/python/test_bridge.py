"""The bridge end to end: FIX in over mTLS (from QuickFIX C++), normalized events out over
CURVE to the Python client (stock libzmq) and the Rust subscriber; revocation, a stalled
subscriber, metrics; and `fixcurve demo` with a pyzmq subscriber authorized in its keyring.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest
import zmq
import zmq.auth

from conftest import BIN, PEERS, ROOT

try:
    import fixcurve_client
except ImportError:
    sys.path.insert(0, str(ROOT / "clients" / "python"))
    import fixcurve_client

from fixcurve_client import Subscriber

QFVENUE = PEERS / "qfvenue"
EXAMPLE = ROOT / "target" / "debug" / "examples" / "subscribe"


def keypair(keys, name, authorize=True, topics=None):
    """A ZPL keypair written by pyzmq into keys/clients (secret 0600), authorized if asked."""
    clients = keys / "clients"
    clients.mkdir(parents=True, exist_ok=True)
    pub, sec = zmq.auth.create_certificates(str(clients), name)
    os.chmod(sec, 0o600)
    if authorize:
        (keys / "authorized").mkdir(exist_ok=True)
        text = Path(pub).read_text()
        if topics:
            text = text.replace("metadata\n", f"metadata\n    topics = \"{topics}\"\n", 1)
        (keys / "authorized" / f"{name}.key").write_text(text)
    return Path(pub), Path(sec)


def server_keys(keys):
    (keys / "server").mkdir(parents=True, exist_ok=True)
    pub, sec = zmq.auth.create_certificates(str(keys / "server"), "server")
    os.chmod(sec, 0o600)
    return Path(pub)


def scrape(addr):
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=5) as r:
        return r.read().decode()


def metric(text, name, **labels):
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def wait_until(pred, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timeout waiting for {what}")


class Bridge:
    """A `fixcurve run` with an mTLS acceptor for CLIENT1 (CN=client1) and a metrics port."""

    def __init__(self, spawn, tmp, queue=1000, heartbeat=2, replay=False):
        self.dir = tmp
        self.keys = tmp / "keys"
        subprocess.run([BIN, "certs", "dev", "--out", tmp / "certs", "--rsa"], check=True, capture_output=True)
        self.server_pub = server_keys(self.keys)
        (self.keys / "revoked").mkdir(parents=True, exist_ok=True)
        self.config = tmp / "fixcurve.toml"
        replay_line = 'replay_bind = ["tcp://127.0.0.1:0"]' if replay else ""
        self.config.write_text(
            f"""
[publish]
bind = ["tcp://127.0.0.1:0"]
{replay_line}
keys = "keys"
queue = {queue}
heartbeat_secs = {heartbeat}

[state]
dir = "state"

[audit]
path = "state/audit.jsonl"

[metrics]
listen = "127.0.0.1:0"

[[acceptor]]
name = "edge"
listen = "127.0.0.1:0"
cert = "certs/server.crt"
key = "certs/server.key"
client_ca = "certs/ca.crt"
allow_ips = ["127.0.0.0/8"]

[[session]]
venue = "VENUE1"
acceptor = "edge"
begin_string = "FIX.4.4"
sender_comp_id = "BRIDGE"
target_comp_id = "CLIENT1"
tls_identity = "client1"
heartbeat_secs = 30
"""
        )
        self.spawn = spawn
        self.proc = None

    def start(self, keys_before=()):
        self.proc = self.spawn(BIN, "run", "--config", self.config)
        self.publish = self.proc.listening("publish")
        self.fix = self.proc.listening("acceptor:edge")
        self.metrics = self.proc.listening("metrics")
        return self

    def venue(self, reset_on_logon=True):
        """A QuickFIX venue logged on to the acceptor; without `reset_on_logon` it keeps its
        sequence numbers and stored messages across reconnects (and resends a gap)."""
        host, port = self.fix.rsplit(":", 1)
        d = self.dir / "qf"
        d.mkdir(exist_ok=True)
        c = self.dir / "certs"
        settings = d / "venue.cfg"
        settings.write_text(
            f"""[DEFAULT]
ConnectionType=initiator
ReconnectInterval=1
FileStorePath={d}/store
FileLogPath={d}/log
StartTime=00:00:00
EndTime=00:00:00
UseDataDictionary=N
ResetOnLogon={"Y" if reset_on_logon else "N"}
PersistMessages=Y
SSLProtocol=+TLSv1.2
ClientCertificateFile={c}/client.crt
ClientCertificateKeyFile={c}/client.key
CertificationAuthoritiesFile={c}/ca.crt

[SESSION]
BeginString=FIX.4.4
SenderCompID=CLIENT1
TargetCompID=BRIDGE
SocketConnectHost={host}
SocketConnectPort={port}
HeartBtInt=30
"""
        )
        v = self.spawn(QFVENUE, settings)
        v.wait_for(r"^READY", stream="out")
        v.wait_for(r"^LOGON ", timeout=20, stream="out")
        return v

    def subscribers(self):
        return metric(scrape(self.metrics), "fixcurve_subscribers") or 0


def send(proc, line):
    proc.p.stdin.write((line + "\n").encode())
    proc.p.stdin.flush()


def collect(sub, n, timeout=15.0):
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        left = int((deadline - time.monotonic()) * 1000)
        if left <= 0:
            break
        ev = sub.recv(timeout_ms=left)
        if ev is not None:
            out.append(ev)
    return out


needs_quickfix = pytest.mark.skipif(not QFVENUE.exists(), reason="QuickFIX venue peer not built (tests/setup.d)")

# What the venue's `script` produces, in publish order: (topic, kind, seq).
SCRIPT = [
    ("md.VENUE1.EUR/USD", "book_snapshot", 1),
    ("md.VENUE1.USD/JPY", "book_snapshot", 1),
    ("md.VENUE1.EUR/USD", "book_update", 2),
    ("md.VENUE1.EUR/USD", "trade", 3),
    ("md.VENUE1.EUR/USD", "book_update", 4),
    ("md.VENUE1.USD/JPY", "book_update", 2),
    ("md.VENUE1.USD/JPY", "quote", 3),
    ("exec.VENUE1.ACC-7", "execution", 1),
    ("exec.VENUE1.ACC-7", "execution", 2),
]


def check_script_events(evs):
    """Exact decimals and gapless per-topic sequences for the scripted venue messages."""
    got = [(e["topic"], e["kind"], e["seq"]) for e in evs]
    assert got == SCRIPT
    snap = evs[0]["body"]
    assert [str(x["price"]) for x in snap["entries"]] == ["1.08760", "1.08755", "1.08770"]
    assert [str(x["size"]) for x in snap["entries"]] == ["1000000", "2500000.50", "2000000"]
    assert [x["side"] for x in snap["entries"]] == ["bid", "bid", "offer"]
    trade = evs[3]["body"]
    assert str(trade["price"]) == "1.08765" and str(trade["size"]) == "250000" and trade["trade_id"] == "T-1"
    delete = evs[4]["body"]["changes"][0]
    assert delete["action"] == "delete" and delete["entry_id"] == "ask-2" and delete["price"] is None
    quote = evs[6]["body"]
    assert str(quote["bid_px"]) == "151.240" and str(quote["offer_px"]) == "151.260"
    fill = evs[8]["body"]
    assert fill["exec_type"] == "trade" and fill["ord_status"] == "filled" and fill["side"] == "buy"
    assert str(fill["avg_px"]) == "1.087662500" and str(fill["last_qty"]) == "750000"
    assert fill["account"] == "ACC-7" and fill["transact_time"] == "20240102-10:00:00.123"
    for e in evs:
        assert e["venue"] == "VENUE1" and e["session"] == "BRIDGE->CLIENT1"
        assert isinstance(e["fix_seq"], int) and e["fix_seq"] >= 2


def py_event(ev):
    return {"topic": ev.topic, "kind": ev.kind, "seq": ev.seq, "body": ev.body, "venue": ev.venue,
            "session": ev.session, "fix_seq": ev.fix_seq}


def decimals(obj):
    """JSON from the Rust subscriber: decimal strings to Decimal, like the Python client."""
    if isinstance(obj, dict):
        return {k: (Decimal(v) if k in fixcurve_client.DECIMAL_FIELDS and isinstance(v, str) else decimals(v))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [decimals(v) for v in obj]
    return obj


@needs_quickfix
@pytest.mark.timeout(120)
def test_quickfix_venue_to_python_and_rust_subscribers_then_revocation(spawn, tmp_path):
    b = Bridge(spawn, tmp_path)
    _, alice_sec = keypair(b.keys, "alice")
    _, bob_sec = keypair(b.keys, "bob")
    _, erin_sec = keypair(b.keys, "erin")
    _, frank_sec = keypair(b.keys, "frank")
    b.start()
    frank = Subscriber(b.publish, b.server_pub, frank_sec, topics=["status."])

    alice = Subscriber(b.publish, b.server_pub, alice_sec, topics=["md.VENUE1.", "exec.VENUE1."])
    assert EXAMPLE.exists(), "cargo build --examples first"
    rust = spawn(EXAMPLE, b.publish, b.server_pub, bob_sec, "md.", "exec.", "--json")
    cli = spawn(BIN, "sub", "--connect", b.publish, "--server-key", b.server_pub, "--key", erin_sec,
                "--topic", "md.VENUE1.", "--topic", "exec.", "--json", "--count", str(len(SCRIPT)))
    wait_until(lambda: b.subscribers() == 4, what="four subscribers connected")

    venue = b.venue()
    send(venue, "script")
    venue.wait_for(r"^SENT 6$", stream="out")

    py = [py_event(e) for e in collect(alice, len(SCRIPT))]
    check_script_events(py)
    assert not alice.gaps

    wait_until(lambda: len([l for l in rust.stdout_lines if l.startswith("{")]) >= len(SCRIPT), what="rust events")
    rs = [decimals(json.loads(l)) for l in rust.stdout_lines if l.startswith("{")]
    check_script_events(rs[: len(SCRIPT)])
    assert py == [{k: e[k] for k in py[0]} for e in rs[: len(SCRIPT)]]
    # `fixcurve sub --json` prints the same events and exits after --count.
    assert cli.p.wait(15) == 0
    cs = [decimals(json.loads(l)) for l in cli.stdout_lines if l.startswith("{")]
    assert py == [{k: e[k] for k in py[0]} for e in cs]

    # Session status and per-session metrics.
    m = scrape(b.metrics)
    assert metric(m, "fixcurve_session_messages_in_total", venue="VENUE1") == 6
    assert metric(m, "fixcurve_session_up", venue="VENUE1") == 1
    assert metric(m, "fixcurve_subscriber_sent_total", subscriber="alice") >= len(SCRIPT)

    # Revoke alice by moving her key file, live (no signal): she is disconnected and stops
    # receiving, bob continues.
    shutil.move(str(b.keys / "authorized" / "alice.key"), str(b.keys / "revoked" / "alice.key"))
    wait_until(lambda: b.subscribers() == 2, what="alice disconnected after revocation (erin exited)")
    # SIGHUP (reload TLS material and keyring) disturbs nobody.
    b.proc.p.send_signal(signal.SIGHUP)
    b.proc.wait_for(r"SIGHUP", stream="err")
    send(venue, "burst 50")
    venue.wait_for(r"^SENT 50$", stream="out")
    wait_until(lambda: len([l for l in rust.stdout_lines if l.startswith("{")]) >= len(SCRIPT) + 50, what="bob keeps receiving")
    assert alice.recv(timeout_ms=500) is None
    audit = (tmp_path / "state" / "audit.jsonl").read_text()
    assert '"alice"' in audit or "alice" in audit

    logon = frank.recv(timeout_ms=2000)
    assert (logon.topic, logon.kind, logon.seq, logon.body["state"]) == ("status.VENUE1", "session", 1, "logon")

    # Graceful stop: Logout reaches the venue, the logout event is flushed to subscribers
    # before the publisher closes, exit 0.
    b.proc.p.send_signal(signal.SIGTERM)
    venue.wait_for(r"^LOGOUT ", stream="out")
    assert b.proc.p.wait(15) == 0
    logout = frank.recv(timeout_ms=2000)
    assert logout is not None, "logout status not flushed at shutdown"
    assert (logout.kind, logout.seq, logout.body["state"]) == ("session", 2, "logout")
    alice.close()
    frank.close()


@needs_quickfix
@pytest.mark.timeout(120)
def test_stalled_subscriber_does_not_slow_or_starve_others(spawn, tmp_path):
    b = Bridge(spawn, tmp_path, queue=500, heartbeat=60)
    _, alice_sec = keypair(b.keys, "alice")
    _, carol_sec = keypair(b.keys, "carol")
    b.start()

    alice = Subscriber(b.publish, b.server_pub, alice_sec, topics=["exec."])
    # carol connects with stock pyzmq and never reads, with tiny buffers.
    ctx = zmq.Context.instance()
    carol = ctx.socket(zmq.SUB)
    pub, sec = zmq.auth.load_certificate(str(carol_sec))
    carol.curve_serverkey = zmq.auth.load_certificate(str(b.server_pub))[0]
    carol.curve_publickey, carol.curve_secretkey = pub, sec
    carol.setsockopt(zmq.RCVHWM, 10)
    carol.setsockopt(zmq.RCVBUF, 4096)
    carol.setsockopt(zmq.SUBSCRIBE, b"")
    carol.connect(b.publish)
    wait_until(lambda: b.subscribers() == 2, what="two subscribers")

    # 2500 execution reports of ~4 KiB at 600/s: ~10 MB, far more than carol's socket
    # buffers and queue can hold, well within what a reading subscriber takes.
    venue = b.venue()
    n = 2500
    send(venue, f"execs {n} 600 4096")
    got = collect(alice, n, timeout=40)
    venue.wait_for(rf"^SENT {n}$", timeout=30, stream="out")
    bulk = [e for e in got if e.topic == "exec.VENUE1.BULK"]
    m = scrape(b.metrics)
    assert len(bulk) == n, f"alice got {len(bulk)} of {n}, gaps {alice.gaps[:3]}\n{m}"
    assert not alice.gaps
    seqs = [e.seq for e in bulk]
    assert seqs == list(range(1, n + 1))
    assert bulk[-1].body["order_qty"] == Decimal(f"{1000 + n - 1}.25")
    assert len(bulk[-1].body["text"]) == 4096
    # carol's queue overflowed: drops counted for her only.
    assert (metric(m, "fixcurve_subscriber_dropped_total", subscriber="carol") or 0) > 0, m
    assert (metric(m, "fixcurve_subscriber_dropped_total", subscriber="alice") or 0) == 0, m
    carol.close(0)
    alice.close()


@pytest.mark.timeout(60)
def test_demo_with_keyring_and_pyzmq_subscriber(spawn, tmp_path):
    keys = tmp_path / "K"
    _, sec = keypair(keys, "dave")
    demo = spawn(BIN, "demo", "--keys", keys, "--bind", "tcp://127.0.0.1:0", "--duration", "10", "--rate", "50", "--quiet")
    ep = demo.listening("publish")
    server_pub = keys / "server" / "server.key"
    assert server_pub.exists() and (keys / "server" / "server.key_secret").stat().st_mode & 0o077 == 0
    kinds = {}
    with Subscriber(ep, server_pub, sec) as sub:
        deadline = time.monotonic() + 8
        want = {"book_snapshot", "book_update", "trade", "quote", "execution"}
        while time.monotonic() < deadline and not want <= set(kinds):
            ev = sub.recv(timeout_ms=500)
            if ev is not None:
                kinds.setdefault(ev.kind, ev)
        assert not sub.gaps
    assert want <= set(kinds)
    q = kinds["quote"].body
    assert isinstance(q["bid_px"], Decimal) and q["bid_px"].as_tuple().exponent == -5
    assert kinds["execution"].topic == "exec.DEMO.DEMO-ACC"
    assert demo.p.wait(20) == 0
    summary = demo.wait_for(r"demo summary: .* subscriber received (\d+) events, 0 gaps", stream="out")
    assert int(summary.group(1)) > 0


def test_invalid_config_names_key(fc, tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[publish]\nbind = ["tcp://127.0.0.1:0"]\n[[session]]\nvenue = "V"\nacceptor = "nope"\n'
                   'begin_string = "FIX.4.4"\nsender_comp_id = "A"\ntarget_comp_id = "B"\n')
    cp = fc("run", "--config", cfg, check=False)
    assert cp.returncode != 0
    assert "`session[0].acceptor`" in cp.stderr and '"nope"' in cp.stderr
    cfg.write_text('[publish]\nbind = ["tcp://127.0.0.1:0"]\nqueu = 5\n')
    cp = fc("run", "--config", cfg, check=False)
    assert cp.returncode != 0 and "queu" in cp.stderr
    cp = fc("run", "--config", ROOT / "config" / "fixcurve.example.toml", "--check", check=False)
    assert cp.returncode == 0, cp.stderr


@pytest.mark.timeout(60)
def test_demo_without_files_prints_events_and_summary(fc):
    cp = fc("demo", "--bind", "tcp://127.0.0.1:0", "--duration", "3", "--rate", "40", timeout=40)
    lines = cp.stdout.splitlines()
    assert any(re.match(r"^md\.DEMO\.EUR/USD #\d+ book_snapshot EUR/USD \[bid ", l) for l in lines), cp.stdout[:2000]
    assert any(re.match(r"^exec\.DEMO\.DEMO-ACC #\d+ execution trade ", l) for l in lines), cp.stdout[:2000]
    m = re.search(r"demo summary: .* simulator sent (\d+) FIX messages .* published (\d+) events, subscriber received (\d+) events, 0 gaps", cp.stdout)
    assert m and int(m.group(1)) >= 40 and int(m.group(3)) >= 40, cp.stdout[-500:]
    # Every published event reached the demo's subscriber, the session's first status event
    # included (published while the subscriber was still subscribing: it comes from the journal).
    assert int(m.group(3)) == int(m.group(2)), cp.stdout[-500:]
    assert re.search(r"^status\.DEMO #1 session ", cp.stdout, re.M), cp.stdout[:2000]


QFPEER = PEERS / "qfpeer"


@pytest.mark.skipif(not QFPEER.exists(), reason="QuickFIX peer not built (tests/setup.d)")
@pytest.mark.timeout(90)
def test_initiator_session_to_quickfix_acceptor(spawn, tmp_path):
    """fixcurve connects out over mTLS (combined cert+key PEM, as venues hand out) to a
    QuickFIX acceptor, subscribes to market data after Logon, and publishes what it sends."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    subprocess.run([BIN, "certs", "dev", "--out", tmp_path / "certs", "--rsa"], check=True, capture_output=True)
    keys = tmp_path / "keys"
    server_pub = server_keys(keys)
    _, sec = keypair(keys, "gina")
    c = tmp_path / "certs"
    qf = tmp_path / "qf"
    qf.mkdir()
    (qf / "acceptor.cfg").write_text(
        f"""[DEFAULT]
ConnectionType=acceptor
SocketAcceptPort={port}
SocketAcceptHost=127.0.0.1
FileStorePath={qf}/store
FileLogPath={qf}/log
StartTime=00:00:00
EndTime=00:00:00
UseDataDictionary=N
SSLProtocol=+TLSv1.2
ServerCertificateFile={c}/server.crt
ServerCertificateKeyFile={c}/server.key
CertificationAuthoritiesFile={c}/ca.crt
CertificateVerifyLevel=1

[SESSION]
BeginString=FIX.4.4
SenderCompID=VENUEA
TargetCompID=BRIDGE
HeartBtInt=30
"""
    )
    peer = spawn(QFPEER, "acceptor", "ssl", qf / "acceptor.cfg")
    peer.wait_for(r"^READY", stream="out")
    cfg = tmp_path / "fixcurve.toml"
    cfg.write_text(
        f"""
[publish]
bind = ["tcp://127.0.0.1:0"]
keys = "keys"
[state]
dir = "state"
[audit]
path = "state/audit.jsonl"
[[initiator]]
name = "venue-a"
connect = "127.0.0.1:{port}"
cert = "certs/client.pem"
ca = "certs/ca.crt"
server_name = "localhost"
reconnect_min_ms = 100
reconnect_max_secs = 1
[[session]]
venue = "VENUEA"
initiator = "venue-a"
begin_string = "FIX.4.4"
sender_comp_id = "BRIDGE"
target_comp_id = "VENUEA"
subscribe = ["EUR/USD"]
"""
    )
    bridge = spawn(BIN, "run", "--config", cfg)
    ep = bridge.listening("publish")
    with Subscriber(ep, server_pub, sec, topics=["exec.VENUEA.", "status.VENUEA"]) as sub:
        peer.wait_for(r"^LOGON ", timeout=30, stream="out")
        # The MarketDataRequest for the configured symbols follows the Logon at once. QuickFIX
        # without a data dictionary cannot parse its repeating groups and answers with a
        # session Reject naming it (372=V), which proves it arrived; with one it is APP_IN.
        peer.wait_for(r"APP_IN .*35=V.*55=EUR/USD|ADMIN_OUT .*35=3\|.*372=V\|", timeout=5, stream="out")
        # Wait until our subscriber is attached (the logon status is published at once,
        # possibly before we connected), then send an execution report.
        deadline = time.monotonic() + 15
        ev = None
        while time.monotonic() < deadline and ev is None:
            send(peer, "send 8 37=O-9|17=E-9|150=0|39=0|54=2|55=EUR/USD|38=12.5|44=99.01")
            peer.wait_for(r"^SENT", stream="out")
            got = sub.recv(timeout_ms=500)
            while got is not None and got.kind != "execution":
                got = sub.recv(timeout_ms=500)
            ev = got
        assert ev is not None
        assert ev.topic == "exec.VENUEA.VENUEA"  # no Account: the sender CompID
        assert ev.body["order_qty"] == Decimal("12.5") and str(ev.body["price"]) == "99.01"
        assert ev.body["side"] == "sell" and ev.body["exec_type"] == "new"
    bridge.p.send_signal(signal.SIGTERM)
    peer.wait_for(r"^LOGOUT ", stream="out")
    assert bridge.p.wait(15) == 0


@pytest.mark.timeout(60)
def test_python_example_script_prints_events(spawn, tmp_path):
    keys = tmp_path / "K"
    _, sec = keypair(keys, "ivy")
    demo = spawn(BIN, "demo", "--keys", keys, "--bind", "tcp://127.0.0.1:0", "--duration", "8", "--rate", "50", "--quiet")
    ep = demo.listening("publish")
    env = {"PYTHONPATH": str(ROOT / "clients" / "python")}
    ex = spawn(sys.executable, ROOT / "clients" / "python" / "examples" / "subscribe.py", ep,
               keys / "server" / "server.key", sec, "md.DEMO.", "exec.", env=env)
    m = ex.wait_for(r"^exec\.DEMO\.DEMO-ACC #\d+ exec trade (buy|sell) \S+ last \d+@\d+\.\d{5}$", timeout=20, stream="out")
    assert m
    ex.wait_for(r"^md\.DEMO\.\S+ #\d+ book_update 2 levels$", timeout=10, stream="out")

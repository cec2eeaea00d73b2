"""CURVE interoperability with stock libzmq (through pyzmq): our publisher and subscriber
against libzmq SUB and PUB sockets, keys written by pyzmq, hostile and unauthorized peers.

PUB/SUB subscriptions propagate asynchronously, so every test synchronizes by publishing in
a loop until the subscriber has received something (never by sleeping)."""

import os
import shutil
import socket
import struct
import threading
import time
from pathlib import Path

import pytest
import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from conftest import BIN

pytestmark = pytest.mark.timeout(60)


def make_keyring(root: Path, clients=("alice",), topics=None):
    """A keyring laid out as fixcurve expects, every file written by pyzmq."""
    for d in ("server", "authorized", "revoked", "clients"):
        (root / d).mkdir(parents=True, exist_ok=True)
    zmq.auth.create_certificates(str(root / "server"), "server")
    os.chmod(root / "server" / "server.key_secret", 0o600)
    for name in clients:
        pub, sec = zmq.auth.create_certificates(str(root / "clients"), name)
        os.chmod(sec, 0o600)
        text = Path(pub).read_text()
        if topics and name in topics:
            text = text.replace("metadata\n", f'metadata\n    topics = "{topics[name]}"\n')
        (root / "authorized" / f"{name}.key").write_text(text)
    return root


def curve_sub(ctx, root, name, endpoint, server_pub=None, topic=b"", heartbeat_ms=0):
    s = ctx.socket(zmq.SUB)
    pub, sec = zmq.auth.load_certificate(str(root / "clients" / f"{name}.key_secret"))
    if server_pub is None:
        server_pub, _ = zmq.auth.load_certificate(str(root / "server" / "server.key"))
    s.curve_publickey = pub
    s.curve_secretkey = sec
    s.curve_serverkey = server_pub
    s.setsockopt(zmq.LINGER, 0)
    if heartbeat_ms:
        s.setsockopt(zmq.HEARTBEAT_IVL, heartbeat_ms)
        s.setsockopt(zmq.HEARTBEAT_TIMEOUT, heartbeat_ms * 3)
        s.setsockopt(zmq.HEARTBEAT_TTL, heartbeat_ms * 3)
    s.setsockopt(zmq.SUBSCRIBE, topic)
    s.connect(endpoint)
    return s


def pump_until(pub_proc, sockets, line=b"sync", deadline=15.0):
    """Write `line` to the publisher's stdin until every socket has received a message."""
    poller = zmq.Poller()
    for s in sockets:
        poller.register(s, zmq.POLLIN)
    got = {}
    end = time.monotonic() + deadline
    while len(got) < len(sockets):
        assert time.monotonic() < end, f"only {len(got)}/{len(sockets)} subscribers received\n{pub_proc.dump()}"
        pub_proc.p.stdin.write(line + b"\n")
        pub_proc.p.stdin.flush()
        for s, _ in poller.poll(50):
            while True:
                try:
                    got.setdefault(s, s.recv_multipart(zmq.NOBLOCK))
                except zmq.Again:
                    break
    return got


def drain(s, quiet=0.2):
    out = []
    while s.poll(int(quiet * 1000)):
        out.append(s.recv_multipart())
    return out


@pytest.fixture
def ctx():
    c = zmq.Context()
    yield c
    c.destroy(linger=0)


def start_pub(spawn, root, *extra):
    p = spawn(BIN, "pub", "--bind", "tcp://127.0.0.1:0",
              "--keys", root, "--topic", "md.T", "--audit", root / "audit.jsonl", *extra)
    return p, p.listening("publish")


def test_pyzmq_sub_receives_from_our_publisher(spawn, ctx, tmp_path):
    root = make_keyring(tmp_path / "keys")
    pub, ep = start_pub(spawn, root)
    s = curve_sub(ctx, root, "alice", ep)
    got = pump_until(pub, [s])
    assert got[s] == [b"md.T", b"sync"]
    pub.p.stdin.write(b"hello world\n")
    pub.p.stdin.flush()
    msgs = drain(s, 1.0)
    assert [b"md.T", b"hello world"] in msgs
    audit = (root / "audit.jsonl").read_text()
    assert '"event":"handshake_allowed"' in audit and '"name":"alice"' in audit


def wait_line(proc, pattern, send, deadline=15.0):
    """Call send() until `proc` prints a line matching `pattern`."""
    end = time.monotonic() + deadline
    while True:
        send()
        try:
            return proc.wait_for(pattern, timeout=0.1, stream="out")
        except AssertionError:
            if time.monotonic() > end or proc.p.poll() is not None:
                raise


def zap_pub(ctx, root, heartbeat_ms=0):
    auth = ThreadAuthenticator(ctx)
    auth.start()
    auth.configure_curve(domain="*", location=str(root / "authorized"))
    pub = ctx.socket(zmq.PUB)
    spub, ssec = zmq.auth.load_certificate(str(root / "server" / "server.key_secret"))
    pub.curve_publickey = spub
    pub.curve_secretkey = ssec
    pub.curve_server = True
    pub.setsockopt(zmq.LINGER, 0)
    if heartbeat_ms:
        pub.setsockopt(zmq.HEARTBEAT_IVL, heartbeat_ms)
        pub.setsockopt(zmq.HEARTBEAT_TIMEOUT, heartbeat_ms * 3)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    return auth, pub, f"tcp://127.0.0.1:{port}"


def our_sub(spawn, root, name, ep, *extra):
    return spawn(BIN, "sub", "--connect", ep, "--server-key", root / "server" / "server.key",
                 "--key", root / "clients" / f"{name}.key_secret", "--raw", *extra)


def test_our_subscriber_receives_from_pyzmq_pub_with_zap(spawn, ctx, tmp_path):
    root = make_keyring(tmp_path / "keys")
    auth, pub, ep = zap_pub(ctx, root)
    try:
        sub = our_sub(spawn, root, "alice", ep, "--topic", "md.")
        wait_line(sub, "^" + b"md.A".hex() + " ", lambda: pub.send_multipart([b"md.A", b"sync"]))
        # multipart and a 1 MiB part, and a topic we did not subscribe to
        big = os.urandom(1 << 20)
        pub.send_multipart([b"other", b"x"])
        pub.send_multipart([b"md.B", b"one", b"two"])
        pub.send_multipart([b"md.C", big])
        sub.wait_for("^" + " ".join(x.hex() for x in [b"md.B", b"one", b"two"]) + "$", stream="out")
        m = sub.wait_for("^" + b"md.C".hex() + " ([0-9a-f]+)$", stream="out")
        assert bytes.fromhex(m.group(1)) == big
        assert not any(l.startswith(b"other".hex()) for l in sub.stdout_lines)
    finally:
        auth.stop()


def test_pyzmq_pub_refuses_unknown_key_and_our_sub_reports_it(spawn, ctx, tmp_path):
    root = make_keyring(tmp_path / "keys", clients=("alice", "mallory"))
    (root / "authorized" / "mallory.key").unlink()
    auth, pub, ep = zap_pub(ctx, root)
    try:
        sub = our_sub(spawn, root, "mallory", ep)
        sub.wait_for("disconnected: .*refused.*400", stream="err")
        pub.send_multipart([b"md.A", b"secret"])
        assert sub.stdout_lines == []
    finally:
        auth.stop()


def test_unauthorized_and_wrong_server_key_receive_nothing(spawn, ctx, tmp_path):
    root = make_keyring(tmp_path / "keys", clients=("alice", "mallory", "eve"))
    (root / "authorized" / "mallory.key").unlink()
    pub, ep = start_pub(spawn, root)
    alice = curve_sub(ctx, root, "alice", ep)
    mallory = curve_sub(ctx, root, "mallory", ep)
    other_server, _ = zmq.auth.create_certificates(str(tmp_path), "other")
    other_pub, _ = zmq.auth.load_certificate(other_server)
    eve = curve_sub(ctx, root, "eve", ep, server_pub=other_pub)
    pump_until(pub, [alice])
    for i in range(50):
        pub.p.stdin.write(b"after %d\n" % i)
    pub.p.stdin.flush()
    got = [m for m in drain(alice, 0.5)]
    assert [b"md.T", b"after 49"] in got
    assert drain(mallory, 0.2) == [] and drain(eve, 0.2) == []
    audit = (root / "audit.jsonl").read_text()
    assert '"event":"handshake_denied"' in audit
    # the publisher keeps serving the authorized subscriber
    pub.p.stdin.write(b"still here\n")
    pub.p.stdin.flush()
    assert [b"md.T", b"still here"] in drain(alice, 0.5)


def test_many_subscribers_and_one_mib_lines(spawn, ctx, tmp_path):
    names = tuple(f"c{i}" for i in range(12))
    root = make_keyring(tmp_path / "keys", clients=names)
    pub, ep = start_pub(spawn, root)
    subs = [curve_sub(ctx, root, n, ep) for n in names]
    pump_until(pub, subs)
    big = b"z" * (1 << 20)
    pub.p.stdin.write(big + b"\n")
    pub.p.stdin.flush()
    for s in subs:
        msgs = []
        while s.poll(5000):
            m = s.recv_multipart()
            if m[1] == big:
                msgs.append(m)
                break
        assert msgs, "1 MiB message not received"


def test_topic_acl_from_key_metadata(spawn, ctx, tmp_path):
    root = make_keyring(tmp_path / "keys", clients=("alice", "bob"), topics={"bob": "exec."})
    pub, ep = start_pub(spawn, root)
    alice = curve_sub(ctx, root, "alice", ep)
    bob = curve_sub(ctx, root, "bob", ep, topic=b"md.")
    pump_until(pub, [alice])
    pub.p.stdin.write(b"marker\n")
    pub.p.stdin.flush()
    assert [b"md.T", b"marker"] in drain(alice, 0.5)
    assert drain(bob, 0.2) == []
    audit = (root / "audit.jsonl").read_text()
    assert '"event":"subscription_denied"' in audit and '"name":"bob"' in audit


def test_heartbeats_both_ways(spawn, ctx, tmp_path):
    root = make_keyring(tmp_path / "keys", clients=("alice", "bob"))
    pub, ep = start_pub(spawn, root, "--heartbeat-ms", "100")
    alice = curve_sub(ctx, root, "alice", ep, heartbeat_ms=100)
    pump_until(pub, [alice])
    # Across many heartbeat intervals the connection stays up: one handshake, still receiving.
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        alice.poll(100)
    pub.p.stdin.write(b"later\n")
    pub.p.stdin.flush()
    assert [b"md.T", b"later"] in drain(alice, 0.5)
    assert (root / "audit.jsonl").read_text().count("handshake_allowed") == 1
    # our subscriber against a libzmq PUB with heartbeats on
    auth, zpub, zep = zap_pub(ctx, root, heartbeat_ms=100)
    try:
        sub = our_sub(spawn, root, "bob", zep, "--heartbeat-ms", "100")
        wait_line(sub, "^" + b"hb".hex(), lambda: zpub.send_multipart([b"hb", b"1"]))
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            time.sleep(0.1)
            zpub.send_multipart([b"hb", b"2"])
        assert not any(l.startswith("disconnected") for l in sub.stderr_lines), sub.dump()
        assert sub.stderr_lines.count("connected: " + zep) == 1
    finally:
        auth.stop()


def test_keys_written_by_fixcurve_load_in_pyzmq(fc, tmp_path):
    cp = fc("keys", "gen", "carol", "--dir", tmp_path, check=False)
    assert cp.returncode == 0, cp.stderr
    pub, sec = zmq.auth.load_certificate(str(tmp_path / "carol.key_secret"))
    assert len(pub) == 40 and len(sec) == 40
    pub2, none = zmq.auth.load_certificate(str(tmp_path / "carol.key"))
    assert pub2 == pub and none is None
    assert zmq.curve_public(sec) == pub


def test_ipc_and_ipv6_endpoints(spawn, ctx, tmp_path):
    root = make_keyring(tmp_path / "keys")
    sock = tmp_path / "pub.sock"
    p = spawn(BIN, "pub", "--bind", f"ipc://{sock}", "--bind", "tcp://[::1]:0", "--keys", root, "--topic", "t")
    first = p.listening("publish")
    p.wait_for(r"listening: publish tcp://\[::1\]:\d+", stream="err")
    v6 = [l.split()[-1] for l in p.stderr_lines if l.startswith("listening: publish tcp://[::1]")][0]
    assert first == f"ipc://{sock}"
    a = curve_sub(ctx, root, "alice", first)
    b = ctx.socket(zmq.SUB)
    b.setsockopt(zmq.IPV6, 1)
    pub, sec = zmq.auth.load_certificate(str(root / "clients" / "alice.key_secret"))
    b.curve_publickey, b.curve_secretkey = pub, sec
    b.curve_serverkey = zmq.auth.load_certificate(str(root / "server" / "server.key"))[0]
    b.setsockopt(zmq.SUBSCRIBE, b"")
    b.setsockopt(zmq.LINGER, 0)
    b.connect(v6)
    got = pump_until(p, [a, b])
    assert got[a] == got[b] == [b"t", b"sync"]

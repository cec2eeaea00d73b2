"""The live keyring against stock libzmq subscribers (pyzmq): authorizations served without a
restart, revocations and removals closing live connections within a second, per-key topic
ACLs, pyzmq- and CZMQ-written certificates, churn, and loose secret files refused."""

import os
import time
from pathlib import Path

import pytest
import zmq
import zmq.auth
from zmq.utils.monitor import recv_monitor_message

from conftest import BIN
from test_curve_interop import curve_sub, drain, make_keyring, pump_until, start_pub

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def ctx():
    c = zmq.Context()
    yield c
    c.destroy(linger=0)


def add_client(root: Path, name: str):
    pub, sec = zmq.auth.create_certificates(str(root / "clients"), name)
    os.chmod(sec, 0o600)
    return Path(pub)


def wait_disconnected(monitor, deadline):
    """Seconds until the monitored socket reports EVENT_DISCONNECTED (fails after deadline)."""
    start = time.monotonic()
    while True:
        left = deadline - (time.monotonic() - start)
        assert left > 0, "subscriber was not disconnected"
        if monitor.poll(int(left * 1000)):
            ev = recv_monitor_message(monitor)
            if ev["event"] == zmq.EVENT_DISCONNECTED:
                return time.monotonic() - start


def test_key_authorized_while_running_is_served(spawn, ctx, fc, tmp_path):
    root = make_keyring(tmp_path / "keys", clients=("alice",))
    bob_cert = add_client(root, "bob")
    pub, ep = start_pub(spawn, root)
    alice = curve_sub(ctx, root, "alice", ep)
    pump_until(pub, [alice])
    fc("keys", "authorize", "--keys", root, "--name", "bob", "--from", bob_cert)
    # the keyring notices the new file by itself; a fresh bob connection is then served
    bob = curve_sub(ctx, root, "bob", ep)
    got = pump_until(pub, [bob])
    assert got[bob] == [b"md.T", b"sync"]
    assert pub.p.poll() is None, "publisher restarted or died"


@pytest.mark.parametrize("how", ["revoke", "remove"])
def test_revocation_closes_live_subscriber(spawn, ctx, fc, tmp_path, how):
    root = make_keyring(tmp_path / "keys", clients=("alice", "carol"))
    pub, ep = start_pub(spawn, root)
    alice = curve_sub(ctx, root, "alice", ep)
    carol = curve_sub(ctx, root, "carol", ep)
    monitor = alice.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    pump_until(pub, [alice, carol])
    drain(alice, 0.05)
    if how == "revoke":
        fc("keys", "revoke", "--keys", root, "alice")
        assert (root / "revoked" / "alice.key").exists()
    else:
        os.remove(root / "authorized" / "alice.key")
    took = wait_disconnected(monitor, 1.0)
    assert took <= 1.0
    drain(alice, 0.05)
    drain(carol, 0.05)
    for i in range(20):
        pub.p.stdin.write(f"after {i}\n".encode())
    pub.p.stdin.flush()
    carol_got = drain(carol, 1.0)
    assert [b"md.T", b"after 19"] in carol_got, "control subscriber stopped receiving"
    assert drain(alice, 0.3) == [], "revoked subscriber still receives"
    audit = (root / "audit.jsonl").read_text()
    assert '"event":"revoked_disconnect"' in audit


def test_topic_acl_limits_a_subscriber_to_everything(spawn, ctx, fc, tmp_path):
    root = make_keyring(tmp_path / "keys", clients=("carol",))
    alice_cert = add_client(root, "alice")
    fc("keys", "authorize", "--keys", root, "--name", "alice", "--from", alice_cert, "--topics", "md.")
    md = spawn(BIN, "pub", "--bind", "tcp://127.0.0.1:0", "--keys", root, "--topic", "md.V.EUR/USD")
    ex = spawn(BIN, "pub", "--bind", "tcp://127.0.0.1:0", "--keys", root, "--topic", "exec.V.ACC1")
    md_ep, ex_ep = md.listening("publish"), ex.listening("publish")
    alice = curve_sub(ctx, root, "alice", md_ep)  # subscribed to everything
    alice.connect(ex_ep)
    carol = curve_sub(ctx, root, "carol", md_ep)
    carol.connect(ex_ep)
    pump_until(md, [alice, carol])
    pump_until(ex, [carol])
    for i in range(10):
        md.p.stdin.write(f"m{i}\n".encode())
        ex.p.stdin.write(f"e{i}\n".encode())
    md.p.stdin.flush()
    ex.p.stdin.flush()
    alice_topics = {m[0] for m in drain(alice, 1.0)}
    carol_topics = {m[0] for m in drain(carol, 1.0)}
    assert alice_topics == {b"md.V.EUR/USD"}
    assert carol_topics == {b"md.V.EUR/USD", b"exec.V.ACC1"}


CZMQ_PUBLIC = """#   ****  Generated on 2026-11-22 12:00:00 by CZMQ  ****
#   ZeroMQ CURVE Public Certificate
#   Exchange securely, or use a secure mechanism to verify the contents
#   of this file after exchange. Store public certificates in your home
#   directory, in the .curve subdirectory.

metadata
    name = "dora"
curve
    public-key = "{key}"
"""


def test_czmq_written_certificate_is_honoured(spawn, ctx, tmp_path):
    root = make_keyring(tmp_path / "keys", clients=())
    pub_path = add_client(root, "dora")
    key, _ = zmq.auth.load_certificate(str(pub_path))
    (root / "authorized" / "dora-czmq.key").write_text(CZMQ_PUBLIC.format(key=key.decode()))
    pub, ep = start_pub(spawn, root)
    dora = curve_sub(ctx, root, "dora", ep)
    assert pump_until(pub, [dora])[dora] == [b"md.T", b"sync"]
    assert '"name":"dora"' in (root / "audit.jsonl").read_text()


def test_churn_ends_in_the_right_state(spawn, ctx, fc, tmp_path):
    names = [f"s{i}" for i in range(10)]
    root = make_keyring(tmp_path / "keys", clients=names)
    x_cert = add_client(root, "x")
    pub, ep = start_pub(spawn, root)
    subs = [curve_sub(ctx, root, n, ep) for n in names]
    pump_until(pub, subs)
    for i in range(100):
        fc("keys", "authorize", "--keys", root, "--name", "x", "--from", x_cert, "--force")
        fc("keys", "revoke", "--keys", root, "x")
        if i % 10 == 0:
            os.remove(root / "revoked" / "x.key")  # also exercise plain deletions
    listing = fc("keys", "list", "--keys", root, "--json").stdout
    assert '"status": "revoked"' in listing and listing.count('"status": "authorized"') == 10
    for s in subs:
        drain(s, 0.01)
    pub.p.stdin.write(b"final\n")
    pub.p.stdin.flush()
    for s in subs:
        assert [b"md.T", b"final"] in drain(s, 1.0)
    assert pub.p.poll() is None
    assert "panicked" not in "\n".join(pub.stderr_lines)


def test_loose_secret_key_is_refused(fc, tmp_path):
    root = make_keyring(tmp_path / "keys", clients=())
    os.chmod(root / "server" / "server.key_secret", 0o644)
    cp = fc("pub", "--bind", "tcp://127.0.0.1:0", "--keys", root, check=False, input="")
    assert cp.returncode != 0
    assert "server.key_secret" in cp.stderr and "chmod 600" in cp.stderr, cp.stderr


def test_keys_list_and_secret_in_authorized_warned(fc, tmp_path):
    root = tmp_path / "keys"
    fc("keys", "gen", "eve", "--dir", root, "--client")
    assert oct((root / "clients").stat().st_mode & 0o777) == "0o700"
    assert (root / "clients" / "eve.key_secret").stat().st_mode & 0o777 == 0o600
    fc("keys", "authorize", "--keys", root, "--name", "eve", "--from", root / "clients" / "eve.key")
    dup = fc("keys", "authorize", "--keys", root, "--name", "eve2", "--from", root / "clients" / "eve.key", check=False)
    assert dup.returncode != 0 and "already authorized" in dup.stderr
    (root / "authorized" / "oops.key_secret").write_text("x")
    cp = fc("keys", "list", "--keys", root)
    assert "eve" in cp.stdout and "authorized" in cp.stdout
    assert "oops.key_secret" in cp.stderr

"""The CURVE edge under a demanding user and an attacker: idle CPU with a large keyring,
topic ACLs that match whole components (per-account isolation through the real bridge and a
QuickFIX venue), pre-authentication limits under a flood, and start-up from an empty keyring."""

import os
import time
from pathlib import Path

import pytest
import zmq

from conftest import BIN
from test_bridge import Bridge, keypair, needs_quickfix, send, wait_until, scrape, metric
from fixcurve_client import Subscriber

pytestmark = pytest.mark.timeout(120)

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User + system CPU time of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def bulk_authorize(keys: Path, n: int):
    """n authorized public keys written directly as ZPL files (as pyzmq would write them)."""
    auth = keys / "authorized"
    auth.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        public, _ = zmq.curve_keypair()
        (auth / f"bulk{i:04d}.key").write_text(
            f'metadata\n    name = "bulk{i:04d}"\ncurve\n    public-key = "{public.decode()}"\n')


@needs_quickfix
def test_idle_bridge_uses_under_two_percent_of_a_core(spawn, tmp_path):
    b = Bridge(spawn, tmp_path, heartbeat=2)
    bulk_authorize(b.keys, 1000)
    secrets = [keypair(b.keys, f"sub{i}")[1] for i in range(10)]
    b.start()
    subs = [Subscriber(b.publish, b.server_pub, s, topics=[""], heartbeat_ms=1000) for s in secrets]
    wait_until(lambda: b.subscribers() == len(subs), what="subscribers connected")
    venue = b.venue()
    send(venue, "script")
    venue.wait_for(r"^SENT 6$", stream="out")
    for s in subs:
        assert s.recv(timeout_ms=5000) is not None
    # Idle from here: a logged-on FIX session, 10 subscribers with 1 s heartbeats both ways,
    # 1,000 keys watched.
    pid = b.proc.p.pid
    t0, c0 = time.monotonic(), cpu_seconds(pid)
    time.sleep(10)  # the measurement window itself, not a synchronization
    used = cpu_seconds(pid) - c0
    share = used / (time.monotonic() - t0)
    assert share < 0.02, f"idle bridge used {share:.1%} of a core"
    assert b.subscribers() == len(subs), "subscribers dropped while idle"
    for s in subs:
        s.close()


# What the venue sends, and the topic each lands on (components escaped).
ACCOUNTS = {"ACC1": "exec.VENUE1.ACC1", "ACC10": "exec.VENUE1.ACC10",
            "ACC1.X": "exec.VENUE1.ACC1%2EX", "ACC 1": "exec.VENUE1.ACC%201"}
SYMBOLS = {"BRK.B": "md.VENUE1.BRK%2EB", "EUR/USD": "md.VENUE1.EUR/USD", "A B": "md.VENUE1.A%20B"}
ALL = set(ACCOUNTS.values()) | set(SYMBOLS.values())

# key name -> (topics metadata, the topics it must receive and nothing else)
GRANTS = {
    "acc1": ("exec.VENUE1.ACC1", {"exec.VENUE1.ACC1"}),
    "acc1x": ("exec.VENUE1.ACC1%2EX", {"exec.VENUE1.ACC1%2EX"}),
    "accounts": ("exec.VENUE1.", set(ACCOUNTS.values())),
    "brk": ("md.VENUE1.BRK%2EB,exec.VENUE1.ACC%201", {"md.VENUE1.BRK%2EB", "exec.VENUE1.ACC%201"}),
    "spaced": ("md.VENUE1.A%20B", {"md.VENUE1.A%20B"}),
    "md": ("md.", set(SYMBOLS.values())),
    "everything": (None, ALL),
}


@needs_quickfix
def test_acl_entries_match_whole_components_through_the_bridge(spawn, tmp_path):
    b = Bridge(spawn, tmp_path)
    secrets = {name: keypair(b.keys, name, topics=t)[1] for name, (t, _) in GRANTS.items()}
    b.start()
    subs = {name: Subscriber(b.publish, b.server_pub, sec, topics=[""]) for name, sec in secrets.items()}
    wait_until(lambda: b.subscribers() == len(subs), what="subscribers connected")
    venue = b.venue()
    got = {name: set() for name in subs}

    def round_trip():
        for account in ACCOUNTS:
            send(venue, f"exec {account}")
        for symbol in SYMBOLS:
            send(venue, f"quote {symbol}")
        # "everything" sees every message: when the last one arrived, the round is published.
        last = SYMBOLS["A B"]
        deadline = time.monotonic() + 10
        while True:
            assert time.monotonic() < deadline, "control subscriber missed the round"
            ev = subs["everything"].recv(timeout_ms=500)
            if ev is not None:
                got["everything"].add(ev.topic)
                if ev.topic == last:
                    break
        for name, s in subs.items():
            if name == "everything":
                continue
            while (ev := s.recv(timeout_ms=300)) is not None:
                got[name].add(ev.topic)

    # Rounds until every subscriber has seen something (subscriptions propagate asynchronously),
    # then one more full round that each must receive whole.
    for _ in range(10):
        round_trip()
        if all(got.values()):
            break
    for name in got:
        got[name] = set()
    round_trip()
    for name, (_, want) in GRANTS.items():
        assert got[name] == want, f"{name}: got {sorted(got[name])}, entitled to {sorted(want)}"
    # the Python client names the topics exactly as the bridge published them
    from fixcurve_client import topics
    assert {topics.exec_topic("VENUE1", a) for a in ACCOUNTS} == set(ACCOUNTS.values())
    assert {topics.md_topic("VENUE1", s) for s in SYMBOLS} == set(SYMBOLS.values())
    for s in subs.values():
        s.close()


def proc_rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_flood_of_half_open_and_garbage_connections_does_not_lock_subscribers_out(spawn, tmp_path):
    import resource
    import socket
    import threading

    from test_curve_interop import curve_sub, make_keyring, pump_until

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    root = make_keyring(tmp_path / "keys", clients=("alice", "bob"))
    pub = spawn(BIN, "pub", "--bind", "tcp://127.0.0.1:0", "--keys", root, "--topic", "md.T",
                "--audit", root / "audit.jsonl")
    ep = pub.listening("publish")
    port = int(ep.rsplit(":", 1)[1])
    ctx = zmq.Context()
    try:
        alice = curve_sub(ctx, root, "alice", ep)
        pump_until(pub, [alice])
        rss0 = proc_rss_kib(pub.p.pid)
        lines0 = len(pub.stderr_lines)

        # The attacker, from 127.0.0.5: 2,000 connections, half silent (half-open handshakes),
        # half sending junk, and it keeps reconnecting while the flood lasts.
        held, opened, stop, midway = [], [0], threading.Event(), threading.Event()

        def attack():
            # Goes on until the checks below are done, and at least 2,000 connections.
            i = 0
            while not (stop.is_set() and opened[0] >= 2000):
                s = socket.socket()
                try:
                    s.bind(("127.0.0.5", 0))
                    s.connect(("127.0.0.1", port))
                    if i % 2:
                        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + os.urandom(64))
                except OSError:
                    s.close()
                    continue
                opened[0] += 1
                held.append(s)
                i += 1
                if opened[0] == 500:
                    midway.set()

        attacker = threading.Thread(target=attack)
        attacker.start()
        assert midway.wait(30), "the flood did not get going"  # well into the flood
        # A new, authorized subscriber gets in within a second, during the flood.
        t0 = time.monotonic()
        bob = curve_sub(ctx, root, "bob", ep)
        pump_until(pub, [bob], deadline=5.0)
        took = time.monotonic() - t0
        assert took < 1.0, f"authorized subscriber needed {took:.2f} s to get in during the flood"
        # alice kept receiving through it.
        pump_until(pub, [alice], line=b"during", deadline=5.0)
        stop.set()
        attacker.join()
        for s in held:
            s.close()
        # Bounded: memory, log lines and audit lines do not grow with the flood.
        grew = proc_rss_kib(pub.p.pid) - rss0
        assert grew < 64 * 1024, f"publisher RSS grew by {grew} KiB"
        log_lines = len(pub.stderr_lines) - lines0
        assert log_lines < 300, f"{log_lines} log lines for the flood"
        audit = (root / "audit.jsonl").read_text().splitlines()
        assert len(audit) < 300, f"{len(audit)} audit lines"
        refusals = [l for l in audit if '"connection_refused' in l or '"handshake_failed' in l]
        assert refusals, "the flood left no audit trace"
        # and the summary arrives when the window closes, naming the flooding address
        from fixharness import wait_audit
        rec = wait_audit(root / "audit.jsonl", timeout=15.0, event="connection_refused_summary")
        assert "127.0.0.5 x" in rec["reason"], rec
    finally:
        ctx.destroy(linger=0)


def test_run_creates_the_server_keypair_in_an_empty_keyring_and_audits_it(spawn, fc, tmp_path):
    b = Bridge(spawn, tmp_path)
    import shutil
    shutil.rmtree(b.keys)  # nothing at all: not even keys/
    b.start()
    secret = b.keys / "server" / "server.key_secret"
    assert secret.stat().st_mode & 0o777 == 0o600
    assert (b.keys / "server").stat().st_mode & 0o777 == 0o700
    from fixharness import wait_audit
    rec = wait_audit(tmp_path / "state" / "audit.jsonl", event="server_key_created")
    public = (b.keys / "server" / "server.key").read_text()
    assert rec["key"] in public
    # and a subscriber authorized afterwards is served with that key
    _, sec = keypair(b.keys, "late")
    # libzmq stops reconnecting after a CURVE ERROR: connect once the keyring has the key.
    b.proc.wait_for(r"keyring loaded.*late", stream="err")
    sub = Subscriber(b.publish, b.keys / "server" / "server.key", sec, topics=["status."])
    wait_until(lambda: b.subscribers() == 1, what="subscriber served with the generated key")
    sub.close()


def test_keys_gen_makes_private_folders(fc, tmp_path):
    fc("keys", "gen", "server", "--dir", tmp_path / "keys" / "server")
    assert (tmp_path / "keys" / "server").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "keys" / "server" / "server.key_secret").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("which", ["tls_key", "password_file"])
def test_loose_tls_key_or_password_file_is_refused_at_start(fc, tmp_path, which):
    b = Bridge(None, tmp_path)
    if which == "tls_key":
        loose = tmp_path / "certs" / "server.key"
    else:
        loose = tmp_path / "pw"
        loose.write_text("secret\n")
        b.config.write_text(b.config.read_text()
                            .replace("[[acceptor]]", '[[initiator]]\nname = "out"\nconnect = "127.0.0.1:9"\n'
                                     'cert = "certs/client.pem"\nca = "certs/ca.crt"\n\n[[acceptor]]')
                            + '\n[[session]]\nvenue = "V2"\ninitiator = "out"\nbegin_string = "FIX.4.4"\n'
                              'sender_comp_id = "A"\ntarget_comp_id = "B"\nusername = "u"\npassword_file = "pw"\n')
        loose.chmod(0o600)
        ok = fc("run", "--config", b.config, "--check", check=False)
        assert ok.returncode == 0, ok.stderr
    loose.chmod(0o644)
    cp = fc("run", "--config", b.config, check=False, timeout=30)
    assert cp.returncode != 0
    assert "chmod 600" in cp.stderr and str(loose.name) in cp.stderr, cp.stderr


def test_server_key_rotation_with_overlap(spawn, fc, tmp_path):
    from test_curve_interop import curve_sub, drain, make_keyring, pump_until
    from zmq.utils.monitor import recv_monitor_message
    from fixharness import wait_audit

    root = make_keyring(tmp_path / "keys", clients=("alice", "dave", "erin", "frank"))
    audit = root / "audit.jsonl"
    pub = spawn(BIN, "pub", "--bind", "tcp://127.0.0.1:0", "--keys", root, "--topic", "md.T",
                "--audit", audit)
    ep = pub.listening("publish")
    old_pub = root / "server" / "server.key"
    saved_old = tmp_path / "old-server.key"
    saved_old.write_text(old_pub.read_text())
    ctx = zmq.Context()
    try:
        # alice: stock pyzmq on the old key, connected before the rotation.
        alice = curve_sub(ctx, root, "alice", ep)
        mon = alice.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        # erin: our Python client given both keys, old first (what it was configured with).
        new_pub = root / "server" / "server.key"
        pump_until(pub, [alice])

        cp = fc("keys", "rotate-server", "--keys", root, "--overlap", "4s")
        new_key = cp.stdout.strip()
        assert len(new_key) == 40 and new_key.encode() != zmq.auth.load_certificate(str(saved_old))[0]
        wait_audit(audit, event="server_keys_changed", key=new_key)

        # During the overlap: alice (old key) keeps receiving; dave (new key, stock pyzmq) and
        # erin (both keys) get in.
        dave = curve_sub(ctx, root, "dave", ep, server_pub=new_key.encode())
        erin = Subscriber(ep, [saved_old, new_pub], root / "clients" / "erin.key_secret", topics=[""])
        pump_until(pub, [alice, dave], line=b"overlap")

        def erin_receives(line):
            # The lines are not envelopes: read erin's socket itself, letting the client
            # handle its monitor (key switching) while it waits.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                pub.p.stdin.write(line + b"\n")
                pub.p.stdin.flush()
                if erin._wait(50):
                    return erin.socket.recv_multipart()
            return None

        assert erin_receives(b"overlap") == [b"md.T", b"overlap"]
        assert erin.server_key_in_use == zmq.auth.load_certificate(str(saved_old))[0]

        # The overlap ends: the old key is retired (audited), alice is closed, a fresh stock
        # client on the old key gets nothing, erin moves to the new key by itself.
        wait_audit(audit, timeout=15, event="server_key_retired")
        assert mon.poll(5000), "alice was not disconnected when the old key retired"
        assert recv_monitor_message(mon)["event"] == zmq.EVENT_DISCONNECTED
        frank = curve_sub(ctx, root, "frank", ep, server_pub=zmq.auth.load_certificate(str(saved_old))[0])
        # (a message may still reach erin on the old key while its connection is being closed)
        deadline = time.monotonic() + 10
        while erin.server_key_in_use != new_key.encode() and time.monotonic() < deadline:
            erin_receives(b"after")
        assert erin.server_key_in_use == new_key.encode(), "erin did not move to the new key"
        assert erin_receives(b"after") == [b"md.T", b"after"], "erin stopped receiving"
        pump_until(pub, [dave], line=b"after")
        drain(alice, 0.05)
        for _ in range(20):
            pub.p.stdin.write(b"after\n")
        pub.p.stdin.flush()
        assert [b"md.T", b"after"] in drain(dave, 0.5)
        assert drain(frank, 0.3) == [], "the retired key still receives"
        assert drain(alice, 0.1) == [], "the retired key still receives"
        erin.close()
    finally:
        ctx.destroy(linger=0)


def audit_checks(fc, root, *extra):
    import json
    cp = fc("keys", "audit", "--keys", root, "--json", *extra, check=False)
    findings = json.loads(cp.stdout)
    return cp.returncode, {(f["check"], Path(f["path"]).name) for f in findings}


def test_keys_audit_reports_every_finding_and_exits_non_zero(fc, tmp_path):
    import subprocess as sp
    from test_curve_interop import make_keyring

    root = make_keyring(tmp_path / "keys", clients=("alice", "bob", "carol"))
    for d in ("server", "clients"):
        (root / d).chmod(0o700)
    # pyzmq writes no `name` metadata: name every key but one for the clean baseline
    for name in ("alice", "bob", "carol"):
        p = root / "authorized" / f"{name}.key"
        p.write_text(p.read_text().replace("metadata\n", f'metadata\n    name = "{name}"\n', 1))
    rc, found = audit_checks(fc, root)
    assert (rc, found) == (0, set()), found
    assert "no findings" in fc("keys", "audit", "--keys", root).stdout

    (root / "clients" / "alice.key_secret").chmod(0o644)
    (root / "clients").chmod(0o755)
    (root / "authorized").chmod(0o777)
    fc("keys", "revoke", "--keys", root, "bob")
    (root / "authorized" / "bob.key").write_text((root / "revoked" / "bob.key").read_text())
    (root / "authorized" / "carol2.key").write_text((root / "authorized" / "carol.key").read_text())
    public, _ = zmq.curve_keypair()
    (root / "authorized" / "anon.key").write_text(f'metadata\ncurve\n    public-key = "{public.decode()}"\n')
    public, _ = zmq.curve_keypair()
    (root / "authorized" / "old.key").write_text(
        f'metadata\n    name = "old"\n    expires = "2020-01-01T00:00:00Z"\ncurve\n    public-key = "{public.decode()}"\n')
    tls_key = tmp_path / "tls.key"
    tls_key.write_text("-----BEGIN PRIVATE KEY-----\n")
    tls_key.chmod(0o640)
    rc, found = audit_checks(fc, root, tls_key)
    assert rc == 1
    for want in [("secret_mode", "alice.key_secret"), ("dir_mode", "clients"), ("writable", "authorized"),
                 ("authorized_and_revoked", "bob.key"), ("duplicate_key", "carol2.key"),
                 ("no_name", "anon.key"), ("expired", "old.key"), ("secret_mode", "tls.key")]:
        assert want in found, (want, found)

    # a secret inside a git work tree; an old server key; a retired previous key left behind
    sp.run(["git", "init", "-q", str(tmp_path)], check=True)
    rc, found = audit_checks(fc, root, "--max-server-key-age", "1s")
    assert ("secret_in_git", "server.key_secret") in found, found
    fc("keys", "rotate-server", "--keys", root, "--overlap", "1s")
    prev = root / "server" / "previous.key_secret"
    text = prev.read_text()
    import re
    prev.write_text(re.sub(r'retire-after = "[^"]*"', 'retire-after = "2020-01-01T00:00:00Z"', text))
    cur = root / "server" / "server.key"
    cur.write_text(re.sub(r'created = "[^"]*"', 'created = "2020-01-01T00:00:00Z"', cur.read_text()))
    rc, found = audit_checks(fc, root)
    assert ("server_key_age", "server.key_secret") in found, found
    assert ("retired_server_key", "previous.key_secret") in found, found

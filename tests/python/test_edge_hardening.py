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
    for s in subs.values():
        s.close()

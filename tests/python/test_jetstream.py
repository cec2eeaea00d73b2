"""JetStream as the backbone: a bridge with `[sink.nats]` writing into a stock `nats-server`
cluster, `fixcurve edge`s serving pyzmq and Rust subscribers from it, failures on every hop
(a NATS node, an edge, the bridge), and bad input (NATS unreachable at start, a stream of the
wrong shape, messages that are not envelopes)."""

import json
import time

import pytest

from conftest import BIN
from jetstream import Edge, JsBridge, Node, cluster, needs_nats
from test_bridge import keypair, metric, needs_quickfix, scrape, send, wait_until

from fixcurve_client import Subscriber


def authorize(edge, name):
    """A subscriber key made by pyzmq, authorized on `edge` (copied from another keyring's
    clients folder when it exists there already)."""
    return keypair(edge.keys, name)


def drain(sub, want, timeout=30.0):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        ev = sub.recv(timeout_ms=500)
        if ev is not None:
            got.append(ev)
    return got


@needs_quickfix
@needs_nats
@pytest.mark.timeout(120)
def test_single_node_smoke(spawn, tmp_path):
    node = Node(spawn, tmp_path / "nats", "solo", routes=[], cluster_port=None)
    b = JsBridge(spawn, tmp_path / "bridge", [node.url], replicas=1)
    b.dir.mkdir(exist_ok=True)
    b.start()
    e = Edge(spawn, tmp_path / "edge", [node.url]).start()
    _, sec = authorize(e, "alice")
    venue = b.venue()
    with Subscriber(e.publish, e.server_pub, sec, topics=["exec."], replay=e.replay, since=1) as sub:
        send(venue, "execs 500 2000 8")
        got = drain(sub, 500)
        b.kill9()
        b.start()
        venue.wait_for(r"^LOGON ", timeout=30, stream="out")
        send(venue, "execs 100 2000 8 F-")
        got += drain(sub, 100)
    ids = [ev.body["exec_id"] for ev in got]
    want = [f"E-{i}" for i in range(500)] + [f"F-{i}" for i in range(100)]
    assert ids == want, f"{len(ids)}\n{b.proc.dump()[-3000:]}\n{e.proc.dump()[-3000:]}"
    m = scrape(b.metrics)
    assert metric(m, "fixcurve_nats_acked_total") >= 100


def nats_metrics(addr):
    try:
        return "\n".join(l for l in scrape(addr).splitlines() if l.startswith("fixcurve_nats_") or l.startswith("fixcurve_journal_newest"))
    except OSError as e:
        return f"metrics {addr}: {e}"


def rust_sub(spawn, edge, sec, since):
    return spawn(BIN, "sub", "--connect", edge.publish, "--server-key", edge.keys / "server" / "server.key",
                 "--key", sec, "--replay", edge.replay, "--since", str(since), "--topic", "exec.VENUE1.BULK",
                 "--json")


def rust_events(proc):
    out = []
    for line in list(proc.stdout_lines):
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


@needs_quickfix
@needs_nats
@pytest.mark.timeout(240)
def test_node_edge_and_bridge_failures_lose_and_duplicate_nothing(spawn, tmp_path):
    """QuickFIX → bridge → JetStream (R3 on 3 nodes) → two edges → pyzmq and Rust subscribers.
    Mid-stream a NATS node dies, an edge is `kill -9`ed (its subscribers move to the other
    edge and recover by replay), and the bridge is `kill -9`ed and restarted. Every ExecID
    must arrive exactly once, in order, with gapless seq, at every subscriber."""
    n = 6000
    nodes = cluster(spawn, tmp_path / "nats")
    urls = [x.url for x in nodes]
    b = JsBridge(spawn, tmp_path / "bridge", urls, replicas=3)
    b.start()
    runs = [b.proc]
    ea = Edge(spawn, tmp_path / "edge-a", urls).start()
    eb = Edge(spawn, tmp_path / "edge-b", urls).start()
    # The same subscribers are authorized on both edges (each edge has its own keyring).
    _, py_sec = keypair(ea.keys, "py")
    _, rs_sec = keypair(ea.keys, "rs")
    for name in ("py", "rs"):
        (eb.keys / "authorized" / f"{name}.key").write_text((ea.keys / "authorized" / f"{name}.key").read_text())
    venue = b.venue()
    py = Subscriber(ea.publish, ea.server_pub, py_sec, topics=["exec.VENUE1.BULK"], replay=ea.replay, since=1)
    rs_a = rust_sub(spawn, ea, rs_sec, 1)
    rs_a.wait_for(r"^connected", stream="err")
    rs_b = rust_sub(spawn, eb, rs_sec, 1)
    rs_b.wait_for(r"^connected", stream="err")
    send(venue, f"execs {n} 1500 16")
    got = []

    def upto(count, timeout=60.0):
        deadline = time.monotonic() + timeout
        while len(got) < count:
            assert time.monotonic() < deadline, (f"python subscriber stopped at {len(got)}\n"
                                                 f"bridge:\n{b.proc.dump()[-3000:]}\nedge B:\n{eb.proc.dump()[-2000:]}\n"
                                                 f"{nats_metrics(b.metrics)}\n{nats_metrics(eb.metrics)}")
            ev = py.recv(timeout_ms=500)
            if ev is not None:
                got.append(ev)

    upto(1000)
    nodes[2].kill9()
    upto(2500)
    ea.kill9()
    # Both subscribers of edge A move to edge B and resume after the last seq they hold.
    py.close()
    py = Subscriber(eb.publish, eb.server_pub, py_sec, topics=["exec.VENUE1.BULK"], replay=eb.replay,
                    since=got[-1].seq + 1)
    rs_a.stop()
    held = rust_events(rs_a)
    rs_a2 = rust_sub(spawn, eb, rs_sec, held[-1]["seq"] + 1 if held else 1)
    upto(3500)
    b.kill9()
    b.start()
    runs.append(b.proc)
    venue.wait_for(r"^LOGON ", timeout=30, stream="out")
    upto(n, timeout=90)
    py.close()

    def check(events, who):
        ids = [e["body"]["exec_id"] if isinstance(e, dict) else e.body["exec_id"] for e in events]
        seqs = [e["seq"] if isinstance(e, dict) else e.seq for e in events]
        seen = set()
        dup = next((i for i, x in enumerate(ids) if x in seen or seen.add(x)), None)
        around = seqs[max(0, (dup or 0) - 5):(dup or 0) + 5]
        assert len(ids) == n and len(set(ids)) == n, \
            f"{who}: {len(ids)} events, {len(set(ids))} distinct; first repeat at {dup}: seqs {around}"
        assert ids == [f"E-{i}" for i in range(n)], f"{who}: out of order"
        assert seqs == list(range(1, n + 1)), f"{who}: seq not gapless"

    check(got, "python (edge A then B)")
    wait_until(lambda: len(rust_events(rs_b)) >= n, timeout=60, what="rust subscriber on edge B")
    check(rust_events(rs_b), "rust (edge B)")
    wait_until(lambda: len(held) + len(rust_events(rs_a2)) >= n, timeout=60, what="rust subscriber moved to B")
    check(held + rust_events(rs_a2), "rust (edge A then B)")
    resends = sum(1 for p in runs[1:] for l in p.stderr_lines if "ResendRequest sent" in l)
    print(f"R3 stream, node + edge + bridge killed: {n} executions at 3 subscribers, 0 lost, 0 duplicated; "
          f"{resends} ResendRequests after the bridge restart; held by edge A's rust sub: {len(held)}")

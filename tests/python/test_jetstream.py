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
def test_single_node_bridge_restart_and_a_durable_edge_restart(spawn, tmp_path):
    node = Node(spawn, tmp_path / "nats", "solo", routes=[], cluster_port=None)
    b = JsBridge(spawn, tmp_path / "bridge", [node.url], replicas=1)
    b.dir.mkdir(exist_ok=True)
    b.start()
    e = Edge(spawn, tmp_path / "edge", [node.url]).start()
    # A second edge on a durable consumer: the server remembers what it acknowledged.
    d = Edge(spawn, tmp_path / "durable", [node.url], extra='consumer = "durable"\ndurable_name = "edge-d"').start()
    _, sec = authorize(e, "alice")
    (d.keys / "authorized" / "alice.key").write_text((e.keys / "authorized" / "alice.key").read_text())
    venue = b.venue()
    with Subscriber(e.publish, e.server_pub, sec, topics=["exec."], replay=e.replay, since=1) as sub:
        send(venue, "execs 500 2000 8")
        got = drain(sub, 500)
        b.kill9()
        b.start()
        venue.wait_for(r"^LOGON ", timeout=30, stream="out")
        # The durable edge restarts mid-stream too: it resumes where it acknowledged.
        d.kill9()
        send(venue, "execs 100 2000 8 F-")
        d.start()
        got += drain(sub, 100)
    ids = [ev.body["exec_id"] for ev in got]
    want = [f"E-{i}" for i in range(500)] + [f"F-{i}" for i in range(100)]
    assert ids == want, f"{len(ids)}\n{b.proc.dump()[-3000:]}\n{e.proc.dump()[-3000:]}"
    with Subscriber(d.publish, d.server_pub, sec, topics=["exec."], replay=d.replay, since=1) as sub:
        dur = drain(sub, 600)
    assert [ev.body["exec_id"] for ev in dur] == want, f"{len(dur)}\n{d.proc.dump()[-3000:]}"
    assert [ev.seq for ev in dur] == list(range(1, 601))
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


def journal_newest(b):
    return metric(scrape(b.metrics), "fixcurve_journal_newest_record") or 0


def nats_run(coro):
    import asyncio
    return asyncio.run(coro)


async def foreign_publish(url, msgs):
    """Publishes raw messages into the stream's subjects with nats-py (another client, not
    a fixcurve sink)."""
    import nats
    nc = await nats.connect(url)
    js = nc.jetstream()
    for subject, payload in msgs:
        await js.publish(subject, payload)
    await nc.close()


async def stream_tail(url, n=12):
    import nats
    nc = await nats.connect(url)
    js = nc.jetstream()
    info = await js.stream_info("FIXCURVE")
    out = []
    for seq in range(max(1, info.state.last_seq - n), info.state.last_seq + 1):
        m = await js.get_msg("FIXCURVE", seq)
        out.append((seq, m.subject, (m.headers or {}).get("Nats-Msg-Id")))
    await nc.close()
    return out


async def make_stream(url, name, subjects):
    import nats
    nc = await nats.connect(url)
    await nc.jetstream().add_stream(name=name, subjects=subjects)
    await nc.close()


@needs_quickfix
@needs_nats
@pytest.mark.timeout(180)
def test_unreachable_at_start_foreign_messages_and_a_wrong_stream(spawn, tmp_path):
    """NATS down when the bridge starts: a clear error, retries, the FIX side held (nothing
    dropped); once it is up everything reaches the stream in order. Messages someone else
    publishes into our subjects are counted and skipped by the edge, and do not stop the
    sink. A stream that does not capture our subjects is refused with the reason."""
    from jetstream import free_ports
    port = free_ports(1)[0]
    url = f"nats://127.0.0.1:{port}"
    b = JsBridge(spawn, tmp_path / "bridge", [url], replicas=1)
    b.start()
    b.proc.wait_for(r"nats: cannot connect", timeout=15)
    venue = b.venue()
    send(venue, "execs 300 0 8")
    venue.wait_for(r"^SENT 300", stream="out", timeout=30)
    # What the venue sent is held at the FIX side while the stream cannot acknowledge it.
    time.sleep(1.5)
    held = journal_newest(b)
    assert held < 300, f"{held} executions passed a sink that cannot reach NATS"
    assert metric(scrape(b.metrics), "fixcurve_nats_up") == 0

    node = Node(spawn, tmp_path / "nats", "late", routes=[], port=port, cluster_port=None)
    e = Edge(spawn, tmp_path / "edge", [node.url]).start()
    _, sec = keypair(e.keys, "alice")
    with Subscriber(e.publish, e.server_pub, sec, topics=["exec."], replay=e.replay, since=1) as sub:
        got = drain(sub, 300, timeout=60)
        assert [ev.body["exec_id"] for ev in got] == [f"E-{i}" for i in range(300)]
        assert [ev.seq for ev in got] == list(range(1, 301))

        nats_run(foreign_publish(node.url, [("fixcurve.exec.VENUE1.BULK", b"not an envelope"),
                                            ("fixcurve.md.VENUE1.X", b"\x93\x01\x02\x03")]))
        send(venue, "execs 100 0 8 G-")
        more = drain(sub, 100, timeout=60)
        assert [ev.body["exec_id"] for ev in more] == [f"G-{i}" for i in range(100)], \
            f"{[ev.body['exec_id'] for ev in more][:5]}\n{nats_run(stream_tail(node.url, 110))[:20]}\n{b.proc.dump()[-3000:]}\n{e.proc.dump()[-2500:]}\n{nats_metrics(e.metrics)}"
        assert [ev.seq for ev in more] == list(range(301, 401)) and sub.gaps == []
    m = scrape(e.metrics)
    assert metric(m, "fixcurve_nats_malformed_total") == 2
    assert e.proc.p.poll() is None and b.proc.p.poll() is None

    nats_run(make_stream(node.url, "WRONG", ["other.>"]))
    b2 = JsBridge(spawn, tmp_path / "bridge2", [node.url], replicas=1, stream="WRONG")
    b2.start()
    line = b2.proc.wait_for(r"stream WRONG: captures .*other.*", timeout=15).group(0)
    assert "subject_prefix" in line


def nkey_user():
    import subprocess
    from conftest import ROOT
    out = subprocess.run([ROOT / "target" / "debug" / "examples" / "nkey_user"], check=True,
                         capture_output=True, text=True).stdout.split()
    return out[0], out[1]


@needs_quickfix
@needs_nats
@pytest.mark.timeout(180)
def test_nkey_credentials_loose_seed_refused_and_revocation_holds_the_fix_side(spawn, tmp_path, fc):
    """nkey authentication: a seed file others can read stops start-up; a revoked nkey (the
    server's authorization reloaded without it) holds the FIX side, with the server's reason
    in the log, and when it is authorized again everything flows, nothing lost."""
    import os
    pub, seed = nkey_user()
    other_pub, _ = nkey_user()
    auth = lambda k: f'authorization {{ users = [ {{ nkey: "{k}" }} ] }}'
    node = Node(spawn, tmp_path / "nats", "auth", routes=[], cluster_port=None, extra=auth(pub))
    b = JsBridge(spawn, tmp_path / "bridge", [node.url], replicas=1, extra='nkey = "nats.nk"')
    seed_file = b.dir / "nats.nk"
    seed_file.write_text(seed + "\n")
    os.chmod(seed_file, 0o644)
    cp = fc("run", "--config", b.config, check=False, cwd=b.dir)
    assert cp.returncode != 0 and "chmod 600" in cp.stderr, cp.stderr
    assert seed not in cp.stderr
    os.chmod(seed_file, 0o600)
    b.start()
    e = Edge(spawn, tmp_path / "edge", [node.url], extra='nkey = "nats.nk"')
    (e.dir / "nats.nk").write_text(seed + "\n")
    os.chmod(e.dir / "nats.nk", 0o600)
    e.start()
    _, sec = keypair(e.keys, "alice")
    venue = b.venue()
    with Subscriber(e.publish, e.server_pub, sec, topics=["exec."], replay=e.replay, since=1) as sub:
        send(venue, "execs 100 0 8")
        got = drain(sub, 100, timeout=60)
        assert [ev.body["exec_id"] for ev in got] == [f"E-{i}" for i in range(100)]

        node.reload(auth(other_pub))
        b.proc.wait_for(r"(?i)authorization", timeout=20)
        before = journal_newest(b)
        send(venue, "execs 200 0 8 R-")
        venue.wait_for(r"^SENT 200", stream="out", timeout=30)
        time.sleep(1.5)
        assert journal_newest(b) < before + 200, "executions passed a sink whose credentials were revoked"

        node.reload(auth(pub))
        more = drain(sub, 200, timeout=60)
        assert [ev.body["exec_id"] for ev in more] == [f"R-{i}" for i in range(200)]
        assert [ev.seq for ev in more] == list(range(101, 301)) and sub.gaps == []
    assert seed not in "\n".join(b.proc.stderr_lines + e.proc.stderr_lines)


@needs_quickfix
@needs_nats
@pytest.mark.timeout(120)
def test_batches_larger_than_the_publish_window_all_reach_the_stream(spawn, tmp_path):
    """`max_inflight` far below what one read from the venue carries: every batch the bridge
    hands the sink is larger than its window (and than the client's publish permits, the
    window plus 16). A sink that sent a whole batch at once waited for a permit only its own
    reading of acknowledgements could free, and the feed stopped. All of it must arrive, in
    order, through the stream and an edge."""
    node = Node(spawn, tmp_path / "nats", "solo", routes=[], cluster_port=None)
    b = JsBridge(spawn, tmp_path / "bridge", [node.url], replicas=1, extra="max_inflight = 2")
    b.dir.mkdir(exist_ok=True)
    b.start()
    e = Edge(spawn, tmp_path / "edge", [node.url]).start()
    _, sec = authorize(e, "alice")
    venue = b.venue()
    n = 3000
    with Subscriber(e.publish, e.server_pub, sec, topics=["exec."], replay=e.replay, since=1) as sub:
        send(venue, f"execs {n} 0 8")
        got = drain(sub, n, timeout=60)
    ids = [ev.body["exec_id"] for ev in got]
    assert ids == [f"E-{i}" for i in range(n)], f"{len(ids)}\n{nats_metrics(b.metrics)}\n{b.proc.dump()[-3000:]}"
    assert [ev.seq for ev in got] == list(range(1, n + 1))

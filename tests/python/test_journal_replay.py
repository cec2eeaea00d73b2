"""Never losing an execution: the journal, the replay and snapshot endpoint (driven from stock
libzmq through pyzmq DEALER and REQ sockets), recovery in the client libraries, and `kill -9`
of the bridge in the middle of a 20,000-execution burst from a real QuickFIX venue.
"""

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import zmq

from conftest import BIN
from test_bridge import Bridge, metric, needs_quickfix, scrape, send, keypair, wait_until

from fixcurve_client import ReplayClient, ReplayRefused, Subscriber
from fixcurve_client.envelope import decode


class Durable(Bridge):
    """A `fixcurve run` with the journal and a replay endpoint, restartable on the same state
    and FIX port, and a QuickFIX venue that keeps its sequence numbers (no reset on logon), so
    after a crash of the bridge it resends what the bridge had not committed."""

    def __init__(self, spawn, tmp):
        super().__init__(spawn, tmp, queue=100, replay=True)

    def start(self):
        self.proc = self.spawn(BIN, "run", "--config", self.config, cwd=self.dir)
        self.publish = self.proc.listening("publish")
        self.replay = self.proc.listening("replay")
        self.fix = self.proc.listening("acceptor:edge")
        self.metrics = self.proc.listening("metrics")
        # Later runs bind the same port, so the venue reconnects to them by itself.
        port = self.fix.rsplit(":", 1)[1]
        text = self.config.read_text()
        self.config.write_text(text.replace('listen = "127.0.0.1:0"\ncert', f'listen = "127.0.0.1:{port}"\ncert'))
        return self

    def kill9(self):
        self.proc.p.send_signal(signal.SIGKILL)
        self.proc.p.wait(10)

    def venue(self):
        return super().venue(reset_on_logon=False)


def dealer(ep, server_pub, sec, kind=zmq.DEALER):
    import zmq.auth
    s = zmq.Context.instance().socket(kind)
    pub_k, sec_k = zmq.auth.load_certificate(str(sec))
    s.curve_publickey, s.curve_secretkey = pub_k, sec_k
    s.curve_serverkey = zmq.auth.load_certificate(str(server_pub))[0]
    s.setsockopt(zmq.LINGER, 0)
    s.connect(ep)
    return s


def ask(sock, *frames, timeout_ms=10_000):
    sock.send_multipart([f if isinstance(f, bytes) else str(f).encode() for f in frames])
    assert sock.poll(timeout_ms), "no reply from the replay endpoint"
    return sock.recv_multipart()


@needs_quickfix
@pytest.mark.timeout(120)
def test_replay_and_snapshot_from_stock_libzmq_with_refusals(spawn, tmp_path):
    b = Durable(spawn, tmp_path)
    _, alice_sec = keypair(b.keys, "alice")
    _, md_only_sec = keypair(b.keys, "mdonly", topics="md.VENUE1.")
    _, mallory_sec = keypair(b.keys, "mallory", authorize=False)
    _, carol_sec = keypair(b.keys, "carol")
    b.start()
    venue = b.venue()
    send(venue, "script")
    venue.wait_for(r"^SENT \d+", stream="out")
    send(venue, "execs 50 0 8")
    venue.wait_for(r"^SENT 50", stream="out")
    # The script's two executions are E-1 and E-2; the burst's E-1 and E-2 reuse those
    # ExecIDs and are dropped as duplicates (what protects subscribers after a crash).
    wait_until(lambda: (metric(scrape(b.metrics), "fixcurve_journal_newest_record") or 0) >= 50,
               what="50 executions journaled")
    assert metric(scrape(b.metrics), "fixcurve_journal_duplicates_dropped_total") == 2

    # DEALER: the whole exec. history in batches of 20, in journal order, gapless per topic.
    d = dealer(b.replay, b.server_pub, alice_sec)
    seen, start = [], 0
    while True:
        r = ask(d, "REPLAY", "exec.VENUE1.", 1, start, 20)
        assert r[0] == b"OK" and r[1] in (b"MORE", b"END"), r[:4]
        recs = list(zip(r[4::2], r[5::2]))
        assert len(recs) <= 20
        seen += [decode(t, p) for t, p in recs]
        start = int(r[2])
        if r[1] == b"END":
            break
    bulk = [e for e in seen if e.topic == "exec.VENUE1.BULK"]
    assert [e.body["exec_id"] for e in bulk] == [f"E-{i}" for i in range(50) if i not in (1, 2)]
    assert [e.seq for e in bulk] == list(range(1, 49))
    assert [e.seq for e in seen if e.topic == "exec.VENUE1.ACC-7"] == [1, 2]
    # since: per-topic sequence number; an exact topic.
    r = ask(d, "REPLAY", "exec.VENUE1.BULK", 45, 0)
    assert [decode(t, p).seq for t, p in zip(r[4::2], r[5::2])] == [45, 46, 47, 48]

    # REQ (strict request/reply with a delimiter frame) gets the same, delimiter echoed.
    q = dealer(b.replay, b.server_pub, alice_sec, zmq.REQ)
    r = ask(q, "REPLAY", "exec.VENUE1.ACC-7", 2, 0)
    assert r[0] == b"OK" and r[1] == b"END" and len(r) == 6
    assert decode(r[4], r[5]).seq == 2

    # SNAPSHOT: the EUR/USD book after its W and two X messages, valid at the topic's last seq.
    r = ask(d, "SNAPSHOT", "md.VENUE1.EUR/USD")
    snaps = [decode(t, p) for t, p in zip(r[4::2], r[5::2])]
    books = [e for e in snaps if e.kind == "book_snapshot"]
    assert len(books) == 1 and books[0].seq == 4, [(e.kind, e.seq) for e in snaps]
    assert all(e.seq == 4 for e in snaps)
    # W: bids 1.08760 (rank 1), 1.08755; offer 1.08770. X: bid rank 1 changed to 1.08761.
    levels = [(x["side"], str(x["price"]), str(x["size"])) for x in books[0].body["entries"]]
    assert levels == [("bid", "1.08761", "1500000"), ("bid", "1.08755", "2500000.50"),
                      ("offer", "1.08770", "2000000")], levels

    # Refusals, each a clear error frame, the connection kept.
    for frames, code in [
        (("REPLAY", "exec.", "x", 0), b"malformed"),
        (("REPLAY", "exec.", 1, 0, 999999), b"range"),
        (("REPLAY", "exec.NOPE.", 1, 0), b"unknown-topic"),
        (("FETCH", "exec."), b"malformed"),
    ]:
        r = ask(d, *frames)
        assert r[0] == b"ERROR" and r[1] == code, (frames, r)
    m = dealer(b.replay, b.server_pub, md_only_sec)
    r = ask(m, "REPLAY", "exec.VENUE1.", 1, 0)
    assert r[:2] == [b"ERROR", b"forbidden"], r
    r = ask(m, "SNAPSHOT", "md.VENUE1.")
    assert r[0] == b"OK" and all(t.startswith(b"md.VENUE1.") for t in r[4::2]) and len(r) > 4
    # An unknown key never completes the handshake: no reply at all.
    x = dealer(b.replay, b.server_pub, mallory_sec)
    x.send_multipart([b"REPLAY", b"exec.", b"1", b"0"])
    assert not x.poll(1500)
    # Revoked while connected: the next request is refused.
    c = dealer(b.replay, b.server_pub, carol_sec)
    assert ask(c, "REPLAY", "exec.VENUE1.ACC-7", 1, 0)[0] == b"OK"
    os.rename(b.keys / "authorized" / "carol.key", b.keys / "revoked" / "carol.key")
    deadline = time.monotonic() + 10
    while True:
        r = ask(c, "REPLAY", "exec.VENUE1.ACC-7", 1, 0)
        if r[0] == b"ERROR":
            assert r[1] == b"forbidden"
            break
        assert time.monotonic() < deadline, "revocation not applied"
        time.sleep(0.1)
    text = scrape(b.metrics)
    assert metric(text, "fixcurve_replay_refused_total") >= 6
    assert metric(text, "fixcurve_replay_records_total") >= 48
    for s in (d, q, m, x, c):
        s.close(0)


def sub_json(b, sec, topic, count, since=1, timeout=120):
    cp = subprocess.run(
        [BIN, "sub", "--connect", b.publish, "--server-key", b.keys / "server" / "server.key",
         "--key", sec, "--replay", b.replay, "--since", str(since), "--topic", topic,
         "--json", "--count", str(count)],
        capture_output=True, timeout=timeout, text=True)
    assert cp.returncode == 0, cp.stderr[-2000:]
    return [json.loads(l) for l in cp.stdout.splitlines() if l.strip()], cp.stderr


@needs_quickfix
@pytest.mark.timeout(300)
def test_kill_9_during_a_burst_loses_and_duplicates_nothing(spawn, tmp_path):
    """20,000 executions from QuickFIX over mTLS while the only live subscriber is stalled;
    the bridge is `kill -9`ed at random points three times and restarted. Every ExecID must
    then come out exactly once, in order, with gapless per-topic seq, through `fixcurve sub
    --since 1` and through the Python client."""
    n = 20_000
    b = Durable(spawn, tmp_path)
    _, alice_sec = keypair(b.keys, "alice")
    _, stalled_sec = keypair(b.keys, "stalled")
    b.start()
    runs = [b.proc]
    venue = b.venue()
    stalled = dealer(b.publish, b.server_pub, stalled_sec, zmq.SUB)
    stalled.setsockopt(zmq.RCVHWM, 10)
    stalled.setsockopt(zmq.SUBSCRIBE, b"exec.")
    send(venue, f"execs {n} 4000 16")
    rng = random.Random(0xF1C)
    for round_ in range(3):
        time.sleep(rng.uniform(0.4, 1.2))
        b.kill9()
        b.start()
        runs.append(b.proc)
        # The venue reconnects (1 s) and resends what the bridge had not committed.
        venue.wait_for(r"^LOGON ", timeout=30, stream="out")
        venue.stdout_lines.clear()
    venue.wait_for(r"^SENT ", timeout=60, stream="out")
    wait_until(lambda: (metric(scrape(b.metrics), "fixcurve_journal_newest_record") or 0) >= n,
               timeout=60, what=f"{n} executions journaled")

    events, err = sub_json(b, alice_sec, "exec.VENUE1.BULK", n)
    ids = [e["body"]["exec_id"] for e in events]
    assert len(ids) == n and len(set(ids)) == n, f"{len(ids)} events, {len(set(ids))} distinct\n{err[-1000:]}"
    assert ids == [f"E-{i}" for i in range(n)], "out of order"
    assert [e["seq"] for e in events] == list(range(1, n + 1)), "per-topic seq not gapless"
    assert "gap:" not in err

    with Subscriber(b.publish, b.server_pub, alice_sec, topics=["exec.VENUE1.BULK"],
                    replay=b.replay, since=1) as py:
        got = []
        while len(got) < n:
            ev = py.recv(timeout_ms=20_000)
            assert ev is not None, f"python client stopped at {len(got)}"
            got.append(ev)
        assert [e.body["exec_id"] for e in got] == [f"E-{i}" for i in range(n)]
        assert [e.seq for e in got] == list(range(1, n + 1)) and py.gaps == []
    # The crashes were real: restarted runs found the venue ahead and asked for a resend.
    resends = sum(1 for p in runs[1:] for l in p.stderr_lines if "ResendRequest sent" in l)
    assert resends >= 1, "no restart saw a gap: the kills missed the burst"
    stalled.close(0)
    print(f"kill -9 x3: {n} executions, 0 lost, 0 duplicated; {resends} ResendRequests after restarts")


@needs_quickfix
@pytest.mark.timeout(180)
def test_slow_and_disconnected_subscribers_end_with_the_full_sequence(spawn, tmp_path):
    """A subscriber whose queue overflows (slow_policy drop) and one that is away for 10 s both
    end with every execution, in order, through the client libraries, with no manual step."""
    n = 3000
    b = Durable(spawn, tmp_path)
    _, slow_sec = keypair(b.keys, "slow")
    _, away_sec = keypair(b.keys, "away")
    b.start()
    venue = b.venue()
    # Python client, slow: a 100-message bridge queue and a consumer that dawdles. It starts
    # from the journal (since=1), so nothing depends on when its subscription lands.
    send(venue, "execs 1 0 8 S-")
    wait_until(lambda: (metric(scrape(b.metrics), "fixcurve_journal_newest_record") or 0) >= 1,
               what="the first execution journaled")
    slow = Subscriber(b.publish, b.server_pub, slow_sec, topics=["exec.VENUE1.BULK"],
                      replay=b.replay, since=1, rcvhwm=10)
    first = slow.recv(timeout_ms=15_000)
    assert first is not None and first.seq == 1
    send(venue, f"execs {n - 1} 2000 4000 T-")
    got = [first]
    while len(got) < n:
        ev = slow.recv(timeout_ms=20_000)
        if ev is None:
            have = {e.seq for e in got}
            missing = [i for i in range(1, n + 1) if i not in have]
            raise AssertionError(f"slow subscriber stopped at {len(got)}: missing {missing[:10]}, "
                                 f"gaps {slow.gaps[:5]}, journal newest "
                                 f"{metric(scrape(b.metrics), 'fixcurve_journal_newest_record')}")
        got.append(ev)
        if len(got) % 300 == 0:
            time.sleep(0.5)
    assert [e.seq for e in got] == list(range(1, n + 1)) and slow.gaps == []
    dropped = metric(scrape(b.metrics), "fixcurve_subscriber_dropped_total", subscriber="slow")
    assert dropped and dropped > 0, "the slow subscriber never overflowed: the test proves nothing"
    slow.close()

    # `fixcurve sub` (Rust client): connected, then away for 10 s while executions flow.
    sub = spawn(BIN, "sub", "--connect", b.publish, "--server-key", b.keys / "server" / "server.key",
                "--key", away_sec, "--replay", b.replay, "--since", "1", "--topic", "exec.VENUE1.BULK",
                "--json")
    sub.wait_for(r"^connected", stream="err")
    send(venue, "execs 1 0 8 U-")
    sub.wait_for(r'"seq":' + str(n + 1) + r"\b", timeout=15, stream="out")
    sub.p.send_signal(signal.SIGSTOP)
    send(venue, "execs 500 100 8 V-")
    time.sleep(10)
    sub.p.send_signal(signal.SIGCONT)
    send(venue, "execs 1 0 8 W-")
    sub.wait_for(r'"seq":' + str(n + 502) + r"\b", timeout=60, stream="out")
    seqs = [json.loads(l)["seq"] for l in sub.stdout_lines if l.startswith("{")]
    assert seqs == list(range(1, n + 503)), (seqs[:5], seqs[-5:], len(seqs))
    assert any(l.startswith("disconnected") for l in sub.stderr_lines), "it was never away"
    assert not any(l.startswith("gap:") for l in sub.stderr_lines)


class HoldingRelay:
    """A TCP relay to the publisher that forwards a libzmq subscriber's greeting and CURVE
    handshake (HELLO, INITIATE) but holds what it sends next — its subscription — until
    `release()`: the window in which the subscriber has replayed the journal and the
    publisher does not yet send it anything."""

    def __init__(self, target):
        import socket
        import threading
        host, port = target.removeprefix("tcp://").rsplit(":", 1)
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"tcp://127.0.0.1:{self.listener.getsockname()[1]}"
        self.handshake_done = threading.Event()
        self.released = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def release(self):
        self.released.set()

    def _run(self):
        import socket
        import threading
        client, _ = self.listener.accept()
        server = socket.create_connection(self.target)

        def pump(src, dst):
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass

        threading.Thread(target=pump, args=(server, client), daemon=True).start()
        held, sent, pos, commands = b"", 0, 64, 0
        while commands < 2:
            data = client.recv(65536)
            assert data, "the subscriber closed during the handshake"
            held += data
            upto = min(len(held), 64)
            while commands < 2 and len(held) > pos:
                upto = pos
                flags = held[pos]
                head = 9 if flags & 0x02 else 2
                if len(held) < pos + head:
                    break
                size = int.from_bytes(held[pos + 1:pos + head], "big")
                if len(held) < pos + head + size:
                    break
                assert flags & 0x04, "a message frame inside the handshake"
                pos += head + size
                commands += 1
                upto = pos
            if upto > sent:
                server.sendall(held[sent:upto])
                sent = upto
        self.handshake_done.set()
        self.released.wait()
        server.sendall(held[sent:])
        pump(client, server)


@needs_quickfix
@pytest.mark.timeout(120)
def test_since_covers_an_execution_published_before_the_subscription_took_effect(spawn, tmp_path):
    """The Python client with `since` replays the journal before its subscription is in effect
    at the publisher (ZMTP does not acknowledge a subscription). An execution on a new account
    published in that window is in neither the replay nor the live stream, and no later event
    on its topic reveals it: it must still arrive, once, before the first live event."""
    b = Durable(spawn, tmp_path)
    _, alice_sec = keypair(b.keys, "alice")
    b.start()
    venue = b.venue()
    relay = HoldingRelay(b.publish)
    sub = Subscriber(relay.endpoint, b.server_pub, alice_sec, topics=["exec."], replay=b.replay, since=1)
    try:
        assert sub.recv(timeout_ms=0) is None  # the journal replay runs now: nothing yet
        assert relay.handshake_done.wait(10), "no CURVE handshake through the relay"
        send(venue, "exec WIN")
        wait_until(lambda: (metric(scrape(b.metrics), "fixcurve_journal_newest_record") or 0) >= 1,
                   what="the execution journaled")
        relay.release()
        got = []
        deadline = time.monotonic() + 30
        while not any(e.topic == "exec.VENUE1.LIVE" for e in got):
            assert time.monotonic() < deadline, f"no live event: {[(e.topic, e.seq) for e in got]}"
            send(venue, "exec LIVE")
            while (ev := sub.recv(timeout_ms=200)) is not None:
                got.append(ev)
        seen = [(e.topic, e.seq) for e in got]
        assert seen.count(("exec.VENUE1.WIN", 1)) == 1, seen
        assert seen.index(("exec.VENUE1.WIN", 1)) < seen.index(("exec.VENUE1.LIVE", 1)), seen
        live = [s for t, s in seen if t == "exec.VENUE1.LIVE"]
        assert live == list(range(1, len(live) + 1)), seen
        assert sub.gaps == []
    finally:
        sub.close()

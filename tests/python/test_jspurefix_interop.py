"""fixcurve's FIX transports against jspurefix (a pure Node FIX engine from npm), both
directions over mTLS: logon, 1 s heartbeats, application messages both ways, the peer's
ResendRequest answered with PossDup resends, a gap on our side recovered by ResendRequest,
our restart with persisted sequence numbers (no reset, no gap), logout."""

import json
import shutil

import pytest

from conftest import PEERS
from fixharness import (FIX_TRANSPORT, edge_config, check_heartbeats, fields_of, listening, mark, peer_seq, start_fix,
                        tell, wait_line, write_config)

JSPEER = PEERS / "jspeer" / "jspeer.js"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(not (FIX_TRANSPORT.exists() and JSPEER.exists() and NODE),
                                reason="needs cargo build --examples and tests/setup.d/22-jspurefix-peer.sh")


def jspeer(spawn, tmp_path, role, port, sender, target, leaf, ca):
    settings = tmp_path / f"jspeer-{role}.json"
    settings.write_text(json.dumps({"host": "127.0.0.1", "port": port, "sender": sender, "target": target,
                                    "heartbeat": 1, "key": str(leaf.key), "cert": str(leaf.cert),
                                    "ca": str(ca), "store": str(tmp_path / f"jsstore-{role}")}))
    return spawn(NODE, JSPEER, role, settings, cwd=tmp_path)


def msg(direction, *fields):
    """A pattern for an `IN`/`OUT` line carrying all `fields` (tag=value), in any order."""
    return f"^{direction} " + "".join(rf"(?=.*\|{f}\|)" for f in fields)


def check_js_heartbeats(js, since, sender):
    check_heartbeats(js, msg("IN", "35=0", f"49={sender}"), since)


def last_seq_from(js, before, sender):
    """Highest MsgSeqNum jspurefix had from `sender` before line `before`."""
    return max(int(fields_of(line)[34]) for line in js.stdout_lines[:before]
               if line.startswith("IN ") and f"|49={sender}|" in line)


def heartbeats_only(js, begin, end):
    """Whether every message jspurefix first sent numbered `begin`..`end` (inclusive) was a
    Heartbeat (its gap fills answering our ResendRequest reuse those numbers: skipped)."""
    sent = {}
    for line in js.stdout_lines:
        if line.startswith("OUT "):
            f = fields_of(line)
            if f.get(43) != "Y":
                sent[int(f[34])] = f[35]
    return all(sent.get(n) == "0" for n in range(begin, end + 1))


def check_continued(js, i, last_seq, since):
    """Our Logon at line `i` continues right after `last_seq` with no reset, heartbeats
    resume, and nothing since line `since` was a resend or a reset.

    One exchange is legitimate: a Heartbeat jspurefix wrote as we were killed never reached
    our store (it was never read), so we ask for it and jspurefix gap-fills it. Allowed only
    when everything we ask for was a Heartbeat: an application message or a Logon asked for
    again would mean our store lost what it had taken in."""
    logon = fields_of(js.stdout_lines[i])
    assert int(logon[34]) == last_seq + 1, (logon, last_seq)
    assert logon.get(141) != "Y"
    check_js_heartbeats(js, i, "BRIDGE")
    after = js.stdout_lines[since:]
    js_logon = next(fields_of(l) for l in after if l.startswith("OUT ") and "|35=A|" in l)
    asked_from = None
    for line in after:
        if not line.startswith(("IN ", "OUT ")) or not ("|35=2|" in line or "|35=4|" in line):
            continue
        f = fields_of(line)
        if line.startswith("IN ") and f[35] == "2" and asked_from is None:
            asked_from = int(f[7])
            ok = heartbeats_only(js, asked_from, int(js_logon[34]) - 1)
        else:
            # jspurefix's gap fill answering that request, nothing else.
            ok = (line.startswith("OUT ") and f[35] == "4" and f.get(123) == "Y"
                  and asked_from is not None and int(f[34]) >= asked_from)
        assert ok, ("restart caused a resend or reset", line, after)


def exercise_session(ours, js, our_id, js_sender, ours_sender):
    """App messages both ways, the peer's ResendRequest, a gap on our side."""
    # jspurefix -> us
    o0 = mark(ours)
    tell(js, "send_er EUR/USD")
    _, m = wait_line(ours, r"^APP " + our_id.replace(">", r"\>") + r" (.*)", o0)
    assert "|35=8|" in m.group(1) and "|55=EUR/USD|" in m.group(1)
    # us -> jspurefix
    j0 = mark(js)
    tell(ours, f"send {our_id} 8 37=O2|17=E2|150=0|39=0|55=USD/JPY|54=2|151=5|14=0|6=0")
    i, _ = wait_line(js, msg("IN", "35=8", "55=USD/JPY"), j0)
    our_app_seq = int(fields_of(js.stdout_lines[i])[34])

    # The peer's ResendRequest for our application message: resent with PossDup and
    # OrigSendingTime; whatever else was in the range is gap-filled.
    j0 = mark(js)
    tell(js, f"resend {our_app_seq}")
    wait_line(js, msg("OUT", "35=2", f"7={our_app_seq}"), j0)
    i, _ = wait_line(js, msg("IN", "35=8", "43=Y"), j0)
    resent = fields_of(js.stdout_lines[i])
    assert int(resent[34]) == our_app_seq and resent[55] == "USD/JPY", resent
    assert 122 in resent
    wait_line(ours, r"ResendRequested", 0)

    # A gap on our side: jspurefix skips three numbers; we ask, it gap-fills.
    sender, _ = peer_seq(js)
    j0, o0 = mark(js), mark(ours)
    tell(js, "skip 3")
    tell(js, "send_er GBP/USD")
    wait_line(ours, rf"Gap \{{ expected: {sender}, received: {sender + 3} \}}", o0)
    wait_line(js, msg("IN", "35=2", f"49={ours_sender}", f"7={sender}"), j0)
    wait_line(js, msg("OUT", "35=4", "123=Y"), j0)
    # jspurefix answers with one gap fill that covers its ExecutionReport too; the gap is
    # closed on our side only once we have taken it.
    _, m = wait_line(ours, r"SequenceReset \{ new_seq_num: (\d+), gap_fill: true \}", o0)
    assert int(m.group(1)) > sender + 3, m.group(0)


def test_jspurefix_initiator_into_our_acceptor(tmp_path, spawn, pki):
    def config(listen):
        return edge_config(tmp_path / "fixcurve.toml", pki, "JS", "JSCLIENT", listen)

    ours = start_fix(spawn, config("127.0.0.1:0"))
    _, port = listening(ours, "edge")
    js = jspeer(spawn, tmp_path, "initiator", port, "JSCLIENT", "BRIDGE", pki.client1, pki.root.cert)
    wait_line(js, r"^LOGON", timeout=30)
    wait_line(ours, r"^LOGON BRIDGE->JSCLIENT")
    check_js_heartbeats(js, 0, "BRIDGE")
    exercise_session(ours, js, "BRIDGE->JSCLIENT", "JSCLIENT", "BRIDGE")

    # Our restart after kill -9: sequence numbers come back from the store; jspurefix
    # reconnects and sees neither a reset nor a gap. Killed only once a Heartbeat of ours
    # has reached jspurefix after the gap closed: our session takes one input at a time, so
    # the store has then recorded the gap fill (jspurefix prints its gap fill as it encodes
    # it, before we have read it).
    j0 = mark(js)
    wait_line(js, msg("IN", "35=0", "49=BRIDGE"), j0)
    j0 = mark(js)
    ours.p.kill()
    ours.p.wait(10)
    ours = start_fix(spawn, config(f"127.0.0.1:{port}"))
    listening(ours, "edge")
    i, _ = wait_line(js, msg("IN", "35=A"), j0, timeout=30)
    wait_line(ours, r"^LOGON BRIDGE->JSCLIENT")
    check_continued(js, i, last_seq_from(js, i, "BRIDGE"), j0)

    # Logout initiated by jspurefix.
    o0 = mark(ours)
    tell(js, "logout")
    wait_line(js, msg("IN", "35=5"), i)
    wait_line(ours, r"LoggedOut", o0)


def test_our_initiator_into_jspurefix_acceptor(tmp_path, spawn, pki):
    js = jspeer(spawn, tmp_path, "acceptor", 0, "VENUE", "BRIDGE", pki.server, pki.root.cert)
    port = int(js.listening("jspurefix").rsplit(":", 1)[1])
    cfg = write_config(
        tmp_path / "fixcurve.toml",
        initiators=[{"name": "venue", "connect": f"127.0.0.1:{port}", "cert": pki.client1.combined,
                     "ca": pki.root.cert, "server_name": "localhost",
                     "reconnect_min_ms": 200, "reconnect_max_secs": 2}],
        sessions=[{"venue": "VENUE", "initiator": "venue", "begin_string": "FIX.4.4",
                   "sender_comp_id": "BRIDGE", "target_comp_id": "VENUE", "heartbeat_secs": 1}])
    ours = start_fix(spawn, cfg)
    wait_line(ours, r"^LOGON BRIDGE->VENUE", timeout=30)
    wait_line(js, r"^LOGON")
    check_js_heartbeats(js, 0, "BRIDGE")
    exercise_session(ours, js, "BRIDGE->VENUE", "VENUE", "BRIDGE")

    # Our restart (graceful: Logout on the way down), numbering continued from our store.
    j0 = mark(js)
    tell(ours, "quit")
    wait_line(js, msg("IN", "35=5"), j0)
    assert ours.p.wait(10) == 0
    last_seq = last_seq_from(js, len(js.stdout_lines), "BRIDGE")
    ours = start_fix(spawn, cfg)
    wait_line(ours, r"^LOGON BRIDGE->VENUE", timeout=30)
    i, _ = wait_line(js, msg("IN", "35=A"), j0)
    check_continued(js, i, last_seq, i)

    # Logout initiated by us (graceful shutdown) is answered.
    j0 = mark(js)
    tell(ours, "quit")
    wait_line(js, msg("IN", "35=5"), j0)
    wait_line(js, msg("OUT", "35=5"), j0)
    assert ours.p.wait(10) == 0

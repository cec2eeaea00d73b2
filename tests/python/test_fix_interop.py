"""fixcurve's FIX transports against QuickFIX C++ (Debian libquickfix, SSL transports), both
directions over mTLS: logon, 1 s heartbeats, application messages both ways, the peer's
ResendRequest answered, a gap on our side recovered, our restart with persisted sequence
numbers (no reset, no gap), logout."""

import shutil

import pytest

from fixharness import (FIX_TRANSPORT, edge_config, QF_DICT44, QFPEER, check_heartbeats, fields_of, listening, mark,
                        peer_seq, qf_settings, start_fix, tell, wait_line, write_config)

pytestmark = pytest.mark.skipif(not (FIX_TRANSPORT.exists() and QFPEER.exists()),
                                reason="needs cargo build --examples and tests/setup.d/20-quickfix-peer.sh")

ER = "37=O1|17=E1|150=0|39=0|55=EUR/USD|54=1|151=100|14=0|6=0"


def check_qf_heartbeats(qf, since, sender):
    check_heartbeats(qf, rf"^ADMIN_IN .*\|35=0\|.*\|49={sender}\|", since)


def exercise_session(ours, qf, our_id, qf_sender, ours_sender):
    """App messages both ways, the peer's ResendRequest, a gap on our side."""
    # QuickFIX -> us
    m0 = mark(ours)
    tell(qf, f"send 8 {ER}")
    _, m = wait_line(ours, r"^APP " + our_id.replace(">", r"\>") + r" (.*)", m0)
    assert "|35=8|" in m.group(1) and "|55=EUR/USD|" in m.group(1)
    # us -> QuickFIX
    q0 = mark(qf)
    tell(ours, f"send {our_id} 8 37=O2|17=E2|150=0|39=0|55=USD/JPY|54=2|151=5|14=0|6=0")
    i, _ = wait_line(qf, r"^APP_IN .*\|35=8\|.*\|55=USD/JPY\|", q0)
    our_app_seq = int(fields_of(qf.stdout_lines[i])[34])

    # The peer's ResendRequest: rewind QuickFIX's expected number to our app message; the
    # next message we send makes it ask, and we resend the app message as a possible duplicate.
    q0 = mark(qf)
    tell(qf, f"next_target {our_app_seq}")
    wait_line(qf, rf"^ADMIN_OUT .*\|35=2\|.*\|7={our_app_seq}\|", q0)
    i, _ = wait_line(qf, r"^APP_IN .*\|43=Y\|", q0)
    resent = fields_of(qf.stdout_lines[i])
    assert int(resent[34]) == our_app_seq and resent[55] == "USD/JPY", resent
    assert 122 in resent  # OrigSendingTime on the resent message
    wait_line(ours, r"ResendRequested", 0)

    # A gap on our side: QuickFIX skips three numbers; we ask, it gap-fills.
    sender, _ = peer_seq(qf)
    q0, o0 = mark(qf), mark(ours)
    tell(qf, f"next_sender {sender + 3}")
    wait_line(ours, rf"Gap \{{ expected: {sender}, received: {sender + 3} \}}", o0)
    wait_line(qf, rf"^ADMIN_IN .*\|35=2\|.*\|49={ours_sender}\|.*\|7={sender}\|", q0)
    wait_line(qf, r"^ADMIN_OUT .*\|35=4\|.*\|123=Y\|", q0)


def test_quickfix_initiator_into_our_acceptor(tmp_path, spawn, pki):
    def config(listen):
        return edge_config(tmp_path / "fixcurve.toml", pki, "QF", "QFCLIENT", listen)

    ours = start_fix(spawn, config("127.0.0.1:0"))
    host, port = listening(ours, "edge")
    qcfg = qf_settings(tmp_path / "qf.cfg", "initiator", "FIX.4.4", "QFCLIENT", "BRIDGE", port, tls_files={
        "ClientCertificateFile": pki.client1.cert,
        "ClientCertificateKeyFile": pki.client1.key,
        "CertificationAuthoritiesFile": pki.root.cert,
    })
    qf = spawn(QFPEER, "initiator", "ssl", qcfg)
    wait_line(qf, r"^LOGON FIX.4.4:QFCLIENT->BRIDGE")
    wait_line(ours, r"^LOGON BRIDGE->QFCLIENT")
    check_qf_heartbeats(qf, 0, "BRIDGE")
    exercise_session(ours, qf, "BRIDGE->QFCLIENT", "QFCLIENT", "BRIDGE")

    # Our restart: Logout on the way down, sequence numbers from the store on the way up.
    sender_before, target_before = peer_seq(qf)
    q0 = mark(qf)
    tell(ours, "quit")
    wait_line(qf, r"^ADMIN_IN .*\|35=5\|.*\|49=BRIDGE\|", q0)
    wait_line(qf, r"^LOGOUT ", q0)
    ours.p.wait(10)
    ours = start_fix(spawn, config(f"127.0.0.1:{port}"))
    listening(ours, "edge")
    i, _ = wait_line(qf, r"^ADMIN_IN .*\|35=A\|", q0)
    logon = fields_of(qf.stdout_lines[i])
    # QuickFIX expected our next number to continue; no reset was asked for.
    assert int(logon[34]) == target_before + 1, (logon, target_before)
    assert logon.get(141) != "Y"
    wait_line(qf, r"^LOGON ", i)
    check_qf_heartbeats(qf, i, "BRIDGE")
    after = qf.stdout_lines[q0:]
    assert not any("|35=2|" in l or "|35=4|" in l for l in after), "restart caused a resend or reset"

    # Logout initiated by QuickFIX.
    o0 = mark(ours)
    tell(qf, "logout")
    wait_line(qf, r"^LOGOUT ", i)
    wait_line(ours, r"LoggedOut", o0)


def test_our_initiator_into_quickfix_acceptor(tmp_path, spawn, pki):
    qcfg = qf_settings(tmp_path / "qfacc.cfg", "acceptor", "FIX.4.4", "VENUE", "BRIDGE", 0, tls_files={
        "ServerCertificateFile": pki.server.cert,
        "ServerCertificateKeyFile": pki.server.key,
        "CertificationAuthoritiesFile": pki.root.cert,
        "CertificateVerifyLevel": 1,
    }, extra={"UseDataDictionary": "Y", "DataDictionary": QF_DICT44})
    qf = spawn(QFPEER, "acceptor", "ssl", qcfg)
    _, m = wait_line(qf, r"^LISTENING (\d+)")
    port = int(m.group(1))
    wait_line(qf, r"^READY")
    cfg = write_config(
        tmp_path / "fixcurve.toml",
        initiators=[{"name": "venue", "connect": f"127.0.0.1:{port}", "cert": pki.client1.combined,
                     "ca": pki.root.cert, "reconnect_min_ms": 200, "reconnect_max_secs": 2}],
        sessions=[{"venue": "VENUE", "initiator": "venue", "begin_string": "FIX.4.4",
                   "sender_comp_id": "BRIDGE", "target_comp_id": "VENUE", "heartbeat_secs": 1,
                   "subscribe": ["EUR/USD", "USD/JPY"]}])
    ours = start_fix(spawn, cfg)
    wait_line(ours, r"^LOGON BRIDGE->VENUE")
    wait_line(qf, r"^LOGON FIX.4.4:VENUE->BRIDGE")
    # The MarketDataRequest for the configured symbols, after Logon, validated by QuickFIX
    # against its FIX 4.4 data dictionary (groups 267 and 146 included): no Reject.
    i, _ = wait_line(qf, r"^APP_IN .*\|35=V\|")
    mdr = qf.stdout_lines[i]
    assert "|146=2|" in mdr and "|55=EUR/USD|" in mdr and "|55=USD/JPY|" in mdr, mdr
    assert "|267=3|" in mdr and "|263=1|" in mdr, mdr
    check_qf_heartbeats(qf, 0, "BRIDGE")
    exercise_session(ours, qf, "BRIDGE->VENUE", "VENUE", "BRIDGE")

    # Our restart: we log out, come back, continue the numbering.
    sender_before, target_before = peer_seq(qf)
    q0 = mark(qf)
    tell(ours, "quit")
    wait_line(qf, r"^LOGOUT ", q0)
    ours.p.wait(10)
    ours = start_fix(spawn, cfg)
    wait_line(ours, r"^LOGON BRIDGE->VENUE")
    i, _ = wait_line(qf, r"^ADMIN_IN .*\|35=A\|", q0)
    logon = fields_of(qf.stdout_lines[i])
    assert int(logon[34]) == target_before + 1, (logon, target_before)
    assert logon.get(141) != "Y"
    check_qf_heartbeats(qf, i, "BRIDGE")
    after = qf.stdout_lines[q0:]
    assert not any("|35=2|" in l or "|35=4|" in l for l in after), "restart caused a resend or reset"

    # Logout initiated by us (graceful shutdown).
    q0 = mark(qf)
    tell(ours, "quit")
    wait_line(qf, r"^ADMIN_IN .*\|35=5\|", q0)
    wait_line(qf, r"^LOGOUT ", q0)
    assert ours.p.wait(10) == 0
    # Everything we sent passed QuickFIX's dictionary validation.
    rejects = [l for l in qf.stdout_lines if l.startswith("ADMIN_OUT") and "|35=3|" in l]
    assert not rejects, rejects


@pytest.mark.parametrize("bridge_reset", [False, True])
@pytest.mark.parametrize("qf_reset", ["N", "Y"])
def test_quickfix_reset_on_logon_either_way_logs_on_once(tmp_path, spawn, pki, bridge_reset, qf_reset):
    cfg = edge_config(tmp_path / "fixcurve.toml", pki, "QF", "QFCLIENT")
    cfg.write_text(cfg.read_text().replace('heartbeat_secs = 1\n', f'heartbeat_secs = 1\nreset_on_logon = {"true" if bridge_reset else "false"}\n'))
    ours = start_fix(spawn, cfg)
    _, port = listening(ours, "edge")
    qcfg = qf_settings(tmp_path / "qf.cfg", "initiator", "FIX.4.4", "QFCLIENT", "BRIDGE", port, tls_files={
        "ClientCertificateFile": pki.client1.cert,
        "ClientCertificateKeyFile": pki.client1.key,
        "CertificationAuthoritiesFile": pki.root.cert,
    }, extra={"ResetOnLogon": qf_reset})
    qf = spawn(QFPEER, "initiator", "ssl", qcfg)
    i, _ = wait_line(qf, r"^LOGON FIX.4.4:QFCLIENT->BRIDGE")
    j, _ = wait_line(qf, r"^ADMIN_IN .*\|35=A\|")
    sent = [fields_of(l) for l in qf.stdout_lines if l.startswith("ADMIN_OUT") and "|35=A|" in l]
    reply = fields_of(qf.stdout_lines[j])
    # our reply echoes the request: 141=Y exactly when QuickFIX asked
    assert (reply.get(141) == "Y") == (sent[0].get(141) == "Y"), (sent[0], reply)
    check_qf_heartbeats(qf, j, "BRIDGE")
    m0 = mark(ours)
    tell(qf, f"send 8 {ER}")
    wait_line(ours, r"^APP BRIDGE\-\>QFCLIENT .*\|35=8\|", m0)
    check_qf_heartbeats(qf, mark(qf), "BRIDGE")
    logons = [l for l in qf.stdout_lines if l.startswith("LOGON ")]
    logouts = [l for l in qf.stdout_lines if l.startswith("LOGOUT ") or ("|35=5|" in l)]
    assert len(logons) == 1 and not logouts, qf.dump()

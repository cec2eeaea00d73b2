"""The `quickfix-ssl` wheel from PyPI (QuickFIX 1.15 with its OpenSSL transports, TLS 1.2 at
most) as an mTLS initiator into fixcurve's acceptor: it logs on, exchanges heartbeats and an
application message, and logs out; the negotiated protocol is in the audit line. The same
peer against a TLS 1.3-only acceptor is refused during the handshake."""

import sys
from pathlib import Path

import pytest

from fixharness import (FIX_TRANSPORT, fields_of, listening, mark, qf_settings, start_fix, tell,
                        wait_audit, wait_line, write_config)

quickfix = pytest.importorskip("quickfix", reason="pip install quickfix-ssl (tests/python/requirements.txt)")
pytestmark = pytest.mark.skipif(not FIX_TRANSPORT.exists(), reason="cargo build --examples first")

QFPY = Path(__file__).parent / "peers" / "qfpy.py"


def edge(tmp_path, spawn, pki, reset_on_logon=False, **acceptor):
    a = {"name": "edge", "listen": "127.0.0.1:0", "cert": pki.server.cert, "key": pki.server.key,
         "client_ca": pki.root.cert}
    a.update(acceptor)
    cfg = write_config(tmp_path / "fixcurve.toml", acceptors=[a],
                       sessions=[{"venue": "PY", "acceptor": "edge", "begin_string": "FIX.4.4",
                                  "sender_comp_id": "BRIDGE", "target_comp_id": "PYCLIENT",
                                  "tls_identity": "client1", "heartbeat_secs": 1,
                                  "reset_on_logon": reset_on_logon}])
    ours = start_fix(spawn, cfg)
    return ours, listening(ours, "edge")


def python_quickfix(tmp_path, spawn, pki, port, extra=None):
    qcfg = qf_settings(tmp_path / "qfpy.cfg", "initiator", "FIX.4.4", "PYCLIENT", "BRIDGE", port,
                       tls_files={
                           "SSLProtocol": "-all +TLSv1_2",
                           "ClientCertificateFile": pki.client1.cert,
                           "ClientCertificateKeyFile": pki.client1.key,
                           "CertificationAuthoritiesFile": pki.root.cert,
                       }, extra=extra)
    return spawn(sys.executable, QFPY, qcfg)


def test_quickfix_ssl_wheel_logs_on_over_tls12(tmp_path, spawn, pki):
    ours, (_, port) = edge(tmp_path, spawn, pki)
    qf = python_quickfix(tmp_path, spawn, pki, port)
    wait_line(qf, r"^LOGON FIX.4.4:PYCLIENT->BRIDGE", timeout=20)
    wait_line(ours, r"^LOGON BRIDGE->PYCLIENT")
    audit = tmp_path / "state" / "audit.jsonl"
    tls = wait_audit(audit, event="tls_accepted")
    assert tls["tls"].startswith("TLSv1_2 "), tls
    assert "GCM" in tls["tls"] or "CHACHA20" in tls["tls"], tls
    assert "CN=client1" in tls["identity"]
    logon = wait_audit(audit, event="logon_accepted")
    assert logon["comp_id"] == "PYCLIENT"

    # Heartbeats at the 1 s interval from us, as QuickFIX sees them.
    i, _ = wait_line(qf, r"^ADMIN_IN .*\|35=0\|.*\|49=BRIDGE\|")
    wait_line(qf, r"^ADMIN_IN .*\|35=0\|.*\|49=BRIDGE\|", i + 1, timeout=5)

    # An application message from us reaches the QuickFIX application.
    q0 = mark(qf)
    tell(ours, "send BRIDGE->PYCLIENT 8 37=O1|17=E1|150=0|39=0|55=EUR/USD|54=1|151=100|14=0|6=0")
    j, _ = wait_line(qf, r"^APP_IN .*\|35=8\|", q0)
    assert fields_of(qf.stdout_lines[j])[55] == "EUR/USD"

    # Logout from the QuickFIX side ends the session on ours.
    o0 = mark(ours)
    tell(qf, "logout")
    wait_line(qf, r"^LOGOUT ", q0)
    wait_line(ours, r"LoggedOut", o0)


def test_tls13_only_acceptor_refuses_the_tls12_wheel(tmp_path, spawn, pki):
    ours, (_, port) = edge(tmp_path, spawn, pki, tls13_only=True)
    qf = python_quickfix(tmp_path, spawn, pki, port)
    qf.wait_for(r"^STARTED")
    rec = wait_audit(tmp_path / "state" / "audit.jsonl", timeout=20, event="tls_rejected")
    assert rec["allowed"] is False
    assert rec["peer"].startswith("127.0.0.1:")
    assert not any(l.startswith("LOGON ") for l in qf.stdout_lines)


@pytest.mark.parametrize("bridge_reset", [False, True])
@pytest.mark.parametrize("qf_reset", ["N", "Y"])
def test_quickfix_ssl_wheel_reset_on_logon_either_way(tmp_path, spawn, pki, bridge_reset, qf_reset):
    ours, (_, port) = edge(tmp_path, spawn, pki, reset_on_logon=bridge_reset)
    qf = python_quickfix(tmp_path, spawn, pki, port, extra={"ResetOnLogon": qf_reset})
    wait_line(qf, r"^LOGON FIX.4.4:PYCLIENT->BRIDGE", timeout=20)
    i, _ = wait_line(qf, r"^ADMIN_IN .*\|35=A\|")
    reply = fields_of(qf.stdout_lines[i])
    # 141=Y comes back exactly when the wheel asked for it (ResetOnLogon=Y)
    assert (reply.get(141) == "Y") == (qf_reset == "Y"), reply
    j, _ = wait_line(qf, r"^ADMIN_IN .*\|35=0\|.*\|49=BRIDGE\|", i)
    wait_line(qf, r"^ADMIN_IN .*\|35=0\|.*\|49=BRIDGE\|", j + 1, timeout=5)
    assert sum(1 for l in qf.stdout_lines if l.startswith("LOGON ")) == 1, qf.dump()
    assert not any(l.startswith("LOGOUT ") for l in qf.stdout_lines), qf.dump()

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


def edge(tmp_path, spawn, pki, **acceptor):
    a = {"name": "edge", "listen": "127.0.0.1:0", "cert": pki.server.cert, "key": pki.server.key,
         "client_ca": pki.root.cert}
    a.update(acceptor)
    cfg = write_config(tmp_path / "fixcurve.toml", acceptors=[a],
                       sessions=[{"venue": "PY", "acceptor": "edge", "begin_string": "FIX.4.4",
                                  "sender_comp_id": "BRIDGE", "target_comp_id": "PYCLIENT",
                                  "tls_identity": "client1", "heartbeat_secs": 1}])
    ours = start_fix(spawn, cfg)
    return ours, listening(ours, "edge")


def python_quickfix(tmp_path, spawn, pki, port):
    qcfg = qf_settings(tmp_path / "qfpy.cfg", "initiator", "FIX.4.4", "PYCLIENT", "BRIDGE", port,
                       tls_files={
                           "SSLProtocol": "-all +TLSv1_2",
                           "ClientCertificateFile": pki.client1.cert,
                           "ClientCertificateKeyFile": pki.client1.key,
                           "CertificationAuthoritiesFile": pki.root.cert,
                       })
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

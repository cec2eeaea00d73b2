"""TLS policy of fixcurve's FIX acceptor, tested with tools we did not write: openssl
s_client, Python's ssl module (OpenSSL), stunnel and QuickFIX C++. Every refusal must leave
an audit line with the peer address."""

import os
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from fixharness import (FIX_TRANSPORT, QFPEER, FixClient, audit_records, field, fix_msg, listening, ts,
                        logon, qf_settings, start_fix, wait_audit, write_config)
from tlspki import OpenSslPki

pytestmark = pytest.mark.skipif(not FIX_TRANSPORT.exists(), reason="cargo build --examples first")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = OpenSslPki(tmp_path_factory.mktemp("pki"))
    p.server = p.root.issue("localhost", "server")
    p.client1 = p.root.issue("client1")
    p.client2 = p.root.issue("client2")
    p.stranger = p.other.issue("client1")  # same CN, another CA
    p.expired = p.root.issue("client1-expired", start="20200101000000Z", end="20200201000000Z")
    p.revoked = p.root.issue("client1-revoked")
    p.root.revoke(p.revoked)
    p.crl = p.root.gencrl()
    return p


def acceptor(pki, **kw):
    a = {"name": "edge", "listen": "127.0.0.1:0", "cert": pki.server.cert, "key": pki.server.key,
         "client_ca": pki.root.cert, "crl": [pki.crl]}
    a.update(kw)
    return a


def session(target, identity, **kw):
    s = {"venue": "VENUE1", "acceptor": "edge", "begin_string": "FIX.4.4",
         "sender_comp_id": "BRIDGE", "target_comp_id": target, "tls_identity": identity}
    s.update(kw)
    return s


@pytest.fixture
def edge(tmp_path, spawn, pki):
    """fixcurve acceptor with two bound sessions: CLIENT1<->client1, CLIENT2<->client2."""
    cfg = write_config(tmp_path / "fixcurve.toml", acceptors=[acceptor(pki)],
                       sessions=[session("CLIENT1", "client1"), session("CLIENT2", "client2")])
    proc = start_fix(spawn, cfg)
    addr = listening(proc, "edge")
    return proc, addr, tmp_path / "state" / "audit.jsonl"


def s_client(addr, *args):
    cmd = ["openssl", "s_client", "-connect", f"{addr[0]}:{addr[1]}", "-servername", "localhost", *map(str, args)]
    return subprocess.run(cmd, input=b"", capture_output=True, timeout=20)


def peer_is(addr_prefix):
    return lambda p: isinstance(p, str) and p.startswith(addr_prefix)


@pytest.mark.parametrize("case", ["no_cert", "other_ca", "expired", "revoked", "tls1_1"])
def test_s_client_refused_and_audited(edge, pki, case):
    _, addr, audit = edge
    args = {
        "no_cert": ["-CAfile", pki.root.cert],
        "other_ca": ["-CAfile", pki.root.cert, "-cert", pki.stranger.cert, "-key", pki.stranger.key],
        "expired": ["-CAfile", pki.root.cert, "-cert", pki.expired.cert, "-key", pki.expired.key],
        "revoked": ["-CAfile", pki.root.cert, "-cert", pki.revoked.cert, "-key", pki.revoked.key],
        "tls1_1": ["-CAfile", pki.root.cert, "-cert", pki.client1.cert, "-key", pki.client1.key,
                   "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"],
    }[case]
    cp = s_client(addr, *args)
    out = (cp.stdout + cp.stderr).decode("utf-8", "replace")
    rec = wait_audit(audit, side="tls", event="tls_rejected", peer=peer_is("127.0.0.1:"))
    assert rec["allowed"] is False
    reason = rec["reason"].lower()
    expect = {
        "no_cert": "no certificate",
        "other_ca": "unknownissuer",
        "expired": "expired",
        "revoked": "revoked",
        "tls1_1": "incompatible",
    }[case]
    assert expect in reason.replace(" ", "").replace("_", "") or expect in reason, rec
    # Nothing past the handshake: no session was ever started.
    assert not any(r["event"] == "logon_accepted" for r in audit_records(audit)), out


def test_valid_certificate_logs_on_only_as_its_bound_comp_id(edge, pki):
    _, addr, audit = edge
    # client1's certificate claiming to be CLIENT2: refused with a plain Logout.
    c = FixClient(addr, ca=pki.root.cert, cert=pki.client1.cert, key=pki.client1.key)
    c.send(logon("CLIENT2", "BRIDGE"))
    reply = c.recv_msg()
    assert field(reply, 35) == "5", reply
    assert field(reply, 58) == "Logon refused"  # says nothing about the configuration
    assert c.recv_msg(timeout=3) is None  # and disconnects
    rec = wait_audit(audit, side="fix", event="logon_refused", comp_id="CLIENT2")
    assert "CN=client1" in rec["identity"] and rec["peer"].startswith("127.0.0.1:")
    assert "not bound" in rec["reason"]
    # The same certificate as CLIENT1 is welcome.
    c = FixClient(addr, ca=pki.root.cert, cert=pki.client1.cert, key=pki.client1.key)
    c.send(logon("CLIENT1", "BRIDGE"))
    reply = c.recv_msg()
    assert field(reply, 35) == "A" and field(reply, 56) == "CLIENT1", reply
    wait_audit(audit, side="fix", event="logon_accepted", comp_id="CLIENT1")
    c.close()


def test_unknown_comp_ids_refused(edge, pki):
    _, addr, audit = edge
    c = FixClient(addr, ca=pki.root.cert, cert=pki.client1.cert, key=pki.client1.key)
    c.send(logon("NOBODY", "BRIDGE"))
    # no Logout (it would be sent as a CompID we do not own): a disconnect, and an audit line
    assert c.recv_msg() is None
    wait_audit(audit, event="logon_refused", comp_id="NOBODY")


def test_second_logon_for_a_live_session_is_disconnected_silently(edge, pki):
    _, addr, audit = edge
    first = FixClient(addr, ca=pki.root.cert, cert=pki.client1.cert, key=pki.client1.key)
    first.send(logon("CLIENT1", "BRIDGE"))
    assert field(first.recv_msg(), 35) == "A"
    second = FixClient(addr, ca=pki.root.cert, cert=pki.client1.cert, key=pki.client1.key)
    second.send(logon("CLIENT1", "BRIDGE"))
    assert second.recv_msg() is None
    wait_audit(audit, event="logon_refused", reason="session already connected")
    # the live session is untouched
    first.send(fix_msg([(35, "1"), (49, "CLIENT1"), (56, "BRIDGE"), (34, 2), (52, ts()), (112, "t")]))
    hb = first.recv_msg()
    assert field(hb, 35) == "0" and field(hb, 112) == "t", hb
    first.close()


def test_first_message_not_a_logon_disconnects_at_once(edge, pki):
    _, addr, audit = edge
    c = FixClient(addr, ca=pki.root.cert, cert=pki.client1.cert, key=pki.client1.key)
    t0 = time.monotonic()
    c.send(fix_msg([(35, "0"), (49, "CLIENT1"), (56, "BRIDGE"), (34, 1), (52, ts())]))
    assert c.recv_msg(timeout=8) is None
    assert time.monotonic() - t0 < 2.0, "waited for the logon timeout instead"
    wait_audit(audit, event="logon_refused", reason="first message is not a Logon")


def test_allow_list_checked_before_tls(tmp_path, spawn, pki):
    cfg = write_config(tmp_path / "fixcurve.toml",
                       acceptors=[acceptor(pki, allow_ips=["127.0.0.1/32", "::1/128"])],
                       sessions=[session("CLIENT1", "client1")])
    proc = start_fix(spawn, cfg)
    addr = listening(proc, "edge")
    audit = tmp_path / "state" / "audit.jsonl"
    # 127.0.0.2 is loopback too, but not on the list: closed before any TLS byte.
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        FixClient(addr, ca=pki.root.cert, cert=pki.client1.cert, key=pki.client1.key, source="127.0.0.2")
    rec = wait_audit(audit, side="tls", event="connection_refused", peer=peer_is("127.0.0.2:"))
    assert rec["reason"] == "address not in allow_ips"
    assert not any(r.get("peer", "").startswith("127.0.0.2") and r["event"] != "connection_refused"
                   for r in audit_records(audit))
    # 127.0.0.1 passes and logs on.
    c = FixClient(addr, ca=pki.root.cert, cert=pki.client1.cert, key=pki.client1.key)
    c.send(logon("CLIENT1", "BRIDGE"))
    assert field(c.recv_msg(), 35) == "A"
    c.close()


def closed_by_peer(sock, timeout=10):
    """True once the other end closed the connection (EOF or reset)."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_silent_and_excess_connections_are_cut_before_tls(tmp_path, spawn, pki):
    """A peer that opens TCP and says nothing is cut at the handshake timeout; connections
    over the per-IP cap are closed at once; both audited; the slots are then free again."""
    cfg = write_config(tmp_path / "fixcurve.toml",
                       acceptors=[acceptor(pki, handshake_timeout_ms=2000, max_connections_per_ip=2)],
                       sessions=[session("CLIENT1", "client1")])
    proc = start_fix(spawn, cfg)
    addr = listening(proc, "edge")
    audit = tmp_path / "state" / "audit.jsonl"
    silent = [socket.create_connection(addr) for _ in range(2)]
    extra = socket.create_connection(addr)
    assert closed_by_peer(extra, timeout=1.5), "a third connection from the same IP was kept"
    rec = wait_audit(audit, event="connection_refused", reason="connections-per-IP cap reached")
    assert rec["peer"].startswith("127.0.0.1:")
    for s in silent:
        assert closed_by_peer(s)
        me = "%s:%d" % s.getsockname()
        rec = wait_audit(audit, event="tls_rejected", reason="handshake timeout", peer=me)
        assert rec["allowed"] is False
    for s in silent + [extra]:
        s.close()
    c = FixClient(addr, ca=pki.root.cert, cert=pki.client1.cert, key=pki.client1.key)
    c.send(logon("CLIENT1", "BRIDGE"))
    assert field(c.recv_msg(), 35) == "A"
    c.close()


def test_certificate_swapped_on_disk_is_used_by_next_handshake(tmp_path, spawn, pki):
    certs = tmp_path / "certs"
    certs.mkdir()
    shutil.copy(pki.server.cert, certs / "server.crt")
    shutil.copy(pki.server.key, certs / "server.key")
    cfg = write_config(tmp_path / "fixcurve.toml",
                       acceptors=[acceptor(pki, cert=certs / "server.crt", key=certs / "server.key")],
                       sessions=[session("CLIENT1", "client1"), session("CLIENT2", "client2")])
    proc = start_fix(spawn, cfg)
    addr = listening(proc, "edge")
    audit = tmp_path / "state" / "audit.jsonl"

    first = FixClient(addr, ca=pki.root.cert, cert=pki.client1.cert, key=pki.client1.key)
    old_der = first.sock.getpeercert(binary_form=True)
    first.send(logon("CLIENT1", "BRIDGE"))
    assert field(first.recv_msg(), 35) == "A"

    # A broken file first: the old material stays and the failure is audited.
    (certs / "server.crt").write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    wait_audit(audit, event="tls_reload_failed")
    probe = FixClient(addr, ca=pki.root.cert, cert=pki.client2.cert, key=pki.client2.key)
    assert probe.sock.getpeercert(binary_form=True) == old_der
    probe.close()

    # Then a renewed certificate, renamed into place as deploy tools do.
    renewed = pki.root.issue("localhost-renewed", "server")
    shutil.copy(renewed.key, certs / "server.key.new")
    shutil.copy(renewed.cert, certs / "server.crt.new")
    os.rename(certs / "server.key.new", certs / "server.key")
    os.rename(certs / "server.crt.new", certs / "server.crt")
    new_der = ssl.PEM_cert_to_DER_cert(renewed.cert.read_text())
    deadline = time.monotonic() + 10
    while True:
        second = FixClient(addr, ca=pki.root.cert, cert=pki.client2.cert, key=pki.client2.key)
        seen = second.sock.getpeercert(binary_form=True)
        if seen == new_der:
            break
        second.close()
        assert time.monotonic() < deadline, "renewed certificate never served"
        time.sleep(0.1)
    second.send(logon("CLIENT2", "BRIDGE"))
    assert field(second.recv_msg(), 35) == "A"

    # The first session is still up: it answers a TestRequest.
    first.send(fix_msg([(35, "1"), (49, "CLIENT1"), (56, "BRIDGE"), (34, 2),
                        (52, __import__("fixharness").ts()), (112, "STILL-UP")]))
    while True:
        m = first.recv_msg()
        assert m is not None, "running session was dropped by the reload"
        if field(m, 35) == "0" and field(m, 112) == "STILL-UP":
            break
    first.close()
    second.close()


def test_one_way_tls_with_hashed_password(tmp_path, spawn, pki):
    salt = "a1b2c3d4e5f60718"
    out = subprocess.run(["openssl", "kdf", "-keylen", "32", "-kdfopt", "digest:SHA256", "-kdfopt",
                          "pass:correct horse", "-kdfopt", f"hexsalt:{salt}", "-kdfopt", "iter:10000",
                          "PBKDF2"], capture_output=True, text=True, check=True).stdout.strip()
    hash_file = tmp_path / "client1.pwhash"
    hash_file.write_text(f"pbkdf2-sha256:10000:{salt}:{out}\n")
    hash_file.chmod(0o600)
    a = acceptor(pki)
    del a["client_ca"], a["crl"]
    cfg = write_config(tmp_path / "fixcurve.toml", acceptors=[a],
                       sessions=[session("CLIENT1", None, username="alice", password_file=hash_file)
                                 | {"tls_identity": "unused"}])
    # tls_identity is not consulted without client certificates; drop it from the file.
    cfg.write_text(cfg.read_text().replace('tls_identity = "unused"\n', ""))
    proc = start_fix(spawn, cfg)
    addr = listening(proc, "edge")
    audit = tmp_path / "state" / "audit.jsonl"
    c = FixClient(addr, ca=pki.root.cert)
    c.send(logon("CLIENT1", "BRIDGE", extra=[(553, "alice"), (554, "wrong")]))
    assert field(c.recv_msg(), 58) == "Logon refused"
    rec = wait_audit(audit, event="logon_refused", comp_id="CLIENT1")
    assert "wrong" not in str(rec)
    c = FixClient(addr, ca=pki.root.cert)
    c.send(logon("CLIENT1", "BRIDGE", extra=[(553, "alice"), (554, "correct horse")]))
    assert field(c.recv_msg(), 35) == "A"
    c.close()


@pytest.mark.skipif(not QFPEER.exists() or not shutil.which("stunnel4") and not shutil.which("stunnel"),
                    reason="needs tests/setup.d/20-quickfix-peer.sh and stunnel")
def test_stunnel_guide_case_plain_quickfix_behind_stunnel_client(tmp_path, spawn, pki):
    """The FIX Trading Community stunnel guide's initiator case: a plain-TCP QuickFIX
    initiator talks to a local stunnel client that presents the certificate."""
    cfg = write_config(tmp_path / "fixcurve.toml", acceptors=[acceptor(pki)],
                       sessions=[session("CLIENT1", "client1", heartbeat_secs=1)])
    proc = start_fix(spawn, cfg)
    host, port = listening(proc, "edge")
    stunnel_bin = shutil.which("stunnel4") or shutil.which("stunnel")
    conf = tmp_path / "stunnel.conf"
    conf.write_text(f"""foreground = yes
pid =
[fix]
client = yes
accept = 127.0.0.1:0
connect = {host}:{port}
cert = {pki.client1.cert}
key = {pki.client1.key}
CAfile = {pki.root.cert}
verifyChain = yes
checkHost = localhost
sslVersionMin = TLSv1.2
""")
    # stunnel cannot bind port 0 and report it: pick a free port, await stunnel's own
    # "bound to" line, and pick again if another process took the port in between.
    from fixharness import free_port
    template = conf.read_text().replace("pid =\n", "pid =\ndebug = 6\n")
    for _ in range(5):
        local = free_port()
        conf.write_text(template.replace("accept = 127.0.0.1:0", f"accept = 127.0.0.1:{local}"))
        tun = spawn(stunnel_bin, conf)
        m = tun.wait_for(rf"Service \[fix\] \(FD=\d+\) bound to 127\.0\.0\.1:{local}|Binding service \[fix\] failed",
                         timeout=10)
        if "bound to" in m.group(0):
            break
        tun.stop()
    else:
        pytest.fail("stunnel could not bind a free port in five tries")
    qcfg = qf_settings(tmp_path / "qf.cfg", "initiator", "FIX.4.4", "CLIENT1", "BRIDGE", local)
    qf = spawn(QFPEER, "initiator", "plain", qcfg)
    qf.wait_for(r"^LOGON FIX.4.4:CLIENT1->BRIDGE", timeout=20)
    proc.wait_for(r"^LOGON BRIDGE->CLIENT1")
    rec = wait_audit(tmp_path / "state" / "audit.jsonl", event="logon_accepted")
    assert "CN=client1" in rec["identity"]


# ---- fixcurve certs probe -------------------------------------------------------------------

def probe(fc, addr, *args):
    return fc("certs", "probe", f"{addr[0]}:{addr[1]}", "--server-name", "localhost", *args, check=False)


def test_probe_reports_what_our_acceptor_negotiated(edge, pki, fc):
    _, addr, audit = edge
    cp = probe(fc, addr, "--cert", pki.client1.cert, "--key", pki.client1.key, "--ca", pki.root.cert)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "protocol: TLSv1_3" in cp.stdout
    assert "cipher suite: TLS13_" in cp.stdout
    assert "verification: OK" in cp.stdout
    assert "CN=localhost" in cp.stdout and "sha256:" in cp.stdout
    # The acceptor saw a client certificate handshake (then the probe hung up before Logon).
    rec = wait_audit(audit, event="tls_accepted")
    assert "CN=client1" in rec["identity"]


def test_probe_with_the_wrong_ca_fails_verification(edge, pki, fc):
    _, addr, _ = edge
    cp = probe(fc, addr, "--cert", pki.client1.cert, "--key", pki.client1.key, "--ca", pki.other.cert)
    assert cp.returncode != 0
    assert "verification: FAILED" in cp.stdout, cp.stdout
    # The handshake itself completed: what was negotiated is still shown.
    assert "protocol: TLSv1_3" in cp.stdout


def test_probe_openssl_s_server_tls12(tmp_path, spawn, pki, fc):
    srv = spawn("openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", pki.server.cert,
                "-key", pki.server.key, "-tls1_2", "-naccept", "1")
    m = srv.wait_for(r"^ACCEPT 127\.0\.0\.1:(\d+)")
    cp = probe(fc, ("127.0.0.1", m.group(1)), "--ca", pki.root.cert)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "protocol: TLSv1_2" in cp.stdout
    assert "cipher suite: TLS_ECDHE_" in cp.stdout
    assert "GCM" in cp.stdout or "CHACHA20" in cp.stdout
    assert "verification: OK" in cp.stdout


def assert_refused_at_handshake(addr, ca, leaf, comp_id):
    """A Logon with `leaf` gets nothing: the TLS handshake (TLS 1.3: just after it) fails."""
    try:
        c = FixClient(addr, ca=ca.cert, cert=leaf.cert, key=leaf.key)
        c.send(logon(comp_id, "BRIDGE"))
        assert c.recv_msg(timeout=5) is None
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        pass


def test_client_certificate_without_digital_signature_key_usage_is_refused(tmp_path, spawn, pki):
    no_sig = pki.root.issue("client1-nosig", "nodigsig")
    cfg = write_config(tmp_path / "fixcurve.toml", acceptors=[acceptor(pki)],
                       sessions=[session("CLIENT1", "client1-nosig")])
    proc = start_fix(spawn, cfg)
    addr = listening(proc, "edge")
    assert_refused_at_handshake(addr, pki.root, no_sig, "CLIENT1")
    rec = wait_audit(tmp_path / "state" / "audit.jsonl", event="tls_rejected")
    assert "digitalSignature" in rec["reason"], rec


def test_crl_reload_logs_out_a_live_session_of_a_now_revoked_certificate(tmp_path, spawn):
    own = OpenSslPki(tmp_path / "pki")
    own.server = own.root.issue("localhost", "server")
    victim = own.root.issue("client9")
    other = own.root.issue("client8")
    crl = tmp_path / "current.crl"
    shutil.copy(own.root.gencrl(), crl)
    cfg = write_config(tmp_path / "fixcurve.toml",
                       acceptors=[{"name": "edge", "listen": "127.0.0.1:0", "cert": own.server.cert,
                                   "key": own.server.key, "client_ca": own.root.cert, "crl": [crl]}],
                       sessions=[session("CLIENT9", "client9"), session("CLIENT8", "client8")])
    proc = start_fix(spawn, cfg)
    addr = listening(proc, "edge")
    audit = tmp_path / "state" / "audit.jsonl"
    sessions = {}
    for name, leaf in (("CLIENT9", victim), ("CLIENT8", other)):
        c = FixClient(addr, ca=own.root.cert, cert=leaf.cert, key=leaf.key)
        c.send(logon(name, "BRIDGE", hb=30))
        assert field(c.recv_msg(), 35) == "A"
        sessions[name] = c
    # Revoke client9 and publish the new CRL the way deploy tools do (rename into place).
    own.root.revoke(victim)
    fresh = own.root.gencrl()
    tmp = tmp_path / ".current.crl.tmp"
    shutil.copy(fresh, tmp)
    t0 = time.monotonic()
    os.replace(tmp, crl)
    reply = sessions["CLIENT9"].recv_msg(timeout=5)
    took = time.monotonic() - t0
    assert reply is not None and field(reply, 35) == "5", reply
    assert took < 1.0, f"Logout {took:.2f} s after the CRL changed"
    assert "revoked" in field(reply, 58)
    rec = wait_audit(audit, event="certificate_revoked_disconnect")
    assert "client9" in rec["identity"] and "revoked" in rec["reason"].lower(), rec
    # The other session is untouched: it still answers a TestRequest.
    c8 = sessions["CLIENT8"]
    c8.send(fix_msg([(35, "1"), (49, "CLIENT8"), (56, "BRIDGE"), (34, 2), (52, ts()),
                     (112, "still-there")]))
    hb = c8.recv_msg(timeout=5)
    assert hb is not None and field(hb, 35) == "0" and field(hb, 112) == "still-there", hb
    # and a new connection with the revoked certificate is refused at the handshake
    assert_refused_at_handshake(addr, own.root, victim, "CLIENT9")
    for c in sessions.values():
        c.close()

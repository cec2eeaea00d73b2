"""`fixcurve certs check` against certificates made by openssl: one test per failing
onboarding step (wrong key, wrong CA, incomplete chain, expired, revoked, wrong EKU)."""

import re

import pytest

from tlspki import OpenSslPki


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return OpenSslPki(tmp_path_factory.mktemp("pki"))


def verdicts(cp):
    """{step: verdict} from the report lines."""
    out = {}
    for line in cp.stdout.splitlines():
        m = re.match(r"(PASS|FAIL|WARN|SKIP)\s+(\S+)\s", line)
        if m:
            out[m.group(2)] = m.group(1)
    return out


def test_good_certificate_passes_every_step(fc, pki):
    leaf = pki.root.issue("good-client")
    server = pki.root.issue("good-server", "server")
    cp = fc("certs", "check", "--cert", leaf.cert, "--key", leaf.key, "--ca", pki.root.cert,
            "--crl", pki.root.gencrl())
    v = verdicts(cp)
    assert cp.returncode == 0
    for step in ("parse", "key", "order", "chain", "expiry", "usage", "revocation"):
        assert v[step] == "PASS", cp.stdout
    cp = fc("certs", "check", "--cert", server.combined, "--ca", pki.root.cert, "--host", "127.0.0.1")
    assert verdicts(cp)["host"] == "PASS" and verdicts(cp)["key"] == "PASS", cp.stdout


def test_wrong_key(fc, pki):
    a, b = pki.root.issue("wk-a"), pki.root.issue("wk-b")
    cp = fc("certs", "check", "--cert", a.cert, "--key", b.key, "--ca", pki.root.cert, check=False)
    assert cp.returncode != 0
    assert verdicts(cp)["key"] == "FAIL"
    assert verdicts(cp)["chain"] == "PASS"
    assert "does NOT match" in cp.stdout


def test_wrong_ca(fc, pki):
    leaf = pki.other.issue("wca")
    cp = fc("certs", "check", "--cert", leaf.cert, "--key", leaf.key, "--ca", pki.root.cert, check=False)
    assert cp.returncode != 0
    assert verdicts(cp)["chain"] == "FAIL", cp.stdout
    assert verdicts(cp)["key"] == "PASS"


def test_incomplete_chain_and_its_fix(fc, pki):
    leaf = pki.inter.issue("via-inter")
    cp = fc("certs", "check", "--cert", leaf.cert, "--key", leaf.key, "--ca", pki.root.cert, check=False)
    assert cp.returncode != 0
    assert verdicts(cp)["order"] == "FAIL", cp.stdout
    assert "incomplete chain" in cp.stdout
    full = leaf.cert.with_name("via-inter-chain.crt")
    full.write_text(leaf.cert.read_text() + pki.inter.cert.read_text())
    cp = fc("certs", "check", "--cert", full, "--key", leaf.key, "--ca", pki.root.cert)
    assert verdicts(cp)["order"] == "PASS" and verdicts(cp)["chain"] == "PASS", cp.stdout
    # The wrong order (issuer first) is its own failure.
    wrong = leaf.cert.with_name("via-inter-reversed.crt")
    wrong.write_text(pki.inter.cert.read_text() + leaf.cert.read_text())
    cp = fc("certs", "check", "--cert", wrong, "--ca", pki.root.cert, check=False)
    assert verdicts(cp)["order"] == "FAIL", cp.stdout


def test_expired(fc, pki):
    leaf = pki.root.issue("expired", start="20200101000000Z", end="20200201000000Z")
    cp = fc("certs", "check", "--cert", leaf.cert, "--key", leaf.key, "--ca", pki.root.cert, check=False)
    assert cp.returncode != 0
    assert verdicts(cp)["expiry"] == "FAIL"
    assert "EXPIRED" in cp.stdout


def test_revoked(fc, pki):
    leaf = pki.root.issue("revoked")
    pki.root.revoke(leaf)
    crl = pki.root.gencrl()
    cp = fc("certs", "check", "--cert", leaf.cert, "--ca", pki.root.cert, "--crl", crl, check=False)
    assert cp.returncode != 0
    assert verdicts(cp)["revocation"] == "FAIL"
    assert "REVOKED" in cp.stdout


def test_wrong_eku(fc, pki):
    leaf = pki.root.issue("codesigner", "codesign")
    cp = fc("certs", "check", "--cert", leaf.cert, "--key", leaf.key, "--ca", pki.root.cert, check=False)
    assert cp.returncode != 0
    assert verdicts(cp)["usage"] == "FAIL", cp.stdout


def test_host_mismatch(fc, pki):
    server = pki.root.issue("hm-server", "server")
    cp = fc("certs", "check", "--cert", server.cert, "--host", "fix.example.com", check=False)
    assert cp.returncode != 0
    assert verdicts(cp)["host"] == "FAIL"

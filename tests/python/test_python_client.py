"""The Python client package (clients/python): decoding, Decimals, gap reports, key loading.

The end-to-end runs against the real publisher are in test_bridge.py; these pin the client's
own behaviour so a schema drift shows up here first.
"""

import os
import sys
from decimal import Decimal
from pathlib import Path

import msgpack
import pytest

ROOT = Path(__file__).resolve().parents[2]
try:
    import fixcurve_client  # installed with -e by scripts/test.sh
except ImportError:  # running the file directly from a checkout
    sys.path.insert(0, str(ROOT / "clients" / "python"))
    import fixcurve_client

from fixcurve_client import GapDetector, SchemaError, decode


def envelope(seq=1, epoch=5, kind="execution", body=None, **over):
    m = {
        "version": 1,
        "epoch": epoch,
        "seq": seq,
        "received_ns": 1_700_000_000_000_000_001,
        "venue": "VENUE1",
        "session": "BRIDGE->CLIENT1",
        "fix_seq": 7,
        "kind": kind,
        "body": body if body is not None else {"symbol": "EUR/USD", "last_px": "1.08765000", "last_qty": "0.00000001", "side": "buy"},
    }
    m.update(over)
    return msgpack.packb(m, use_bin_type=True)


def test_decimals_are_exact():
    ev = decode(b"exec.VENUE1.ACC", envelope())
    assert ev.topic == "exec.VENUE1.ACC"
    assert ev.kind == "execution"
    assert ev.body["last_px"] == Decimal("1.08765000")
    assert str(ev.body["last_px"]) == "1.08765000"  # scale kept
    assert ev.body["last_qty"] == Decimal("0.00000001")
    assert ev.body["side"] == "buy"
    assert ev.fix_seq == 7 and ev.received_ns == 1_700_000_000_000_000_001


def test_nested_book_entries_become_decimals():
    body = {"symbol": "X", "changes": [{"action": "new", "side": "bid", "price": "99.5", "size": "10"}]}
    ev = decode("md.V.X", envelope(kind="book_update", body=body))
    ch = ev.body["changes"][0]
    assert ch["price"] == Decimal("99.5") and ch["size"] == Decimal("10")
    assert ch["action"] == "new"


def test_float_or_bad_decimal_or_wrong_version_refused():
    with pytest.raises(SchemaError):
        decode("t", envelope(body={"price": 1.5}))
    with pytest.raises(SchemaError):
        decode("t", envelope(body={"price": "1e5x"}))
    with pytest.raises(SchemaError, match="version"):
        decode("t", envelope(version=2))
    with pytest.raises(SchemaError):
        decode("t", b"\xc1not msgpack")
    with pytest.raises(SchemaError, match="seq"):
        m = msgpack.unpackb(envelope())
        del m["seq"]
        decode("t", msgpack.packb(m))


def test_gap_detection_per_topic_and_restart():
    g = GapDetector()
    evs = [decode("a", envelope(seq=s)) for s in (1, 2, 5)]
    assert all(g.check(e) for e in evs)
    assert evs[1].gap is None
    assert evs[2].gap.expected == 3 and evs[2].gap.missing == 2
    assert not g.check(decode("a", envelope(seq=5)))  # duplicate
    other = decode("b", envelope(seq=9))
    assert g.check(other) and other.gap is None  # first seen on b
    restarted = decode("a", envelope(seq=1, epoch=6))
    assert g.check(restarted) and restarted.restarted and restarted.gap is None


def test_secret_key_file_with_loose_mode_refused(tmp_path):
    import zmq.auth

    pub, sec = zmq.auth.create_certificates(str(tmp_path), "me")
    os.chmod(sec, 0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        fixcurve_client.load_keypair(sec)
    os.chmod(sec, 0o600)
    public, secret = fixcurve_client.load_keypair(sec)
    assert len(public) == 40 and len(secret) == 40
    assert fixcurve_client.load_public_key(pub) == public
    assert fixcurve_client.load_public_key(public.decode()) == public


def test_topic_escaping_round_trips():
    from fixcurve_client import topics
    assert topics.md_topic("VENUE1", "BRK.B") == "md.VENUE1.BRK%2EB"
    assert topics.exec_topic("V", "ACC 1") == "exec.V.ACC%201"
    assert topics.exec_topic("V", "50%") == "exec.V.50%25"
    assert topics.md_topic("V", "Zürich") == "md.V.Zürich"
    for venue, sym in [("V", "BRK.B"), ("V.X", "a b%c"), ("V", "é.\x7f")]:
        assert topics.split(topics.md_topic(venue, sym)) == ["md", venue, sym]
    import pytest
    with pytest.raises(ValueError):
        topics.unescape("%2")

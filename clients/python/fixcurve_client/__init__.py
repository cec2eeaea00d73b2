"""Subscribe to a fixcurve publisher with stock libzmq (pyzmq) and CURVE.

    from fixcurve_client import Subscriber
    with Subscriber("tcp://127.0.0.1:5556", server_key="keys/server/server.key",
                    client_cert="keys/clients/me.key_secret", topics=["md.VENUE1."]) as sub:
        for ev in sub:
            if ev.gap:
                print("missed", ev.gap.missing, "on", ev.topic)
            print(ev.kind, ev.topic, ev.body)

Prices and quantities arrive as exact strings on the wire and are returned as
``decimal.Decimal`` (never float). Sequence numbers rise by exactly 1 per topic; a jump is
reported on the event that follows it (``ev.gap``) and to the optional ``on_gap`` callback.
"""

from .envelope import (  # noqa: F401
    DECIMAL_FIELDS,
    SCHEMA_VERSION,
    Event,
    Gap,
    GapDetector,
    SchemaError,
    decode,
)
from .subscriber import Subscriber, load_public_key, load_keypair  # noqa: F401
from .replay import ReplayClient, ReplayRefused  # noqa: F401
from . import topics  # noqa: F401

__all__ = [
    "Subscriber",
    "Event",
    "Gap",
    "GapDetector",
    "SchemaError",
    "decode",
    "load_public_key",
    "load_keypair",
    "DECIMAL_FIELDS",
    "SCHEMA_VERSION",
    "topics",
]

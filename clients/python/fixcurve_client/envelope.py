"""Decoding of fixcurve envelopes (schema version 1) and per-topic gap detection.

The envelope is a MessagePack map: version, epoch, seq, received_ns, venue, session,
fix_seq, kind, body. Decimal fields of the body are exact strings; they become Decimals here.
"""

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Dict, Optional, Tuple

import msgpack

SCHEMA_VERSION = 1

#: Body fields (at any depth: book entries, changes) that carry prices or quantities.
DECIMAL_FIELDS = frozenset(
    {
        "price",
        "size",
        "last_px",
        "last_qty",
        "cum_qty",
        "leaves_qty",
        "avg_px",
        "order_qty",
        "bid_px",
        "offer_px",
        "bid_size",
        "offer_size",
        "high_px",
        "low_px",
    }
)

# A hostile or broken publisher cannot make us allocate without bound.
_MAX_PAYLOAD = 16 * 1024 * 1024


class SchemaError(ValueError):
    """The payload is not a fixcurve envelope this client understands."""


@dataclass(frozen=True)
class Gap:
    """``missing`` messages on ``topic`` never arrived, starting at sequence ``expected``."""

    topic: str
    expected: int
    missing: int


@dataclass
class Event:
    topic: str
    kind: str
    seq: int
    epoch: int
    received_ns: int
    venue: str
    session: str
    fix_seq: Optional[int]
    body: Dict[str, Any]
    version: int = SCHEMA_VERSION
    #: Set when messages on this topic were missed just before this one.
    gap: Optional[Gap] = None
    #: True when the publisher restarted (new epoch) and this topic's sequence began again.
    restarted: bool = False
    extra: Dict[str, Any] = field(default_factory=dict)


def _decimals(value, key=None):
    if isinstance(value, dict):
        return {k: _decimals(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_decimals(v) for v in value]
    if key in DECIMAL_FIELDS and isinstance(value, str):
        try:
            return Decimal(value)
        except InvalidOperation:
            raise SchemaError(f"field {key!r} is not a decimal: {value[:40]!r}")
    if isinstance(value, float):
        # The schema never carries floats; refuse rather than silently lose precision.
        raise SchemaError(f"field {key!r} is a float; fixcurve sends decimals as strings")
    return value


def decode(topic, payload) -> Event:
    """One ``[topic, payload]`` message to an Event (without gap information)."""
    if isinstance(topic, (bytes, bytearray, memoryview)):
        topic = bytes(topic).decode("utf-8", "replace")
    if len(payload) > _MAX_PAYLOAD:
        raise SchemaError(f"payload of {len(payload)} bytes exceeds {_MAX_PAYLOAD}")
    try:
        m = msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except Exception as e:  # msgpack raises several types
        raise SchemaError(f"not MessagePack: {e}") from None
    if not isinstance(m, dict):
        raise SchemaError("envelope is not a map")
    version = m.get("version")
    if version != SCHEMA_VERSION:
        raise SchemaError(f"schema version {version!r} not supported (this client reads {SCHEMA_VERSION})")
    try:
        known = ("version", "epoch", "seq", "received_ns", "venue", "session", "fix_seq", "kind", "body")
        body = m["body"]
        if not isinstance(body, dict):
            raise SchemaError("body is not a map")
        return Event(
            topic=topic,
            kind=str(m["kind"]),
            seq=int(m["seq"]),
            epoch=int(m["epoch"]),
            received_ns=int(m["received_ns"]),
            venue=str(m["venue"]),
            session=str(m["session"]),
            fix_seq=m.get("fix_seq"),
            body=_decimals(body),
            version=version,
            extra={k: v for k, v in m.items() if k not in known},
        )
    except KeyError as e:
        raise SchemaError(f"envelope field {e.args[0]!r} missing") from None


class GapDetector:
    """Per-topic sequence tracking, same rules as the Rust library's GapDetector."""

    def __init__(self, floor: int = 0):
        self._last: Dict[str, Tuple[int, int]] = {}
        # Seqs below ``floor`` on a topic not seen yet are already held (a subscriber resuming
        # ``since`` a seq, perhaps on another edge that is still catching up).
        self._floor = floor

    def check(self, ev: Event) -> bool:
        """Annotates ``ev`` (gap / restarted). Returns False for a duplicate to be skipped."""
        last = self._last.get(ev.topic)
        if last is None:
            if self._floor > 1 and ev.seq < self._floor:
                return False
            self._last[ev.topic] = (ev.epoch, ev.seq)
            if self._floor > 1 and ev.seq > self._floor:
                ev.gap = Gap(ev.topic, self._floor, ev.seq - self._floor)
            return True
        epoch, seq = last
        if ev.epoch != epoch:
            ev.restarted = True
            self._last[ev.topic] = (ev.epoch, ev.seq)
            return True
        if ev.seq <= seq:
            return False
        self._last[ev.topic] = (ev.epoch, ev.seq)
        if ev.seq != seq + 1:
            ev.gap = Gap(ev.topic, seq + 1, ev.seq - seq - 1)
        return True

    def mark(self, ev: Event):
        """``ev`` came from a snapshot valid at its seq: live events continue after it."""
        last = self._last.get(ev.topic)
        if last is None or last[0] != ev.epoch or last[1] < ev.seq:
            self._last[ev.topic] = (ev.epoch, ev.seq)

    def reset(self):
        self._last.clear()

"""The CURVE subscriber: a stock pyzmq SUB socket plus envelope decoding and gap reports."""

import os
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Tuple, Union

import zmq
import zmq.auth

from .envelope import Event, Gap, GapDetector, SchemaError, decode

PathLike = Union[str, os.PathLike]


def load_public_key(key: Union[str, bytes, PathLike]) -> bytes:
    """A Z85 public key (40 chars) given inline, or read from a ZPL certificate file."""
    if isinstance(key, bytes):
        key = key.decode("ascii")
    if isinstance(key, str) and len(key) == 40 and not os.path.exists(key):
        return key.encode("ascii")
    public, _ = zmq.auth.load_certificate(str(key))
    if public is None:
        raise ValueError(f"{key}: no public-key in certificate")
    return public


def load_keypair(cert: PathLike) -> Tuple[bytes, bytes]:
    """(public, secret) from a ``.key_secret`` ZPL certificate (as ``fixcurve keys gen`` and
    ``zmq.auth.create_certificates`` write). Refuses a file readable by group or others."""
    path = Path(cert)
    mode = path.stat().st_mode
    if os.name == "posix" and mode & 0o077:
        raise PermissionError(f"{path}: secret key file is accessible by group/others (mode {mode & 0o777:o}); chmod 600 it")
    public, secret = zmq.auth.load_certificate(str(path))
    if not secret:
        raise ValueError(f"{path}: no secret-key in certificate (pass the .key_secret file)")
    return public, secret


class Subscriber:
    """Connects with CURVE to a fixcurve publisher and yields decoded :class:`Event` s.

    libzmq reconnects (with back-off up to ``reconnect_max_ms``) and resubscribes by itself;
    heartbeats detect a dead publisher. Payloads that are not envelopes are counted in
    ``undecodable`` and skipped (``strict=True`` raises instead).
    """

    def __init__(
        self,
        endpoint: str,
        server_key: Union[str, bytes, PathLike],
        client_cert: PathLike,
        topics: Iterable[str] = ("",),
        on_gap: Optional[Callable[[Gap], None]] = None,
        strict: bool = False,
        context: Optional[zmq.Context] = None,
        rcvhwm: int = 100_000,
        reconnect_max_ms: int = 5_000,
        heartbeat_ms: int = 2_000,
    ):
        self.endpoint = endpoint
        self.on_gap = on_gap
        self.strict = strict
        self.gaps = []
        self.undecodable = 0
        self.received = 0
        self._detector = GapDetector()
        public, secret = load_keypair(client_cert)
        ctx = context or zmq.Context.instance()
        s = ctx.socket(zmq.SUB)
        s.curve_serverkey = load_public_key(server_key)
        s.curve_publickey = public
        s.curve_secretkey = secret
        s.setsockopt(zmq.RCVHWM, rcvhwm)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RECONNECT_IVL, 100)
        s.setsockopt(zmq.RECONNECT_IVL_MAX, reconnect_max_ms)
        s.setsockopt(zmq.HEARTBEAT_IVL, heartbeat_ms)
        s.setsockopt(zmq.HEARTBEAT_TIMEOUT, heartbeat_ms * 3)
        for t in topics:
            s.setsockopt(zmq.SUBSCRIBE, t.encode("utf-8"))
        s.connect(endpoint)
        self.socket = s

    def subscribe(self, prefix: str):
        self.socket.setsockopt(zmq.SUBSCRIBE, prefix.encode("utf-8"))

    def unsubscribe(self, prefix: str):
        self.socket.setsockopt(zmq.UNSUBSCRIBE, prefix.encode("utf-8"))

    def recv(self, timeout_ms: Optional[int] = None) -> Optional[Event]:
        """The next event, or None if ``timeout_ms`` passed first."""
        while True:
            if timeout_ms is not None and not self.socket.poll(timeout_ms):
                return None
            frames = self.socket.recv_multipart()
            if len(frames) != 2:
                self.undecodable += 1
                if self.strict:
                    raise SchemaError(f"expected 2 frames, got {len(frames)}")
                continue
            try:
                ev = decode(frames[0], frames[1])
            except SchemaError:
                self.undecodable += 1
                if self.strict:
                    raise
                continue
            if not self._detector.check(ev):
                continue
            self.received += 1
            if ev.gap is not None:
                self.gaps.append(ev.gap)
                if self.on_gap:
                    self.on_gap(ev.gap)
            return ev

    def __iter__(self) -> Iterator[Event]:
        while True:
            ev = self.recv()
            if ev is not None:
                yield ev

    def close(self):
        self.socket.close(linger=0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

"""The CURVE subscriber: a stock pyzmq SUB socket plus envelope decoding and gap reports."""

import os
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import zmq
import zmq.auth
from zmq.utils.monitor import recv_monitor_message

from collections import deque

from .envelope import Event, Gap, GapDetector, SchemaError, decode
from .replay import ReplayClient, ReplayRefused

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

    ``server_key`` may be a list during a server key rotation (the new key and the old one):
    when the publisher takes the connection but not the handshake, the socket is reopened
    with the next key, so the subscriber moves to whichever key the publisher still serves.
    ``server_key_in_use`` says which.
    """

    _WATCH = (zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED
              | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
              | zmq.EVENT_HANDSHAKE_FAILED_AUTH)

    def __init__(
        self,
        endpoint: str,
        server_key: Union[str, bytes, PathLike, Sequence[Union[str, bytes, PathLike]]],
        client_cert: PathLike,
        topics: Iterable[str] = ("",),
        on_gap: Optional[Callable[[Gap], None]] = None,
        strict: bool = False,
        context: Optional[zmq.Context] = None,
        rcvhwm: int = 100_000,
        reconnect_max_ms: int = 5_000,
        heartbeat_ms: int = 2_000,
        replay: Optional[str] = None,
        since: Optional[int] = None,
        snapshot: bool = False,
    ):
        """With ``replay`` (the publisher's ``replay_bind`` endpoint), a sequence gap on a
        journaled topic is filled from the journal before the event that revealed it, so
        every event is delivered once and in order; only what the journal no longer holds
        is reported as a gap. ``since`` (a per-topic seq, 1 = everything) first delivers the
        journaled events of the subscribed topics; ``snapshot`` first delivers the current
        market-data state (book, last quote and status), each valid at its seq."""
        self.endpoint = endpoint
        self._replay_ep = replay
        self._replay = None
        self._since = since
        self._snapshot = snapshot
        self._started = False
        # Each prefix's journal position where the ``since`` replay ended: read once more when
        # the first live event shows the subscription in effect (see ``_catch_up``).
        self._resume = []
        self._ready = deque()
        self.on_gap = on_gap
        self.strict = strict
        self.gaps = []
        self.undecodable = 0
        self.received = 0
        self._detector = GapDetector(since or 0)
        self._keypair = load_keypair(client_cert)
        keys = list(server_key) if isinstance(server_key, (list, tuple)) else [server_key]
        if not keys:
            raise ValueError("server_key: at least one key")
        self._server_keys = [load_public_key(k) for k in keys]
        self._key_index = 0
        self._topics = [t.encode("utf-8") for t in topics]
        self._ctx = context or zmq.Context.instance()
        self._opts = (rcvhwm, reconnect_max_ms, heartbeat_ms)
        self._monitor = None
        self.socket = None
        self._open()

    @property
    def server_key_in_use(self) -> bytes:
        return self._server_keys[self._key_index]

    def _open(self):
        rcvhwm, reconnect_max_ms, heartbeat_ms = self._opts
        public, secret = self._keypair
        s = self._ctx.socket(zmq.SUB)
        s.curve_serverkey = self.server_key_in_use
        s.curve_publickey = public
        s.curve_secretkey = secret
        s.setsockopt(zmq.RCVHWM, rcvhwm)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RECONNECT_IVL, 100)
        s.setsockopt(zmq.RECONNECT_IVL_MAX, reconnect_max_ms)
        s.setsockopt(zmq.HEARTBEAT_IVL, heartbeat_ms)
        s.setsockopt(zmq.HEARTBEAT_TIMEOUT, heartbeat_ms * 3)
        for t in self._topics:
            s.setsockopt(zmq.SUBSCRIBE, t)
        if len(self._server_keys) > 1:
            self._monitor = s.get_monitor_socket(self._WATCH)
            self._handshake_ok = False
        s.connect(self.endpoint)
        self.socket = s

    def _next_key(self):
        """The publisher refused the handshake on this key: reopen with the next one."""
        self._close_socket()
        self._key_index = (self._key_index + 1) % len(self._server_keys)
        self._open()

    def _watch(self):
        """Handles monitor events; returns True when the socket was reopened."""
        while self._monitor is not None and self._monitor.poll(0):
            ev = recv_monitor_message(self._monitor)["event"]
            if ev == zmq.EVENT_CONNECTED:
                self._handshake_ok = False
            elif ev == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._handshake_ok = True
            elif ev in (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
                        zmq.EVENT_HANDSHAKE_FAILED_AUTH) or (
                    ev == zmq.EVENT_DISCONNECTED and not self._handshake_ok):
                self._next_key()
                return True
        return False

    def subscribe(self, prefix: str):
        self._topics.append(prefix.encode("utf-8"))
        self.socket.setsockopt(zmq.SUBSCRIBE, prefix.encode("utf-8"))

    def unsubscribe(self, prefix: str):
        if prefix.encode("utf-8") in self._topics:
            self._topics.remove(prefix.encode("utf-8"))
        self.socket.setsockopt(zmq.UNSUBSCRIBE, prefix.encode("utf-8"))

    def _wait(self, timeout_ms: Optional[int]) -> bool:
        """Until a message is readable (True) or the timeout passed (False)."""
        if self._monitor is None:
            return timeout_ms is None or bool(self.socket.poll(timeout_ms))
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        while True:
            self._watch()
            poller = zmq.Poller()
            poller.register(self.socket, zmq.POLLIN)
            poller.register(self._monitor, zmq.POLLIN)
            left = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            ready = dict(poller.poll(left))
            if self.socket in ready:
                return True
            if self._monitor not in ready and deadline is not None and time.monotonic() >= deadline:
                return False

    def _replayer(self) -> ReplayClient:
        if self._replay is None:
            self._replay = ReplayClient(self._replay_ep, self.server_key_in_use, self._keypair, self._ctx)
        return self._replay

    def _initial(self):
        """Snapshots, then the journal from ``since``, before any live event."""
        self._started = True
        if self._replay_ep is None:
            return
        for t in self._topics:
            prefix = t.decode("utf-8")
            if self._snapshot:
                for topic, payload in self._replayer().snapshot(prefix):
                    ev = decode(topic, payload)
                    self._detector.mark(ev)
                    self._ready.append(ev)
            if self._since is not None:
                try:
                    self._resume.append((prefix, self._replay_from(prefix, 0)))
                except ReplayRefused as e:
                    if e.code != "unknown-topic":
                        raise
                    # Nothing journaled under it yet: the catch-up reads it from the start.
                    self._resume.append((prefix, 0))

    def _replay_from(self, prefix: str, start: int) -> int:
        """The journal under ``prefix`` from per-topic seq ``since``, read from position
        ``start`` into the ready queue (duplicates dropped); returns the position after it."""
        while True:
            recs, start, end, _ = self._replayer().replay(prefix, self._since, start)
            for topic, payload in recs:
                ev = decode(topic, payload)
                if self._detector.check(ev):
                    self._ready.append(ev)
            if end:
                return start

    def _catch_up(self, again: bool):
        """What each prefix's journal gained after its ``since`` replay ended: before the
        first live event (``again`` False), and at each idle tail check until then. The
        replay runs while the subscription may still be on its way to the publisher (ZMTP does
        not acknowledge it), so an event published in between is in neither the replay nor
        the live stream, and on a new topic no later event would show it missing. A live event
        proves the subscription in effect, and the bridge journals before it publishes."""
        resume, self._resume = self._resume, []
        for prefix, start in resume:
            try:
                start = self._replay_from(prefix, start)
            except ReplayRefused as e:
                if e.code != "unknown-topic":
                    self._replay = None
            except (TimeoutError, ValueError, zmq.ZMQError):
                self._replay = None
            if again:
                self._resume.append((prefix, start))

    def _fill(self, gap: Gap) -> List[Event]:
        """Events of ``gap`` from the journal, in order (what it no longer holds is missing)."""
        last = gap.expected + gap.missing - 1
        got = []
        try:
            for topic, payload in self._replayer().replay_all(gap.topic, gap.expected):
                if topic.decode("utf-8", "replace") != gap.topic:
                    continue
                ev = decode(topic, payload)
                if ev.seq > last:
                    break
                if ev.seq >= gap.expected:
                    got.append(ev)
        except (ReplayRefused, TimeoutError, ValueError, zmq.ZMQError):
            self._replay = None
        return got

    #: With a replay endpoint, an idle second triggers a tail check: a loss at the very end of
    #: a burst has no later message to reveal it, so the journal is asked directly.
    TAIL_CHECK_MS = 1000

    def _tail(self):
        """Journaled events after the last one seen, on every topic seen so far."""
        for topic, (epoch, seq) in list(self._detector._last.items())[:256]:
            try:
                for t, payload in self._replayer().replay_all(topic, seq + 1):
                    if t.decode("utf-8", "replace") != topic:
                        continue
                    ev = decode(t, payload)
                    if self._detector.check(ev):
                        self._ready.append(ev)
            except ReplayRefused as e:
                if e.code != "unknown-topic":
                    self._replay = None
            except (TimeoutError, ValueError, zmq.ZMQError):
                self._replay = None

    def recv(self, timeout_ms: Optional[int] = None) -> Optional[Event]:
        """The next event, or None if ``timeout_ms`` passed first."""
        if not self._started:
            self._initial()
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        while True:
            if self._ready:
                ev = self._ready.popleft()
                self.received += 1
                if ev.gap is not None:
                    self.gaps.append(ev.gap)
                    if self.on_gap:
                        self.on_gap(ev.gap)
                return ev
            slice_ms = self.TAIL_CHECK_MS if self._replay_ep is not None else None
            if deadline is not None:
                left = int((deadline - time.monotonic()) * 1000)
                if left <= 0:
                    return None
                slice_ms = left if slice_ms is None else min(slice_ms, left)
            if not self._wait(slice_ms):
                if self._replay_ep is not None:
                    if self._resume:
                        self._catch_up(again=True)
                    self._tail()
                continue
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
            if self._resume:
                self._catch_up(again=False)
            if not self._detector.check(ev):
                continue
            if ev.gap is not None and self._replay_ep is not None:
                gap, ev.gap = ev.gap, None
                nxt = gap.expected
                for r in self._fill(gap):
                    if r.seq > nxt:
                        r.gap = Gap(gap.topic, nxt, r.seq - nxt)
                    nxt = r.seq + 1
                    self._ready.append(r)
                if nxt < ev.seq:
                    ev.gap = Gap(gap.topic, nxt, ev.seq - nxt)
            self._ready.append(ev)

    def __iter__(self) -> Iterator[Event]:
        while True:
            ev = self.recv()
            if ev is not None:
                yield ev

    def _close_socket(self):
        if self._monitor is not None:
            self.socket.disable_monitor()
            self._monitor.close(linger=0)
            self._monitor = None
        self.socket.close(linger=0)

    def close(self):
        if self._replay is not None:
            self._replay.close()
        self._close_socket()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

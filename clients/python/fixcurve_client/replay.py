"""The replay and snapshot endpoint (``[publish] replay_bind``) from a stock pyzmq DEALER.

Frames (see the README's "Replay" section)::

    request:  REPLAY | prefix | since | from [| max]      SNAPSHOT | prefix
    reply:    OK | MORE or END | next | oldest | topic | envelope | ...
              ERROR | code | text
"""

from typing import List, Optional, Tuple

import zmq


class ReplayRefused(Exception):
    """The endpoint refused the request; ``code`` is one of ``malformed``, ``range``,
    ``unknown-topic``, ``forbidden``, ``unavailable``."""

    def __init__(self, code: str, text: str):
        super().__init__(f"{code}: {text}")
        self.code = code
        self.text = text


class ReplayClient:
    """One CURVE DEALER connection to the replay endpoint; one request at a time."""

    def __init__(self, endpoint: str, server_key: bytes, keypair: Tuple[bytes, bytes],
                 context: Optional[zmq.Context] = None, timeout_ms: int = 10_000):
        self.timeout_ms = timeout_ms
        ctx = context or zmq.Context.instance()
        s = ctx.socket(zmq.DEALER)
        s.curve_serverkey = server_key
        s.curve_publickey, s.curve_secretkey = keypair
        s.setsockopt(zmq.LINGER, 0)
        s.connect(endpoint)
        self.socket = s

    def request(self, *frames: bytes) -> List[bytes]:
        self.socket.send_multipart(list(frames))
        if not self.socket.poll(self.timeout_ms):
            raise TimeoutError("no reply from the replay endpoint")
        reply = self.socket.recv_multipart()
        if reply and reply[0] == b"ERROR":
            code = reply[1].decode() if len(reply) > 1 else ""
            text = reply[2].decode(errors="replace") if len(reply) > 2 else ""
            raise ReplayRefused(code, text)
        if len(reply) < 4 or reply[0] != b"OK" or len(reply) % 2:
            raise ValueError("malformed reply from the replay endpoint")
        return reply

    def replay(self, prefix: str, since: int, start: int = 0):
        """One batch: ``(records, next, end, oldest)`` with records ``[(topic, payload)]``."""
        r = self.request(b"REPLAY", prefix.encode(), str(since).encode(), str(start).encode())
        recs = [(r[i], r[i + 1]) for i in range(4, len(r), 2)]
        return recs, int(r[2]), r[1] == b"END", int(r[3])

    def replay_all(self, prefix: str, since: int):
        """Every journaled record of topics under ``prefix`` from per-topic seq ``since``."""
        start = 0
        while True:
            recs, start, end, _ = self.replay(prefix, since, start)
            yield from recs
            if end:
                return

    def snapshot(self, prefix: str) -> List[Tuple[bytes, bytes]]:
        r = self.request(b"SNAPSHOT", prefix.encode())
        return [(r[i], r[i + 1]) for i in range(4, len(r), 2)]

    def close(self):
        self.socket.close(linger=0)

"""Helpers for the FIX/TLS interop tests: configuration files for the FIX side, the
`fix_transport` example (fixcurve's acceptors and initiators without the ZeroMQ side), a
raw FIX client over Python's ssl module (OpenSSL), the QuickFIX C++ test peer, and the audit
log."""

import json
import socket
import ssl
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from conftest import PEERS, ROOT

FIX_TRANSPORT = ROOT / "target" / "debug" / "examples" / "fix_transport"
QFPEER = PEERS / "qfpeer"
# QuickFIX's own FIX 4.4 data dictionary, shipped in the quickfix-ssl wheel the test command
# installs into the venv.
QF_DICT44 = Path(sys.prefix) / "share" / "quickfix" / "FIX44.xml"
SOH = "\x01"


def toml_str(p):
    return json.dumps(str(p))


def write_config(path: Path, acceptors=(), initiators=(), sessions=()):
    """Each item is a dict of TOML keys (lists and strings and numbers)."""
    lines = [
        "[publish]",
        'bind = ["tcp://127.0.0.1:0"]',
        'keys = "keys"',
        "[state]",
        'dir = "state"',
        "[audit]",
        'path = "state/audit.jsonl"',
    ]
    for table, items in (("acceptor", acceptors), ("initiator", initiators), ("session", sessions)):
        for item in items:
            lines.append(f"[[{table}]]")
            for k, v in item.items():
                if isinstance(v, bool):
                    lines.append(f"{k} = {'true' if v else 'false'}")
                elif isinstance(v, (int, float)):
                    lines.append(f"{k} = {v}")
                elif isinstance(v, (list, tuple)):
                    lines.append(f"{k} = [{', '.join(toml_str(x) for x in v)}]")
                else:
                    lines.append(f"{k} = {toml_str(v)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def edge_config(path: Path, pki, venue, target, listen="127.0.0.1:0"):
    """One mTLS acceptor `edge` (the dev server certificate, client certificates from the dev
    CA) and one FIX.4.4 session BRIDGE->`target` bound to client1, with 1 s heartbeats."""
    return write_config(
        path,
        acceptors=[{"name": "edge", "listen": listen, "cert": pki.server.cert, "key": pki.server.key,
                    "client_ca": pki.root.cert}],
        sessions=[{"venue": venue, "acceptor": "edge", "begin_string": "FIX.4.4",
                   "sender_comp_id": "BRIDGE", "target_comp_id": target,
                   "tls_identity": "client1", "heartbeat_secs": 1}])


def start_fix(spawn, config: Path):
    """Starts fix_transport; returns (proc, {acceptor name: (host, port)})."""
    proc = spawn(FIX_TRANSPORT, "--config", config, cwd=config.parent)
    return proc


def listening(proc, name):
    addr = proc.listening(f"acceptor:{name}")
    host, port = addr.rsplit(":", 1)
    return host, int(port)


def audit_records(path: Path):
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def wait_audit(path: Path, timeout=10.0, **match):
    """Waits for an audit record whose fields equal `match` (values may be callables)."""
    deadline = time.monotonic() + timeout
    while True:
        for r in audit_records(path):
            if all((v(r.get(k)) if callable(v) else r.get(k) == v) for k, v in match.items()):
                return r
        if time.monotonic() > deadline:
            raise AssertionError(f"no audit record matching {match}; have:\n" +
                                 "\n".join(map(str, audit_records(path))))
        time.sleep(0.05)


# ---- raw FIX over Python's ssl -----------------------------------------------------------

def ts():
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


def fix_msg(fields, begin="FIX.4.4"):
    body = "".join(f"{t}={v}{SOH}" for t, v in fields)
    msg = f"8={begin}{SOH}9={len(body.encode())}{SOH}{body}"
    cs = sum(msg.encode()) % 256
    return (msg + f"10={cs:03}{SOH}").encode()


def logon(sender, target, seq=1, hb=30, extra=()):
    return fix_msg([(35, "A"), (49, sender), (56, target), (34, seq), (52, ts()), (98, 0), (108, hb), *extra])


def parse(raw: bytes):
    """[(tag, value)] of one message."""
    out = []
    for part in raw.decode("latin-1").split(SOH):
        if "=" in part:
            t, v = part.split("=", 1)
            out.append((int(t), v))
    return out


class FixClient:
    """A minimal FIX initiator over TLS, for the negative and identity tests."""

    def __init__(self, addr, ca=None, cert=None, key=None, source="127.0.0.1", tls=True,
                 min_version=None, max_version=None):
        self.sock = socket.create_connection(addr, timeout=5, source_address=(source, 0))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            if min_version:
                ctx.minimum_version = min_version
            if max_version:
                ctx.maximum_version = max_version
            if ca:
                ctx.load_verify_locations(str(ca))
            else:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if cert:
                ctx.load_cert_chain(str(cert), str(key) if key else None)
            self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")

    def send(self, raw: bytes):
        self.sock.sendall(raw)

    def recv_msg(self, timeout=5.0):
        """Next FIX message as [(tag, value)], or None on EOF."""
        self.sock.settimeout(timeout)
        while True:
            end = self.buf.find(b"\x0110=")
            if end >= 0:
                stop = self.buf.find(b"\x01", end + 1)
                if stop >= 0:
                    raw, self.buf = self.buf[: stop + 1], self.buf[stop + 1:]
                    return parse(raw)
            try:
                chunk = self.sock.recv(65536)
            except (ssl.SSLError, ConnectionResetError, OSError):
                return None
            if not chunk:
                return None
            self.buf += chunk

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def field(msg, tag):
    for t, v in msg or []:
        if t == tag:
            return v
    return None


# ---- QuickFIX C++ peer ---------------------------------------------------------------------

def qf_settings(path: Path, role, begin, sender, target, port, tls_files=None, hb=1, extra=None):
    """QuickFIX settings: SSL keys must sit in [DEFAULT] (QuickFIX 1.15 reads them there)."""
    d = [
        "[DEFAULT]",
        f"ConnectionType={role}",
        f"FileStorePath={path.parent / ('qfstore-' + path.stem)}",
        f"FileLogPath={path.parent / ('qflog-' + path.stem)}",
        "StartTime=00:00:00",
        "EndTime=00:00:00",
        "UseDataDictionary=N",
        f"HeartBtInt={hb}",
        "ReconnectInterval=1",
        "ValidateUserDefinedFields=N",
    ]
    for k, v in (tls_files or {}).items():
        d.append(f"{k}={v}")
    d += ["", "[SESSION]", f"BeginString={begin}", f"SenderCompID={sender}", f"TargetCompID={target}"]
    if role == "initiator":
        d += ["SocketConnectHost=127.0.0.1", f"SocketConnectPort={port}"]
    else:
        d += [f"SocketAcceptPort={port}"]
    for k, v in (extra or {}).items():
        d.append(f"{k}={v}")
    path.write_text("\n".join(d) + "\n")
    return path


def free_port():
    """Only for peers that cannot report the port they bound (QuickFIX acceptors)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def tell(proc, line):
    """Writes one command line to a spawned process's stdin."""
    proc.p.stdin.write((line + "\n").encode())
    proc.p.stdin.flush()


def mark(proc):
    return len(proc.stdout_lines)


def wait_line(proc, pattern, since=0, timeout=15.0):
    """First stdout line matching `pattern` at index >= `since`; returns (index, match)."""
    import re
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        lines = proc.stdout_lines
        for i in range(since, len(lines)):
            m = rx.search(lines[i])
            if m:
                return i, m
        if proc.p.poll() is not None and time.monotonic() > deadline - timeout + 0.5:
            # process ended: one last look happened above
            raise AssertionError(f"process ended before {pattern!r}\n{proc.dump()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timeout waiting for {pattern!r}\n{proc.dump()}")
        time.sleep(0.02)


def fields_of(line):
    """Tag/value pairs of a `PREFIX 8=...|9=...|` line."""
    msg = line.split(" ", 1)[1] if " " in line else line
    msg = msg.split(" ", 1)[1] if not msg.startswith("8=") and " " in msg else msg
    out = {}
    for part in msg.split("|"):
        if "=" in part:
            t, v = part.split("=", 1)
            out.setdefault(int(t), v)
    return out


def sending_time(fields):
    return datetime.strptime(fields[52], "%Y%m%d-%H:%M:%S.%f")


def check_heartbeats(proc, pattern, since):
    """Two consecutive lines matching `pattern` (Heartbeats as a peer logged them) whose
    SendingTimes are about 1 s apart.

    Heartbeats that answer a TestRequest (they carry 112) are left out: the peer may ask at
    any moment (QuickFIX counts whole seconds, so a Heartbeat of ours a few milliseconds late
    across a second boundary reads as two seconds of silence), and its answer then follows
    our timed Heartbeat by a millisecond."""
    regular = r"^(?!.*\|112=)" + pattern.removeprefix("^")
    i, _ = wait_line(proc, regular, since)
    j, _ = wait_line(proc, regular, i + 1)
    gap = (sending_time(fields_of(proc.stdout_lines[j])) - sending_time(fields_of(proc.stdout_lines[i]))).total_seconds()
    assert 0.5 <= gap <= 2.0, (gap, proc.stdout_lines[max(since, i - 4):j + 1])


def peer_seq(proc):
    """(next MsgSeqNum the peer sends, next it expects), from a test peer's `seq` command."""
    m0 = mark(proc)
    tell(proc, "seq")
    _, m = wait_line(proc, r"^SEQ sender=(\d+) target=(\d+)", m0)
    return int(m.group(1)), int(m.group(2))

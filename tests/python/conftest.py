"""Shared fixtures for the interoperability tests.

Conventions every fixcurve command that listens follows (so tests bind port 0 and read the
real port back instead of guessing free ports):

    stderr line:  ``listening: <what> <address>``
    e.g.          ``listening: publish tcp://127.0.0.1:40123``
                  ``listening: acceptor:edge 127.0.0.1:40777``
                  ``listening: metrics 127.0.0.1:40999``
"""

import os
import queue
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tlspki import OpenSslPki

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("FIXCURVE_BIN", str(ROOT / "target" / "debug" / "fixcurve"))
PEERS = ROOT / "target" / "peers"


class Proc:
    """A background process whose stdout and stderr lines can be awaited."""

    def __init__(self, args, stdin=None, env=None, cwd=None):
        self.args = [str(a) for a in args]
        full_env = dict(os.environ)
        full_env.setdefault("RUST_LOG", "info")
        if env:
            full_env.update(env)
        self.p = subprocess.Popen(
            self.args,
            stdin=subprocess.PIPE if stdin is None else stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,
            cwd=cwd,
        )
        self.lines = queue.Queue()
        self.stdout_lines = []
        self.stderr_lines = []
        for stream, store, tag in ((self.p.stdout, self.stdout_lines, "out"), (self.p.stderr, self.stderr_lines, "err")):
            threading.Thread(target=self._pump, args=(stream, store, tag), daemon=True).start()

    def _pump(self, stream, store, tag):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            store.append(line)
            self.lines.put((tag, line))
        self.lines.put((tag, None))

    def wait_for(self, pattern, timeout=15.0, stream=None):
        """Wait for a line matching `pattern` (regex); return the match. Fails on timeout or exit."""
        rx = re.compile(pattern)
        # lines already seen
        for tag, store in (("out", self.stdout_lines), ("err", self.stderr_lines)):
            if stream in (None, tag):
                for line in list(store):
                    m = rx.search(line)
                    if m:
                        return m
        deadline = time.monotonic() + timeout
        closed = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timeout waiting for {pattern!r} from {self.args}\n{self.dump()}")
            try:
                tag, line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                closed += 1
                if closed == 2:
                    raise AssertionError(f"process ended before {pattern!r}: {self.args}\n{self.dump()}")
                continue
            if stream in (None, tag):
                m = rx.search(line)
                if m:
                    return m

    def listening(self, what, timeout=15.0):
        """The address printed on the `listening: <what> <address>` line."""
        return self.wait_for(r"listening: " + re.escape(what) + r" (\S+)", timeout, "err").group(1)

    def dump(self):
        return "--- stdout\n" + "\n".join(self.stdout_lines[-50:]) + "\n--- stderr\n" + "\n".join(self.stderr_lines[-80:])

    def stop(self, timeout=10.0):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode


@pytest.fixture
def spawn():
    """spawn(args...) -> Proc; every process is stopped at teardown."""
    procs = []

    def _spawn(*args, **kw):
        proc = Proc(args, **kw)
        procs.append(proc)
        return proc

    yield _spawn
    for proc in procs:
        proc.stop()


def fixcurve(*args, check=True, input=None, timeout=60, cwd=None):
    """Run a short fixcurve command; returns CompletedProcess (text)."""
    cp = subprocess.run([BIN, *map(str, args)], input=input, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    if check and cp.returncode != 0:
        raise AssertionError(f"fixcurve {args} exited {cp.returncode}\n{cp.stdout}\n{cp.stderr}")
    return cp


@pytest.fixture
def fc():
    return fixcurve


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """An openssl-made CA with a `server` leaf (localhost) and a `client1` leaf; modules that
    need more certificates define their own `pki`."""
    p = OpenSslPki(tmp_path_factory.mktemp("pki"))
    p.server = p.root.issue("localhost", "server")
    p.client1 = p.root.issue("client1")
    return p


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI a test that skipped itself (a peer missing) did not run: report it as failed."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI") == "true" and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI (a missing peer fails the run): {report.longrepr}"

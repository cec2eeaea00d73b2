"""A JetStream cluster of stock `nats-server`s on loopback for the tests, and the configs of a
bridge with a JetStream sink and of `fixcurve edge`s behind it."""

import os
import re
import shutil
import socket
import signal
from pathlib import Path

import pytest

from conftest import BIN
from test_journal_replay import Durable
from test_bridge import server_keys

NATS = shutil.which("nats-server") or "/usr/sbin/nats-server"
needs_nats = pytest.mark.skipif(not os.path.exists(NATS), reason="nats-server not installed (scripts/test.sh installs it)")


class Node:
    def __init__(self, spawn, d, name, routes, port=-1, cluster_port=-1, extra=""):
        self.dir, self.name = d, name
        d.mkdir(parents=True, exist_ok=True)
        self.routes, self.port, self.cluster_port = routes, port, cluster_port
        conf = self.write(extra)
        self.proc = spawn(NATS, "-c", conf)
        m = self.proc.wait_for(r"Listening for client connections on (\S+)", timeout=20)
        self.client = m.group(1)
        self.url = f"nats://{self.client}"
        self.cluster = None
        if cluster_port is not None:
            m = self.proc.wait_for(r"Listening for route connections on (\S+)", timeout=20)
            self.cluster = int(m.group(1).rsplit(":", 1)[1])

    def write(self, extra=""):
        """(Re)writes the node's config; `extra` is appended (authorization blocks)."""
        route_lines = ",".join(f'"nats-route://127.0.0.1:{p}"' for p in self.routes)
        cluster = ""
        if self.cluster_port is not None:
            cluster = f"""
cluster {{
  name: fixcurve-test
  host: 127.0.0.1
  port: {self.cluster_port}
  routes: [{route_lines}]
}}"""
        self.conf = self.dir / "nats.conf"
        self.conf.write_text(f"""
server_name: {self.name}
host: 127.0.0.1
port: {self.port}
jetstream {{
  store_dir: "{self.dir / 'js'}"
  max_memory_store: 64MB
  max_file_store: 1GB
}}
{cluster}
{extra}
""")
        return self.conf

    def kill9(self):
        self.proc.p.send_signal(signal.SIGKILL)
        self.proc.p.wait(10)

    def reload(self, extra):
        """New authorization (or other) settings, applied live (SIGHUP)."""
        self.write(extra)
        self.proc.p.send_signal(signal.SIGHUP)
        self.proc.wait_for(r"Reloaded server configuration", timeout=10)


def free_ports(n):
    """Route ports for a cluster: every node must name its peers' route ports in its config
    before any starts, so these are picked (bound to port 0, read back, released) up front."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def cluster(spawn, tmp, n=3):
    """`n` JetStream nodes routed to each other on loopback; returns once every node has
    seen a JetStream meta leader elected."""
    ports = free_ports(n)
    nodes = [Node(spawn, tmp / f"n{i + 1}", f"n{i + 1}", routes=[p for p in ports if p != ports[i]],
                  cluster_port=ports[i]) for i in range(n)]
    for node in nodes:
        node.proc.wait_for(r"JetStream cluster new metadata leader|[Ss]elf is new JetStream cluster metadata leader", timeout=30)
    return nodes


def sink_block(urls, replicas=3, extra="", stream="FIXCURVE"):
    servers = ", ".join(f'"{u}"' for u in urls)
    return f"""
[sink.nats]
servers = [{servers}]
stream = "{stream}"
replicas = {replicas}
ack_timeout_ms = 2000
{extra}
"""


class JsBridge(Durable):
    """The durable bridge (journal, replay, restartable on its FIX port) with `[sink.nats]`."""

    def __init__(self, spawn, tmp, urls, replicas=3, extra="", stream="FIXCURVE"):
        tmp.mkdir(parents=True, exist_ok=True)
        super().__init__(spawn, tmp)
        self.config.write_text(self.config.read_text() + sink_block(urls, replicas, extra, stream))


class Edge:
    """A `fixcurve edge` with its own keyring, journal, replay endpoint and metrics."""

    def __init__(self, spawn, tmp, urls, extra=""):
        self.dir = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.keys = tmp / "keys"
        self.server_pub = server_keys(self.keys)
        (self.keys / "revoked").mkdir(parents=True, exist_ok=True)
        (self.keys / "authorized").mkdir(parents=True, exist_ok=True)
        servers = ", ".join(f'"{u}"' for u in urls)
        self.config = tmp / "edge.toml"
        self.config.write_text(f"""
[publish]
bind = ["tcp://127.0.0.1:0"]
replay_bind = ["tcp://127.0.0.1:0"]
keys = "keys"
heartbeat_secs = 1

[state]
dir = "state"

[audit]
path = "state/audit.jsonl"

[metrics]
listen = "127.0.0.1:0"

[source.nats]
servers = [{servers}]
stream = "FIXCURVE"
{extra}
""")
        self.spawn = spawn
        self.proc = None

    def start(self):
        self.proc = self.spawn(BIN, "edge", "--config", self.config, cwd=self.dir)
        self.publish = self.proc.listening("publish")
        self.replay = self.proc.listening("replay")
        self.metrics = self.proc.listening("metrics")
        return self

    def kill9(self):
        self.proc.p.send_signal(signal.SIGKILL)
        self.proc.p.wait(10)

"""The glue fixcurve replaces, as the baseline of the whole-path benchmark
(`BRIDGE_BENCH_GLUE=1 cargo bench --bench bridge_e2e`).

stunnel terminates mTLS in front of this process, which runs a plain-TCP QuickFIX acceptor
(the `quickfix-ssl` wheel, QuickFIX 1.15), turns each Quote (35=S) into the same version-1
envelope fixcurve publishes, and sends it as `[topic, payload]` through a pyzmq PUB socket
with CURVE, behind pyzmq's own ZAP authenticator reading a folder of authorized public keys.
This is the setup the README's opening describes people gluing together today; it is kept
as plain as such a script is, with nothing slowed on purpose: no data dictionary
validation, no logging of messages, a send high-water mark as large as fixcurve's queue.

Usage: glue_bridge.py FIX_PORT ZMQ_ENDPOINT SERVER_SECRET_FILE AUTHORIZED_DIR STATE_DIR
stdout: `READY` once the FIX acceptor and the PUB socket are up. Stops on stdin EOF.
"""

import sys
import time
from pathlib import Path

import msgpack
import quickfix as fix
import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

# Quote (S) tags -> envelope body fields; values stay the venue's exact strings.
QUOTE_FIELDS = (
    ("quote_id", 117),
    ("bid_px", 132),
    ("offer_px", 133),
    ("bid_size", 134),
    ("offer_size", 135),
    ("transact_time", 60),
    ("valid_until", 62),
)


def field(msg, tag):
    return msg.getField(tag) if msg.isSetField(tag) else None


class Glue(fix.Application):
    def __init__(self, pub, venue):
        super().__init__()
        self.pub = pub
        self.venue = venue
        self.epoch = time.time_ns()
        self.seqs = {}

    def onCreate(self, sid):
        pass

    def onLogon(self, sid):
        pass

    def onLogout(self, sid):
        pass

    def toAdmin(self, msg, sid):
        pass

    def fromAdmin(self, msg, sid):
        pass

    def toApp(self, msg, sid):
        pass

    def fromApp(self, msg, sid):
        received = time.time_ns()
        header = msg.getHeader()
        if header.getField(35) != "S":
            return
        symbol = msg.getField(55)
        topic = f"md.{self.venue}.{symbol}"
        seq = self.seqs.get(topic, 0) + 1
        self.seqs[topic] = seq
        body = {"symbol": symbol}
        for name, tag in QUOTE_FIELDS:
            body[name] = field(msg, tag)
        envelope = {
            "version": 1,
            "epoch": self.epoch,
            "seq": seq,
            "received_ns": received,
            "venue": self.venue,
            "session": f"{sid.getSenderCompID().getValue()}->{sid.getTargetCompID().getValue()}",
            "fix_seq": int(header.getField(34)),
            "kind": "quote",
            "body": body,
        }
        self.pub.send_multipart([topic.encode(), msgpack.packb(envelope)])


def main():
    fix_port, endpoint, secret_file, authorized, state = sys.argv[1:6]
    ctx = zmq.Context()
    auth = ThreadAuthenticator(ctx)
    auth.start()
    auth.configure_curve(domain="*", location=authorized)
    public, secret = zmq.auth.load_certificate(secret_file)
    pub = ctx.socket(zmq.PUB)
    pub.curve_server = True
    pub.curve_publickey = public
    pub.curve_secretkey = secret
    pub.sndhwm = 200_000
    pub.bind(endpoint)

    state = Path(state)
    settings_file = state / "glue.cfg"
    settings_file.write_text(f"""[DEFAULT]
ConnectionType=acceptor
SocketAcceptPort={fix_port}
SocketAcceptHost=127.0.0.1
SocketNodelay=Y
FileStorePath={state / "store"}
StartTime=00:00:00
EndTime=00:00:00
UseDataDictionary=N
ResetOnLogon=Y

[SESSION]
BeginString=FIX.4.4
SenderCompID=BRIDGE
TargetCompID=VENUE
HeartBtInt=30
""")
    settings = fix.SessionSettings(str(settings_file))
    app = Glue(pub, "BENCH")
    acceptor = fix.SocketAcceptor(app, fix.FileStoreFactory(settings), settings)
    acceptor.start()
    print("READY", flush=True)
    sys.stdin.read()
    acceptor.stop()
    auth.stop()
    pub.close(linger=0)
    ctx.term()


if __name__ == "__main__":
    main()

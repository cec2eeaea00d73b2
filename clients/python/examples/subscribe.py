#!/usr/bin/env python3
"""Print fixcurve events: python subscribe.py tcp://127.0.0.1:5556 SERVER.key CLIENT.key_secret [PREFIX...]"""

import sys

from fixcurve_client import Subscriber


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    endpoint, server_key, client_cert, *topics = argv[1:]
    with Subscriber(endpoint, server_key, client_cert, topics=topics or [""],
                    on_gap=lambda g: print(f"GAP {g.topic}: {g.missing} missing from seq {g.expected}", file=sys.stderr)) as sub:
        for ev in sub:
            if ev.kind == "execution":
                b = ev.body
                print(f"{ev.topic} #{ev.seq} exec {b['exec_type']} {b['side']} {b['symbol']} last {b.get('last_qty')}@{b.get('last_px')}")
            elif ev.kind in ("book_snapshot", "book_update"):
                rows = ev.body.get("entries") or ev.body.get("changes")
                print(f"{ev.topic} #{ev.seq} {ev.kind} {len(rows)} levels")
            else:
                print(f"{ev.topic} #{ev.seq} {ev.kind} {ev.body}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except KeyboardInterrupt:
        sys.exit(0)

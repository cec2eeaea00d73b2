"""Topic names as fixcurve publishes them, for subscriptions and ACL entries.

Each component is escaped so that a topic splits back into exactly its components: ``%``,
``.`` and bytes below 0x21 become ``%XX`` (uppercase hex); everything else is verbatim.
``md_topic("VENUE1", "BRK.B") == "md.VENUE1.BRK%2EB"``.
"""

from typing import List


def escape(component: str) -> str:
    out = []
    for ch in component:
        b = ord(ch)
        if b < 0x21 or ch in "%.":
            out.append("%%%02X" % b)
        else:
            out.append(ch)
    return "".join(out)


def unescape(component: str) -> str:
    """Undoes :func:`escape`; raises ValueError on a malformed ``%`` sequence."""
    raw = bytearray()
    i = 0
    data = component.encode("utf-8")
    while i < len(data):
        if data[i] == 0x25:  # %
            pair = data[i + 1:i + 3]
            if len(pair) != 2:
                raise ValueError(f"truncated escape in {component!r}")
            raw.append(int(pair, 16))
            i += 3
        else:
            raw.append(data[i])
            i += 1
    return raw.decode("utf-8")


def split(topic: str) -> List[str]:
    """A topic's unescaped components."""
    return [unescape(c) for c in topic.split(".")]


def md_topic(venue: str, symbol: str) -> str:
    return f"md.{escape(venue)}.{escape(symbol)}"


def exec_topic(venue: str, account: str) -> str:
    return f"exec.{escape(venue)}.{escape(account)}"


def status_topic(venue: str) -> str:
    return f"status.{escape(venue)}"

"""The verify stage's fast path (CPython only): one compiled pattern checks
that the bytes are a canonical protocol v1 message, instead of decoding the
JSON and re-encoding it to compare (hg.protocol.parse, which the devices
share and which stays the definition).

accept() returns the message dict when it is sure: canonical bytes, known
kind and type, values in range, the topic the message belongs on, a known
device, a good signature and a clock within the window. Anything else returns
None and the caller runs hg.protocol.verify, which raises the exact Reject
(or, should this path ever be stricter than the protocol, accepts the
message). So this module can only make a good message cheaper, never change a
verdict; tests/test_gateway_fastverify.py checks that against hg.protocol on
generated and mutated messages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from hmac import compare_digest

from hg import protocol


def _digits(limit: int) -> int:
    """Digits after the first of the longest number up to `limit`."""
    return len(str(limit)) - 1


# Every bound below comes from hg.protocol's own constants, so a change of
# the protocol's rules changes this pattern with it (a pattern stricter than
# the protocol only sends messages to the slow path; the numbers are still
# compared with the limits in accept()).
# the canonical envelope: member order fixed, no spaces, integers without
# leading zeros, ids and kinds as hg.protocol.body writes them; the data
# object's members are checked by _MEMBERS below
_ENVELOPE = re.compile(
    rb'\{"v":%d,"dev":"([a-z0-9][a-z0-9-]{%d,%d})","seq":([1-9][0-9]{0,%d}),'
    rb'"kind":"([a-z]{1,16})","type":"([a-z_]{1,24})"(?:,"ts":(0|[1-9][0-9]{0,%d}))?,'
    rb'"age":(0|[1-9][0-9]{0,%d}),"data":\{(.*)\},"sig":"([0-9a-f]{%d})"\}' % (
        protocol.VERSION, protocol.ID_LEN[0] - 1, protocol.ID_LEN[1] - 1,
        _digits(protocol.MAX_SEQ), _digits(protocol.MAX_INT), _digits(protocol.MAX_AGE),
        protocol.SIG_LEN), re.DOTALL)
# one data member: key, then an integer with one digit fewer than MAX_INT
# (so within it; longer ones take the slow path), a boolean or a short
# printable string without quote or backslash (so no escapes)
_MEMBER = rb'"[a-z][a-z0-9_]{0,%d}":(?:0|-?[1-9][0-9]{0,%d}|true|false|"[ !#-\[\]-~]{0,%d}")' % (
    protocol.KEY_LEN - 1, _digits(protocol.MAX_INT) - 1, protocol.MAX_STR)
_MEMBERS = re.compile(rb"%s(?:,%s)*" % (_MEMBER, _MEMBER))
_decode = json.JSONDecoder().decode  # json.loads without its type and encoding checks
_SUFFIX = len(b',"sig":"') + protocol.SIG_LEN + len(b'"}')


def _data(raw: bytes) -> dict | None:
    """The data object, or None when it is not canonical (sorted, unique keys)."""
    if not raw:
        return {}
    if _MEMBERS.fullmatch(raw) is None:
        return None
    data = _decode("{" + raw.decode() + "}")  # ASCII, checked above
    keys = list(data)
    # no string holds a quote, so '":' ends each key and nothing else: a
    # duplicate key (which json keeps once) shows as a missing member
    if len(keys) != raw.count(b'":') or len(keys) > protocol.MAX_DATA_KEYS:
        return None
    return data if keys == sorted(keys) else None


def accept(topic: str, wire: bytes, key_of: Callable[[str], bytes | None], now_ms: int,
           behind_ms: int, ahead_ms: int) -> dict | None:
    """The verified message, or None: let hg.protocol.verify decide."""
    if len(wire) > protocol.MAX_PAYLOAD:
        return None
    m = _ENVELOPE.fullmatch(wire)
    if m is None:
        return None
    dev_b, seq_b, kind_b, type_b, ts_b, age_b, data_b, sig = m.groups()
    dev, kind, typ = dev_b.decode(), kind_b.decode(), type_b.decode()
    seq, age = int(seq_b), int(age_b)
    if (typ not in protocol.TYPES.get(kind, ()) or seq > protocol.MAX_SEQ
            or age > protocol.MAX_AGE
            or topic != protocol.PREFIX + dev + "/" + protocol.TOPIC_OF[kind]):
        return None
    data = _data(data_b)
    if data is None:
        return None
    required = protocol.REQUIRED_DATA.get(kind)
    if required and any(k not in data for k in required):
        return None
    key = key_of(dev)
    if key is None:
        return None
    signed = wire[:len(wire) - _SUFFIX] + b"}"
    if not compare_digest(protocol.sign(key, signed), sig):
        return None
    msg: dict = {"v": 1, "dev": dev, "seq": seq, "kind": kind, "type": typ}
    if ts_b is not None:
        ts = int(ts_b)
        if ts > protocol.MAX_INT:
            return None
        sent = ts + age
        if sent < now_ms - behind_ms or sent > now_ms + ahead_ms:
            return None
        msg["ts"] = ts
    msg["age"] = age
    msg["data"] = data
    return msg

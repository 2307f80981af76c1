"""Writes tests/vectors/protocol_v1.json, the shared protocol test vectors.

The expected bytes here are written out by hand from docs/protocol.md and
signed with CPython's own hmac module, independently of hg.protocol, so the
firmware encoder (under MicroPython and CPython) and the gateway decoder are
checked against the specification rather than against themselves.

    python tests/vectors/make_vectors.py        # rewrite the file
    python tests/vectors/make_vectors.py --check  # exit 1 if it is stale
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
from pathlib import Path

OUT = Path(__file__).with_name("protocol_v1.json")
NOW = 1795387456200  # the receiver's clock for every case, ms since 1970

KEYS = {
    "hg-b-0001": "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
    "hg-s-0002": "4a9c1e77d2b05f3e8c61aa0b9d24f1e6c3b78e0d5a1f2c47e9b6d8031a5c7e2f",
}


def sig(dev: str, signed: str) -> str:
    return hmac.new(bytes.fromhex(KEYS[dev]), signed.encode(), hashlib.sha256).hexdigest()


def wire(dev: str, signed: str, signature: str | None = None) -> str:
    return signed[:-1] + ',"sig":"' + (signature or sig(dev, signed)) + '"}'


# name, topic, input (as a device would pass it to the encoder), signed bytes
VALID = [
    (
        "button fire alarm, clock synced",
        "hg/v1/hg-b-0001/event",
        {"dev": "hg-b-0001", "seq": 42, "kind": "alarm", "type": "fire",
         "ts": 1795387455000, "age": 1200, "data": {"zone": 1, "btn": "a"}},
        '{"v":1,"dev":"hg-b-0001","seq":42,"kind":"alarm","type":"fire",'
        '"ts":1795387455000,"age":1200,"data":{"btn":"a","zone":1}}',
    ),
    (
        "medical alarm held in the outbox, no clock: age only",
        "hg/v1/hg-b-0001/event",
        {"dev": "hg-b-0001", "seq": 43, "kind": "alarm", "type": "medical",
         "ts": None, "age": 3600000, "data": {}},
        '{"v":1,"dev":"hg-b-0001","seq":43,"kind":"alarm","type":"medical",'
        '"age":3600000,"data":{}}',
    ),
    (
        "residual-current alarm from a sensor",
        "hg/v1/hg-s-0002/event",
        {"dev": "hg-s-0002", "seq": 2147483647, "kind": "alarm", "type": "residual_current",
         "ts": 1795387456000, "age": 0,
         "data": {"set_ma": 300, "ma": 342, "ch": "leak", "latched": True}},
        '{"v":1,"dev":"hg-s-0002","seq":2147483647,"kind":"alarm","type":"residual_current",'
        '"ts":1795387456000,"age":0,"data":{"ch":"leak","latched":true,"ma":342,"set_ma":300}}',
    ),
    (
        "telemetry with negative and large integers",
        "hg/v1/hg-s-0002/telemetry",
        {"dev": "hg-s-0002", "seq": 7, "kind": "telemetry", "type": "periodic",
         "ts": 1795387450000, "age": 15,
         "data": {"i_max": 15230, "i_min": 0, "t_dc": -125, "v_avg": 229874,
                  "wh": 9007199254740991}},
        '{"v":1,"dev":"hg-s-0002","seq":7,"kind":"telemetry","type":"periodic",'
        '"ts":1795387450000,"age":15,"data":{"i_max":15230,"i_min":0,"t_dc":-125,'
        '"v_avg":229874,"wh":9007199254740991}}',
    ),
    (
        "heartbeat",
        "hg/v1/hg-b-0001/heartbeat",
        {"dev": "hg-b-0001", "seq": 100, "kind": "heartbeat", "type": "periodic",
         "ts": None, "age": 0,
         "data": {"up_s": 86400, "rssi": -67, "bat_mv": 2950, "fw": "0.1.0", "obx": 0}},
        '{"v":1,"dev":"hg-b-0001","seq":100,"kind":"heartbeat","type":"periodic",'
        '"age":0,"data":{"bat_mv":2950,"fw":"0.1.0","obx":0,"rssi":-67,"up_s":86400}}',
    ),
    (
        "last-will status",
        "hg/v1/hg-b-0001/status",
        {"dev": "hg-b-0001", "seq": 101, "kind": "status", "type": "offline",
         "ts": None, "age": 0, "data": {}},
        '{"v":1,"dev":"hg-b-0001","seq":101,"kind":"status","type":"offline","age":0,"data":{}}',
    ),
    (
        "fault with a reason string",
        "hg/v1/hg-s-0002/event",
        {"dev": "hg-s-0002", "seq": 8, "kind": "fault", "type": "sensor",
         "ts": 1795387456100, "age": 50, "data": {"reason": "ntc open circuit", "ch": "temp"}},
        '{"v":1,"dev":"hg-s-0002","seq":8,"kind":"fault","type":"sensor",'
        '"ts":1795387456100,"age":50,"data":{"ch":"temp","reason":"ntc open circuit"}}',
    ),
    (
        "downlink ack from the gateway",
        "hg/v1/hg-b-0001/ack",
        {"dev": "hg-b-0001", "seq": 5, "kind": "ack", "type": "stored",
         "ts": 1795387456200, "age": 0, "data": {"ref": 42}},
        '{"v":1,"dev":"hg-b-0001","seq":5,"kind":"ack","type":"stored",'
        '"ts":1795387456200,"age":0,"data":{"ref":42}}',
    ),
]

BASE = VALID[0][3]
BASE_TOPIC = VALID[0][1]


def resigned(signed: str) -> str:
    """A message whose signature is right for its (bad) content."""
    return wire("hg-b-0001", signed)


# name, topic, wire (str) or bytes, expected rejection reason
INVALID = [
    ("oversized payload", BASE_TOPIC,
     resigned(BASE.replace('"btn":"a"', '"btn":"' + "x" * 1000 + '"')), "oversized"),
    ("not JSON", BASE_TOPIC, wire("hg-b-0001", "{not json at all}"), "malformed"),
    ("no signature member", BASE_TOPIC, BASE, "malformed"),
    ("signature in upper-case hex", BASE_TOPIC,
     wire("hg-b-0001", BASE, sig("hg-b-0001", BASE).upper()),
     "malformed"),
    ("signature too short", BASE_TOPIC, BASE[:-1] + ',"sig":"abcd"}', "malformed"),
    ("JSON array instead of object", BASE_TOPIC, wire("hg-b-0001", "[1,2,3]"), "malformed"),
    ("invalid UTF-8", BASE_TOPIC, wire("hg-b-0001", BASE).encode().replace(b'"a"', b'"\xff"'),
     "malformed"),
    ("protocol version 2", BASE_TOPIC, resigned(BASE.replace('"v":1', '"v":2')), "bad_version"),
    ("missing seq", BASE_TOPIC, resigned(BASE.replace('"seq":42,', "")), "bad_field"),
    ("missing age (required, 0 for a first transmission)", BASE_TOPIC,
     resigned(BASE.replace('"age":1200,', "")), "bad_field"),
    ("missing data (required, {} when empty)", BASE_TOPIC,
     resigned(BASE.replace(',"data":{"btn":"a","zone":1}', "")), "bad_field"),
    ("ts null (an unsynced clock leaves ts out)", BASE_TOPIC,
     resigned(BASE.replace('"ts":1795387455000', '"ts":null')), "not_canonical"),
    ("seq zero", BASE_TOPIC, resigned(BASE.replace('"seq":42', '"seq":0')), "bad_field"),
    ("negative seq (the gateway's own events; never on the wire)", BASE_TOPIC,
     resigned(BASE.replace('"seq":42', '"seq":-42')), "bad_field"),
    ("seq one past 2**31-1", BASE_TOPIC,
     resigned(BASE.replace('"seq":42', '"seq":2147483648')), "bad_field"),
    ("seq as a string", BASE_TOPIC, resigned(BASE.replace('"seq":42', '"seq":"42"')), "bad_field"),
    ("negative age", BASE_TOPIC, resigned(BASE.replace('"age":1200', '"age":-1')), "bad_field"),
    ("float in data", BASE_TOPIC, resigned(BASE.replace('"zone":1', '"zone":1.5')), "bad_field"),
    ("nested object in data", BASE_TOPIC, resigned(BASE.replace('"zone":1', '"zone":{"a":1}')),
     "bad_field"),
    ("unknown member", BASE_TOPIC, resigned(BASE.replace('"v":1,', '"v":1,"x":1,')), "bad_field"),
    ("bad device id", BASE_TOPIC, resigned(BASE.replace("hg-b-0001", "HG_B_0001")), "bad_field"),
    ("unknown kind", BASE_TOPIC, resigned(BASE.replace('"kind":"alarm"', '"kind":"party"')),
     "unknown_kind"),
    ("unknown alarm type", BASE_TOPIC, resigned(BASE.replace('"type":"fire"', '"type":"flood"')),
     "unknown_type"),
    ("ack without ref", "hg/v1/hg-b-0001/ack",
     resigned('{"v":1,"dev":"hg-b-0001","seq":5,"kind":"ack","type":"stored","age":0,"data":{}}'),
     "bad_field"),
    ("spaces after colons", BASE_TOPIC, resigned(BASE.replace('"seq":42', '"seq": 42')),
     "not_canonical"),
    ("data keys not sorted", BASE_TOPIC,
     resigned(BASE.replace('{"btn":"a","zone":1}', '{"zone":1,"btn":"a"}')), "not_canonical"),
    ("members out of order", BASE_TOPIC,
     resigned(BASE.replace('"kind":"alarm","type":"fire"', '"type":"fire","kind":"alarm"')),
     "not_canonical"),
    ("escaped character", BASE_TOPIC, resigned(BASE.replace('"btn":"a"', '"btn":"\\u0061"')),
     "not_canonical"),
    ("duplicate member", BASE_TOPIC, resigned(BASE.replace('"seq":42,', '"seq":41,"seq":42,')),
     "not_canonical"),
    ("topic names another device", "hg/v1/hg-s-0002/event", wire("hg-b-0001", BASE),
     "topic_mismatch"),
    ("alarm on the telemetry topic", "hg/v1/hg-b-0001/telemetry", wire("hg-b-0001", BASE),
     "topic_mismatch"),
    ("topic outside the prefix", "hg/v2/hg-b-0001/event", wire("hg-b-0001", BASE),
     "topic_mismatch"),
    ("unknown device", "hg/v1/hg-x-9999/event",
     wire("hg-b-0001", BASE.replace("hg-b-0001", "hg-x-9999")), "unknown_device"),
    ("signature by another device's key", BASE_TOPIC,
     wire("hg-b-0001", BASE, sig("hg-s-0002", BASE)),
     "bad_signature"),
    ("content changed after signing", BASE_TOPIC,
     wire("hg-b-0001", BASE, sig("hg-b-0001", BASE)).replace('"fire"', '"panic"'), "bad_signature"),
    ("device clock 41 s behind", BASE_TOPIC,
     resigned(BASE.replace('"ts":1795387455000', '"ts":1795387413999')), "clock_skew"),
    ("device clock 21 s ahead", BASE_TOPIC,
     resigned(BASE.replace('"ts":1795387455000', '"ts":1795387476001')), "clock_skew"),
]

# encoder inputs that must be refused before anything is sent
ENCODE_ERRORS = [
    ("float value", {"data": {"i": 1.5}}, "bad_field"),
    ("string with a quote", {"data": {"s": 'a"b'}}, "bad_field"),
    ("non-ASCII string", {"data": {"s": "火"}}, "bad_field"),
    ("string over 64 characters", {"data": {"s": "x" * 65}}, "bad_field"),
    ("upper-case data key", {"data": {"Zone": 1}}, "bad_field"),
    ("25 data keys", {"data": {f"k{i:02d}": i for i in range(25)}}, "bad_field"),
    ("seq above 2**31-1", {"seq": 2147483648}, "bad_field"),
    ("unknown kind", {"kind": "party"}, "unknown_kind"),
    ("unknown type", {"type": "flood"}, "unknown_type"),
    ("payload over 1024 bytes", {"data": {f"k{i:02d}": "y" * 40 for i in range(24)}}, "oversized"),
]
ENCODE_BASE = VALID[0][2]


def build() -> dict:
    valid = []
    for name, topic, inp, signed in VALID:
        valid.append({"name": name, "topic": topic, "input": inp, "signed": signed,
                      "sig": sig(inp["dev"], signed), "wire": wire(inp["dev"], signed)})
    invalid = []
    for name, topic, w, reason in INVALID:
        case = {"name": name, "topic": topic, "reason": reason}
        if isinstance(w, bytes):
            case["wire_hex"] = w.hex()
        else:
            case["wire"] = w
        invalid.append(case)
    errors = [{"name": n, "input": {**ENCODE_BASE, **patch}, "reason": r}
              for n, patch, r in ENCODE_ERRORS]
    return {
        "about": "Homeguard protocol v1 test vectors; see docs/protocol.md. "
                 "Regenerate with tests/vectors/make_vectors.py.",
        "now_ms": NOW, "behind_ms": 40000, "ahead_ms": 20000,
        "keys": KEYS, "valid": valid, "invalid": invalid, "encode_errors": errors,
    }


def render() -> str:
    return json.dumps(build(), indent=1, ensure_ascii=True) + "\n"


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        sys.exit(0 if OUT.read_text() == text else 1)
    OUT.write_text(text)
    print(f"wrote {OUT}")

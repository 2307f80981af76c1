# Runs the shared protocol vectors through hg.protocol and prints one JSON
# line per case.  MicroPython subset: the same file runs under the npm
# MicroPython and under CPython, and tests/test_protocol_vectors.py compares
# both outputs with the expectations in tests/vectors/protocol_v1.json.
import json

from hg import protocol as p

try:
    from binascii import unhexlify
except ImportError:  # pragma: no cover
    from ubinascii import unhexlify


def _verify(v, keys, topic, wire):
    try:
        p.verify(topic, wire, keys.get, v["now_ms"], v["behind_ms"], v["ahead_ms"])
        return "accepted"
    except p.Reject as e:
        return e.reason


def _encode(keys, i):
    return p.encode(keys[i["dev"]], i["dev"], i["seq"], i["kind"], i["type"],
                    i["age"], i["data"], i.get("ts"))


def check(v):
    keys = {}
    for dev in v["keys"]:
        keys[dev] = unhexlify(v["keys"][dev])
    out = []
    for c in v["valid"]:
        w = _encode(keys, c["input"])
        out.append({"set": "valid", "name": c["name"], "wire": w.decode(),
                    "signed": p.split(w)[0].decode(),
                    "result": _verify(v, keys, c["topic"], c["wire"].encode())})
    for c in v["invalid"]:
        if "wire" in c:
            w = c["wire"].encode()
        else:
            w = unhexlify(c["wire_hex"])
        out.append({"set": "invalid", "name": c["name"],
                    "result": _verify(v, keys, c["topic"], w)})
    for c in v["encode_errors"]:
        try:
            _encode(keys, c["input"])
            r = "encoded"
        except p.Reject as e:
            r = e.reason
        out.append({"set": "encode_errors", "name": c["name"], "result": r})
    return out


def main(path):
    with open(path) as f:
        v = json.load(f)
    for row in check(v):
        print(json.dumps(row))

"""The verify stage's fast path (gateway/fastverify.py) against hg.protocol,
the definition: on generated messages (every kind and type, data of every
value shape and edge, with and without ts), on mutated bytes and on other
topics, keys and clocks, the gateway's verify() returns exactly what
hg.protocol.verify returns (the same message, or a Reject with the same
reason), and the fast path accepts only what the protocol accepts."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import fastverify
from gateway.verify import verify
from hg import protocol

EXAMPLES = int(os.environ.get("HG_FUZZ_EXAMPLES", "60")) * 5
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
KEY = bytes(range(32))
DEVS = ("hg-b-0001", "abc", "0-9", "x" * 32)
NOW = 1_795_000_000_000
WINDOW = (40_000, 20_000)
KINDS = sorted(k for k in protocol.TYPES)

keys = st.text("abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=17).filter(
    lambda k: "a" <= k[0] <= "z" or len(k) > 16)
values = st.one_of(
    st.booleans(),
    st.sampled_from([0, -1, 1, protocol.MAX_INT, -protocol.MAX_INT, protocol.MAX_INT + 1,
                     -protocol.MAX_INT - 1, 10**15, -10**15]),
    st.integers(-2**60, 2**60),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=66),
)


@st.composite
def messages(draw: st.DrawFn) -> tuple[str, bytes]:
    """(topic, wire) signed with KEY: valid ones and ones hg.protocol refuses
    to encode are both fine; the body is built without encode's checks."""
    kind = draw(st.sampled_from(KINDS))
    typ = draw(st.sampled_from(protocol.TYPES[kind] * 3 + ("bogus",)))
    dev = draw(st.sampled_from(DEVS))
    data = draw(st.dictionaries(keys, values, max_size=draw(st.sampled_from([4, 4, 26]))))
    if kind in protocol.REQUIRED_DATA and draw(st.booleans()):
        data.setdefault(protocol.REQUIRED_DATA[kind][0], 1)
    seq = draw(st.sampled_from([1, 2, 77, protocol.MAX_SEQ, protocol.MAX_SEQ + 1, 0]))
    age = draw(st.sampled_from([0, 5, 900, protocol.MAX_AGE, protocol.MAX_AGE + 1]))
    ts = draw(st.sampled_from([None, None, NOW, NOW - 30_000, NOW - 50_000, NOW + 30_000,
                               protocol.MAX_INT + 1]))
    try:
        wire = protocol.encode(KEY, dev, seq, kind, typ, age, data, ts)
    except protocol.Reject:
        wire = _unchecked(dev, seq, kind, typ, age, data, ts)
    leaf = draw(st.sampled_from([protocol.TOPIC_OF[kind]] * 4 + ["event", "telemetry"]))
    return protocol.topic(draw(st.sampled_from([dev] * 4 + ["hg-b-0002"])), leaf), wire


def _unchecked(dev: str, seq: int, kind: str, typ: str, age: int, data: dict,
               ts: int | None) -> bytes:
    body = f'{{"v":1,"dev":"{dev}","seq":{seq},"kind":"{kind}","type":"{typ}"'
    if ts is not None:
        body += f',"ts":{ts}'
    members = json.dumps(dict(sorted(data.items())), separators=(",", ":"))
    body += f',"age":{age},"data":{members}}}'
    signed = body.encode()
    return signed[:-1] + b',"sig":"' + protocol.sign(KEY, signed) + b'"}'


def key_of(dev: str) -> bytes | None:
    return KEY if dev != "hg-b-0002" else b"other-key"


def outcome(fn, topic: str, wire: bytes) -> object:  # noqa: ANN001
    try:
        return fn(topic, wire, key_of, NOW, *WINDOW)
    except protocol.Reject as exc:
        return ("reject", exc.reason)


def check(topic: str, wire: bytes) -> None:
    expected = outcome(protocol.verify, topic, wire)
    assert outcome(verify, topic, wire) == expected
    fast = fastverify.accept(topic, wire, key_of, NOW, *WINDOW)
    if fast is not None:  # the fast path may only accept what the protocol accepts
        assert fast == expected
        assert list(fast) == list(expected)  # same members, same order


@FUZZ
@given(messages())
def test_generated_messages_get_the_protocols_verdict(msg: tuple[str, bytes]) -> None:
    check(*msg)


@FUZZ
@given(messages(), st.data())
def test_mutated_messages_get_the_protocols_verdict(msg: tuple[str, bytes],
                                                    data: st.DataObject) -> None:
    topic, wire = msg
    b = bytearray(wire)
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(b) - 1))
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if op == "flip":
            b[i] = data.draw(st.sampled_from(b' "\\,:{}-0123456789aeftx\x00\xff'))
        elif op == "cut":
            del b[i:i + data.draw(st.integers(1, 8))]
        else:
            b[i:i] = data.draw(st.sampled_from([b" ", b",", b'"x":1,', b"0", b"-", b"\\u0041"]))
    check(topic, bytes(b))


@pytest.mark.parametrize("wire", [
    # non-canonical forms the pattern must not let through
    b'{"v":1,"dev":"hg-b-0001","seq":1,"kind":"alarm","type":"fire","age":0,'
    b'"data":{"b":1,"a":2}}',
    b'{"v":1,"dev":"hg-b-0001","seq":1,"kind":"alarm","type":"fire","age":0,'
    b'"data":{"a":-0}}',
    b'{"v":1,"dev":"hg-b-0001","seq":1,"kind":"alarm","type":"fire","age":0,'
    b'"data":{"a":1,"a":1}}',
    b'{"v":1,"dev":"hg-b-0001","seq":01,"kind":"alarm","type":"fire","age":0,"data":{}}',
    b'{"v":1,"dev":"hg-b-0001","seq":1,"kind":"alarm","type":"fire","age":0,'
    b'"data":{"a":"}"}}',
    b'{"v":1,"dev":"hg-b-0001","seq":1,"kind":"fault","type":"sensor","age":0,"data":{}}',
])
def test_edge_cases_get_the_protocols_verdict(wire: bytes) -> None:
    body = wire
    signed = body
    signed_wire = signed[:-1] + b',"sig":"' + protocol.sign(KEY, signed) + b'"}'
    check(protocol.topic("hg-b-0001", "event"), signed_wire)


def test_a_good_message_takes_the_fast_path() -> None:
    wire = protocol.encode(KEY, "hg-b-0001", 7, "telemetry", "periodic", 0,
                           {"leak_ma": 3, "ok": True, "s": "a b}c", "v_dv": -2301}, NOW)
    topic = protocol.topic("hg-b-0001", "telemetry")
    fast = fastverify.accept(topic, wire, key_of, NOW, *WINDOW)
    assert fast is not None and fast == protocol.verify(topic, wire, key_of, NOW, *WINDOW)


def test_the_pattern_follows_the_protocols_constants(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule change in hg.protocol changes the fast path with it: with device
    ids limited to 10 characters, a 12-character id no longer takes the fast
    path (so hg.protocol gives its verdict), and strings follow MAX_STR."""
    import importlib

    wire = protocol.encode(KEY, "hg-b-0001", 7, "alarm", "fire", 0, {"s": "x" * 30}, NOW)
    topic = protocol.topic("hg-b-0001", "event")
    assert fastverify.accept(topic, wire, key_of, NOW, *WINDOW) is not None
    try:
        monkeypatch.setattr(protocol, "ID_LEN", (3, 8))
        monkeypatch.setattr(protocol, "MAX_STR", 16)
        importlib.reload(fastverify)
        assert b"{2,7}" in fastverify._ENVELOPE.pattern
        assert fastverify.accept(topic, wire, key_of, NOW, *WINDOW) is None
    finally:
        monkeypatch.undo()
        importlib.reload(fastverify)
    assert fastverify.accept(topic, wire, key_of, NOW, *WINDOW) is not None

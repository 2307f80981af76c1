"""Protocol v1: the shared vectors hold under CPython and real MicroPython."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hg import protocol
from tests.firmware import vector_check

HERE = Path(__file__).parent
VECTORS_PATH = HERE / "vectors" / "protocol_v1.json"
VECTORS = json.loads(VECTORS_PATH.read_text())


def expected() -> list[dict]:
    rows = []
    for c in VECTORS["valid"]:
        rows.append({"set": "valid", "name": c["name"], "wire": c["wire"],
                     "signed": c["signed"], "result": "accepted"})
    for set_name in ("invalid", "encode_errors"):
        for c in VECTORS[set_name]:
            rows.append({"set": set_name, "name": c["name"], "result": c["reason"]})
    return rows


def parse_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_vectors_file_is_current() -> None:
    gen = subprocess.run([sys.executable, str(HERE / "vectors" / "make_vectors.py"), "--check"])
    assert gen.returncode == 0, "tests/vectors/protocol_v1.json is stale: run make_vectors.py"


def test_every_rejection_reason_has_a_vector() -> None:
    covered = {c["reason"] for c in VECTORS["invalid"]}
    assert covered == set(protocol.REASONS)


def test_cpython_matches_vectors() -> None:
    assert vector_check.check(VECTORS) == expected()


def test_micropython_matches_vectors(micropython) -> None:
    src = (HERE / "firmware" / "vector_check.py").read_text()
    out = micropython.run(
        "import sys\nsys.path.append('/t')\nimport vector_check\nvector_check.main('/t/v.json')\n",
        files={"/t/vector_check.py": src, "/t/v.json": VECTORS_PATH.read_text()},
    )
    got = parse_lines(out)
    assert [r["name"] for r in got] == [r["name"] for r in expected()]
    for g, e in zip(got, expected(), strict=True):
        assert g == e, f"MicroPython differs on {e['name']!r}"


@pytest.mark.parametrize("case", VECTORS["valid"], ids=lambda c: c["name"])
def test_signature_is_standard_hmac_sha256(case: dict) -> None:
    key = bytes.fromhex(VECTORS["keys"][case["input"]["dev"]])
    want = hmac.new(key, case["signed"].encode(), hashlib.sha256).hexdigest()
    assert case["sig"] == want
    assert case["wire"].endswith(',"sig":"' + want + '"}')


@given(key=st.binary(min_size=0, max_size=200), msg=st.binary(max_size=300))
def test_hmac_matches_stdlib(key: bytes, msg: bytes) -> None:
    assert protocol.hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).digest()


@given(data=st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True),
    st.one_of(st.integers(-(2**53) + 1, 2**53 - 1), st.booleans(),
              st.from_regex(r"[ !#-\[\]-~]{0,64}", fullmatch=True)),
    max_size=12),
    seq=st.integers(1, 2**31 - 1), age=st.integers(0, 10**9))
def test_any_encodable_message_verifies(data: dict, seq: int, age: int) -> None:
    key = bytes(range(32))
    wire = protocol.encode(key, "hg-b-0001", seq, "telemetry", "periodic", age, data)
    msg = protocol.verify("hg/v1/hg-b-0001/telemetry", wire, {"hg-b-0001": key}.get)
    assert msg["data"] == data and msg["seq"] == seq and msg["age"] == age


@given(st.binary(max_size=1100))
def test_garbage_is_rejected_with_a_reason(blob: bytes) -> None:
    with pytest.raises(protocol.Reject) as exc:
        protocol.verify("hg/v1/hg-b-0001/event", blob, {"hg-b-0001": b"k"}.get)
    assert exc.value.reason in protocol.REASONS

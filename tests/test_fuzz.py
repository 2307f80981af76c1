"""Fuzzing: the gateway's decoder/verifier and pipeline (hypothesis) and the
centre's whole API (schemathesis from its OpenAPI, run in process against a
real SQLite store): no crash, no 5xx, every rejection carries a reason.

Bounded for CI; HG_FUZZ_EXAMPLES raises the number of examples per target."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard.app import create_app
from dashboard.settings import Settings
from hg import protocol
from tests.test_gateway_stages import BUTTON, EVENT, KEYS, NOW, Rig, alarm

EXAMPLES = int(os.environ.get("HG_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=list(HealthCheck))
GOOD = alarm(1)
ALL_TOPICS = [protocol.topic(BUTTON, leaf) for leaf in protocol.UPLINK + protocol.DOWNLINK]


@st.composite
def _mutations(draw: st.DrawFn) -> bytes:
    """Valid wire bytes with bytes flipped, cut, inserted or duplicated."""
    wire = bytearray(GOOD)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
        i = draw(st.integers(0, max(0, len(wire) - 1)))
        if op == "flip" and wire:
            wire[i] ^= draw(st.integers(1, 255))
        elif op == "cut":
            del wire[i:i + draw(st.integers(1, 40))]
        elif op == "insert":
            wire[i:i] = draw(st.binary(min_size=1, max_size=20))
        else:
            wire[i:i] = wire[i:i + draw(st.integers(1, 30))]
    return bytes(wire)


def _json_messages() -> st.SearchStrategy[bytes]:
    """JSON objects shaped like messages with wrong types and values."""
    scalar = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(),
                       st.text(max_size=40))
    members = st.fixed_dictionaries({}, optional={
        k: scalar for k in ("v", "dev", "seq", "kind", "type", "ts", "age", "sig")} | {
        "data": st.dictionaries(st.text(max_size=20), scalar, max_size=30)})
    return members.map(lambda m: json.dumps(m, separators=(",", ":")).encode())


PAYLOADS = st.one_of(st.binary(max_size=1500), _mutations(), _json_messages())


@FUZZ
@given(payload=PAYLOADS, topic=st.sampled_from(ALL_TOPICS))
def test_verify_rejects_with_a_reason_or_accepts(payload: bytes, topic: str) -> None:
    try:
        msg = protocol.verify(topic, payload, KEYS.get, NOW)
    except protocol.Reject as exc:
        assert exc.reason in protocol.REASONS
        return
    # accepted: then it re-encodes to exactly these bytes, signed with the key
    assert protocol.encode(KEYS[msg["dev"]], msg["dev"], msg["seq"], msg["kind"], msg["type"],
                           msg["age"], msg["data"], msg.get("ts")) == payload


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Rig:
    return Rig(tmp_path_factory.mktemp("fuzz-gw"))


@FUZZ
@given(payload=PAYLOADS, topic=st.sampled_from([*ALL_TOPICS, "hg/v1/x/event", "junk"]))
def test_pipeline_never_raises_and_stores_only_verified(rig: Rig, payload: bytes,
                                                        topic: str) -> None:
    before = rig.rows()
    outcome = rig.handle(topic, payload)
    known = {*protocol.REASONS, "replay", "stored", "duplicate", "telemetry"}
    assert outcome in known, outcome
    if outcome != "stored":
        assert rig.rows() == before


def test_the_fuzzed_rig_still_stores_a_good_alarm(rig: Rig) -> None:
    assert rig.handle(EVENT, alarm(99_999)) == "stored"


# --- the centre's API ---------------------------------------------------------

TOKEN = "fuzz-gateway-token-0123"
_CENTRE_DIR = Path(tempfile.mkdtemp(prefix="hg-fuzz-centre-"))
APP = create_app(Settings(database_url=f"sqlite:///{_CENTRE_DIR / 'centre.db'}",
                          gateway_tokens=[TOKEN]))
# the registry import's body may be an .xlsx workbook: bytes, as octet-stream's
schemathesis.serializer.alias(
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/octet-stream")
SCHEMA = schemathesis.openapi.from_dict(APP.openapi())
SCHEMA.app = APP


@SCHEMA.parametrize()
@FUZZ
def test_centre_api_answers_every_input_without_a_5xx(case: schemathesis.Case) -> None:
    r = case.call(headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code < 500, (case.method, case.path, case.body, r.text[:300])
    if r.status_code >= 400:
        assert r.json().get("detail"), r.text[:300]  # a rejection says why


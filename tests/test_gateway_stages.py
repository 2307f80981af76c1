"""Gateway stages without servers: verify -> timestamp -> dedup -> store -> ack,
driven through Pipeline.handle with a real SQLite store and registry file, and
the gateway's config and registry loaders.

Acks go through a real Acker whose publish function records (topic, payload);
every recorded ack is checked with the device's key like a device would.
"""

from __future__ import annotations

import json
import logging
import re
import tomllib
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from gateway import dedup
from gateway.ack import Acker
from gateway.config import Config, ConfigError, load
from gateway.pipeline import DUPLICATE, STORED, TELEMETRY, Pipeline
from gateway.registry import Registry, RegistryError
from gateway.store import Store
from gateway.timestamp import stamp
from hg import protocol
from tests.harness.proc import wait_until

ROOT = Path(__file__).resolve().parent.parent
VECTORS = json.loads((ROOT / "tests/vectors/protocol_v1.json").read_text())
NOW = VECTORS["now_ms"]
KEYS = {dev: bytes.fromhex(k) for dev, k in VECTORS["keys"].items()}
BUTTON = "hg-b-0001"
SAMPLE = ROOT / "gateway/sample.toml"


def wire_of(vector: dict) -> bytes:
    if "wire_hex" in vector:
        return bytes.fromhex(vector["wire_hex"])
    return vector["wire"].encode()


def rejected(reason: str) -> float:
    return REGISTRY.get_sample_value("hg_gateway_rejected_total", {"reason": reason}) or 0.0


def write_registry(path: Path, keys: dict[str, bytes]) -> None:
    path.write_text(json.dumps({"devices": [
        {"id": dev, "key": key.hex(), "type": "button"} for dev, key in keys.items()]}))


class Rig:
    """A pipeline over a store file in tmp, with every published ack recorded."""

    def __init__(self, tmp: Path, window: int = 4096, db: str = "gw.db") -> None:
        reg = tmp / "devices.json"
        if not reg.exists():
            write_registry(reg, KEYS)
        self.cfg = Config.model_validate({
            "gateway": {"data_dir": str(tmp)},
            "registry": {"path": str(reg)},
            "dedup": {"window": window},
            "verify": {"behind_ms": VECTORS["behind_ms"], "ahead_ms": VECTORS["ahead_ms"]},
            "centre": {"url": "http://127.0.0.1:9", "token": "stage-test"},
        })
        self.store = Store(tmp / db)
        self.registry = Registry(reg)
        self.sent: list[tuple[str, bytes]] = []
        self.acker = Acker(self.store, self.registry.key_of,
                           lambda t, p: self.sent.append((t, p)))
        self.pipeline = Pipeline(self.cfg, self.store, self.registry, self.acker,
                                 sinks=("centre",))

    def handle(self, topic: str, wire: bytes, now: int = NOW) -> str:
        return self.pipeline.handle(topic, wire, now)

    def rows(self) -> list[tuple[str, int]]:
        return [(e.device, e.seq) for e in self.store.pending("centre", 1000)]

    def acks(self) -> list[dict]:
        """Every ack sent so far, verified with the device's key."""
        out = []
        for topic, payload in self.sent:
            dev = protocol.parse_topic(topic)[0]
            out.append(protocol.verify(topic, payload, KEYS.get))
            assert out[-1]["dev"] == dev
        return out


def alarm(seq: int, ts: int | None = NOW - 500, age: int = 0, dev: str = BUTTON) -> bytes:
    return protocol.encode(KEYS[dev], dev, seq, "alarm", "fire", age, {"btn": "f"}, ts)


EVENT = protocol.topic(BUTTON, "event")


# --- verify ------------------------------------------------------------------

@pytest.mark.parametrize("vector", VECTORS["invalid"], ids=lambda v: v["name"])
def test_invalid_vector_is_rejected_counted_and_not_stored(tmp_path: Path, vector: dict) -> None:
    rig = Rig(tmp_path)
    before = rejected(vector["reason"])
    assert rig.handle(vector["topic"], wire_of(vector)) == vector["reason"]
    assert rejected(vector["reason"]) == before + 1
    assert rig.rows() == []
    assert rig.store.highest_seqs() == {}
    if vector["reason"] != protocol.R_SKEW:
        assert rig.sent == [], "only a correctly signed, skewed message is NAKed"


def test_every_rejection_reason_has_a_vector() -> None:
    assert {v["reason"] for v in VECTORS["invalid"]} == set(protocol.REASONS)


@pytest.mark.parametrize("vector", [v for v in VECTORS["valid"]
                                    if v["topic"].rsplit("/", 1)[1] in protocol.UPLINK],
                         ids=lambda v: v["name"])
def test_valid_uplink_vector_is_stored_or_counted(tmp_path: Path, vector: dict) -> None:
    rig = Rig(tmp_path)
    outcome = rig.handle(vector["topic"], wire_of(vector))
    msg = vector["input"]
    if msg["kind"] == "telemetry":
        assert outcome == TELEMETRY
        assert rig.rows() == []  # no time-series sink yet: verified and counted only
        return
    assert outcome == STORED
    assert rig.rows() == [(msg["dev"], msg["seq"])]
    stored = rig.store.pending("centre", 10)[0]
    assert (stored.kind, stored.type, stored.data) == (msg["kind"], msg["type"], msg["data"])
    acks = rig.acks()
    if msg["kind"] in ("heartbeat", "status"):
        assert acks == []
    else:
        assert [(a["type"], a["data"]["ref"]) for a in acks] == [("stored", msg["seq"])]


def test_downlink_topic_is_not_taken_as_uplink(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    ack = next(v for v in VECTORS["valid"] if v["topic"].endswith("/ack"))
    before = rejected(protocol.R_TOPIC)
    assert rig.handle(ack["topic"], wire_of(ack)) == protocol.R_TOPIC
    assert rejected(protocol.R_TOPIC) == before + 1
    assert rig.rows() == []


# --- timestamp ---------------------------------------------------------------

def test_event_time_is_the_device_clock_when_synced() -> None:
    msg = {"dev": BUTTON, "seq": 1, "kind": "alarm", "type": "fire",
           "ts": 1_000_000, "age": 1200, "data": {}}
    e = stamp(msg, received_ms=1_001_500)
    assert e.event_time_ms == 1_000_000
    assert e.device_time_ms == 1_000_000
    assert e.gateway_time_ms == 1_001_500
    assert e.age_ms == 1200
    # device clock at sending (ts + age) minus receive: 300 ms behind -> negative
    assert e.skew_ms == -300


def test_event_time_without_clock_is_receive_time_minus_age() -> None:
    msg = {"dev": BUTTON, "seq": 1, "kind": "alarm", "type": "medical", "age": 90_000, "data": {}}
    e = stamp(msg, received_ms=5_000_000)
    assert e.event_time_ms == 5_000_000 - 90_000
    assert e.device_time_ms is None
    assert e.skew_ms is None


def test_device_clock_ahead_gives_positive_skew(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    assert rig.handle(EVENT, alarm(7, ts=NOW + 2000, age=1000)) == STORED
    e = rig.store.pending("centre", 10)[0]
    assert e.skew_ms == 3000
    assert e.event_time_ms == NOW + 2000
    assert e.gateway_time_ms == NOW


# --- dedup -------------------------------------------------------------------

def test_duplicate_is_acked_again_and_stored_once(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    dups = REGISTRY.get_sample_value("hg_gateway_duplicates_total") or 0.0
    wire = alarm(42)
    assert rig.handle(EVENT, wire) == STORED
    assert rig.handle(EVENT, wire) == DUPLICATE
    assert rig.rows() == [(BUTTON, 42)]
    assert REGISTRY.get_sample_value("hg_gateway_duplicates_total") == dups + 1
    assert [(a["type"], a["data"]["ref"]) for a in rig.acks()] == [("stored", 42), ("stored", 42)]
    # every ack has its own downlink seq
    assert len({a["seq"] for a in rig.acks()}) == 2


def test_duplicate_of_a_delivered_alarm_is_also_acked_delivered(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    assert rig.handle(EVENT, alarm(5)) == STORED
    e = rig.store.pending("centre", 10)[0]
    assert e.id is not None
    rig.store.advance("centre", e.id)  # what the centre sink does after a 200
    rig.sent.clear()
    assert rig.handle(EVENT, alarm(5)) == DUPLICATE
    assert [a["type"] for a in rig.acks()] == ["stored", "delivered"]


def test_duplicate_of_a_dead_letter_is_not_acked_delivered(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.handle(EVENT, alarm(5))
    e = rig.store.pending("centre", 10)[0]
    assert e.id is not None
    rig.store.dead_letter(e.id, "centre", "refused", NOW)
    rig.store.advance("centre", e.id)
    rig.sent.clear()
    assert rig.handle(EVENT, alarm(5)) == DUPLICATE
    assert [a["type"] for a in rig.acks()] == ["stored"]


def test_seq_below_the_window_is_a_replay(tmp_path: Path) -> None:
    rig = Rig(tmp_path, window=16)
    before = rejected(dedup.REPLAY)
    assert rig.handle(EVENT, alarm(100)) == STORED
    assert rig.handle(EVENT, alarm(84)) == dedup.REPLAY  # 84 <= 100 - 16
    assert rejected(dedup.REPLAY) == before + 1
    assert rig.handle(EVENT, alarm(85)) == STORED  # inside the window: late, not a replay
    assert sorted(rig.rows()) == [(BUTTON, 85), (BUTTON, 100)]
    # a replay gets no ack: the device is not told anything it could learn from
    assert [a["data"]["ref"] for a in rig.acks()] == [100, 85]


def test_window_survives_a_restart_on_the_same_store(tmp_path: Path) -> None:
    first = Rig(tmp_path, window=16)
    assert first.handle(EVENT, alarm(100)) == STORED
    first.store.close()
    again = Rig(tmp_path, window=16)
    assert again.handle(EVENT, alarm(84)) == dedup.REPLAY
    assert again.handle(EVENT, alarm(100)) == DUPLICATE
    assert again.rows() == [(BUTTON, 100)]


def test_windows_are_per_device(tmp_path: Path) -> None:
    rig = Rig(tmp_path, window=16)
    sensor = "hg-s-0002"
    assert rig.handle(EVENT, alarm(1000)) == STORED
    assert rig.handle(protocol.topic(sensor, "event"), alarm(3, dev=sensor)) == STORED


# --- clock skew --------------------------------------------------------------

def test_clock_skew_is_nakked_with_the_gateway_time(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    vector = next(v for v in VECTORS["invalid"] if v["reason"] == protocol.R_SKEW)
    assert rig.handle(vector["topic"], wire_of(vector)) == protocol.R_SKEW
    [nak] = rig.acks()
    assert rig.sent[0][0] == protocol.topic(BUTTON, "ack")
    assert nak["type"] == "nak"
    assert nak["data"] == {"ref": 42, "reason": protocol.R_SKEW}
    assert nak["ts"] is not None and abs(nak["ts"] - NOW) < 10 ** 9  # the gateway's clock
    assert rig.rows() == []


def test_skewed_message_with_a_bad_signature_is_not_nakked(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    forged = protocol.encode(KEYS["hg-s-0002"], BUTTON, 9, "alarm", "fire", 0, {},
                             NOW - 3_600_000)
    assert rig.handle(EVENT, forged) == protocol.R_SIGNATURE
    assert rig.sent == []


# --- config ------------------------------------------------------------------

def write_config(tmp: Path, text: str) -> Path:
    path = tmp / "gateway.toml"
    path.write_text(text)
    return path


def test_config_unknown_key_is_named(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[mqtt]\nhots = "x"\n[centre]\nurl = "http://c"\ntoken = "t"\n')
    with pytest.raises(ConfigError, match=r"mqtt\.hots: Extra inputs are not permitted"):
        load(path, env={})


def test_config_unknown_section_is_named(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[centre]\nurl = "http://c"\ntoken = "t"\n[sinks]\nx = 1\n')
    with pytest.raises(ConfigError, match=r"sinks: Extra inputs"):
        load(path, env={})


def test_config_needs_centre_url(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[centre]\ntoken = "t"\n')
    with pytest.raises(ConfigError, match=r"centre\.url: Field required"):
        load(path, env={})


def test_config_needs_a_centre_token(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[centre]\nurl = "http://c"\n')
    with pytest.raises(ConfigError, match="HG_GATEWAY_CENTRE_TOKEN"):
        load(path, env={})


def test_config_secrets_come_from_the_environment(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[mqtt]\npassword = "file-pw"\n'
                                  '[centre]\nurl = "http://c"\ntoken = "file-token"\n')
    cfg = load(path, env={"HG_GATEWAY_MQTT_PASSWORD": "env-pw",
                          "HG_GATEWAY_CENTRE_TOKEN": "env-token"})
    assert (cfg.mqtt.password, cfg.centre.token) == ("env-pw", "env-token")
    assert load(path, env={}).centre.token == "file-token"


def test_config_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load(tmp_path / "nope.toml", env={})
    with pytest.raises(ConfigError, match="cannot read config"):
        load(write_config(tmp_path, "[centre\n"), env={})


def test_config_backoff_order(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[centre]\nurl = "http://c"\ntoken = "t"\n'
                                  "backoff_min_s = 5.0\nbackoff_max_s = 1.0\n")
    with pytest.raises(ConfigError, match="backoff_max_s"):
        load(path, env={})


def sample_defaults() -> dict[str, dict]:
    """sample.toml with every commented-out `# key = value` line switched on."""
    text = SAMPLE.read_text()
    return tomllib.loads(re.sub(r"(?m)^# ?([a-z_]+ = .*)$", r"\1", text))


def test_sample_config_loads(tmp_path: Path) -> None:
    cfg = load(SAMPLE, env={"HG_GATEWAY_CENTRE_TOKEN": "sample-token"})
    assert cfg.centre.token == "sample-token"


def test_sample_config_shows_every_option_with_its_default() -> None:
    shown = sample_defaults()
    for name, field in Config.model_fields.items():
        section = field.annotation
        assert name in shown, f"[{name}] missing from sample.toml"
        for key, opt in section.model_fields.items():  # type: ignore[union-attr]
            assert key in shown[name], f"{name}.{key} missing from sample.toml"
            if opt.is_required() or opt.default is None or name == "centre" and key == "token":
                continue
            assert str(shown[name][key]) == str(opt.default), f"{name}.{key} default"
        assert set(shown[name]) <= set(section.model_fields), f"[{name}] has unknown keys"


def test_sample_config_comments_every_option() -> None:
    lines = SAMPLE.read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^#? ?[a-z_]+ = ", line):
            above = lines[i - 1]
            assert above.startswith("# ") and not re.match(r"^# ?[a-z_]+ = ", above), \
                f"line {i + 1} ({line!r}) has no comment sentence above it"
            assert above.rstrip().endswith((".", ")")), f"line {i}: {above!r} is not a sentence"


# --- registry ----------------------------------------------------------------

def test_registry_rejects_a_bad_file_at_start(tmp_path: Path) -> None:
    path = tmp_path / "devices.json"
    path.write_text('{"devices": [{"id": "hg-b-0001", "key": "00"}]}')
    with pytest.raises(RegistryError, match="shorter than 16 bytes"):
        Registry(path)
    with pytest.raises(RegistryError, match="not found"):
        Registry(tmp_path / "missing.json")


def test_registry_reloads_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "devices.json"
    write_registry(path, {BUTTON: KEYS[BUTTON]})
    reg = Registry(path)
    assert reg.key_of(BUTTON) == KEYS[BUTTON]
    assert reg.key_of("hg-s-0002") is None
    write_registry(path, KEYS)
    wait_until(lambda: reg.key_of("hg-s-0002") == KEYS["hg-s-0002"], 5, "registry reload")


def test_registry_keeps_the_last_good_copy(tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "devices.json"
    write_registry(path, {BUTTON: KEYS[BUTTON]})
    reg = Registry(path)
    path.write_text('{"devices": [')  # a half-written file
    with caplog.at_level(logging.ERROR, logger="homeguard.gateway.registry"):
        wait_until(lambda: reg.key_of(BUTTON) is not None and "registry reload failed"
                   in caplog.text, 5, "reload failure to be logged")
    assert reg.key_of(BUTTON) == KEYS[BUTTON]
    write_registry(path, {"hg-s-0002": KEYS["hg-s-0002"]})
    wait_until(lambda: reg.key_of(BUTTON) is None, 5, "good file to be taken")
    assert reg.key_of("hg-s-0002") == KEYS["hg-s-0002"]


def test_new_device_in_the_registry_is_accepted_without_restart(tmp_path: Path) -> None:
    write_registry(tmp_path / "devices.json", {BUTTON: KEYS[BUTTON]})
    rig = Rig(tmp_path)
    sensor = "hg-s-0002"
    topic = protocol.topic(sensor, "event")
    assert rig.handle(topic, alarm(1, dev=sensor)) == protocol.R_DEVICE
    write_registry(tmp_path / "devices.json", KEYS)
    wait_until(lambda: rig.handle(topic, alarm(1, dev=sensor)) == STORED, 5, "new device")


def test_stored_ack_is_sent_before_the_sinks_are_woken(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    acks_at_wakeup: list[int] = []
    rig.pipeline.on_stored = lambda: acks_at_wakeup.append(len(rig.sent))
    assert rig.handle(EVENT, alarm(3)) == STORED
    assert acks_at_wakeup == [1]
    assert rig.handle(EVENT, alarm(3)) == DUPLICATE
    assert acks_at_wakeup == [1], "a duplicate has nothing new to deliver"

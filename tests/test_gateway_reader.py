"""The seam in front of the tuned MQTT reader (issue 14): stock paho is the
default and takes any paho 2.x; `[mqtt] reader = "tuned"` hooks paho 2.2's
internals (gateway/mqttclient.py), so on any other paho the gateway refuses
it at start with one line that says what to do, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import paho.mqtt
import pytest

from gateway.config import ConfigError, MQTTSection
from gateway.mqttclient import TESTED_PAHO, Client
from gateway.source import MQTTSource, tuned_client

ROOT = Path(__file__).resolve().parents[1]
OTHER_PAHO = "2.3.0"


def handle(topic: str, payload: bytes, received_ms: int, retained: bool) -> str:
    raise AssertionError("no message is expected")


def test_the_tuned_reader_is_taken_on_the_paho_it_was_built_for() -> None:
    assert paho.mqtt.__version__.startswith(TESTED_PAHO)
    assert tuned_client() is Client
    assert isinstance(MQTTSource(MQTTSection(reader="tuned"), handle).client, Client)


@pytest.mark.parametrize("version", [OTHER_PAHO, "2.1.0", "3.0.0"])
def test_the_tuned_reader_refuses_another_paho_in_one_line(
        version: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paho.mqtt, "__version__", version)
    with pytest.raises(ConfigError) as refused:
        tuned_client()
    assert str(refused.value) == (
        f'[mqtt] reader = "tuned" hooks paho-mqtt {TESTED_PAHO}x\'s internals; '
        f'this is paho-mqtt {version}: use reader = "paho"')
    with pytest.raises(ConfigError):
        MQTTSource(MQTTSection(reader="tuned"), handle)
    # stock paho, through its public API, is not tied to a release
    source = MQTTSource(MQTTSection(reader="paho"), handle)
    assert type(source.client) is not Client


def test_the_gateway_refuses_it_at_start_in_one_line(tmp_path: Path) -> None:
    """`homeguard gateway` in its own process with another paho's version:
    exit 2, the one line, nothing else (no broker is needed to get there)."""
    (tmp_path / "devices.json").write_text(json.dumps({"devices": []}))
    (tmp_path / "gateway.toml").write_text(
        '[gateway]\ndata_dir = "gw"\n[mqtt]\nreader = "tuned"\n'
        '[registry]\npath = "devices.json"\n'
        '[centre]\nurl = "http://127.0.0.1:9"\ntoken = "t"\n')
    run = ("import sys, paho.mqtt; paho.mqtt.__version__ = sys.argv[1]; "
           "sys.argv[1:] = ['gateway', '--config', 'gateway.toml']; "
           "from homeguard.cli import main; main()")
    r = subprocess.run([sys.executable, "-c", run, OTHER_PAHO], cwd=tmp_path,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                            "NO_COLOR": "1"},
                       capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stdout) == (2, ""), r.stderr
    assert r.stderr == (f'gateway: [mqtt] reader = "tuned" hooks paho-mqtt {TESTED_PAHO}x\'s '
                        f'internals; this is paho-mqtt {OTHER_PAHO}: use reader = "paho"\n')

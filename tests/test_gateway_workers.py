"""The gateway's background workers in one table (gateway/workers.py WORKERS,
next to SINKS): which are built is the config's say, each is a Worker named
as in its table, they start and stop together; supervision runs on the
Worker base, a failing round logged with its traceback and tried again
without the thread dying. Over a real store and registry file; the workers
that talk to the centre are only started and stopped here (their own tests
run them against a real centre)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from gateway.config import Config, GatewayConfig
from gateway.registry import Registry
from gateway.section import Section
from gateway.sinks import SINKS, Context
from gateway.sinks.centre import CentreSink
from gateway.store import SUPERVISION, Store
from gateway.supervision import Supervisor
from gateway.worker import Worker
from gateway.workers import WORKERS, Workers
from tests.harness.proc import free_port

BUTTON = "hg-b-0501"


def config(tmp: Path, **sections: dict) -> Config:
    raw: dict[str, dict] = {"gateway": {"id": "gw-workers", "data_dir": str(tmp)},
                            "registry": {"path": str(tmp / "devices.json")},
                            "centre": {"url": f"http://127.0.0.1:{free_port()}", "token": "t",
                                       "backoff_min_s": 0.05, "backoff_max_s": 0.1}}
    for name, keys in sections.items():
        raw.setdefault(name, {}).update(keys)
    return Config.model_validate(raw)


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[Store, Registry]]:
    (tmp_path / "devices.json").write_text(json.dumps({"devices": [
        {"id": BUTTON, "key": "00" * 32, "type": "button"}]}))
    store = Store(tmp_path / "gw.db", sinks=("centre",))
    yield store, Registry(tmp_path / "devices.json")
    store.close()


def build(cfg: Config, parts: tuple[Store, Registry], raised=lambda: None) -> Workers:
    store, registry = parts
    return Workers(Context(cfg, store, registry, lambda device, seq, typ: True,
                           lambda: True, raised))


def names(workers: list) -> list[str]:
    return [w.name for w in workers]


def test_the_config_says_which_workers_are_built(tmp_path: Path,
                                                 parts: tuple[Store, Registry]) -> None:
    assert len({w.name for w in WORKERS} | {s.name for s in SINKS}) == len(WORKERS) + len(SINKS)
    defaults = build(config(tmp_path), parts)
    assert names(defaults.sinks) == names(defaults.event_sinks) == ["centre"]
    assert defaults.point_sinks == []
    assert names(defaults.background) == ["supervision", "feedback", "retention"]
    every = build(config(tmp_path, registry={"centre_sync_s": 5},
                         timeseries={"url": "http://127.0.0.1:1"},
                         dedup={"backend": "redis"}), parts)
    assert names(every.point_sinks) == ["timeseries"]
    assert names(every.background) == [w.name for w in WORKERS]  # the table's order
    assert every.find(Supervisor) is every.background[0]
    assert every.background[-1].point_sinks == ("timeseries",)  # type: ignore[attr-defined]
    none = build(config(tmp_path, supervision={"enabled": False}, centre={"feedback_poll_s": 0},
                        gateway={"retention_days": 0}), parts)
    assert none.background == [] and none.find(Supervisor) is None
    for w in every.background:
        w.close()  # built, never started: their HTTP clients


def test_they_start_and_stop_together(tmp_path: Path, parts: tuple[Store, Registry]) -> None:
    workers = build(config(tmp_path, registry={"centre_sync_s": 5}), parts)
    before = set(threading.enumerate())
    workers.start()
    started = set(threading.enumerate()) - before
    second = [w.second._thread.name for w in workers.sinks if isinstance(w, CentreSink)]
    assert second == ["centre-2"]  # the centre sink's second request in flight
    assert sorted(t.name for t in started) == sorted(
        names(workers.sinks) + names(workers.background) + second)
    workers.stop_background()
    assert all(not w._thread.is_alive() for w in workers.background)
    assert all(w._thread.is_alive() for w in workers.sinks)  # they outlive the lanes
    workers.stop_sinks()
    assert not any(t.is_alive() for t in started)


def test_supervision_is_a_worker_whose_failed_round_is_tried_again(
        tmp_path: Path, parts: tuple[Store, Registry], caplog: pytest.LogCaptureFixture) -> None:
    """A round that raises is logged with its traceback and counted; the next
    rounds go on and a silent device is still reported offline by the thread."""
    raised = threading.Event()
    cfg = config(tmp_path, supervision={"check_s": 0.05, "windows": {"button": 0.3}})
    sup = build(cfg, parts, raised.set).find(Supervisor)
    assert isinstance(sup, Worker) and sup.name == "supervision"
    failed_before = failures()
    ticks = 0
    tick = sup.tick

    def first_fails() -> None:
        nonlocal ticks
        ticks += 1
        if ticks == 1:
            raise RuntimeError("registry unreadable")
        tick()

    sup.tick = first_fails  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, "homeguard.gateway.supervision"):
        sup.start()
        try:
            assert raised.wait(30), "no offline event from the supervision thread"
        finally:
            sup.stop()
    assert not sup._thread.is_alive()
    [failure] = [r for r in caplog.records if "supervision check failed" in r.getMessage()]
    assert failure.exc_info and "registry unreadable" in str(failure.exc_info[1])
    assert failures() == failed_before + 1
    [event] = [e for e in parts[0].pending("centre", 10) if e.kind == SUPERVISION]
    assert (event.device, event.type, event.data["reason"]) == (BUTTON, "offline", "silent")


def failures() -> float:
    return REGISTRY.get_sample_value("hg_gateway_sink_failures_total",
                                     {"sink": "supervision"}) or 0.0


def test_every_sink_has_its_config_section_declared_in_its_module() -> None:
    """Config gathers the sinks' sections from SINKS: gateway/config.py
    names none of them (sample.toml is checked against Config by
    tests/test_gateway_stages.py)."""
    for sink in SINKS:
        section = Config.model_fields[sink.name].annotation
        assert isinstance(section, type) and issubclass(section, Section), sink
        assert section.__module__ in (sink.module, "gateway.config"), sink
        assert (sink.name in GatewayConfig.model_fields) == (not sink.section), sink
    assert Config.model_fields["timeseries"].annotation.__module__ == "gateway.sinks.timeseries"
    assert "timeseries" not in (Path(__file__).parents[1] / "gateway/config.py").read_text()

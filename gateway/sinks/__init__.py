"""The gateway's sinks, registered in one place (SINKS).

A sink is a SinkWorker (sinks/worker.py) in a module of its own that reads
the gateway's store in order and delivers. It takes either the stored
events (`takes = "events"`: a delivery row per event is written with it, and
the sink marks it done) or the telemetry lane's points (`takes = "points"`:
the lane offers each committed batch to the sink in memory, `offer()`, and
the sink keeps a cursor in the store to read from after a restart). Adding
a sink is its module, with its config section (a gateway.section.Section
named like the sink) and a `build(ctx) -> SinkWorker`; one line below; the
section's one typed field in Config (gateway/config.py) and its block in
gateway/sample.toml (tests check both: every sink has its section, every
option of every section is shown in the sample with its default); its test.
The centre's section is gateway/config.py's own: key sync and the feedback
relay reach the centre with it too.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.registry import Registry
    from gateway.sinks.worker import SinkWorker
    from gateway.store import Store


@dataclass(frozen=True)
class Context:
    """What a sink or a background worker (gateway/workers.py) may be built from."""

    cfg: Config
    store: Store
    registry: Registry
    ack: Callable[[str, int, str], bool]  # (device, seq, ack type): a signed downlink ack; sent?
    connected: Callable[[], bool]  # the events session has the broker
    raised: Callable[[], None]  # the gateway stored an event of its own


@dataclass(frozen=True)
class Sink:
    name: str
    takes: Literal["events", "points"]
    module: str  # imported only when the sink is on (influxdb-client takes 0.2 s)
    on: Callable[[Config], bool]  # is it configured?

    def build(self, ctx: Context) -> SinkWorker:
        worker: SinkWorker = importlib.import_module(self.module).build(ctx)
        return worker


SINKS: tuple[Sink, ...] = (
    Sink("centre", "events", "gateway.sinks.centre", lambda cfg: True),
    # without a time-series server the telemetry table is the embedded store
    Sink("timeseries", "points", "gateway.sinks.timeseries", lambda cfg: bool(cfg.timeseries.url)),
)


def configured(cfg: Config, takes: Literal["events", "points"]) -> tuple[str, ...]:
    """The names of the sinks that are on and take `takes`."""
    return tuple(s.name for s in SINKS if s.takes == takes and s.on(cfg))


def event_sinks(cfg: Config) -> tuple[str, ...]:
    """The names a stored event is queued for (one delivery row each)."""
    return configured(cfg, "events")

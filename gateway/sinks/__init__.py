"""The gateway's sinks, registered in one place (SINKS).

A sink is a SinkWorker (sinks/worker.py) in a module of its own that reads
the gateway's store in order and delivers. It takes either the stored
events (`takes = "events"`: a delivery row per event is written with it, and
the sink marks it done) or the telemetry lane's points (`takes = "points"`:
the lane offers each committed batch to the sink in memory, `offer()`, and
the sink keeps a cursor in the store to read from after a restart).

Adding a sink is its module, with its config section (a
gateway.section.Section) and a `build(ctx) -> SinkWorker`; one line below,
naming the section and the option that turns the sink on; its block in
gateway/sample.toml; its test. Config (gateway/config.py) gathers the
sections from here: `[<sink name>]` in the file, `<Section>.of(cfg)` in
code. Tests check that every section is in the sample with every option
and its default. The centre's section is gateway/config.py's own: key sync
and the feedback relay reach the centre with it too.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.registry import Registry
    from gateway.section import Section
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
    name: str  # also the name of its config section, [<name>]
    takes: Literal["events", "points"]
    module: str  # its heavy libraries are imported when it is built (influxdb-client: 0.2 s)
    section: str = ""  # its Section class in `module` ("": gateway/config.py's own)
    on: str = ""  # the section's option that turns it on when set ("": always on)

    def section_class(self) -> type[Section] | None:
        if not self.section:
            return None
        cls: type[Section] = getattr(importlib.import_module(self.module), self.section)
        return cls

    def is_on(self, cfg: Config) -> bool:
        return not self.on or bool(getattr(cfg.section(self.name), self.on))

    def build(self, ctx: Context) -> SinkWorker:
        worker: SinkWorker = importlib.import_module(self.module).build(ctx)
        return worker


SINKS: tuple[Sink, ...] = (
    Sink("centre", "events", "gateway.sinks.centre"),
    # without a time-series server the telemetry table is the embedded store
    Sink("timeseries", "points", "gateway.sinks.timeseries", "TimeseriesSection", on="url"),
)


def sections() -> dict[str, type[Section]]:
    """The sinks' own config sections by name (for gateway/config.py)."""
    return {s.name: cls for s in SINKS if (cls := s.section_class()) is not None}


def configured(cfg: Config, takes: Literal["events", "points"]) -> tuple[str, ...]:
    """The names of the sinks that are on and take `takes`."""
    return tuple(s.name for s in SINKS if s.takes == takes and s.is_on(cfg))


def event_sinks(cfg: Config) -> tuple[str, ...]:
    """The names a stored event is queued for (one delivery row each)."""
    return configured(cfg, "events")

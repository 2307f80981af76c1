"""The gateway's background workers, registered in one place (WORKERS) next
to its sinks (SINKS, gateway/sinks/__init__.py), and built, started and
stopped together from here (Workers), not one by one in the service.

Each is a Worker (gateway/worker.py) built from the sinks' Context when its
config turns it on. The service starts them after the lanes and before the
MQTT sessions, and stops them in two steps around the lanes: first the
WORKERS (supervision, the feedback relay, key sync, retention: none holds
anything that waits for delivery), then, once the lanes have committed what
they held, the sinks, which deliver what they can before they return.
Adding a worker is its module (a Worker) and one line below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from gateway.feedback import FeedbackRelay
from gateway.keysync import KeySync
from gateway.retention import Retention
from gateway.sinks import SINKS, Context, configured
from gateway.sinks.worker import SinkWorker
from gateway.supervision import RedisClaims, Supervisor
from gateway.worker import Worker

if TYPE_CHECKING:
    from gateway.config import Config

W = TypeVar("W", bound=Worker)


@dataclass(frozen=True)
class Background:
    name: str
    on: Callable[[Config], bool]  # is it configured?
    build: Callable[[Context], Worker]


def supervisor(ctx: Context) -> Worker:
    cfg = ctx.cfg
    # with the de-dup state in Redis a share group raises each change of state once
    claim = RedisClaims(cfg.dedup.redis_url) if cfg.dedup.backend == "redis" else None
    return Supervisor(cfg.supervision, cfg.gateway.id, ctx.store, ctx.registry, ctx.connected,
                      on_raised=ctx.raised, claim=claim)


def feedback(ctx: Context) -> Worker:
    return FeedbackRelay(ctx.cfg.centre, ctx.cfg.gateway.id, ctx.ack)


def keysync(ctx: Context) -> Worker:
    cfg = ctx.cfg
    return KeySync(cfg.centre, cfg.registry.path, cfg.registry.centre_sync_s)


def retention(ctx: Context) -> Worker:
    cfg = ctx.cfg.gateway
    return Retention(ctx.store, cfg.retention_days, cfg.retention_check_s,
                     ctx.cfg.dedup.window, configured(ctx.cfg, "points"))


WORKERS: tuple[Background, ...] = (
    Background("supervision", lambda cfg: cfg.supervision.enabled, supervisor),
    Background("feedback", lambda cfg: cfg.centre.feedback_poll_s > 0, feedback),
    Background("keysync", lambda cfg: cfg.registry.centre_sync_s > 0, keysync),
    Background("retention", lambda cfg: cfg.gateway.retention_days > 0, retention),
)


class Workers:
    """The configured sinks and background workers of one gateway."""

    def __init__(self, ctx: Context) -> None:
        cfg = ctx.cfg
        self.sinks: list[SinkWorker] = [s.build(ctx) for s in SINKS if s.is_on(cfg)]
        events = configured(cfg, "events")
        self.event_sinks = [w for w in self.sinks if w.name in events]
        self.point_sinks = [w for w in self.sinks if w.name not in events]
        self.background: list[Worker] = [w.build(ctx) for w in WORKERS if w.on(cfg)]

    def find(self, kind: type[W]) -> W | None:
        """The worker of this class, if it is on."""
        return next((w for w in [*self.sinks, *self.background] if isinstance(w, kind)), None)

    def start(self) -> None:
        for w in [*self.sinks, *self.background]:
            w.start()

    def stop_background(self) -> None:
        """Before the lanes stop: nothing of these waits for delivery."""
        for w in self.background:
            w.stop()

    def stop_sinks(self) -> None:
        """After the lanes: each delivers what it can first."""
        for w in self.sinks:
            w.stop()

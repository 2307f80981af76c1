"""The fault driver: breaks the stack at random (seeded) moments and notes
when each fault began and when the part was back.

Kinds (`KINDS`): the gateway killed with SIGKILL and started again after a
random down time; Mosquitto restarted; every device link cut and refused for
a while (the proxy); and once, at a chosen moment, the centre killed and kept
down for `centre_outage_s`.  Each random kind happens once first (in a random
order), then kinds are drawn by weight at exponential gaps of mean
`every_s`.  Faults overlap as they would in life: the gateway may be killed
while the centre is down.  What happens on the devices themselves (reboots,
their own link losses) is the fleet's (homeguard simulate) and is counted
from its report.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Protocol

log = logging.getLogger("homeguard.chaos")

KILL_GATEWAY, RESTART_BROKER, CUT_LINKS, CENTRE_DOWN = (
    "kill_gateway", "restart_broker", "cut_links", "centre_down")
KINDS = (KILL_GATEWAY, RESTART_BROKER, CUT_LINKS, CENTRE_DOWN)
# how often each random kind is drawn after the first round
WEIGHTS = {KILL_GATEWAY: 4, CUT_LINKS: 3, RESTART_BROKER: 1}


class Target(Protocol):
    """What the driver breaks; each call returns once done (a start once the
    part answers)."""

    def kill_gateway(self) -> None: ...
    def start_gateway(self) -> None: ...
    def restart_broker(self) -> None: ...
    def kill_centre(self) -> None: ...
    def start_centre(self) -> str: ...
    def cut_links(self, seconds: float) -> None: ...


@dataclass
class FaultConfig:
    every_s: float = 20.0  # mean gap between random faults
    gateway_down_s: tuple[float, float] = (0.2, 3.0)  # SIGKILL -> start, uniform
    cut_s: tuple[float, float] = (0.5, 5.0)  # links refused after a cut, uniform
    centre_outage_s: float = 60.0  # 0: no centre outage
    centre_at_s: float | None = None  # when it begins; None: at random in the run's first half
    seed: int = 1


@dataclass
class Fault:
    kind: str
    start_ms: int
    end_ms: int | None = None  # the part back (gateway subscribed, centre answering, ...)
    planned_s: float = 0.0  # down time chosen

    def as_dict(self) -> dict:
        return asdict(self)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Driver:
    target: Target
    cfg: FaultConfig
    duration_s: float | None = None  # known length of the run (for the centre outage's moment)
    faults: list[Fault] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.cfg.seed)
        random_kinds = list(WEIGHTS)
        self.first = self.rng.sample(random_kinds, len(random_kinds))
        self._ends: list[tuple[float, int, Callable[[], None]]] = []  # (when, order, end)
        self._order = itertools.count()
        self._down: set[str] = set()

    def run(self, stop: Callable[[], bool]) -> list[Fault]:
        """Inject faults until stop() says so and every random kind happened
        once (a slow start of a part must not leave a kind out); then bring
        every part back.  Returns the faults, in the order they began."""
        t0 = time.monotonic()
        centre_at = self._centre_at(t0)
        next_at = t0 + self._gap()
        try:
            while self.first or not stop():
                now = time.monotonic()
                while self._ends and self._ends[0][0] <= now:
                    heapq.heappop(self._ends)[2]()
                if now >= centre_at:
                    centre_at = float("inf")
                    self._centre_down()
                if now >= next_at:
                    next_at = now + self._gap()
                    self._random_fault()
                time.sleep(0.1)
        finally:
            while self._ends:  # the run is over: everything back now
                heapq.heappop(self._ends)[2]()
        return self.faults

    def _centre_at(self, t0: float) -> float:
        if not self.cfg.centre_outage_s:
            return float("inf")
        if self.cfg.centre_at_s is not None:
            return t0 + self.cfg.centre_at_s
        half = (self.duration_s or 120.0) / 2
        return t0 + self.rng.uniform(0.2 * half, half)

    def _gap(self) -> float:
        return self.rng.expovariate(1 / self.cfg.every_s)

    def _random_fault(self) -> None:
        if self.first:
            kind = self.first.pop()
        else:
            kinds = [k for k in WEIGHTS if k not in self._down]
            kind = self.rng.choices(kinds, [WEIGHTS[k] for k in kinds])[0]
        if kind in self._down:
            return  # the gateway is still down from the last kill
        if kind == KILL_GATEWAY:
            self._outage(KILL_GATEWAY, self.target.kill_gateway, self.target.start_gateway,
                         self.rng.uniform(*self.cfg.gateway_down_s))
        elif kind == CUT_LINKS:
            seconds = self.rng.uniform(*self.cfg.cut_s)
            fault = self._begin(CUT_LINKS, seconds)
            self.target.cut_links(seconds)
            fault.end_ms = fault.start_ms + round(seconds * 1000)
        else:
            fault = self._begin(RESTART_BROKER, 0.0)
            self.target.restart_broker()
            fault.end_ms = now_ms()

    def _centre_down(self) -> None:
        self._outage(CENTRE_DOWN, self.target.kill_centre, self.target.start_centre,
                     self.cfg.centre_outage_s)

    def _outage(self, kind: str, down: Callable[[], None], up: Callable[[], object],
                seconds: float) -> None:
        """down() now, up() after `seconds`; the fault ends when up() returns."""
        fault = self._begin(kind, seconds)
        down()
        self._down.add(kind)

        def end() -> None:
            up()
            fault.end_ms = now_ms()
            self._down.discard(kind)
            log.info("%s: back after %.1f s", kind, (fault.end_ms - fault.start_ms) / 1000)
        heapq.heappush(self._ends, (time.monotonic() + seconds, next(self._order), end))

    def _begin(self, kind: str, planned_s: float) -> Fault:
        fault = Fault(kind, now_ms(), planned_s=round(planned_s, 3))
        self.faults.append(fault)
        log.info("fault %d: %s (%.1f s)", len(self.faults), kind, planned_s)
        return fault

"""Flood control: a device sending alarms faster than a rate has its further
alarms of one type folded into its open alarm of that type, and gets one
`flooding` fault; nothing is dropped (docs/centre.md "Flood control").

- **Over the rate.** An alarm (kind `alarm`, any type) is over the rate
  when the device's previous `flood_alarms` alarms all happened (event
  time) within `flood_window_s` of it.  Ingest looks at the device's latest
  SCAN events in the store, then follows the batch in memory.
- **Folded.** An alarm over the rate whose device's latest alarm of the
  same type (by event id) is still open gets no desk row: it is stored,
  acked `accepted` and counted on that alarm.  Any other alarm gets its own
  row as always, so a first fire from a flooding device is never folded.
- **One fault per flood.** The first fold while the device has no open
  `flooding` alarm raises one: a desk alarm of type `flooding`, priority 4,
  whose event is the folded alarm that raised it (an alarm row needs an
  event, and the fault is the centre's reading of that event).

No column records a fold: the alarms folded into an alarm A are the
device's alarm events of A's type stored after A's event and before the
next alarm of that type (its own row made), which `count_folded` and
`folded_events` read along the events' (device_id) index.  It holds
because a fold only ever goes to the latest alarm of its type.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from dashboard.models import OPEN_STATES, Alarm, Event
from dashboard.settings import Settings

FLOODING = "flooding"
# the device's latest events (any kind) the rate is read from at a batch's start
SCAN = 200
_NO_ID = 2**62


@dataclass(frozen=True)
class FloodRule:
    """At most `alarms` alarms of one device within `window_ms`; 0 is off."""

    alarms: int
    window_ms: int

    @classmethod
    def of(cls, settings: Settings) -> FloodRule:
        return cls(settings.flood_alarms, round(settings.flood_window_s * 1000))

    @property
    def on(self) -> bool:
        return self.alarms > 0


OFF = FloodRule(0, 0)


class RateWindow:
    """The event times of one device's latest alarms: is the next over the rate?"""

    def __init__(self, rule: FloodRule, times: Iterable[int] = ()) -> None:
        self.rule = rule
        self.times: deque[int] = deque(times, maxlen=rule.alarms)

    def over(self, t: int) -> bool:
        return self.rule.on and len(self.times) == self.rule.alarms and all(
            abs(t - x) < self.rule.window_ms for x in self.times)

    def add(self, t: int) -> None:
        self.times.append(t)


class Flood:
    """One ingest batch's flood control; ask `fold_into` for every stored
    alarm event in order, tell `opened` of every alarm row made for one."""

    def __init__(self, session: Session, rule: FloodRule) -> None:
        self.session, self.rule = session, rule
        self.windows: dict[str, RateWindow] = {}
        self.latest: dict[tuple[str, str], Alarm | None] = {}
        self.counts: dict[int, int] = {}  # alarm id -> its count so far
        self.faulted: set[str] = set()  # devices with an open flooding alarm

    def fold_into(self, values: dict[str, Any]) -> Alarm | None:
        """The open alarm this stored alarm event folds into, or None when
        it gets a row of its own."""
        if not self.rule.on or values["kind"] != "alarm":
            return None
        window = self._window(values)
        over = window.over(values["event_time_ms"])
        window.add(values["event_time_ms"])
        if not over:
            return None
        target = self._latest(values["device_id"], values["type"])
        return target if target is not None and target.state in OPEN_STATES else None

    def opened(self, alarm: Alarm) -> None:
        self.latest[(alarm.device_id, alarm.type)] = alarm
        self.counts[alarm.id] = 1

    def fold(self, target: Alarm, values: dict[str, Any], priority: int
             ) -> tuple[int, Alarm | None]:
        """Count the stored event `values` on `target`; returns the target's
        count now and the flooding fault raised with it (None when the
        device has one open already)."""
        if target.id in self.counts:
            self.counts[target.id] += 1
        else:  # the store has the event already: counted with the rest
            self.counts[target.id] = count_folded(self.session, target)
        return self.counts[target.id], self._fault(values, priority)

    def _window(self, values: dict[str, Any]) -> RateWindow:
        device = values["device_id"]
        if device not in self.windows:
            rows = self.session.execute(
                select(Event.kind, Event.event_time_ms)
                .where(Event.device_id == device, Event.id < values["id"])
                .order_by(Event.id.desc()).limit(SCAN)).all()
            times = [t for kind, t in rows if kind == "alarm"][:self.rule.alarms]
            self.windows[device] = RateWindow(self.rule, reversed(times))
        return self.windows[device]

    def _latest(self, device: str, typ: str) -> Alarm | None:
        if (device, typ) not in self.latest:
            self.latest[(device, typ)] = self.session.scalar(
                select(Alarm).where(Alarm.device_id == device, Alarm.type == typ)
                .order_by(Alarm.event_id.desc()).limit(1).with_for_update())
        return self.latest[(device, typ)]

    def _fault(self, values: dict[str, Any], priority: int) -> Alarm | None:
        device = values["device_id"]
        if device in self.faulted:
            return None
        self.faulted.add(device)
        if self.session.scalar(
                select(Alarm.id).where(Alarm.device_id == device, Alarm.type == FLOODING,
                                       Alarm.state.in_(OPEN_STATES)).limit(1)) is not None:
            return None
        fault = Alarm(event_id=values["id"], device_id=device, type=FLOODING,
                      priority=priority, state="received", created_ms=values["received_ms"])
        self.session.add(fault)
        self.session.flush()
        return fault


# --- reading what was folded into an alarm ---


def _folded(alarm: Alarm) -> list[ColumnElement[bool]]:
    """Where the events folded into `alarm` are."""
    following = (select(func.min(Alarm.event_id))
                 .where(Alarm.device_id == alarm.device_id, Alarm.type == alarm.type,
                        Alarm.event_id > alarm.event_id).scalar_subquery())
    return [Event.device_id == alarm.device_id, Event.kind == "alarm",
            Event.type == alarm.type, Event.id > alarm.event_id,
            Event.id < func.coalesce(following, _NO_ID)]


def count_folded(session: Session, alarm: Alarm) -> int:
    """How many alarm events the alarm stands for: its own and those folded in."""
    if alarm.type == FLOODING:
        return 1
    folded = select(func.count()).select_from(Event).where(*_folded(alarm))
    return 1 + int(session.scalar(folded) or 0)


def counts_of(session: Session, alarms: Iterable[Alarm]) -> dict[int, int]:
    """alarm id -> count (count_folded) for the alarms that have folds; the
    rest count 1.  Only devices that ever had a flooding fault can have
    folds, so most pages cost one query."""
    alarms = [a for a in alarms if a.type != FLOODING]
    devices = {a.device_id for a in alarms}
    if not devices:
        return {}
    flooded = set(session.scalars(
        select(Alarm.device_id).where(Alarm.device_id.in_(devices), Alarm.type == FLOODING)
        .distinct()))
    return {a.id: count_folded(session, a) for a in alarms if a.device_id in flooded}


def folded_events(session: Session, alarm: Alarm, before: int | None,
                  limit: int) -> list[Event]:
    """The events folded into the alarm, newest first, with ids below `before`."""
    stmt = select(Event).where(*_folded(alarm)).order_by(Event.id.desc()).limit(limit)
    if before is not None:
        stmt = stmt.where(Event.id < before)
    return list(session.scalars(stmt))


def folded_into(session: Session, events: list[Event]) -> dict[int, Alarm]:
    """event id -> the alarm it was folded into, for alarm events of one id
    range (a stream replay page) without a row of their own (or whose row is
    a flooding fault): the latest alarm of its device and type before it."""
    out: dict[int, Alarm] = {}
    groups: dict[tuple[str, str], list[Event]] = {}
    for ev in events:
        groups.setdefault((ev.device_id, ev.type), []).append(ev)
    for (device, typ), evs in groups.items():
        low, top = min(ev.id for ev in evs), max(ev.id for ev in evs)
        of_type = select(Alarm).where(Alarm.device_id == device, Alarm.type == typ)
        # the rows made within the range (at most one per event in it) and
        # the last one before it
        rows = list(session.scalars(of_type.where(Alarm.event_id > low, Alarm.event_id < top)
                                    .order_by(Alarm.event_id.desc())))
        rows += session.scalars(of_type.where(Alarm.event_id < low)
                                .order_by(Alarm.event_id.desc()).limit(1))
        for ev in evs:
            target = next((a for a in rows if a.event_id < ev.id), None)
            if target is not None:
                out[ev.id] = target
    return out

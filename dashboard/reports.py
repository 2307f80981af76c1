"""Reports: the alarms received in a range counted per period (day, week
from Monday, month; in the centre's timezone) and per place (community or
grid cell, through the registry as it is now), with outcomes, the
false-alarm rate, response times, SLA breaches, electrical hazards and
device availability.

Definitions (docs/history-reports.md):
- false-alarm rate = false / (genuine + false); tests and unverified
  alarms are left out; None when there is neither.
- response times are from receipt (created_ms) to the step: acknowledge,
  verify, first dispatch, resolve; an operator's are the steps they took.
  Alarms the system closed (restore) count in no resolve time.
- p50 and p90 are nearest-rank percentiles: the smallest value with at
  least 50 % (90 %) of the values at or below it.
- an SLA breach: acknowledged later than ack_sla_s, or still not
  acknowledged at the range's end (or now) past it and not closed; the
  same for verification with verify_sla_s.
- grid workers (worker.py): time to accept and to arrive are from the
  dispatch that sent the task to that worker's phone (a re-dispatch starts
  again) to the worker's first accept / arrive on it; overdue counts the
  tasks the centre marked not accepted in time, per worker and in all.
- colours: each compound's 三色 at the end of each period, by the
  overview's rule (rating_history.py).

Every figure but the colours, the operators' and the workers' is given for
the whole range (`totals`), per period (`series`), per place (`places`) and
per period x place (`rows`): an alarm counts in the period and place of its
receipt (its response times, SLA breaches, and for offline / low_battery
alarms the device availability), a hazard in those of its opening.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dashboard import history, rating_history
from dashboard.hazards import Hazard
from dashboard.models import Alarm, AlarmAudit
from dashboard.rating import Thresholds
from dashboard.restore import SYSTEM_USER

BUCKETS = ("day", "week", "month")
GROUPS = ("none", "community", "grid_cell")
STEPS = ("ack", "verify", "dispatch", "resolve")
OUTCOMES = ("genuine", "false", "test", "none")
# the supervision alarms device availability is read from (_devices)
AVAILABILITY = ("offline", "low_battery")


@dataclass(frozen=True)
class Query:
    since_ms: int
    until_ms: int
    bucket: str = "day"
    by: str = "none"
    timezone: str = "Asia/Shanghai"
    ack_sla_s: int = 30
    verify_sla_s: int = 90
    rating: Thresholds = Thresholds(30.0, 1, 3)


def percentile(values: list[float], p: float) -> float | None:
    """Nearest rank: the smallest value with at least p % at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def spread(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "p50": percentile(values, 50), "p90": percentile(values, 90)}


def false_rate(outcomes: Counter[str]) -> float | None:
    judged = outcomes["genuine"] + outcomes["false"]
    return outcomes["false"] / judged if judged else None


def bucket_of(ms: int, bucket: str, zone: ZoneInfo) -> str:
    day = datetime.fromtimestamp(ms / 1000, zone).date()
    if bucket == "week":
        day -= timedelta(days=day.weekday())
    elif bucket == "month":
        day = date(day.year, day.month, 1)
    return day.isoformat()


class _Tally:
    """The figures of one period, place, period x place or the whole range."""

    def __init__(self) -> None:
        self.alarms = 0
        self.types: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.ack_late = 0
        self.verify_late = 0
        self.times: dict[str, list[float]] = {s: [] for s in STEPS}
        self.availability: list[Alarm] = []  # its offline and low_battery alarms
        self.hazards: list[Hazard] = []  # opened in it

    def add(self, a: Alarm, ack_late: bool, verify_late: bool,
            times: dict[str, float]) -> None:
        self.alarms += 1
        self.types[a.type] += 1
        self.outcomes[a.outcome or "none"] += 1
        self.ack_late += ack_late
        self.verify_late += verify_late
        for step, seconds in times.items():
            self.times[step].append(seconds)
        if a.type in AVAILABILITY:
            self.availability.append(a)

    def out(self, end_ms: int) -> dict[str, Any]:
        return {"alarms": self.alarms, "by_type": dict(sorted(self.types.items())),
                "by_outcome": {o: self.outcomes[o] for o in OUTCOMES},
                "false_rate": false_rate(self.outcomes), "ack_late": self.ack_late,
                "verify_late": self.verify_late,
                "timings": {s: spread(v) for s, v in self.times.items()},
                "hazards": _hazard_counts(self.hazards),
                "devices": _devices(self.availability, end_ms)}


def _late(done_ms: int | None, a: Alarm, sla_s: int, end_ms: int) -> bool:
    if done_ms is not None:
        return done_ms - a.created_ms > sla_s * 1000
    return a.state != "resolved" and end_ms - a.created_ms > sla_s * 1000


def _steps(session: Session, q: Query) -> dict[int, dict[str, tuple[int, str]]]:
    """Per alarm in the range: the first audit row of each step (at, who)."""
    in_range = select(Alarm.id).where(Alarm.created_ms >= q.since_ms,
                                      Alarm.created_ms < q.until_ms)
    rows = session.execute(
        select(AlarmAudit.alarm_id, AlarmAudit.action, AlarmAudit.at_ms, AlarmAudit.username)
        .where(AlarmAudit.alarm_id.in_(in_range)).order_by(AlarmAudit.id)).all()
    out: dict[int, dict[str, tuple[int, str]]] = {}
    for alarm_id, action, at, who in rows:
        step = "resolve" if action == "restore" else action
        out.setdefault(alarm_id, {}).setdefault(step, (at, who))
    return out


class _Tallies:
    """The whole range's tally and those of its periods, places and period x place."""

    def __init__(self, q: Query) -> None:
        self.q, self.zone = q, ZoneInfo(q.timezone)
        self.whole = _Tally()
        self.series: dict[str, _Tally] = {}
        self.rows: dict[tuple[str, str], _Tally] = {}
        self.places: dict[str, _Tally] = {}

    def of(self, ms: int, where: dict[str, str]) -> tuple[_Tally, ...]:
        """The tallies a thing that happened at `ms` at this place counts in."""
        period = bucket_of(ms, self.q.bucket, self.zone)
        place = "" if self.q.by == "none" else where.get(self.q.by, "")
        return (self.whole, self.series.setdefault(period, _Tally()),
                self.rows.setdefault((period, place), _Tally()),
                self.places.setdefault(place, _Tally()))

    def out(self, end_ms: int) -> dict[str, Any]:
        return {
            "totals": self.whole.out(end_ms),
            "series": [{"bucket": b, **t.out(end_ms)} for b, t in sorted(self.series.items())],
            "rows": [{"bucket": b, "place": p, **t.out(end_ms)}
                     for (b, p), t in sorted(self.rows.items())],
            "places": [{"place": p, **t.out(end_ms)} for p, t in sorted(self.places.items())],
        }


def report(session: Session, q: Query, now_ms: int) -> dict[str, Any]:
    alarms = list(session.scalars(
        select(Alarm).where(Alarm.created_ms >= q.since_ms, Alarm.created_ms < q.until_ms)
        .order_by(Alarm.created_ms, Alarm.id)))
    hazards = _opened_hazards(session, q)
    places = history.places_of(session, {a.device_id for a in alarms}
                               | {h.device_id for h in hazards})
    steps = _steps(session, q)
    end = min(now_ms, q.until_ms)
    tallies = _Tallies(q)
    by_operator: dict[str, dict[str, list[float]]] = {}
    for a in alarms:
        ack_late = _late(a.acked_ms, a, q.ack_sla_s, end)
        verify_late = _late(a.verified_ms, a, q.verify_sla_s, end)
        times: dict[str, float] = {}
        for step, (at, who) in steps.get(a.id, {}).items():
            if step not in STEPS or who == SYSTEM_USER:
                continue
            times[step] = (at - a.created_ms) / 1000
            by_operator.setdefault(who, {s: [] for s in STEPS})[step].append(times[step])
        for tally in tallies.of(a.created_ms, places.get(a.device_id, {})):
            tally.add(a, ack_late, verify_late, times)
    for h in hazards:
        for tally in tallies.of(h.opened_ms, places.get(h.device_id, {})):
            tally.hazards.append(h)
    figures = tallies.out(end)
    return {
        "since_ms": q.since_ms, "until_ms": q.until_ms, "bucket": q.bucket, "by": q.by,
        "timezone": q.timezone, "generated_ms": now_ms,
        "sla": {"ack_s": q.ack_sla_s, "verify_s": q.verify_sla_s},
        **figures,
        "timings": figures["totals"]["timings"],
        "operators": [{"operator": who, **{s: spread(v) for s, v in t.items()}}
                      for who, t in sorted(by_operator.items())],
        "workers": worker_figures(session, q),
        "hazards": {**figures["totals"]["hazards"], "open_now": _open_hazards(session)},
        "devices": figures["totals"]["devices"],
        "colour_rule": {"window_days": q.rating.window_days, "yellow": q.rating.yellow,
                        "red": q.rating.red},
        "colours": colour_history(session, q, now_ms),
    }


def colour_history(session: Session, q: Query, now_ms: int) -> list[dict[str, Any]]:
    """Each compound's 三色 at the end of each period (rating_history.py)."""
    return rating_history.colours(session, q.rating, rating_history.periods(
        q.since_ms, q.until_ms, q.bucket, q.timezone, now_ms))


WORKER_STEPS = ("accept", "arrive")


def worker_figures(session: Session, q: Query) -> dict[str, Any]:
    """Grid workers' times to accept and arrive (p50/p90) and overdue
    tasks, in all and per worker, for the alarms received in the range."""
    in_range = select(Alarm.id).where(Alarm.created_ms >= q.since_ms,
                                      Alarm.created_ms < q.until_ms)
    rows = session.execute(
        select(AlarmAudit.alarm_id, AlarmAudit.action, AlarmAudit.at_ms, AlarmAudit.worker)
        .where(AlarmAudit.alarm_id.in_(in_range),
               AlarmAudit.action.in_(("dispatch", "overdue", *WORKER_STEPS)))
        .order_by(AlarmAudit.id)).all()
    sent: dict[int, int] = {}  # alarm -> when the dispatch to its worker was
    seen: set[tuple[int, str, str]] = set()
    times: dict[str, list[float]] = {s: [] for s in WORKER_STEPS}
    per: dict[str, dict[str, Any]] = {}
    overdue = 0
    for alarm_id, action, at, worker in rows:
        if action == "dispatch":
            if worker is None:
                sent.pop(alarm_id, None)
            else:
                sent[alarm_id] = at
                seen = {k for k in seen if k[0] != alarm_id}
            continue
        if worker is None:
            continue
        mine = per.setdefault(worker, {"overdue": 0, **{s: [] for s in WORKER_STEPS}})
        if action == "overdue":
            overdue += 1
            mine["overdue"] += 1
        elif alarm_id in sent and (alarm_id, action, worker) not in seen:
            seen.add((alarm_id, action, worker))
            seconds = (at - sent[alarm_id]) / 1000
            times[action].append(seconds)
            mine[action].append(seconds)
    return {**{s: spread(v) for s, v in times.items()}, "overdue": overdue,
            "by_worker": [{"worker": w, "overdue": t["overdue"],
                           **{s: spread(t[s]) for s in WORKER_STEPS}}
                          for w, t in sorted(per.items())]}


def _opened_hazards(session: Session, q: Query) -> list[Hazard]:
    return list(session.scalars(select(Hazard).where(
        Hazard.opened_ms >= q.since_ms, Hazard.opened_ms < q.until_ms).order_by(Hazard.id)))


def _open_hazards(session: Session) -> int:
    """Hazards open now, whenever they were opened."""
    return int(session.scalar(select(func.count(Hazard.id)).where(Hazard.state == "open"))
               or 0)


def _hazard_counts(opened: list[Hazard]) -> dict[str, Any]:
    """Of the hazards opened: how many, how many rectified since, how many
    still open, and the hours from opening to rectification."""
    hours = [(h.rectified_ms - h.opened_ms) / 3_600_000 for h in opened
             if h.rectified_ms is not None]
    return {"opened": len(opened), "rectified": len(hours),
            "still_open": sum(h.state == "open" for h in opened), "rectify_hours": spread(hours)}


def _devices(alarms: list[Alarm], end_ms: int) -> dict[str, Any]:
    """Offline time from the `offline` supervision alarms (receipt to the
    restore that closed it, or to the range's end), low battery from the
    devices' low_battery alarms: what the store records of availability."""
    offline = [a for a in alarms if a.type == "offline"]
    low = [a for a in alarms if a.type == "low_battery"]
    hours = sum(((a.resolved_ms or end_ms) - a.created_ms) / 3_600_000 for a in offline)
    return {"offline_alarms": len(offline),
            "offline_devices": len({a.device_id for a in offline}),
            "offline_hours": round(hours, 3), "low_battery_alarms": len(low),
            "low_battery_devices": len({a.device_id for a in low})}

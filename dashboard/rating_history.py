"""Colour history per compound (三色 per report period): the overview's rule
(dashboard/rating.py: confirmed incidents, i.e. alarms verified genuine, in
the rolling window before a moment, against the yellow and red thresholds)
evaluated at the end of each period from the stored alarms.

A period's moment is the start of the next period, or the range's end, or
now, whichever is first; periods that have not started yet are left out.
What the store cannot give back (docs/history-reports.md): places are the
registry's today, the thresholds are today's settings, and an alarm counts
with its outcome as it is now, from its verify time.
"""

from __future__ import annotations

import bisect
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.models import Alarm, Device, Household
from dashboard.rating import DAY_MS, Thresholds


def _start_ms(day: date, zone: ZoneInfo) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp() * 1000)


def _next(day: date, bucket: str) -> date:
    if bucket == "day":
        return day + timedelta(days=1)
    if bucket == "week":
        return day + timedelta(days=7)
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def periods(since_ms: int, until_ms: int, bucket: str, timezone: str,
            now_ms: int) -> list[tuple[str, int]]:
    """(period, moment) for every period of the range that has started."""
    zone = ZoneInfo(timezone)
    day = datetime.fromtimestamp(since_ms / 1000, zone).date()
    if bucket == "week":
        day -= timedelta(days=day.weekday())
    elif bucket == "month":
        day = date(day.year, day.month, 1)
    out = []
    while _start_ms(day, zone) < min(until_ms, now_ms):
        following = _next(day, bucket)
        out.append((day.isoformat(), min(_start_ms(following, zone), until_ms, now_ms)))
        day = following
    return out


def _incidents(session: Session, since_ms: int, until_ms: int) -> dict[tuple[str, str],
                                                                       list[int]]:
    """Verify times of confirmed incidents in [since, until), per (community, compound)."""
    stmt = (select(Household.community, Household.compound, Alarm.verified_ms)
            .select_from(Alarm)
            .join(Device, Device.device_id == Alarm.device_id, isouter=True)
            .join(Household, Household.id == Device.household_id, isouter=True)
            .where(Alarm.outcome == "genuine", Alarm.verified_ms >= since_ms,
                   Alarm.verified_ms < until_ms))
    out: dict[tuple[str, str], list[int]] = {}
    for community, compound, at in session.execute(stmt).all():
        if at is not None:  # the filter excludes None; this tells the type checker
            out.setdefault((community or "", compound or ""), []).append(at)
    for times in out.values():
        times.sort()
    return out


def colours(session: Session, th: Thresholds, moments: list[tuple[str, int]]) -> list[
        dict[str, Any]]:
    """Every compound (the registry's, and any with an incident) with its
    colour and incident count at each period's moment."""
    if not moments:
        return []
    window = int(th.window_days * DAY_MS)
    incidents = _incidents(session, moments[0][1] - window, moments[-1][1])
    places = {(c, p or "") for c, p in session.execute(
        select(Household.community, Household.compound).distinct()).all()}
    out = []
    for community, compound in sorted(places | set(incidents)):
        times = incidents.get((community, compound), [])
        row = []
        for period, at in moments:
            n = bisect.bisect_left(times, at) - bisect.bisect_left(times, at - window)
            row.append({"period": period, "at_ms": at, "incidents": n,
                        "colour": th.colour(n)})
        out.append({"community": community, "compound": compound, "colours": row})
    return out

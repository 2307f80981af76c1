"""Colour history per compound (三色 per report period): the overview's rule
(dashboard/rating.py: confirmed incidents, i.e. alarms verified genuine, in
the rolling window before a moment, against the yellow and red thresholds)
evaluated at the end of each period from the stored alarms.

A period's moment is the start of the next period, or the range's end, or
now, whichever is first; periods that have not started yet are left out.
What the store cannot give back (docs/history-reports.md): places are the
registry's today and the thresholds are today's settings. An alarm's outcome
at a moment is the last one its audit recorded before it (verify, or a
resolve that changed it); an alarm with no outcome in its audit counts with
its outcome as it is now, from its verify time.
"""

from __future__ import annotations

import bisect
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.models import Alarm, AlarmAudit, Device, Household
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


def _incidents(session: Session, since_ms: int, until_ms: int) -> dict[
        tuple[str, str], list[tuple[int, list[tuple[int, str | None]]]]]:
    """Alarms verified in [since, until), per (community, compound): their
    verify time and their outcome's history [(from_ms, outcome)], from the
    audit's verify and resolve rows (resolve may change the outcome), else
    the alarm's outcome from its verify time."""
    verified = (Alarm.verified_ms >= since_ms) & (Alarm.verified_ms < until_ms)
    stmt = (select(Alarm.id, Household.community, Household.compound, Alarm.verified_ms,
                   Alarm.outcome)
            .select_from(Alarm)
            .join(Device, Device.device_id == Alarm.device_id, isouter=True)
            .join(Household, Household.id == Device.household_id, isouter=True)
            .where(verified))
    changes: dict[int, list[tuple[int, str | None]]] = {}
    for alarm_id, at, outcome in session.execute(
            select(AlarmAudit.alarm_id, AlarmAudit.at_ms, AlarmAudit.outcome)
            .where(AlarmAudit.alarm_id.in_(select(Alarm.id).where(verified)),
                   AlarmAudit.action.in_(("verify", "resolve")),
                   AlarmAudit.outcome.is_not(None))
            .order_by(AlarmAudit.at_ms, AlarmAudit.id)):
        changes.setdefault(alarm_id, []).append((at, outcome))
    out: dict[tuple[str, str], list[tuple[int, list[tuple[int, str | None]]]]] = {}
    for alarm_id, community, compound, verified_ms, now_outcome in session.execute(stmt).all():
        if verified_ms is not None:  # the filter excludes None; this tells the type checker
            story = changes.get(alarm_id) or [(verified_ms, now_outcome)]
            out.setdefault((community or "", compound or ""), []).append((verified_ms, story))
    return out


def _confirmed_at(story: list[tuple[int, str | None]], moment: int) -> bool:
    """Whether the alarm's outcome just before the moment was genuine."""
    i = bisect.bisect_left([at for at, _o in story], moment)
    return i > 0 and story[i - 1][1] == "genuine"


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
    places |= {k for k, alarms in incidents.items()
               if any(o == "genuine" for _v, story in alarms for _a, o in story)}
    out = []
    for community, compound in sorted(places):
        alarms = incidents.get((community, compound), [])
        row = []
        for period, at in moments:
            n = sum(1 for verified, story in alarms
                    if at - window <= verified < at and _confirmed_at(story, at))
            row.append({"period": period, "at_ms": at, "incidents": n,
                        "colour": th.colour(n)})
        out.append({"community": community, "compound": compound, "colours": row})
    return out

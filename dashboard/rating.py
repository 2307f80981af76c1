"""Three-colour rating (三色管理): every community and compound is red,
yellow or green by its confirmed incidents (alarms verified `genuine`)
over a rolling window; the overview also counts them per grid cell.

    count >= red threshold     -> red
    count >= yellow threshold  -> yellow
    otherwise                  -> green

Communities and compounds come from the registry's households, so a place
with no incident is listed green; an alarm from a device in no household
counts under the community "" (unassigned).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dashboard.models import Alarm, Device, GridCell, Household

DAY_MS = 86_400_000


@dataclass(frozen=True)
class Thresholds:
    window_days: float
    yellow: int
    red: int

    def __post_init__(self) -> None:
        if not 1 <= self.yellow <= self.red:
            raise ValueError(f"rating thresholds need 1 <= yellow ({self.yellow}) "
                             f"<= red ({self.red})")
        if self.window_days <= 0:
            raise ValueError(f"rating window must be positive, got {self.window_days} days")

    def colour(self, count: int) -> str:
        if count >= self.red:
            return "red"
        return "yellow" if count >= self.yellow else "green"


def _confirmed(session: Session, since_ms: int) -> list[tuple[str, str, int | None]]:
    """(community, compound, grid cell id) of every confirmed incident since."""
    stmt = (select(Household.community, Household.compound, Household.grid_cell_id)
            .select_from(Alarm)
            .join(Device, Device.device_id == Alarm.device_id, isouter=True)
            .join(Household, Household.id == Device.household_id, isouter=True)
            .where(Alarm.outcome == "genuine", Alarm.verified_ms >= since_ms))
    return [(c or "", p or "", g) for c, p, g in session.execute(stmt).all()]


def overview(session: Session, th: Thresholds, now_ms: int | None = None) -> dict[str, Any]:
    now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    since = now - int(th.window_days * DAY_MS)
    incidents = _confirmed(session, since)
    places = session.execute(select(Household.community, Household.compound).distinct()).all()
    communities: dict[str, dict[str, int]] = {}
    for c, p in places:
        communities.setdefault(c, {}).setdefault(p or "", 0)
    for c, p, _g in incidents:
        communities.setdefault(c, {}).setdefault(p, 0)
        communities[c][p] += 1
    return {
        "window_days": th.window_days, "yellow": th.yellow, "red": th.red,
        "since_ms": since, "now_ms": now,
        "communities": [_community(c, comp, th) for c, comp in sorted(communities.items())],
        "grid_cells": _cells(session, incidents, th),
    }


def _community(name: str, compounds: dict[str, int], th: Thresholds) -> dict[str, Any]:
    total = sum(compounds.values())
    return {"community": name, "incidents": total, "colour": th.colour(total),
            "compounds": [{"compound": p, "incidents": n, "colour": th.colour(n)}
                          for p, n in sorted(compounds.items())]}


def _cells(session: Session, incidents: list[tuple[str, str, int | None]],
           th: Thresholds) -> list[dict[str, Any]]:
    per_cell: dict[int | None, int] = {}
    for _c, _p, g in incidents:
        per_cell[g] = per_cell.get(g, 0) + 1
    households = dict(session.execute(
        select(Household.grid_cell_id, func.count(Household.id))
        .group_by(Household.grid_cell_id)).all())
    rows = []
    for cell in session.scalars(select(GridCell).order_by(GridCell.community, GridCell.code)):
        n = per_cell.get(cell.id, 0)
        rows.append({"code": cell.code, "name": cell.name, "community": cell.community,
                     "worker": cell.worker_name, "households": int(households.get(cell.id, 0)),
                     "incidents": n, "colour": th.colour(n)})
    return rows

"""History: stored alarms found by filters a page at a time with the true
total (GET /api/v1/history/alarms), the same as CSV streamed
(GET /api/v1/history/alarms.csv), one alarm's full record with its audit
trail and notifications (GET /api/v1/history/alarms/{id}), and the
/history page."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import BaseModel
from sqlalchemy import Row
from sqlalchemy.orm import Session

from dashboard import flood, history, history_labels
from dashboard.api.auth import ViewerDep
from dashboard.api.deps import CentreDep, SessionDep, SettingsDep
from dashboard.api.routes.notify import NotificationPublic, list_notifications
from dashboard.api.routes.pages import TEMPLATES, lang_of
from dashboard.api.routes.registry import page_boot
from dashboard.models import Alarm, Event
from dashboard.queries import alarm_detail, alarm_public, event_values
from dashboard.schemas import ROW_ID_MAX, AlarmDetail, AlarmPublic

router = APIRouter(tags=["history"])
pages = APIRouter(include_in_schema=False)

MAX_PAGE = 500
CURSOR = r"^\d{1,19}\.\d{1,19}$"
Text = Annotated[str | None, Query(max_length=128)]


class HistoryAlarm(AlarmPublic):
    """An alarm as history lists it: where it is and who worked it."""

    household: str | None = None
    community: str | None = None
    compound: str | None = None
    grid_cell: str | None = None
    acked_by: str | None = None
    verified_by: str | None = None
    dispatched_by: str | None = None
    dispatched_ms: int | None = None
    resolved_by: str | None = None


class HistoryPage(BaseModel):
    total: int
    alarms: list[HistoryAlarm]
    next: str | None


class AlarmRecord(BaseModel):
    detail: AlarmDetail
    notifications: list[NotificationPublic]


def day_start_ms(day: date, tz: str) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).timestamp() * 1000)


def filters(
    settings: SettingsDep,
    since_ms: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    until_ms: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    from_: Annotated[date | None, Query(alias="from", description="first day (centre's "
                                        "timezone); overrides since_ms")] = None,
    to: Annotated[date | None, Query(description="last day, inclusive; overrides "
                                     "until_ms")] = None,
    type: Annotated[list[str] | None, Query(max_length=32)] = None,  # noqa: A002
    status_: Annotated[Literal["any", "open", "closed"], Query(alias="status")] = "any",
    outcome: Annotated[list[Literal["genuine", "false", "test", "none"]] | None,
                       Query(max_length=4)] = None,
    community: Text = None, compound: Text = None, grid_cell: Text = None,
    household: Text = None, device: Text = None, operator: Text = None,
) -> history.Filters:
    """The history filters from the query string (`type` and `outcome` repeat)."""
    if from_ is not None:
        since_ms = day_start_ms(from_, settings.timezone)
    if to is not None:
        until_ms = day_start_ms(to + timedelta(days=1), settings.timezone)
    return history.Filters(
        since_ms=since_ms, until_ms=until_ms, types=tuple(type or ()), status=status_,
        outcomes=tuple(outcome or ()), community=community or None,
        compound=compound or None, grid_cell=grid_cell or None,
        household=household or None, device=device or None, operator=operator or None)


FiltersDep = Annotated[history.Filters, Depends(filters)]


def rows_out(session: Session, rows: Sequence[Row[Alarm, Event]],
             counts: bool = True) -> list[HistoryAlarm]:
    alarms = [a for a, _ in rows]
    places = history.places_of(session, {a.device_id for a in alarms})
    steps = history.steps_of(session, [a.id for a in alarms])
    folded = flood.counts_of(session, alarms) if counts else {}
    out = []
    for alarm, ev in rows:
        base = alarm_public(alarm, event_values(ev), folded.get(alarm.id, 1))
        out.append(HistoryAlarm(**base.model_dump(), **places.get(alarm.device_id, {}),
                                **vars(steps.get(alarm.id, history.Steps()))))
    return out


@router.get("/history/alarms", response_model=HistoryPage)
def search(
    session: SessionDep, _user: ViewerDep, f: FiltersDep,
    before: Annotated[str | None, Query(pattern=CURSOR,
                                        description="the `next` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> HistoryPage:
    """Alarms matching the filters, newest first, a page at a time, with the
    number of all that match (a COUNT, not the page's length)."""
    key = None
    if before is not None:
        created, alarm_id = before.split(".")
        key = (int(created), int(alarm_id))
    found = history.total(session, f)
    rows, nxt = history.page(session, f, key, limit)
    return HistoryPage(total=found, alarms=rows_out(session, rows),
                       next=None if nxt is None else f"{nxt[0]}.{nxt[1]}")


CSV_COLUMNS = (
    "id", "created", "created_ms", "device", "seq", "type", "priority", "state", "outcome",
    "dispatched_to", "household", "community", "compound", "grid_cell", "event_time_ms",
    "acked_ms", "verified_ms", "dispatched_ms", "resolved_ms", "acked_by", "verified_by",
    "dispatched_by", "resolved_by",
)


def csv_cell(value: Any) -> Any:
    """A cell as written; text a spreadsheet would run as a formula is quoted."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def csv_lines(centre: Any, f: history.Filters, tz: str) -> Iterator[str]:
    zone = ZoneInfo(tz)
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(CSV_COLUMNS)
    with centre.sessions() as session:
        for rows in history.batches(session, f):
            for a in rows_out(session, rows, counts=False):
                values = a.model_dump()
                values["created"] = datetime.fromtimestamp(a.created_ms / 1000, zone).isoformat(
                    timespec="seconds")
                out.writerow([csv_cell(values[c]) for c in CSV_COLUMNS])
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue()


@router.get("/history/alarms.csv", response_class=StreamingResponse)
def export(centre: CentreDep, settings: SettingsDep, _user: ViewerDep,
           f: FiltersDep) -> StreamingResponse:
    """Every alarm matching the filters as CSV (UTF-8 with BOM, newest first),
    streamed in batches: no size limit, no page."""
    body = csv_lines(centre, f, settings.timezone)
    return StreamingResponse(
        _with_bom(body), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="homeguard-alarms.csv"'})


def _with_bom(lines: Iterator[str]) -> Iterator[bytes]:
    yield "\ufeff".encode()  # so spreadsheet programs read the Chinese as UTF-8
    for chunk in lines:
        yield chunk.encode()


@router.get("/history/alarms/{alarm_id}", response_model=AlarmRecord)
def record(alarm_id: Annotated[int, Path(ge=1, le=ROW_ID_MAX)], session: SessionDep,
           user: ViewerDep) -> AlarmRecord:
    """One alarm's full record: the alarm, its site, hazard and audit trail,
    and every contact notification."""
    detail = alarm_detail(session, alarm_id)
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alarm {alarm_id}")
    return AlarmRecord(detail=detail,
                       notifications=list_notifications(alarm_id, session, user))


@pages.get("/history", response_class=HTMLResponse)
def history_page(request: Request, settings: SettingsDep, user: ViewerDep) -> HTMLResponse:
    ctx = history_labels.page_context(lang_of(request))
    boot = page_boot(request, settings, user, ctx)
    ctx.update(boot=boot, user=user, csrf=boot["csrf"])
    return TEMPLATES.TemplateResponse(request, "history.html", ctx)

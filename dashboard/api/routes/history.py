"""History: stored alarms found by filters a page at a time with the true
total (GET /api/v1/history/alarms), the same as CSV streamed
(GET /api/v1/history/alarms.csv), one alarm's full record with its audit
trail and notifications (GET /api/v1/history/alarms/{id}); the events that
are not alarms the same way (GET /api/v1/history/events, .csv;
dashboard/history_events.py); and the /history page."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import BaseModel
from sqlalchemy import Row
from sqlalchemy.orm import Session

from dashboard import flood, history, history_events, history_labels
from dashboard.api.auth import ViewerDep
from dashboard.api.deps import CentreDep, SessionDep, SettingsDep
from dashboard.api.routes.notify import NotificationPublic, list_notifications
from dashboard.api.routes.pages import TEMPLATES, lang_of
from dashboard.api.routes.registry import page_boot
from dashboard.models import Alarm, Event
from dashboard.queries import alarm_detail, alarm_public, event_public, event_values
from dashboard.schemas import ROW_ID_MAX, AlarmDetail, AlarmPublic, EventPublic

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


@dataclass(frozen=True)
class Range:
    """The time range of a search, in ms (since inclusive, until exclusive)."""

    since_ms: int | None
    until_ms: int | None


def time_range(
    settings: SettingsDep,
    since_ms: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    until_ms: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    from_: Annotated[date | None, Query(alias="from", description="first day (centre's "
                                        "timezone); overrides since_ms")] = None,
    to: Annotated[date | None, Query(description="last day, inclusive; overrides "
                                     "until_ms")] = None,
) -> Range:
    if from_ is not None:
        since_ms = day_start_ms(from_, settings.timezone)
    if to is not None:
        until_ms = day_start_ms(to + timedelta(days=1), settings.timezone)
    return Range(since_ms, until_ms)


RangeDep = Annotated[Range, Depends(time_range)]


@dataclass(frozen=True)
class Places:
    """The place and device filters alarms and events share."""

    community: str | None
    compound: str | None
    grid_cell: str | None
    household: str | None
    device: str | None


def places(community: Text = None, compound: Text = None, grid_cell: Text = None,
           household: Text = None, device: Text = None) -> Places:
    return Places(community or None, compound or None, grid_cell or None, household or None,
                  device or None)


PlacesDep = Annotated[Places, Depends(places)]


def filters(
    when: RangeDep, where: PlacesDep,
    type: Annotated[list[str] | None, Query(max_length=32)] = None,  # noqa: A002
    status_: Annotated[Literal["any", "open", "closed"], Query(alias="status")] = "any",
    outcome: Annotated[list[Literal["genuine", "false", "test", "none"]] | None,
                       Query(max_length=4)] = None,
    operator: Text = None,
) -> history.Filters:
    """The history filters from the query string (`type` and `outcome` repeat)."""
    return history.Filters(
        since_ms=when.since_ms, until_ms=when.until_ms, types=tuple(type or ()),
        status=status_, outcomes=tuple(outcome or ()), **vars(where),
        operator=operator or None)


FiltersDep = Annotated[history.Filters, Depends(filters)]


def event_filters(
    when: RangeDep, where: PlacesDep,
    kind: Annotated[list[Literal[history_events.KINDS]] | None,  # type: ignore[valid-type]
                    Query(max_length=len(history_events.KINDS))] = None,
    type: Annotated[list[str] | None, Query(max_length=32)] = None,  # noqa: A002
) -> history_events.Filters:
    """The event history's filters (`kind` and `type` repeat)."""
    return history_events.Filters(
        since_ms=when.since_ms, until_ms=when.until_ms, kinds=tuple(kind or ()),
        types=tuple(type or ()), **vars(where))


EventFiltersDep = Annotated[history_events.Filters, Depends(event_filters)]


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


Before = Annotated[str | None, Query(pattern=CURSOR,
                                     description="the `next` of the previous page")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]


def cursor_key(before: str | None) -> history.Key | None:
    if before is None:
        return None
    at, row_id = before.split(".")
    return int(at), int(row_id)


def cursor_text(key: history.Key | None) -> str | None:
    return None if key is None else f"{key[0]}.{key[1]}"


@router.get("/history/alarms", response_model=HistoryPage)
def search(session: SessionDep, _user: ViewerDep, f: FiltersDep, before: Before = None,
           limit: Limit = 50) -> HistoryPage:
    """Alarms matching the filters, newest first, a page at a time, with the
    number of all that match (a COUNT, not the page's length)."""
    found = history.total(session, f)
    rows, nxt = history.page(session, f, cursor_key(before), limit)
    return HistoryPage(total=found, alarms=rows_out(session, rows), next=cursor_text(nxt))


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


# one batch of rows as the CSV's values (dicts with every column)
Rendered = Callable[[Session, Sequence[Any]], Iterator[dict[str, Any]]]


def csv_lines(centre: Any, columns: Sequence[str], rows: Rendered, f: Any, read: Any,
              when: str, tz: str) -> Iterator[str]:
    """The CSV of every row `read` finds with the filters, a batch at a
    time, with the time in `when` (ms) also as a local date-time."""
    zone = ZoneInfo(tz)
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(columns)
    with centre.sessions() as session:
        for batch in history.batches(session, f, read=read):
            for values in rows(session, batch):
                values[when.removesuffix("_ms")] = datetime.fromtimestamp(
                    values[when] / 1000, zone).isoformat(timespec="seconds")
                out.writerow([csv_cell(values[c]) for c in columns])
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue()


def csv_response(lines: Iterator[str], name: str) -> StreamingResponse:
    return StreamingResponse(
        _with_bom(lines), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _alarm_values(session: Session, batch: Sequence[Any]) -> Iterator[dict[str, Any]]:
    return (a.model_dump() for a in rows_out(session, batch, counts=False))


@router.get("/history/alarms.csv", response_class=StreamingResponse)
def export(centre: CentreDep, settings: SettingsDep, _user: ViewerDep,
           f: FiltersDep) -> StreamingResponse:
    """Every alarm matching the filters as CSV (UTF-8 with BOM, newest first),
    streamed in batches: no size limit, no page."""
    return csv_response(csv_lines(centre, CSV_COLUMNS, _alarm_values, f, history.page,
                                  "created_ms", settings.timezone), "homeguard-alarms.csv")


class HistoryEvent(EventPublic):
    """A stored event as the event history lists it, with where its device is."""

    household: str | None = None
    community: str | None = None
    compound: str | None = None
    grid_cell: str | None = None


class EventPage(BaseModel):
    total: int
    events: list[HistoryEvent]
    next: str | None


def events_out(session: Session, rows: Sequence[Any]) -> list[HistoryEvent]:
    found = history.places_of(session, {ev.device_id for ev, in rows})
    return [HistoryEvent(**event_public(event_values(ev)).model_dump(),
                         **found.get(ev.device_id, {})) for ev, in rows]


@router.get("/history/events", response_model=EventPage)
def search_events(session: SessionDep, _user: ViewerDep, f: EventFiltersDep,
                  before: Before = None, limit: Limit = 50) -> EventPage:
    """Stored events that are not alarms (restores, cancels, tests, faults,
    supervision) matching the filters, newest first by the centre's receipt,
    a page at a time, with the number of all that match."""
    found = history_events.total(session, f)
    rows, nxt = history_events.page(session, f, cursor_key(before), limit)
    return EventPage(total=found, events=events_out(session, rows), next=cursor_text(nxt))


EVENT_CSV_COLUMNS = (
    "id", "received", "received_ms", "event_time_ms", "device_time_ms", "device", "seq",
    "kind", "type", "gateway", "household", "community", "compound", "grid_cell", "data",
)


def _event_values(session: Session, batch: Sequence[Any]) -> Iterator[dict[str, Any]]:
    for ev in events_out(session, batch):
        values = ev.model_dump()
        values["data"] = json.dumps(ev.data, ensure_ascii=False, sort_keys=True)
        yield values


@router.get("/history/events.csv", response_class=StreamingResponse)
def export_events(centre: CentreDep, settings: SettingsDep, _user: ViewerDep,
                  f: EventFiltersDep) -> StreamingResponse:
    """Every event the event history finds with the filters as CSV (UTF-8
    with BOM, newest first; `data` as JSON), streamed in batches."""
    return csv_response(csv_lines(centre, EVENT_CSV_COLUMNS, _event_values, f,
                                  history_events.page, "received_ms", settings.timezone),
                        "homeguard-events.csv")


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

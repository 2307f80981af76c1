"""Reports: GET /api/v1/reports (JSON), GET /api/v1/reports.csv (the
period × place table) and the printable /reports page."""

from __future__ import annotations

import csv
import io
import time
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, Response

from dashboard import history_labels, rating, reports
from dashboard.api.auth import ViewerDep
from dashboard.api.deps import SessionDep, SettingsDep
from dashboard.api.routes.history import csv_cell, day_start_ms
from dashboard.api.routes.pages import TEMPLATES, lang_of
from dashboard.api.routes.registry import page_boot
from dashboard.labels import ALARM_TYPES
from dashboard.settings import Settings

router = APIRouter(tags=["reports"])
pages = APIRouter(include_in_schema=False)

MAX_DAYS = 3700


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def query(
    settings: SettingsDep,
    from_: Annotated[date | None, Query(alias="from", description="first day (centre's "
                                        "timezone); default: the first of this month")] = None,
    to: Annotated[date | None, Query(description="last day, inclusive; default: today")] = None,
    bucket: Annotated[Literal["day", "week", "month"], Query()] = "day",
    by: Annotated[Literal["none", "community", "grid_cell"], Query()] = "none",
) -> reports.Query:
    today = datetime.now(ZoneInfo(settings.timezone)).date()
    first = from_ or today.replace(day=1)
    last = to or today
    if last < first or (last - first).days > MAX_DAYS:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"the range must run forwards and span at most {MAX_DAYS} days")
    return reports.Query(
        since_ms=day_start_ms(first, settings.timezone),
        until_ms=day_start_ms(last + timedelta(days=1), settings.timezone),
        bucket=bucket, by=by, timezone=settings.timezone, ack_sla_s=settings.ack_sla_s,
        verify_sla_s=settings.verify_sla_s,
        rating=rating.Thresholds(settings.rating_window_days, settings.rating_yellow,
                                 settings.rating_red))


QueryDep = Annotated[reports.Query, Depends(query)]


@router.get("/reports")
def get_report(session: SessionDep, _user: ViewerDep, q: QueryDep) -> dict[str, Any]:
    """Counts per period and place, outcomes, false-alarm rate, response
    times (p50/p90, overall and per operator), SLA breaches, hazards and
    device availability for the alarms received in the range."""
    return reports.report(session, q, _now_ms())


HAZARD_COLUMNS = ("opened", "rectified", "still_open")
DEVICE_COLUMNS = ("offline_alarms", "offline_devices", "offline_hours", "low_battery_alarms",
                  "low_battery_devices")


def _spread_cells(s: dict[str, Any]) -> list[Any]:
    return [s["n"], _decimal(s["p50"]), _decimal(s["p90"])]


def report_csv(rep: dict[str, Any]) -> str:
    """One row per period x place: counts, response times (n, p50, p90 in
    seconds), SLA breaches, hazards opened (rectification hours) and device
    availability, then the count of each alarm type."""
    types = list(ALARM_TYPES)
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(["bucket", "place", "alarms", *reports.OUTCOMES, "false_rate", "ack_late",
                  "verify_late",
                  *(f"{s}_{k}" for s in reports.STEPS for k in ("n", "p50_s", "p90_s")),
                  *(f"hazards_{k}" for k in HAZARD_COLUMNS),
                  "rectify_n", "rectify_p50_h", "rectify_p90_h", *DEVICE_COLUMNS, *types])
    for r in rep["rows"]:
        rate = "" if r["false_rate"] is None else f"{r['false_rate']:.4f}"
        out.writerow([r["bucket"], csv_cell(r["place"]), r["alarms"],
                      *(r["by_outcome"][o] for o in reports.OUTCOMES), rate, r["ack_late"],
                      r["verify_late"],
                      *(v for s in reports.STEPS for v in _spread_cells(r["timings"][s])),
                      *(r["hazards"][k] for k in HAZARD_COLUMNS),
                      *_spread_cells(r["hazards"]["rectify_hours"]),
                      *(r["devices"][k] for k in DEVICE_COLUMNS),
                      *(r["by_type"].get(t, 0) for t in types)])
    return buf.getvalue()


@router.get("/reports.csv", response_class=Response)
def get_report_csv(session: SessionDep, _user: ViewerDep, q: QueryDep) -> Response:
    """The report's period × place table as CSV (UTF-8 with BOM): counts,
    response times, SLA breaches, hazards and device availability per row."""
    body = "\ufeff" + report_csv(reports.report(session, q, _now_ms()))
    return Response(body.encode(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": 'attachment; filename="homeguard-report.csv"'})


def colours_csv(compounds: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(["community", "compound", "period", "at_ms", "incidents", "colour"])
    for c in compounds:
        for p in c["colours"]:
            out.writerow([csv_cell(c["community"]), csv_cell(c["compound"]), p["period"],
                          p["at_ms"], p["incidents"], p["colour"]])
    return buf.getvalue()


@router.get("/reports/colours.csv", response_class=Response)
def get_colours_csv(session: SessionDep, _user: ViewerDep, q: QueryDep) -> Response:
    """Each compound's colour (三色) at the end of each period, as CSV."""
    body = "\ufeff" + colours_csv(reports.colour_history(session, q, _now_ms()))
    return Response(body.encode(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": 'attachment; filename="homeguard-colours.csv"'})


def _decimal(x: float | None) -> str:
    """A time (seconds, hours) in a CSV cell: one decimal, empty when none."""
    return "" if x is None else f"{x:.1f}"


def workers_csv(workers: dict[str, Any]) -> str:
    """One row for all grid workers (worker "") and one per worker."""
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(["worker", *(f"{s}_{k}" for s in reports.WORKER_STEPS
                              for k in ("n", "p50_s", "p90_s")), "overdue"])
    for w in [{"worker": "", **workers}, *workers["by_worker"]]:
        out.writerow([csv_cell(w["worker"]),
                      *(v for s in reports.WORKER_STEPS for v in _spread_cells(w[s])),
                      w["overdue"]])
    return buf.getvalue()


@router.get("/reports/workers.csv", response_class=Response)
def get_workers_csv(session: SessionDep, _user: ViewerDep, q: QueryDep) -> Response:
    """Grid workers' time to accept and to arrive (p50/p90, s) and overdue
    tasks, in all (worker "") and per worker, as CSV."""
    body = "\ufeff" + workers_csv(reports.worker_figures(session, q))
    return Response(body.encode(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": 'attachment; filename="homeguard-workers.csv"'})


def _boot(request: Request, settings: Settings, user: Any, ctx: dict[str, Any]) -> dict[str, Any]:
    boot = page_boot(request, settings, user, ctx)
    boot["sla"] = {"ack_s": settings.ack_sla_s, "verify_s": settings.verify_sla_s}
    return boot


@pages.get("/reports", response_class=HTMLResponse)
def reports_page(request: Request, settings: SettingsDep, user: ViewerDep) -> HTMLResponse:
    ctx = history_labels.page_context(lang_of(request))
    boot = _boot(request, settings, user, ctx)
    ctx.update(boot=boot, user=user, csrf=boot["csrf"])
    return TEMPLATES.TemplateResponse(request, "reports.html", ctx)

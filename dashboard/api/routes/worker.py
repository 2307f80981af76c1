"""The grid worker's phone: the page at /worker (`pages`) and its API
(`router`, under /api/v1/worker), for the `grid_worker` role only
(task.work).  The worker sees the tasks dispatched to them with the
household's address and contacts, follows them live (GET /worker/stream:
the whole list again whenever it changed) and takes each through accept,
arrive and report (dashboard/worker.py); every step is audited and reaches
every desk as a live `transition`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from dashboard import claims, labels, worker, worker_labels
from dashboard.api.auth import csrf_token, require
from dashboard.api.deps import CentreDep, HubDep, SessionDep, SettingsDep
from dashboard.api.routes.pages import TEMPLATES, lang_of
from dashboard.api.routes.stream import RETRY_MS, overdue_sweep, sweep_overdue
from dashboard.centre import Centre
from dashboard.live import Hub, Overflow
from dashboard.models import Alarm, AlarmAudit, Event, User
from dashboard.registry import site_of
from dashboard.registry_schemas import Site
from dashboard.schemas import ROW_ID_MAX, Note

log = logging.getLogger("homeguard.centre.worker")

router = APIRouter(prefix="/worker", tags=["worker"])
pages = APIRouter(include_in_schema=False)

WorkerUser = Annotated[User, Depends(require("task.work"))]
AlarmId = Annotated[int, Path(ge=1, le=ROW_ID_MAX)]


class Task(BaseModel):
    """An alarm dispatched to the worker, as their phone shows it."""

    alarm_id: int
    type: str
    priority: int
    device: str
    event_time_ms: int
    created_ms: int
    step: str
    step_ms: int
    # the steps the worker may take next (worker.ACTIONS)
    next: list[str]
    # what the operator wrote when dispatching it
    note: str
    dispatched_by: str
    site: Site


class StepBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Note = ""


class ReportBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Literal["genuine", "false", "test"] = Field(
        description="what the worker found: a genuine alarm, a false alarm or a test")
    note: Note = ""


def _dispatch_row(session: Session, alarm_id: int) -> AlarmAudit | None:
    return session.scalar(select(AlarmAudit).where(
        AlarmAudit.alarm_id == alarm_id, AlarmAudit.action == "dispatch")
        .order_by(AlarmAudit.id.desc()).limit(1))


def _task(session: Session, alarm: Alarm) -> Task:
    ev = session.get(Event, alarm.event_id)
    assert ev is not None and alarm.worker_step is not None and alarm.worker_ms is not None
    sent = _dispatch_row(session, alarm.id)
    return Task(alarm_id=alarm.id, type=alarm.type, priority=alarm.priority,
                device=alarm.device_id, event_time_ms=ev.event_time_ms,
                created_ms=alarm.created_ms, step=alarm.worker_step, step_ms=alarm.worker_ms,
                next=worker.next_steps(alarm.worker_step),
                note=sent.note if sent else "", dispatched_by=sent.username if sent else "",
                site=site_of(session, alarm.device_id))


def tasks(session: Session, username: str) -> list[Task]:
    return [_task(session, a) for a in worker.tasks_of(session, username)]


@router.get("/tasks", response_model=list[Task])
def list_tasks(session: SessionDep, user: WorkerUser) -> list[Task]:
    """The worker's open tasks, the most urgent first."""
    return tasks(session, user.username)


def _step(session: Session, hub: Hub, user: User, alarm_id: int, action: str,
          outcome: str | None, note: str) -> Task | JSONResponse:
    session.commit()  # end the login check's read: the write begins holding the lock
    try:
        alarm, audit = worker.step(session, alarm_id, user, action, outcome=outcome, note=note)
    except worker.TaskNotFound as exc:
        session.rollback()
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except worker.IllegalStep as exc:
        session.rollback()
        return JSONResponse({"detail": str(exc), "step": exc.step, "allowed": exc.allowed},
                            status_code=status.HTTP_409_CONFLICT)
    claims.commit_and_publish(session, hub, [(alarm, audit)])
    log.info("%s: task %d by %s", action, alarm_id, user.username)
    return _task(session, alarm)


STEP_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "no open task of this worker for the alarm"},
    409: {"description": "the step does not follow the task's current one (`allowed`)"},
}


@router.post("/tasks/{alarm_id}/accept", response_model=Task, responses=STEP_RESPONSES)
def accept(alarm_id: AlarmId, session: SessionDep, hub: HubDep, user: WorkerUser,
           body: StepBody | None = None) -> Task | JSONResponse:
    """The worker takes the task (also after the desk was alerted it was overdue)."""
    return _step(session, hub, user, alarm_id, "accept", None, body.note if body else "")


@router.post("/tasks/{alarm_id}/arrive", response_model=Task, responses=STEP_RESPONSES)
def arrive(alarm_id: AlarmId, session: SessionDep, hub: HubDep, user: WorkerUser,
           body: StepBody | None = None) -> Task | JSONResponse:
    """The worker is at the household."""
    return _step(session, hub, user, alarm_id, "arrive", None, body.note if body else "")


@router.post("/tasks/{alarm_id}/report", response_model=Task, responses=STEP_RESPONSES)
def report(alarm_id: AlarmId, body: ReportBody, session: SessionDep, hub: HubDep,
           user: WorkerUser) -> Task | JSONResponse:
    """What the worker found (genuine, false or test) with a note; the desk
    resolves the alarm."""
    return _step(session, hub, user, alarm_id, "report", body.outcome, body.note)


def _tasks_json(centre: Centre, username: str) -> str:
    with centre.sessions() as session:
        return json.dumps([t.model_dump() for t in tasks(session, username)],
                          ensure_ascii=False, separators=(",", ":"))


@router.get("/stream")
async def stream(request: Request, centre: CentreDep, user: WorkerUser) -> StreamingResponse:
    """Server-Sent Events: `event: tasks` with the worker's whole task list,
    on connect and whenever a transition changed it."""
    return StreamingResponse(
        _events(centre, user.username, overdue_sweep(request, centre)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _events(centre: Centre, username: str,
                  overdue: worker.OverdueSweep) -> AsyncIterator[str]:
    async with centre.hub.subscribe() as sub:
        sent = await run_in_threadpool(_tasks_json, centre, username)
        yield f"retry: {RETRY_MS}\n: connected\n\nevent: tasks\ndata: {sent}\n\n"
        keepalive = centre.settings.keepalive_s
        quiet_since = time.monotonic()
        while True:
            try:
                got = await sub.get(min(keepalive, overdue.every_s))
            except Overflow:
                return  # the browser reconnects and gets the whole list
            if overdue.due():
                await run_in_threadpool(sweep_overdue, centre, overdue)
            if got is not None and got.cursor == "audit":
                now = await run_in_threadpool(_tasks_json, centre, username)
                if now != sent:
                    sent, quiet_since = now, time.monotonic()
                    yield f"event: tasks\ndata: {now}\n\n"
            elif time.monotonic() - quiet_since >= keepalive:
                quiet_since = time.monotonic()
                yield ": keepalive\n\n"


@pages.get("/worker", response_class=HTMLResponse)
def page(request: Request, session: SessionDep, settings: SettingsDep,
         user: WorkerUser) -> HTMLResponse:
    ctx = labels.page_context(lang_of(request))
    words = worker_labels.for_lang(ctx["lang"])
    boot = {
        "tasks": [t.model_dump() for t in tasks(session, user.username)],
        "api": "/api/v1/worker",
        "csrf": csrf_token(request),
        "timezone": settings.timezone,
        "lang": ctx["lang"],
        "labels": {"types": ctx["labels"]["types"], "outcomes": ctx["labels"]["outcomes"],
                   "worker": words},
        "user": {"username": user.username, "display_name": user.display_name},
    }
    ctx.update(boot=boot, user=user, csrf=boot["csrf"], w=words)
    return TEMPLATES.TemplateResponse(request, "worker.html", ctx)

"""Alarms: the open list, one alarm with its audit trail and the alarm
events flood control folded into it, the workflow actions (ack, verify,
dispatch, resolve) and who holds an alarm (claims.py: the first action
claims it; its holder releases it, a supervisor reassigns it), each
pushed to every desk."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard import claims, telemetry, worker, workflow
from dashboard.api.auth import ReaderDep, ViewerDep, require
from dashboard.api.deps import HubDep, SessionDep, SettingsDep
from dashboard.db import begin_write
from dashboard.live import Hub
from dashboard.models import OPEN_STATES, Alarm, AlarmAudit, User
from dashboard.queries import alarm_detail, folded_page, open_alarms
from dashboard.schemas import (
    ROW_ID_MAX,
    AckBody,
    AlarmDetail,
    AlarmPublic,
    DispatchBody,
    FoldedPage,
    ReassignBody,
    ReleaseBody,
    ResolveBody,
    VerifyBody,
)
from dashboard.settings import Settings

log = logging.getLogger("homeguard.centre.workflow")

router = APIRouter(tags=["alarms"])

AlarmId = Annotated[int, Path(ge=1, le=ROW_ID_MAX)]
AckUser = Annotated[User, Depends(require("alarm.ack"))]
VerifyUser = Annotated[User, Depends(require("alarm.verify"))]
DispatchUser = Annotated[User, Depends(require("alarm.dispatch"))]
ResolveUser = Annotated[User, Depends(require("alarm.resolve"))]
ReassignUser = Annotated[User, Depends(require("alarm.reassign"))]

CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "the action does not apply in the alarm's current state "
                         "(`state` and `allowed` say what does), or another operator "
                         "holds the alarm (`claimed_by` names them)"},
    404: {"description": "no such alarm"},
}


@router.get("/alarms", response_model=list[AlarmPublic])
def list_alarms(
    session: SessionDep, _who: ReaderDep, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> list[AlarmPublic]:
    """Open alarms (not yet resolved): most urgent first, then the longest waiting."""
    return open_alarms(session, limit)


@router.get("/alarms/{alarm_id}", response_model=AlarmDetail, responses=CONFLICT)
def get_alarm(alarm_id: AlarmId, session: SessionDep, _user: ViewerDep) -> AlarmDetail:
    detail = alarm_detail(session, alarm_id)
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alarm {alarm_id}")
    return detail


@router.get("/alarms/{alarm_id}/folded", response_model=FoldedPage,
            responses={404: CONFLICT[404]})
def folded(
    alarm_id: AlarmId, session: SessionDep, _user: ViewerDep,
    before: Annotated[int | None, Query(ge=1, le=ROW_ID_MAX,
                                        description="the `next` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> FoldedPage:
    """The alarm events flood control folded into this alarm (each stored
    and acked, none with a row of its own), newest first, and its count."""
    alarm = session.get(Alarm, alarm_id)
    if alarm is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alarm {alarm_id}")
    return folded_page(session, alarm, before, limit)


@router.get("/alarms/{alarm_id}/telemetry")
def alarm_telemetry(
    alarm_id: AlarmId, session: SessionDep, settings: SettingsDep, _user: ViewerDep,
    minutes: Annotated[int, Query(ge=1, le=24 * 60, description="how far back")] = 60,
) -> dict[str, Any]:
    """The alarm's device's telemetry from `minutes` before the alarm on, for the
    detail panel's chart ({"points": [{"t", "kind", "data"}], "unavailable": [...]})."""
    alarm = session.get(Alarm, alarm_id)
    if alarm is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alarm {alarm_id}")
    since = alarm.created_ms - minutes * 60_000
    return telemetry.recent(settings.telemetry_urls, alarm.device_id, since)


def held(exc: claims.ClaimHeld) -> JSONResponse:
    return JSONResponse({"detail": str(exc), "claimed_by": exc.holder},
                        status_code=status.HTTP_409_CONFLICT)


def _act(session: Session, hub: Hub, settings: Settings, user: User, alarm_id: int,
         action: str, **kw: Any) -> AlarmDetail | JSONResponse:
    session.commit()  # end the login check's read: the write begins holding the lock
    released: list[tuple[Alarm, AlarmAudit]] = []
    try:
        alarm, audit = workflow.apply(session, alarm_id, action, user, released=released,
                                      idle_ms=int(settings.claim_idle_s * 1000), **kw)
    except workflow.AlarmNotFound as exc:
        session.rollback()
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except workflow.IllegalTransition as exc:
        session.rollback()
        return JSONResponse(
            {"detail": str(exc), "state": exc.state, "allowed": exc.allowed},
            status_code=status.HTTP_409_CONFLICT)
    except claims.ClaimHeld as exc:
        session.rollback()
        return held(exc)
    except worker.NoWorker as exc:
        session.rollback()
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    # commit order = audit id order on every stream: an idle claim's release first
    claims.commit_and_publish(session, hub, [*released, (alarm, audit)])
    log.info("%s: alarm %d %s -> %s by %s", action, alarm_id, audit.from_state,
             audit.to_state, user.username)
    return _detail(session, alarm_id)


def _detail(session: Session, alarm_id: int) -> AlarmDetail:
    detail = alarm_detail(session, alarm_id)
    assert detail is not None
    return detail


def _open_alarm(session: Session, alarm_id: int) -> Alarm:
    """The alarm, locked for the change; 404 when there is none, 409 when closed."""
    session.commit()
    begin_write(session)
    alarm = session.scalar(select(Alarm).where(Alarm.id == alarm_id).with_for_update()
                           .execution_options(populate_existing=True))
    if alarm is None:
        session.rollback()
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alarm {alarm_id}")
    if alarm.state not in OPEN_STATES:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"alarm {alarm_id} is {alarm.state}: nobody holds a closed alarm")
    return alarm


@router.post("/alarms/{alarm_id}/reassign", response_model=AlarmDetail, responses=CONFLICT)
def reassign(alarm_id: AlarmId, body: ReassignBody, session: SessionDep, hub: HubDep,
             user: ReassignUser) -> AlarmDetail:
    """A supervisor hands the open alarm to another operator (or to nobody,
    `to`: null), whoever holds it; audited, and every desk sees the new holder."""
    target = None
    if body.to is not None:
        target = session.scalar(select(User).where(User.username == body.to))
        if target is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"no user {body.to!r}")
    alarm = _open_alarm(session, alarm_id)
    try:
        audit = claims.reassign(session, alarm, user, target, body.note)
    except claims.NotAssignable as exc:
        session.rollback()
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    claims.commit_and_publish(session, hub, [(alarm, audit)])
    log.info("reassign: alarm %d to %s by %s", alarm_id, body.to, user.username)
    return _detail(session, alarm_id)


@router.post("/alarms/{alarm_id}/release", response_model=AlarmDetail, responses=CONFLICT)
def release(alarm_id: AlarmId, session: SessionDep, hub: HubDep, user: AckUser,
            body: ReleaseBody | None = None) -> AlarmDetail | JSONResponse:
    """The holder lets the alarm go (another operator may take it); audited."""
    alarm = _open_alarm(session, alarm_id)
    if alarm.claimed_by != user.username:
        session.rollback()
        if alarm.claimed_by is not None:
            return held(claims.ClaimHeld(alarm_id, alarm.claimed_by))
        raise HTTPException(status.HTTP_409_CONFLICT, f"nobody holds alarm {alarm_id}")
    audit = claims.release(session, alarm, user, body.note if body else "")
    claims.commit_and_publish(session, hub, [(alarm, audit)])
    return _detail(session, alarm_id)


@router.post("/alarms/{alarm_id}/ack", response_model=AlarmDetail, responses=CONFLICT)
def ack(alarm_id: AlarmId, session: SessionDep, hub: HubDep, settings: SettingsDep,
        user: AckUser, body: AckBody | None = None) -> AlarmDetail | JSONResponse:
    """received -> acknowledged, taking the alarm (claims it for the user; 409
    with `claimed_by` when another holds it); the device is told."""
    return _act(session, hub, settings, user, alarm_id, "ack",
                note=body.note if body else "")


@router.post("/alarms/{alarm_id}/verify", response_model=AlarmDetail, responses=CONFLICT)
def verify(alarm_id: AlarmId, body: VerifyBody, session: SessionDep, hub: HubDep,
           settings: SettingsDep, user: VerifyUser) -> AlarmDetail | JSONResponse:
    """acknowledged -> verified, with the outcome genuine, false or test."""
    return _act(session, hub, settings, user, alarm_id, "verify", outcome=body.outcome,
                note=body.note)


@router.post("/alarms/{alarm_id}/dispatch", response_model=AlarmDetail, responses=CONFLICT)
def dispatch(alarm_id: AlarmId, body: DispatchBody, session: SessionDep, hub: HubDep,
             settings: SettingsDep, user: DispatchUser) -> AlarmDetail | JSONResponse:
    """verified genuine (or dispatched) -> dispatched to the grid worker or a patrol.
    To the grid worker, the task goes to the phone (/worker) of `worker`, or
    of the worker account of the alarm's grid cell (422: `worker` is not a
    grid worker); the alarm's `worker` says whose, null when nobody's."""
    return _act(session, hub, settings, user, alarm_id, "dispatch", to=body.to,
                note=body.note, worker_name=body.worker)


@router.post("/alarms/{alarm_id}/resolve", response_model=AlarmDetail, responses=CONFLICT)
def resolve(alarm_id: AlarmId, session: SessionDep, hub: HubDep, settings: SettingsDep,
            user: ResolveUser, body: ResolveBody | None = None) -> AlarmDetail | JSONResponse:
    """verified or dispatched -> resolved (closed); the device is told.
    `outcome` (genuine, false, test) is the result it closes with; without
    it the outcome verify recorded stands."""
    return _act(session, hub, settings, user, alarm_id, "resolve",
                note=body.note if body else "", outcome=body.outcome if body else None)

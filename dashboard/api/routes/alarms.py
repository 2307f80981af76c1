"""Alarms: the open list, one alarm with its audit trail and the alarm
events flood control folded into it, and the workflow actions (ack,
verify, dispatch, resolve), each pushed to every desk."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from dashboard import flood, telemetry, workflow
from dashboard.api.auth import ReaderDep, ViewerDep, require
from dashboard.api.deps import HubDep, SessionDep, SettingsDep
from dashboard.live import Hub
from dashboard.models import Alarm, Event, User
from dashboard.queries import alarm_detail, folded_page, open_alarms, transition_item
from dashboard.schemas import (
    ROW_ID_MAX,
    AckBody,
    AlarmDetail,
    AlarmPublic,
    DispatchBody,
    FoldedPage,
    ResolveBody,
    VerifyBody,
)

log = logging.getLogger("homeguard.centre.workflow")

router = APIRouter(tags=["alarms"])

AlarmId = Annotated[int, Path(ge=1, le=ROW_ID_MAX)]
AckUser = Annotated[User, Depends(require("alarm.ack"))]
VerifyUser = Annotated[User, Depends(require("alarm.verify"))]
DispatchUser = Annotated[User, Depends(require("alarm.dispatch"))]
ResolveUser = Annotated[User, Depends(require("alarm.resolve"))]

CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "the action does not apply in the alarm's current state; "
                         "`state` and `allowed` say what does"},
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


def _act(session: Session, hub: Hub, user: User, alarm_id: int, action: str,
         **kw: Any) -> AlarmDetail | JSONResponse:
    session.commit()  # end the login check's read: the write begins holding the lock
    try:
        alarm, audit = workflow.apply(session, alarm_id, action, user, **kw)
    except workflow.AlarmNotFound as exc:
        session.rollback()
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except workflow.IllegalTransition as exc:
        session.rollback()
        return JSONResponse(
            {"detail": str(exc), "state": exc.state, "allowed": exc.allowed},
            status_code=status.HTTP_409_CONFLICT)
    ev = session.get(Event, alarm.event_id)
    assert ev is not None
    item = transition_item(alarm, ev, audit, flood.count_folded(session, alarm))
    with hub.ordered():  # commit order = audit id order on every stream
        session.commit()
        hub.publish([item])
    log.info("%s: alarm %d %s -> %s by %s", action, alarm_id, audit.from_state,
             audit.to_state, user.username)
    detail = alarm_detail(session, alarm_id)
    assert detail is not None
    return detail


@router.post("/alarms/{alarm_id}/ack", response_model=AlarmDetail, responses=CONFLICT)
def ack(alarm_id: AlarmId, session: SessionDep, hub: HubDep, user: AckUser,
        body: AckBody | None = None) -> AlarmDetail | JSONResponse:
    """received -> acknowledged; the device is told (`acknowledged`)."""
    return _act(session, hub, user, alarm_id, "ack", note=body.note if body else "")


@router.post("/alarms/{alarm_id}/verify", response_model=AlarmDetail, responses=CONFLICT)
def verify(alarm_id: AlarmId, body: VerifyBody, session: SessionDep, hub: HubDep,
           user: VerifyUser) -> AlarmDetail | JSONResponse:
    """acknowledged -> verified, with the outcome genuine, false or test."""
    return _act(session, hub, user, alarm_id, "verify", outcome=body.outcome, note=body.note)


@router.post("/alarms/{alarm_id}/dispatch", response_model=AlarmDetail, responses=CONFLICT)
def dispatch(alarm_id: AlarmId, body: DispatchBody, session: SessionDep, hub: HubDep,
             user: DispatchUser) -> AlarmDetail | JSONResponse:
    """verified genuine (or dispatched) -> dispatched to the grid worker or a patrol."""
    return _act(session, hub, user, alarm_id, "dispatch", to=body.to, note=body.note)


@router.post("/alarms/{alarm_id}/resolve", response_model=AlarmDetail, responses=CONFLICT)
def resolve(alarm_id: AlarmId, session: SessionDep, hub: HubDep, user: ResolveUser,
            body: ResolveBody | None = None) -> AlarmDetail | JSONResponse:
    """verified or dispatched -> resolved (closed); the device is told."""
    return _act(session, hub, user, alarm_id, "resolve", note=body.note if body else "")

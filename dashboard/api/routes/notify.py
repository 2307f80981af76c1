"""An alarm's contact notifications: every attempt, oldest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel
from sqlalchemy import select

from dashboard.api.auth import ViewerDep
from dashboard.api.deps import SessionDep
from dashboard.models import Alarm
from dashboard.notify.models import Notification
from dashboard.schemas import ROW_ID_MAX

router = APIRouter(tags=["notifications"])


class NotificationPublic(BaseModel):
    id: int
    alarm_id: int
    step: int
    role: str
    name: str
    channel: str
    target: str
    attempt: int
    status: str
    error: str | None
    at_ms: int
    done_ms: int | None


@router.get("/alarms/{alarm_id}/notifications", response_model=list[NotificationPublic])
def list_notifications(
    alarm_id: Annotated[int, Path(ge=1, le=ROW_ID_MAX)], session: SessionDep, _user: ViewerDep,
) -> list[NotificationPublic]:
    """Who was told about the alarm, over which channel, and how it went."""
    if session.get(Alarm, alarm_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alarm {alarm_id}")
    rows = session.scalars(select(Notification).where(Notification.alarm_id == alarm_id)
                           .order_by(Notification.id))
    return [NotificationPublic.model_validate(r, from_attributes=True) for r in rows]

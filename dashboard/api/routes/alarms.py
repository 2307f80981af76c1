"""GET /api/v1/alarms: the open alarms, latest arrival first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from dashboard.api.deps import SessionDep
from dashboard.queries import open_alarms
from dashboard.schemas import AlarmPublic

router = APIRouter(tags=["alarms"])


@router.get("/alarms", response_model=list[AlarmPublic])
def list_alarms(
    session: SessionDep, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> list[AlarmPublic]:
    return open_alarms(session, limit)

"""GET /api/v1/events: stored events, latest first, optionally of one device."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from dashboard.api.auth import ReaderDep
from dashboard.api.deps import SessionDep
from dashboard.queries import recent_events
from dashboard.schemas import ID_PATTERN, EventPublic

router = APIRouter(tags=["events"])


@router.get("/events", response_model=list[EventPublic])
def list_events(
    session: SessionDep,
    _who: ReaderDep,
    device: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[EventPublic]:
    return recent_events(session, device, limit)

"""Outbound feedback for gateways (bearer token): the workflow transitions a
device should show.  A gateway reads rows after its last id, sends each to
the device as an `ack` message (type acknowledged/dispatched/resolved,
ref = the alarm's seq), then reports them delivered.  A gateway sees and
marks only the rows of events it delivered itself."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy import select, update

from dashboard.api.deps import GatewayDep, SessionDep, acting_as
from dashboard.db import begin_write
from dashboard.models import Feedback
from dashboard.schemas import ID_PATTERN, ROW_ID_MAX, FeedbackDelivered, FeedbackPublic

router = APIRouter(tags=["feedback"])


def _public(row: Feedback) -> FeedbackPublic:
    return FeedbackPublic(
        id=row.id, alarm_id=row.alarm_id, device=row.device_id, seq=row.seq,
        gateway=row.gateway, type=row.type,  # type: ignore[arg-type]
        created_ms=row.created_ms, delivered=row.delivered)


@router.get("/feedback", response_model=list[FeedbackPublic])
def list_feedback(
    request: Request, session: SessionDep, who: GatewayDep,
    after: Annotated[int, Query(ge=0, le=ROW_ID_MAX, description="rows with a greater id")] = 0,
    gateway: Annotated[str | None, Query(
        pattern=ID_PATTERN, description="the credential's own gateway (the default); "
                                        "another is 403")] = None,
    pending: Annotated[bool, Query(description="only rows not yet reported delivered")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[FeedbackPublic]:
    """Feedback rows of events this gateway delivered, in id order after `after`."""
    if gateway is not None:
        acting_as(session, request, who, gateway)
    stmt = (select(Feedback).where(Feedback.id > after, Feedback.gateway == who.gateway_id)
            .order_by(Feedback.id).limit(limit))
    if pending:
        stmt = stmt.where(Feedback.delivered.is_(False))
    return [_public(row) for row in session.scalars(stmt)]


@router.post("/feedback/delivered")
def feedback_delivered(
    body: FeedbackDelivered, session: SessionDep, who: GatewayDep
) -> dict[str, int]:
    """Mark this gateway's rows delivered to their device; answers how many
    changed (another gateway's rows are left as they are)."""
    begin_write(session)
    result = session.execute(
        update(Feedback).where(Feedback.id.in_(body.ids), Feedback.delivered.is_(False),
                               Feedback.gateway == who.gateway_id)
        .values(delivered=True, delivered_ms=time.time_ns() // 1_000_000))
    session.commit()
    return {"marked": int(getattr(result, "rowcount", 0) or 0)}

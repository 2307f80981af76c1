"""GET /healthz: the process answers and its database does too."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response, status
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from dashboard.api.deps import SessionDep
from dashboard.schemas import Health

log = logging.getLogger("homeguard.centre.health")

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz(session: SessionDep, response: Response) -> Health:
    try:
        session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.error("health check: database unavailable: %s", exc)
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Health(status="degraded", database=f"error: {type(exc).__name__}")
    return Health(status="ok", database="ok")

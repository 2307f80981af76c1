"""GET /api/v1/auth-audit (admin): logins, failures, locks, unlocks, gateway
credentials and key exports, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from dashboard.api.auth import AdminDep
from dashboard.api.deps import SessionDep
from dashboard.authaudit import AuditPublic, recent
from dashboard.schemas import ROW_ID_MAX

router = APIRouter(tags=["users"])


@router.get("/auth-audit", response_model=list[AuditPublic])
def auth_audit(
    session: SessionDep, _admin: AdminDep,
    subject: Annotated[str | None, Query(max_length=64,
                                         description="a username or gateway id")] = None,
    before: Annotated[int | None, Query(ge=1, le=ROW_ID_MAX,
                                        description="rows with a smaller id")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditPublic]:
    return recent(session, subject, limit, before)

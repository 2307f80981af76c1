"""Electrical hazards: the list (open first) with sensor restores, counts
per community, rectifying one after an inspection, and the /hazards page."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from dashboard import hazards, labels
from dashboard.api.auth import require
from dashboard.api.deps import SessionDep, SettingsDep
from dashboard.api.routes.pages import TEMPLATES, lang_of
from dashboard.api.routes.registry import page_boot
from dashboard.models import User
from dashboard.schemas import ROW_ID_MAX

log = logging.getLogger("homeguard.centre.hazards")

router = APIRouter(tags=["hazards"])
pages = APIRouter(include_in_schema=False)

HazardViewer = Annotated[User, Depends(require("hazard.view"))]
Rectifier = Annotated[User, Depends(require("hazard.rectify"))]
HazardId = Annotated[int, Path(ge=1, le=ROW_ID_MAX)]


class RectifyBody(BaseModel):
    note: str = Field(default="", max_length=hazards.MAX_NOTE)


@router.get("/hazards")
def list_hazards(session: SessionDep, _u: HazardViewer,
                 state: Annotated[Literal["open", "rectified"] | None, Query()] = None,
                 ) -> list[dict[str, Any]]:
    """Hazards, open ones first, each with its community and sensor restores."""
    return hazards.listing(session, state)


@router.get("/hazards/counts")
def hazard_counts(session: SessionDep, _u: HazardViewer) -> list[dict[str, Any]]:
    """Per community: warnings pushed, hazards rectified, still open."""
    return hazards.counts(session)


@router.post("/hazards/{hazard_id}/rectify")
def rectify(hazard_id: HazardId, session: SessionDep, user: Rectifier,
            body: RectifyBody | None = None) -> dict[str, Any]:
    """open -> rectified, with who, when and the inspection's note."""
    session.commit()  # end the login check's read before the write
    try:
        hazards.rectify(session, hazard_id, user, body.note if body else "")
    except hazards.HazardNotFound as exc:
        session.rollback()
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except hazards.AlreadyRectified as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    session.commit()
    log.info("hazard %d rectified by %s", hazard_id, user.username)
    row = next(h for h in hazards.listing(session, None) if h["id"] == hazard_id)
    return row


@pages.get("/hazards", response_class=HTMLResponse)
def hazards_page(request: Request, settings: SettingsDep, user: HazardViewer) -> HTMLResponse:
    ctx = labels.page_context(lang_of(request))
    boot = page_boot(request, settings, user, ctx)
    ctx.update(boot=boot, user=user, csrf=boot["csrf"])
    return TEMPLATES.TemplateResponse(request, "hazards.html", ctx)

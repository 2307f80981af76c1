"""The three-colour rating (GET /api/v1/overview) and the /overview page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse

from dashboard import labels, rating
from dashboard.api.auth import require
from dashboard.api.deps import SessionDep, SettingsDep
from dashboard.api.routes.pages import TEMPLATES, lang_of
from dashboard.api.routes.registry import page_boot
from dashboard.models import User
from dashboard.settings import Settings

router = APIRouter(tags=["overview"])
pages = APIRouter(include_in_schema=False)

OverviewViewer = Annotated[User, Depends(require("alarm.view"))]


def thresholds(settings: Settings) -> rating.Thresholds:
    try:
        return rating.Thresholds(settings.rating_window_days, settings.rating_yellow,
                                 settings.rating_red)
    except ValueError as exc:
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR,
                            f"bad rating settings: {exc}") from None


@router.get("/overview")
def get_overview(session: SessionDep, settings: SettingsDep,
                 _u: OverviewViewer) -> dict[str, Any]:
    """Every community and compound red/yellow/green by its confirmed
    (verified genuine) incidents in the window, and counts per grid cell."""
    return rating.overview(session, thresholds(settings))


@pages.get("/overview", response_class=HTMLResponse)
def overview_page(request: Request, settings: SettingsDep,
                  user: OverviewViewer) -> HTMLResponse:
    ctx = labels.page_context(lang_of(request))
    boot = page_boot(request, settings, user, ctx)
    ctx.update(boot=boot, user=user, csrf=boot["csrf"])
    return TEMPLATES.TemplateResponse(request, "overview.html", ctx)

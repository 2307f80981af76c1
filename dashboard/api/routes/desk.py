"""GET /: the operators' alarm desk page."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from dashboard import labels
from dashboard.api.deps import SessionDep, SettingsDep
from dashboard.queries import last_event_id, open_alarms

TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parents[2] / "templates")
DESK_ROWS = 200

router = APIRouter(tags=["desk"])


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def desk(request: Request, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    # one read transaction: the list and the id the stream resumes after
    # come from the same snapshot, so no alarm falls between them
    after = last_event_id(session)
    alarms = [a.model_dump() for a in open_alarms(session, DESK_ROWS)]
    boot = {
        "alarms": alarms,
        "after": after,
        "timezone": settings.timezone,
        "labels": labels.for_page(),
        "stream": str(request.app.url_path_for("stream")),
    }
    return TEMPLATES.TemplateResponse(
        request, "desk.html", {"boot": boot, "text": labels.TEXT}
    )

"""GET /: the operators' alarm desk page (login required)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from dashboard import labels
from dashboard.api.auth import ViewerDep, csrf_token
from dashboard.api.deps import SessionDep, SettingsDep
from dashboard.api.routes.pages import TEMPLATES, lang_of
from dashboard.queries import last_audit_id, last_event_id, open_alarms
from dashboard.roles import permissions_of

DESK_ROWS = 200

router = APIRouter(tags=["desk"])


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def desk(
    request: Request, session: SessionDep, settings: SettingsDep, user: ViewerDep
) -> HTMLResponse:
    # one read transaction: the list and the ids the stream resumes after
    # come from the same snapshot, so no alarm or transition falls between
    cursor = f"{last_event_id(session)}:{last_audit_id(session)}"
    alarms = [a.model_dump() for a in open_alarms(session, DESK_ROWS)]
    ctx = labels.page_context(lang_of(request))
    boot = {
        "alarms": alarms,
        "after": cursor,
        "timezone": settings.timezone,
        "lang": ctx["lang"],
        "labels": ctx["labels"],
        "stream": str(request.app.url_path_for("stream")),
        "api": "/api/v1",
        "csrf": csrf_token(request),
        "ack_sla_s": settings.ack_sla_s,
        "verify_sla_s": settings.verify_sla_s,
        "user": {"username": user.username, "display_name": user.display_name,
                 "role": user.role, "permissions": permissions_of(user.role)},
    }
    ctx.update(boot=boot, user=user, csrf=boot["csrf"])
    return TEMPLATES.TemplateResponse(request, "desk.html", ctx)

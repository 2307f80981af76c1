"""The operators' alarm desk: the page at / (`router`) and its API
(`api`, under /api/v1): the desk's pages of open alarms and their count.

The desk shows open alarms a page at a time in desk order (queries.py:
unacknowledged first, then priority, then the longest waiting); the page
asks for the next page with the cursor of the last row it holds, so every
open alarm is reachable however many there are.  Its counter is a COUNT in
the store, never the number of rows on screen.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from dashboard import labels
from dashboard.api.auth import ViewerDep, csrf_token
from dashboard.api.deps import SessionDep, SettingsDep
from dashboard.api.routes.pages import TEMPLATES, lang_of
from dashboard.queries import DeskKey, desk_counts, desk_page, last_audit_id, last_event_id
from dashboard.roles import permissions_of
from dashboard.schemas import DESK_CURSOR, DeskCounts, DeskPage

DESK_PAGE = 200
MAX_PAGE = 500

router = APIRouter(tags=["desk"])
api = APIRouter(tags=["desk"])


def cursor_text(key: DeskKey | None) -> str | None:
    return None if key is None else ".".join(str(part) for part in key)


def cursor_key(text: str | None) -> DeskKey | None:
    if text is None:
        return None
    group, priority, created_ms, alarm_id = (int(part) for part in text.split("."))
    return group, priority, created_ms, alarm_id


def read_page(session: Session, after: str | None, limit: int) -> DeskPage:
    # the stream's ids first, then the page: the page is at least as new as
    # the ids, so replaying the stream from them misses nothing (on SQLite
    # both come from the same snapshot)
    snapshot = f"{last_event_id(session)}:{last_audit_id(session)}"
    alarms, last = desk_page(session, cursor_key(after), limit)
    return DeskPage(alarms=alarms, next=cursor_text(last), after=snapshot)


@api.get("/desk", response_model=DeskPage)
def desk_alarms(
    session: SessionDep, _user: ViewerDep,
    after: Annotated[str | None, Query(
        pattern=DESK_CURSOR, description="the `next` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DESK_PAGE,
) -> DeskPage:
    """Open alarms in desk order, a page at a time: unacknowledged first, then
    priority (1 most urgent), then the longest waiting."""
    return read_page(session, after, limit)


@api.get("/desk/counts", response_model=DeskCounts)
def desk_count(session: SessionDep, _user: ViewerDep) -> DeskCounts:
    """How many alarms are open, in all and per state."""
    return desk_counts(session)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def desk(
    request: Request, session: SessionDep, settings: SettingsDep, user: ViewerDep
) -> HTMLResponse:
    # one read: the first page, the count and the ids the stream resumes
    # after, so no alarm or transition falls between them
    first = read_page(session, None, DESK_PAGE)
    ctx = labels.page_context(lang_of(request))
    boot = {
        "alarms": [a.model_dump() for a in first.alarms],
        "next": first.next,
        "page_size": DESK_PAGE,
        "counts": desk_counts(session).model_dump(),
        "after": first.after,
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

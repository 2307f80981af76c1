"""The operators' alarm desk: the page at / (`router`) and its API
(`api`, under /api/v1): the desk's pages of open alarms, their count, where
their devices are, and the operator's alarm sound (on or off, audited).

The desk shows open alarms a page at a time in desk order (queries.py:
unacknowledged first, then priority, then the longest waiting); the page
asks for the next page with the cursor of the last row it holds, so every
open alarm is reachable however many there are.  Its counter is a COUNT in
the store, never the number of rows on screen.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard import authaudit, labels, map_labels
from dashboard.api.auth import ViewerDep, csrf_token, require
from dashboard.api.deps import SessionDep, SettingsDep
from dashboard.api.routes.pages import TEMPLATES, lang_of
from dashboard.models import AuthAudit, User
from dashboard.queries import (
    DeskKey,
    desk_counts,
    desk_page,
    desk_sites,
    last_audit_id,
    last_event_id,
)
from dashboard.roles import permissions_of
from dashboard.schemas import DESK_CURSOR, DeskCounts, DeskPage, DeskSite

log = logging.getLogger("homeguard.centre.desk")

DESK_PAGE = 200
MAX_PAGE = 500

router = APIRouter(tags=["desk"])
api = APIRouter(tags=["desk"])
AckUser = Annotated[User, Depends(require("alarm.ack"))]


class Sound(BaseModel):
    model_config = ConfigDict(extra="forbid")
    muted: bool


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
    return DeskPage(alarms=alarms, next=cursor_text(last), after=snapshot,
                    sites=desk_sites(session, (a.device for a in alarms)))


def sound_off(session: Session, username: str) -> bool:
    """Has the operator turned the desk's alarm sound off?  Their last
    sound_off/sound_on row in the auth audit says (none: on)."""
    last = session.scalar(
        select(AuthAudit.action)
        .where(AuthAudit.subject == username,
               AuthAudit.action.in_((authaudit.Action.SOUND_OFF, authaudit.Action.SOUND_ON)))
        .order_by(AuthAudit.id.desc()).limit(1))
    return last == authaudit.Action.SOUND_OFF


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


@api.get("/desk/sites", response_model=dict[str, DeskSite])
def sites(
    session: SessionDep, _user: ViewerDep,
    device: Annotated[list[str], Query(max_length=MAX_PAGE)],
) -> dict[str, DeskSite]:
    """Where these devices are (household, address, community, grid cell),
    for desk rows that arrived live."""
    return desk_sites(session, device)


@api.get("/desk/sound", response_model=Sound)
def sound(session: SessionDep, user: ViewerDep) -> Sound:
    """Whether the operator has the desk's alarm sound off."""
    return Sound(muted=sound_off(session, user.username))


@api.put("/desk/sound", response_model=Sound)
def set_sound(body: Sound, request: Request, session: SessionDep, user: AckUser) -> Sound:
    """Turn the operator's alarm sound off (muted: true) or on; each change is
    recorded in the auth audit (sound_off / sound_on) and follows the
    operator to every desk they open."""
    if sound_off(session, user.username) != body.muted:
        action = authaudit.Action.SOUND_OFF if body.muted else authaudit.Action.SOUND_ON
        address = request.client.host if request.client else ""
        authaudit.write(session, action, user.username, user.username, address)
        log.info("%s turned the alarm sound %s", user.username, "off" if body.muted else "on")
    return Sound(muted=body.muted)


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
        "sites": {k: v.model_dump() for k, v in first.sites.items()},
        "muted": sound_off(session, user.username),
        "claim_idle_s": settings.claim_idle_s,
        # /?alarm=ID opens that alarm (desk.js), the map's link
        "linked": map_labels.linked(ctx["lang"]),
    }
    ctx.update(boot=boot, user=user, csrf=boot["csrf"])
    return TEMPLATES.TemplateResponse(request, "desk.html", ctx)

"""GET/POST /login and POST /logout: operators sign in with a form.

Both forms carry the session's CSRF token; a successful login starts a new
browser session (fresh CSRF token) so nothing from before it carries over.
The login guard (dashboard/loginguard.py) may refuse an attempt with 429
and Retry-After before its password is checked.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dashboard import claims, labels, logins
from dashboard.api.auth import csrf_ok, csrf_token
from dashboard.api.deps import GuardDep, HubDep, SessionDep, SettingsDep
from dashboard.api.routes.pages import TEMPLATES, lang_of
from dashboard.loginguard import Throttled, address_key
from dashboard.roles import HOME
from dashboard.users import authenticate

log = logging.getLogger("homeguard.centre.login")

router = APIRouter(tags=["login"], include_in_schema=False)

# until dashboard/labels.py has "login_throttled" and "login_locked" ({s}: seconds)
def _safe_next(target: str | None) -> str:
    """Only a path on this site: never //host or a scheme."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _login_page(request: Request, target: str, error: str | None, code: int) -> Response:
    ctx = labels.page_context(lang_of(request))
    ctx.update(csrf=csrf_token(request), next=target, error=error)
    return TEMPLATES.TemplateResponse(request, "login.html", ctx, status_code=code)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:  # noqa: A002
    return _login_page(request, _safe_next(next), None, status.HTTP_200_OK)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request, session: SessionDep, settings: SettingsDep, guard: GuardDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    csrf_token_: Annotated[str, Form(alias="csrf_token")] = "",
    next: Annotated[str, Form()] = "/",  # noqa: A002
) -> Response:
    target = _safe_next(next)
    text = labels.for_lang(lang_of(request))["text"]
    if not csrf_ok(request, csrf_token_):
        return _login_page(request, target, text["csrf_failed"], status.HTTP_403_FORBIDDEN)
    address = address_key(request.client.host if request.client else None)
    try:
        guard.admit(session, username, address)
        with guard.checking():
            user = authenticate(session, username, password)
    except Throttled as exc:
        return _refused(request, target, exc)
    if user is None:
        log.warning("failed login for %r from %s", username, address)
        guard.failed(session, username, address)
        return _login_page(request, target, text["login_failed"],
                           status.HTTP_401_UNAUTHORIZED)
    guard.succeeded(session, username, address)
    login_id = logins.start(session, user, settings.session_hours)
    request.session.clear()
    request.session["sid"] = login_id
    csrf_token(request)
    log.info("%s (%s) logged in", user.username, user.role)
    # a grid worker has one page, their phone's (roles.HOME)
    target = HOME.get(user.role, target)
    return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)


def _refused(request: Request, target: str, exc: Throttled) -> Response:
    lang = lang_of(request)
    key = "login_locked" if exc.reason == "locked" else "login_throttled"
    text = labels.for_lang(lang)["text"]
    message = text[key]
    page = _login_page(request, target, message.format(s=exc.retry_after),
                       status.HTTP_429_TOO_MANY_REQUESTS)
    page.headers["Retry-After"] = str(exc.retry_after)
    return page


@router.post("/logout")
def logout(
    request: Request, session: SessionDep, hub: HubDep,
    csrf_token_: Annotated[str, Form(alias="csrf_token")] = "",
) -> Response:
    if not csrf_ok(request, csrf_token_):
        return Response("CSRF check failed: log out from the page's button",
                        status_code=status.HTTP_403_FORBIDDEN)
    login_id = request.session.get("sid")
    if isinstance(login_id, str):
        user = logins.user_of(session, login_id)
        if user is not None:  # the alarms they held are free for others (claims.py)
            claims.release_on_logout(session, hub, user)
        logins.end(session, login_id)
    request.session.clear()
    return RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)

"""GET/POST /login and POST /logout: operators sign in with a form.

Both forms carry the session's CSRF token; a successful login starts a new
browser session (fresh CSRF token) so nothing from before it carries over.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dashboard import labels, logins
from dashboard.api.auth import csrf_ok, csrf_token
from dashboard.api.deps import SessionDep, SettingsDep
from dashboard.api.routes.pages import TEMPLATES, lang_of
from dashboard.users import authenticate

log = logging.getLogger("homeguard.centre.login")

router = APIRouter(tags=["login"], include_in_schema=False)


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
    request: Request, session: SessionDep, settings: SettingsDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    csrf_token_: Annotated[str, Form(alias="csrf_token")] = "",
    next: Annotated[str, Form()] = "/",  # noqa: A002
) -> Response:
    target = _safe_next(next)
    text = labels.for_lang(lang_of(request))["text"]
    if not csrf_ok(request, csrf_token_):
        return _login_page(request, target, text["csrf_failed"], status.HTTP_403_FORBIDDEN)
    user = authenticate(session, username, password)
    if user is None:
        log.warning("failed login for %r", username)
        return _login_page(request, target, text["login_failed"],
                           status.HTTP_401_UNAUTHORIZED)
    login_id = logins.start(session, user, settings.session_hours)
    request.session.clear()
    request.session["sid"] = login_id
    csrf_token(request)
    log.info("%s (%s) logged in", user.username, user.role)
    return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)


@router.post("/logout")
def logout(
    request: Request, session: SessionDep,
    csrf_token_: Annotated[str, Form(alias="csrf_token")] = "",
) -> Response:
    if not csrf_ok(request, csrf_token_):
        return Response("CSRF check failed: log out from the page's button",
                        status_code=status.HTTP_403_FORBIDDEN)
    login_id = request.session.get("sid")
    if isinstance(login_id, str):
        logins.end(session, login_id)
    request.session.clear()
    return RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)

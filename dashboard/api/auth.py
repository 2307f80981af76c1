"""Who is asking, and may they: session login, roles, CSRF.

Browser requests carry the signed session cookie (Starlette's
SessionMiddleware) holding a login id and a CSRF token.  Every request
that changes state must echo that token: JSON calls in the X-CSRF-Token
header, HTML forms in a `csrf_token` field.  Gateway routes use bearer
credentials (deps.require_gateway) and never look at the cookie.

Without a login, /api/... answers 401 JSON and pages redirect to /login;
a role without the permission gets 403 JSON naming the roles that have it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, status
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials

from dashboard import logins
from dashboard.api.deps import SessionDep, SettingsDep, bearer, require_gateway
from dashboard.models import User
from dashboard.roles import allowed, roles_with

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"


class LoginRequired(Exception):
    """No valid login: 401 for the API, a redirect to /login for pages."""


def csrf_token(request: Request) -> str:
    """This browser session's CSRF token, made on first use."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_ok(request: Request, given: str | None) -> bool:
    expected = request.session.get("csrf")
    if not given or not isinstance(expected, str):
        return False
    return secrets.compare_digest(given.encode(), expected.encode())


def current_user(request: Request, session: SessionDep) -> User:
    login_id = request.session.get("sid")
    user = logins.user_of(session, login_id) if isinstance(login_id, str) else None
    if user is None:
        request.session.pop("sid", None)
        raise LoginRequired()
    return user


UserDep = Annotated[User, Depends(current_user)]


def require(permission: str) -> Callable[[Request, User], User]:
    """Dependency: the logged-in user, who must hold the permission; on a
    state-changing request the X-CSRF-Token header must match too."""

    def check(request: Request, user: UserDep) -> User:
        if not allowed(user.role, permission):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"role {user.role} may not do {permission}; "
                f"it needs one of: {', '.join(roles_with(permission))}")
        if request.method not in SAFE_METHODS and not csrf_ok(
                request, request.headers.get(CSRF_HEADER)):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"CSRF check failed: send the {CSRF_HEADER} header with the "
                "csrf_token from GET /api/v1/me")
        return user

    return check


def reader(
    request: Request, session: SessionDep, settings: SettingsDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """Read access: a logged-in user who may view alarms, or a gateway
    credential (gateways and reconciliation tools compare what the centre holds)."""
    if creds is not None:
        return f"gateway {require_gateway(session, settings, creds).gateway_id}"
    user = current_user(request, session)
    if not allowed(user.role, "alarm.view"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {user.role} may not view alarms")
    return user.username


ReaderDep = Annotated[str, Depends(reader)]
ViewerDep = Annotated[User, Depends(require("alarm.view"))]
AdminDep = Annotated[User, Depends(require("user.manage"))]


async def login_required(request: Request, _exc: Exception) -> Response:
    if request.url.path.startswith("/api/") or request.url.path == "/openapi.json":
        return JSONResponse(
            {"detail": "login required: sign in at /login (gateways use a bearer token "
                       "only on ingest and feedback)"},
            status_code=status.HTTP_401_UNAUTHORIZED)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}",
                            status_code=status.HTTP_303_SEE_OTHER)

"""Dependencies as Annotated aliases: routes declare `session: SessionDep`."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from dashboard.centre import Centre
from dashboard.live import Hub
from dashboard.loginguard import LoginGuard
from dashboard.settings import Settings

bearer = HTTPBearer(auto_error=False, description="a token from HG_CENTRE_GATEWAY_TOKENS")


def get_centre(request: Request) -> Centre:
    centre: Centre = request.app.state.centre
    return centre


CentreDep = Annotated[Centre, Depends(get_centre)]


def get_settings(centre: CentreDep) -> Settings:
    return centre.settings


def get_hub(centre: CentreDep) -> Hub:
    return centre.hub


def get_db(centre: CentreDep) -> Iterator[Session]:
    with centre.sessions() as session:
        yield session


def get_guard(centre: CentreDep) -> LoginGuard:
    return centre.guard


SettingsDep = Annotated[Settings, Depends(get_settings)]
HubDep = Annotated[Hub, Depends(get_hub)]
GuardDep = Annotated[LoginGuard, Depends(get_guard)]
SessionDep = Annotated[Session, Depends(get_db)]


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"}
    )


def require_gateway(
    settings: SettingsDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """The caller's bearer token, when it is one of the gateway tokens."""
    if creds is None:
        raise _unauthorized("missing 'Authorization: Bearer <gateway token>' header")
    given = creds.credentials.encode()
    if not any(secrets.compare_digest(given, t.encode()) for t in settings.gateway_tokens):
        raise _unauthorized("gateway token not accepted")
    return creds.credentials


GatewayTokenDep = Annotated[str, Depends(require_gateway)]

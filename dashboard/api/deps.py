"""Dependencies as Annotated aliases: routes declare `session: SessionDep`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from dashboard import authaudit, gateways
from dashboard.centre import Centre
from dashboard.gateways import GatewayIdentity
from dashboard.live import Hub
from dashboard.loginguard import LoginGuard
from dashboard.settings import Settings

bearer = HTTPBearer(auto_error=False,
                    description="a gateway's credential (homeguard centre gateway issue)")


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


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def require_gateway(
    session: SessionDep, settings: SettingsDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> GatewayIdentity:
    """The gateway whose credential the bearer token is (issued and not
    revoked, or a bootstrap token of the settings)."""
    if creds is None:
        raise _unauthorized("missing 'Authorization: Bearer <gateway token>' header")
    who = gateways.identify(session, settings, creds.credentials)
    # end this read: a route that writes must begin its transaction with the
    # write lock (db.begin_write), not upgrade a stale SQLite read snapshot
    session.commit()
    if who is None:
        raise _unauthorized("gateway token not accepted")
    return who


GatewayDep = Annotated[GatewayIdentity, Depends(require_gateway)]


def acting_as(session: Session, request: Request, who: GatewayIdentity, claimed: str) -> None:
    """403 (audited) unless the body's gateway is the credential's own."""
    if claimed == who.gateway_id:
        return
    message = (f"this credential is gateway {who.gateway_id}'s: it cannot act as "
               f"gateway {claimed}")
    authaudit.write(session, authaudit.Action.GATEWAY_REFUSED, who.gateway_id, who.gateway_id,
                    client_address(request), f"{request.url.path}: {message}")
    raise HTTPException(status.HTTP_403_FORBIDDEN, message)

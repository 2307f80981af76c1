"""Gateway credentials: one bearer token per gateway, bound to its id.

`issue` makes a random token (shown once), stores only its SHA-256 (the
token has 256 bits of entropy, so a fast hash is safe and costs nothing per
request) and audits it; `revoke` ends it at once (every request looks the
hash up).  At most one credential per gateway is active.

The deprecated bootstrap tokens of the settings (HG_CENTRE_GATEWAY_TOKENS)
are bound the same way: `ID:TOKEN`, or a bare `TOKEN` bound to
HG_CENTRE_GATEWAY_ID.  Nothing accepts a token for "any gateway".

What a gateway may deliver is decided by `refusals` (docs/security.md).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from pydantic import BaseModel
from sqlalchemy import Engine, inspect, select
from sqlalchemy.orm import Session

from dashboard.authaudit import Action, now_ms, record
from dashboard.db import begin_write
from dashboard.models import GatewayCredential
from dashboard.schemas import IngestBatch
from dashboard.settings import Settings, bound_token

GATEWAY_ID = re.compile(r"^[a-z0-9-]{3,32}$")
TOKEN_PREFIX = "hggw_"  # recognisable in a leaked config or a secret scanner
# supervision events a gateway raises about itself (docs/gateway.md)
WARNINGS = frozenset({"data_lost", "disk_low", "shedding"})  # about the gateway itself
OWN_TYPES = frozenset({"gateway_offline", "link_lost", "online"}) | WARNINGS
SELF_ONLY = frozenset({"gateway_offline", "link_lost"}) | WARNINGS


class GatewayError(ValueError):
    """A credential could not be issued or revoked; the message says why."""


@dataclass(frozen=True)
class GatewayIdentity:
    """Who a bearer token is: the gateway and which credential it used."""

    gateway_id: str
    credential: str  # "#<id>" of an issued one, or "setting" for a bootstrap token


class CredentialPublic(BaseModel):
    id: int
    gateway_id: str
    created_ms: int
    created_by: str
    revoked_ms: int | None
    revoked_by: str | None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bootstrap_tokens(settings: Settings) -> list[tuple[str, str]]:
    """(gateway id, token) for every HG_CENTRE_GATEWAY_TOKENS entry."""
    return [(gateway or settings.gateway_id, token)
            for gateway, token in map(bound_token, settings.gateway_tokens)]


def identify(session: Session, settings: Settings, token: str) -> GatewayIdentity | None:
    """The gateway this token belongs to, or None (unknown or revoked)."""
    given = token.encode()
    for gateway, expected in bootstrap_tokens(settings):
        if secrets.compare_digest(given, expected.encode()):
            return GatewayIdentity(gateway, "setting")
    wanted = digest(token)
    row = session.scalar(select(GatewayCredential).where(
        GatewayCredential.token_sha256 == wanted, GatewayCredential.revoked_ms.is_(None)))
    if row is None or not secrets.compare_digest(row.token_sha256, wanted):
        return None
    return GatewayIdentity(row.gateway_id, f"#{row.id}")


def known_gateways(session: Session, settings: Settings) -> set[str]:
    """Every gateway id that has (or had) a credential: ids no device may use."""
    ids = set(session.scalars(select(GatewayCredential.gateway_id).distinct()))
    return ids | {gateway for gateway, _ in bootstrap_tokens(settings)}


def refusals(who: GatewayIdentity, batch: IngestBatch,
             gateways: set[str]) -> list[dict[str, object]]:
    """The events of a batch this gateway may not deliver, as 422 items.

    A gateway speaks for itself and for devices, never for another gateway:
    events about its own id are its own supervision (gateway_offline,
    link_lost, online, its warnings); gateway_offline, link_lost and the
    warnings are about no one else;
    an id that belongs to another gateway is no device of anyone's."""
    out: list[dict[str, object]] = []
    for index, ev in enumerate(batch.events):
        message = None
        if ev.device == who.gateway_id:
            if ev.kind != "supervision" or ev.type not in OWN_TYPES:
                message = (f"{ev.kind} {ev.type} is no event of a gateway; under its own id "
                           f"{who.gateway_id} raises only supervision "
                           f"{', '.join(sorted(OWN_TYPES))}")
        elif ev.device in gateways:
            message = (f"{ev.device} is another gateway; gateway {who.gateway_id} cannot "
                       "raise events for it")
        elif ev.kind == "supervision" and ev.type in SELF_ONLY:
            message = (f"{ev.type} is about the gateway that raises it: device must be "
                       f"{who.gateway_id}")
        if message is not None:
            out.append({"index": index, "device": ev.device, "seq": ev.seq,
                        "where": f"events[{index}] ({ev.device} seq {ev.seq})",
                        "field": "device", "message": message})
    return out


# --- issuing and revoking (homeguard centre gateway, dashboard/gatewaycli.py) ---


def _public(row: GatewayCredential) -> CredentialPublic:
    return CredentialPublic(id=row.id, gateway_id=row.gateway_id, created_ms=row.created_ms,
                            created_by=row.created_by, revoked_ms=row.revoked_ms,
                            revoked_by=row.revoked_by)


def issue(session: Session, gateway_id: str, actor: str, replace: bool = False) -> str:
    """A new credential for the gateway (committed); returns its token, the
    only time it is seen.  With an active one: GatewayError, or with
    `replace` that one is revoked in the same transaction."""
    if not GATEWAY_ID.match(gateway_id):
        raise GatewayError(f"gateway id {gateway_id!r}: 3-32 of a-z, 0-9 and '-'")
    session.commit()
    begin_write(session)
    active = session.scalars(select(GatewayCredential).where(
        GatewayCredential.gateway_id == gateway_id, GatewayCredential.revoked_ms.is_(None))
        .with_for_update()).all()
    if active and not replace:
        session.rollback()
        raise GatewayError(f"gateway {gateway_id} has a credential already (#{active[0].id}): "
                           "revoke it first, or issue with --replace")
    for row in active:
        _revoke_row(session, row, actor, "replaced")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = GatewayCredential(gateway_id=gateway_id, token_sha256=digest(token),
                            created_ms=now_ms(), created_by=actor[:64])
    session.add(row)
    session.flush()
    record(session, Action.GATEWAY_ISSUED, gateway_id, actor, detail=f"credential #{row.id}")
    session.commit()
    return token


def _revoke_row(session: Session, row: GatewayCredential, actor: str, why: str) -> None:
    row.revoked_ms, row.revoked_by = now_ms(), actor[:64]
    record(session, Action.GATEWAY_REVOKED, row.gateway_id, actor,
           detail=f"credential #{row.id} ({why})")


def revoke(session: Session, gateway_id: str, actor: str) -> list[int]:
    """Revoke the gateway's active credentials (committed); their ids."""
    session.commit()
    begin_write(session)
    rows = session.scalars(select(GatewayCredential).where(
        GatewayCredential.gateway_id == gateway_id, GatewayCredential.revoked_ms.is_(None))
        .with_for_update()).all()
    for row in rows:
        _revoke_row(session, row, actor, "revoked")
    session.commit()
    return [row.id for row in rows]


def credentials(session: Session, include_revoked: bool = False) -> list[CredentialPublic]:
    stmt = select(GatewayCredential).order_by(GatewayCredential.gateway_id,
                                              GatewayCredential.id)
    if not include_revoked:
        stmt = stmt.where(GatewayCredential.revoked_ms.is_(None))
    return [_public(row) for row in session.scalars(stmt)]


def any_active(engine: Engine) -> bool:
    """Whether the store holds an active credential (False without the table)."""
    if not inspect(engine).has_table(GatewayCredential.__tablename__):
        return False
    with Session(engine) as session:
        return session.scalar(select(GatewayCredential.id).where(
            GatewayCredential.revoked_ms.is_(None)).limit(1)) is not None


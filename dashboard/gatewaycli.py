"""`homeguard centre gateway issue|revoke|list`: gateway credentials in the
centre's store (dashboard/gateways.py).  `issue` prints the token alone on
stdout, once: TOKEN=$(homeguard centre gateway issue gw-1 --db ...)."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from dashboard import gateways
from dashboard.usercli import DbOpt, open_store
from dashboard.usercli import fail as _fail

app = typer.Typer(help="Gateway credentials: one bearer token per gateway id.",
                  no_args_is_help=True)


def fail(msg: str) -> typer.Exit:
    return _fail(msg, "homeguard centre gateway")


def _when(ms: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime((ms or 0) / 1000))


@app.command("issue")
def issue(
    gateway_id: Annotated[str, typer.Argument(help="The gateway's \\[gateway] id.")],
    db: DbOpt = "sqlite:///./homeguard-centre.db",
    replace: Annotated[bool, typer.Option(
        "--replace", help="Revoke the gateway's current credential in the same step.")] = False,
) -> None:
    """Issue the gateway's credential; its token is printed once, on stdout."""
    with open_store(db) as session:
        try:
            token = gateways.issue(session, gateway_id, "cli", replace)
        except gateways.GatewayError as exc:
            raise fail(str(exc)) from None
    typer.echo(f"gateway {gateway_id}: credential issued. Give the gateway this token as "
               "[centre] token (or HG_GATEWAY_CENTRE_TOKEN); it is not shown again.", err=True)
    typer.echo(token)


@app.command("revoke")
def revoke(gateway_id: str, db: DbOpt = "sqlite:///./homeguard-centre.db") -> None:
    """Revoke the gateway's credential: its next request gets 401."""
    with open_store(db) as session:
        ids = gateways.revoke(session, gateway_id, "cli")
    if not ids:
        raise fail(f"gateway {gateway_id} has no active credential")
    typer.echo(f"gateway {gateway_id}: credential {', '.join(f'#{i}' for i in ids)} revoked")


@app.command("list")
def list_credentials(
    db: DbOpt = "sqlite:///./homeguard-centre.db",
    all_: Annotated[bool, typer.Option("--all", help="Revoked ones too.")] = False,
) -> None:
    """Gateways with their credential (never the token)."""
    with open_store(db) as session:
        for c in gateways.credentials(session, include_revoked=all_):
            state = (f"revoked {_when(c.revoked_ms)} by {c.revoked_by}" if c.revoked_ms
                     else "active")
            typer.echo(f"{c.gateway_id}\t#{c.id}\tissued {_when(c.created_ms)} by "
                       f"{c.created_by}\t{state}")

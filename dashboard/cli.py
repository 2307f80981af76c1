"""`homeguard centre`: run the monitoring centre (ingest API + alarm desk)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from dashboard.settings import Settings, describe_errors

# a browser's open SSE stream never ends by itself: stop waiting after this
GRACEFUL_SHUTDOWN_S = 3


def load_settings(**given: Any) -> Settings:
    """Settings from the environment, overridden by options that were given."""
    return Settings(**{k: v for k, v in given.items() if v not in (None, [])})


def centre(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port to listen on.")] = None,
    db: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL of the alarm store, e.g. sqlite:///c.db.")
    ] = None,
    gateway_token: Annotated[
        list[str] | None,
        typer.Option("--gateway-token", help="Bearer token a gateway may ingest with; repeatable."),
    ] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA zone for shown times.")] = None,
    bootstrap_admin: Annotated[str | None, typer.Option(
        help="USER:PASSWORD of an admin to create when the store has no user yet.")] = None,
) -> None:
    """Run the centre: ingest API for gateways, live alarm desk for operators."""
    try:
        settings = load_settings(
            host=host, port=port, database_url=db, gateway_tokens=gateway_token,
            timezone=timezone, bootstrap_admin=bootstrap_admin,
        )
    except ValidationError as exc:
        for line in describe_errors(exc):
            typer.echo(f"homeguard centre: {line}", err=True)
        raise typer.Exit(2) from None
    _serve(settings)


def _serve(settings: Settings) -> None:
    import uvicorn

    from dashboard.app import create_app
    from dashboard.users import UserError

    if settings.database_url.startswith("sqlite:///"):  # one centre per SQLite file
        from gateway.statelock import InUse, hold

        try:
            hold(Path(settings.database_url.removeprefix("sqlite:///")), "centre", directory=False)
        except InUse as exc:
            typer.echo(f"homeguard centre: cannot start: {exc}", err=True)
            raise typer.Exit(2) from None
    try:
        app = create_app(settings)
    except UserError as exc:
        typer.echo(f"homeguard centre: bootstrap_admin (HG_CENTRE_BOOTSTRAP_ADMIN): {exc}",
                   err=True)
        raise typer.Exit(2) from None
    typer.echo(f"Homeguard centre: alarm desk at http://{settings.host}:{settings.port}/")
    typer.echo(f"  ingest API: POST http://{settings.host}:{settings.port}/api/v1/ingest")
    uvicorn.run(
        app, host=settings.host, port=settings.port, log_level="info",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )


def register(app: typer.Typer) -> None:
    from dashboard.usercli import app as users

    app.command("centre")(centre)
    app.add_typer(users, name="centre-user")

"""`homeguard centre`: run the monitoring centre (ingest API + alarm desk);
`homeguard centre migrate`: bring its store to this release's schema;
`homeguard centre gateway`: gateway credentials (dashboard/gatewaycli.py);
`homeguard centre registry import`: a registry file (dashboard/registrycli.py)."""

from __future__ import annotations

import fcntl
import os
import socket
import sys
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
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port to listen on.")] = None,
    db: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL of the alarm store, e.g. sqlite:///c.db.")
    ] = None,
    gateway_token: Annotated[
        list[str] | None,
        typer.Option("--gateway-token", metavar="ID:TOKEN", help="Deprecated: a bearer token "
                     "bound to gateway ID (a bare TOKEN is bound to HG_CENTRE_GATEWAY_ID, "
                     "gw-1); repeatable. Issue credentials with `homeguard centre gateway "
                     "issue ID` instead."),
    ] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA zone for shown times.")] = None,
    bootstrap_admin: Annotated[str | None, typer.Option(
        help="USER:PASSWORD of an admin to create when the store has no user yet.")] = None,
    migrate: Annotated[bool, typer.Option(
        "--migrate", help="Migrate a store made by an older release before starting "
        "(without it such a store is refused; an empty one is always created).")] = False,
) -> None:
    """Run the centre: ingest API for gateways, live alarm desk for operators."""
    if ctx.invoked_subcommand is not None:
        return
    settings = _settings(
        "homeguard centre", host=host, port=port, database_url=db,
        gateway_tokens=gateway_token, timezone=timezone, bootstrap_admin=bootstrap_admin,
    )
    _serve(settings, migrate)


def migrate_store(
    db: Annotated[str, typer.Option(
        envvar="HG_CENTRE_DATABASE_URL", help="SQLAlchemy URL of the alarm store.")
    ] = Settings.model_fields["database_url"].default,
    new: Annotated[str | None, typer.Option(
        "--new", metavar="MESSAGE", help="For developers: write the next revision from the "
        "models' changes into dashboard/migrations/versions/ instead.")] = None,
) -> None:
    """Bring the alarm store to this release's schema (stop every centre on it first)."""
    from dashboard.migrate import new_revision

    if new is not None:
        path = new_revision(new)
        if path is None:
            raise _fail("homeguard centre migrate", "the models match the head revision: "
                        "nothing to write")
        typer.echo(f"Wrote {path}: read it through, then run the migration tests.")
        return
    _hold(db, "homeguard centre migrate")
    _prepare_store(db, migrate=True, prog="homeguard centre migrate", quiet=False)


def _settings(prog: str, **given: Any) -> Settings:
    try:
        return load_settings(**given)
    except ValidationError as exc:
        for line in describe_errors(exc):
            typer.echo(f"{prog}: {line}", err=True)
        raise typer.Exit(2) from None


def _fail(prog: str, message: str) -> typer.Exit:
    typer.echo(f"{prog}: {message}", err=True)
    return typer.Exit(2)


_HELD: list[int] = []  # lock files kept open (and so locked) until exit


def _hold(url: str, prog: str) -> None:
    """One centre per SQLite file: an exclusive flock on `<file>.lock`, which
    names its holder; the kernel drops it when the holder exits (kill -9
    too). PostgreSQL needs none: it serves many centres at once."""
    if not url.startswith("sqlite:///"):
        return
    store = Path(url.removeprefix("sqlite:///")).resolve()
    store.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(store.with_name(store.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 300, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise _fail(prog, f"cannot start: {store} is in use by {holder}; stop it first, "
                          "or give this centre its own store") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} (centre: {' '.join(sys.argv)[:200]})\n".encode(), 0)
    _HELD.append(fd)


def _prepare_store(url: str, migrate: bool, prog: str, quiet: bool = True) -> None:
    """Create an empty store; migrate an older one only when told to, else
    refuse with what to run (the store holds alarms: the operator backs it up
    first).  Prints what it did; `quiet`: nothing when there was nothing to do."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    from dashboard import migrate as m
    from dashboard.db import make_engine

    shown = make_url(url).render_as_string(hide_password=True)
    engine = make_engine(url)
    try:
        status = m.status(engine)
        if status.needs_migrating and not migrate:
            raise _fail(prog, f"the store {shown} is {status} and needs migrating to "
                        f"{status.head}: back it up, then run `homeguard centre migrate "
                        f"--db {shown}` (or start with --migrate)")
        if status.stand is not m.Stand.CURRENT or not quiet:
            typer.echo(str(m.upgrade(engine)))
    except m.MigrationError as exc:
        raise _fail(prog, f"{shown}: {exc}") from None
    except OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise _fail(prog, f"cannot open the store {shown}: {reason}") from None
    finally:
        engine.dispose()


def _need_gateways(settings: Settings) -> None:
    """Refuse to start when no gateway could deliver: no credential in the
    store (looked at without creating it) and no bootstrap token."""
    from sqlalchemy.engine import make_url

    from dashboard.db import make_engine
    from dashboard.gateways import any_active

    if settings.gateway_tokens:
        return
    url = make_url(settings.database_url)
    found = False
    if url.get_backend_name() != "sqlite" or Path(url.database or "").is_file():
        engine = make_engine(settings.database_url)
        try:
            found = any_active(engine)
        except Exception:  # an unreachable store is _prepare_store's to report
            found = True
        finally:
            engine.dispose()
    if not found:
        raise _fail("homeguard centre", "gateway_tokens (HG_CENTRE_GATEWAY_TOKENS): no gateway "
                    "token configured and no gateway credential in the store: issue one with "
                    "`homeguard centre gateway issue GATEWAY_ID --db URL` (or give "
                    "--gateway-token GATEWAY_ID:TOKEN), else no gateway could deliver alarms")


def _serve(settings: Settings, migrate: bool = False) -> None:
    import uvicorn

    from dashboard.app import create_app
    from dashboard.gateways import bootstrap_tokens
    from dashboard.users import UserError

    _need_gateways(settings)
    _hold(settings.database_url, "homeguard centre")
    listener = _listen(settings.host, settings.port, "homeguard centre")
    _prepare_store(settings.database_url, migrate, "homeguard centre")
    try:
        app = create_app(settings)
    except UserError as exc:
        typer.echo(f"homeguard centre: bootstrap_admin (HG_CENTRE_BOOTSTRAP_ADMIN): {exc}",
                   err=True)
        raise typer.Exit(2) from None
    typer.echo(f"Homeguard centre: alarm desk at http://{settings.host}:{settings.port}/")
    typer.echo(f"  ingest API: POST http://{settings.host}:{settings.port}/api/v1/ingest")
    for gateway, _ in bootstrap_tokens(settings):
        typer.echo(f"  a --gateway-token is bound to gateway {gateway} (deprecated: issue its "
                   f"credential with `homeguard centre gateway issue {gateway}`)")
    config = uvicorn.Config(app, log_level="info",
                            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    uvicorn.Server(config).run(sockets=[listener])


def _listen(host: str, port: int, prog: str) -> socket.socket:
    """The centre's listening socket, bound before anything says where the
    desk is: a port in use is one line, not a URL followed by a failure."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        raise _fail(prog, f"cannot listen on {host}:{port}: {why} (another "
                          "centre or program has it? stop it, or choose another --port)") from None


def register(app: typer.Typer) -> None:
    from dashboard.gatewaycli import app as gateways
    from dashboard.registrycli import app as registry
    from dashboard.usercli import app as users

    group = typer.Typer(add_completion=False)
    group.callback(invoke_without_command=True)(centre)
    group.command("migrate")(migrate_store)
    group.add_typer(gateways, name="gateway")
    group.add_typer(registry, name="registry")
    app.add_typer(group, name="centre")
    app.add_typer(users, name="centre-user")

"""`homeguard centre-user add|list|set-password|disable|locks|unlock|audit`:
operator accounts in the centre's database, from the command line (the
first admin, any account when the web UI is not at hand, lifting a login
lock, reading the auth audit)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dashboard import logins
from dashboard.authaudit import recent
from dashboard.db import create_tables, make_engine, make_sessions
from dashboard.loginguard import LoginGuard, locks, make_storage
from dashboard.models import User
from dashboard.roles import ROLES
from dashboard.settings import Settings, describe_errors
from dashboard.users import UserError, check_password, create_user, hash_password

app = typer.Typer(help="Operator accounts of the centre.", no_args_is_help=True)

DbOpt = Annotated[str, typer.Option(
    "--db", envvar="HG_CENTRE_DATABASE_URL", help="SQLAlchemy URL of the centre's store.")]
PasswordOpt = Annotated[str | None, typer.Option(
    envvar="HG_CENTRE_NEW_PASSWORD",
    help="The password; without it one is generated and printed.")]


@contextmanager
def open_store(db: str) -> Iterator[Session]:
    """A session on the store, created or migrated as the centre would."""
    engine = make_engine(db)
    try:
        create_tables(engine)
        with make_sessions(engine)() as session:
            yield session
    finally:
        engine.dispose()


def _sessions_of(session: Session) -> sessionmaker[Session]:
    return make_sessions(session.get_bind().engine)


def fail(msg: str, prog: str = "homeguard centre-user") -> typer.Exit:
    typer.echo(f"{prog}: {msg}", err=True)
    return typer.Exit(2)


def _find(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise fail(f"no user {username!r}")
    return user


@app.command("add")
def add(
    username: str,
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")],
    db: DbOpt = "sqlite:///./homeguard-centre.db",
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    password: PasswordOpt = None,
) -> None:
    """Create a user."""
    generated = password is None
    password = password or secrets.token_urlsafe(12)
    with open_store(db) as session:
        try:
            create_user(session, username, password, role, name)
        except UserError as exc:
            raise fail(str(exc)) from None
        session.commit()
    typer.echo(f"user {username} ({role}) created")
    if generated:
        typer.echo(f"password: {password}")


@app.command("list")
def list_users(db: DbOpt = "sqlite:///./homeguard-centre.db") -> None:
    """Users, their roles and whether they may log in."""
    with open_store(db) as session:
        for u in session.scalars(select(User).order_by(User.username)):
            typer.echo(f"{u.username}\t{u.role}\t{'active' if u.active else 'disabled'}"
                       f"\t{u.display_name}")


@app.command("set-password")
def set_password(username: str, db: DbOpt = "sqlite:///./homeguard-centre.db",
                 password: PasswordOpt = None) -> None:
    """Give a user a new password (ends their logins)."""
    generated = password is None
    password = password or secrets.token_urlsafe(12)
    try:
        check_password(password)
    except UserError as exc:
        raise fail(str(exc)) from None
    with open_store(db) as session:
        user = _find(session, username)
        user.password_hash = hash_password(password)
        logins.end_all(session, user.id)
        session.commit()
    typer.echo(f"password of {username} changed" + (f": {password}" if generated else ""))


@app.command("disable")
def disable(username: str, db: DbOpt = "sqlite:///./homeguard-centre.db") -> None:
    """Stop a user logging in (ends their logins at once)."""
    with open_store(db) as session:
        user = _find(session, username)
        user.active = False
        logins.end_all(session, user.id)
        session.commit()
    typer.echo(f"user {username} disabled")


def _when(ms: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime((ms or 0) / 1000))


@app.command("locks")
def list_locks(db: DbOpt = "sqlite:///./homeguard-centre.db") -> None:
    """Usernames locked now after failed logins, and until when."""
    with open_store(db) as session:
        for lock in locks(session):
            typer.echo(f"{lock.username}\tlocked until {_when(lock.locked_until_ms)}"
                       f"\t{lock.failures} failures, the last from {lock.last_address}")


@app.command("unlock")
def unlock(username: str, db: DbOpt = "sqlite:///./homeguard-centre.db") -> None:
    """Lift a username's login lock and forget its failed logins (audited)."""
    try:  # the rate limits and their storage as the centre has them
        settings = Settings(database_url=db)
    except ValidationError as exc:
        raise fail("; ".join(describe_errors(exc))) from None
    with open_store(db) as session:
        guard = LoginGuard(settings, make_storage(settings, _sessions_of(session)))
        was = guard.unlock(session, username, "cli")
    typer.echo(f"{username} unlocked" if was else f"{username} was not locked; "
               "its failed logins are forgotten")


@app.command("audit")
def audit(
    subject: Annotated[str | None, typer.Argument(
        help="Only rows about this username or gateway id.")] = None,
    db: DbOpt = "sqlite:///./homeguard-centre.db",
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
) -> None:
    """The auth audit, newest first: logins, failures, locks, unlocks, gateways."""
    with open_store(db) as session:
        for row in recent(session, subject, limit):
            typer.echo(f"{_when(row.at_ms)}\t{row.action}\t{row.subject}\tby {row.actor}"
                       f"\t{row.address or '-'}\t{row.detail}")

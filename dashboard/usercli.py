"""`homeguard centre-user add|list|set-password|disable`: operator accounts
in the centre's database, from the command line (the first admin, and any
account when the web UI is not at hand)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard import logins
from dashboard.db import create_tables, make_engine, make_sessions
from dashboard.models import User
from dashboard.roles import ROLES
from dashboard.users import UserError, check_password, create_user, hash_password

app = typer.Typer(help="Operator accounts of the centre.", no_args_is_help=True)

DbOpt = Annotated[str, typer.Option(
    "--db", envvar="HG_CENTRE_DATABASE_URL", help="SQLAlchemy URL of the centre's store.")]
PasswordOpt = Annotated[str | None, typer.Option(
    envvar="HG_CENTRE_NEW_PASSWORD",
    help="The password; without it one is generated and printed.")]


@contextmanager
def _store(db: str) -> Iterator[Session]:
    engine = make_engine(db)
    try:
        create_tables(engine)
        with make_sessions(engine)() as session:
            yield session
    finally:
        engine.dispose()


def _fail(msg: str) -> typer.Exit:
    typer.echo(f"homeguard centre-user: {msg}", err=True)
    return typer.Exit(2)


def _find(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise _fail(f"no user {username!r}")
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
    with _store(db) as session:
        try:
            create_user(session, username, password, role, name)
        except UserError as exc:
            raise _fail(str(exc)) from None
        session.commit()
    typer.echo(f"user {username} ({role}) created")
    if generated:
        typer.echo(f"password: {password}")


@app.command("list")
def list_users(db: DbOpt = "sqlite:///./homeguard-centre.db") -> None:
    """Users, their roles and whether they may log in."""
    with _store(db) as session:
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
        raise _fail(str(exc)) from None
    with _store(db) as session:
        user = _find(session, username)
        user.password_hash = hash_password(password)
        logins.end_all(session, user.id)
        session.commit()
    typer.echo(f"password of {username} changed" + (f": {password}" if generated else ""))


@app.command("disable")
def disable(username: str, db: DbOpt = "sqlite:///./homeguard-centre.db") -> None:
    """Stop a user logging in (ends their logins at once)."""
    with _store(db) as session:
        user = _find(session, username)
        user.active = False
        logins.end_all(session, user.id)
        session.commit()
    typer.echo(f"user {username} disabled")

"""Alembic's environment for the centre: run by dashboard/migrate.py, which
hands over a connection already inside the transaction (and holding the
lock) that the whole migration runs in.  There is no alembic.ini: the
configuration is built in migrate.config()."""

from __future__ import annotations

from alembic import context

from dashboard.migrate import context_options

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the centre's migrations run through `homeguard centre migrate`")
context.configure(connection=connection, **context_options())
with context.begin_transaction():
    context.run_migrations()

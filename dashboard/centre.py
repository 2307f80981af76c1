"""What one running centre holds: its settings, database, live hub, the
key its session cookies are signed with and its login guard."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from dashboard.db import create_tables, make_engine, make_sessions
from dashboard.live import Hub
from dashboard.loginguard import LoginGuard, make_storage
from dashboard.settings import Settings
from dashboard.users import bootstrap_admin

log = logging.getLogger("homeguard.centre")


@dataclass
class Centre:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    hub: Hub
    session_secret: str
    guard: LoginGuard
    # device status as gateways report it, for the live device board
    # (routes/devices.py): items name the devices whose status changed
    devices: Hub = field(default_factory=Hub)

    @classmethod
    def open(cls, settings: Settings) -> Centre:
        engine = make_engine(settings.database_url)
        create_tables(engine)
        sessions = make_sessions(engine)
        if settings.bootstrap_admin:
            with sessions() as session:
                bootstrap_admin(session, settings.bootstrap_admin)
        secret = settings.session_secret
        if secret is None:
            log.info("no session secret configured: logins end when the centre restarts")
            secret = secrets.token_urlsafe(32)
        guard = LoginGuard(settings, make_storage(settings, sessions))
        return cls(settings, engine, sessions, Hub(settings.stream_queue), secret, guard)

    def close(self) -> None:
        self.engine.dispose()

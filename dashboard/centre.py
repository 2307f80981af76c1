"""What one running centre holds: its settings, database and live hub."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from dashboard.db import create_tables, make_engine, make_sessions
from dashboard.live import Hub
from dashboard.settings import Settings


@dataclass
class Centre:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    hub: Hub

    @classmethod
    def open(cls, settings: Settings) -> Centre:
        engine = make_engine(settings.database_url)
        create_tables(engine)
        return cls(settings, engine, make_sessions(engine), Hub(settings.stream_queue))

    def close(self) -> None:
        self.engine.dispose()

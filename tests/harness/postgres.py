"""Fixture: a real PostgreSQL (Debian's postgresql package) on a free
loopback port, its cluster in a fresh temporary directory.

PostgreSQL refuses to run as root, so when the tests run as root the
cluster belongs to the `postgres` system user (runuser). The database
`homeguard` is created for user `hg` with trust authentication on
127.0.0.1 only.

    def test_x(postgres):
        create_engine(postgres.url)   # postgresql+psycopg://hg@127.0.0.1:<port>/homeguard
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.proc import LOOPBACK, servers_required
from tests.harness.servers import Server, _serve

DB, USER = "homeguard", "hg"


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    return Path(found[-1]).parent if found else None


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


class PostgresServer(Server):
    name = "postgres"

    def __init__(self, bindir: Path, root: Path) -> None:
        super().__init__(str(bindir / "postgres"), root)
        self.bindir = bindir
        self.data = self.root / "data"
        self.sockets = self.root / "sock"
        self.url = f"postgresql+psycopg://{USER}@{LOOPBACK}:{self.port}/{DB}"
        self._init()

    def _init(self) -> None:
        self.data.mkdir()
        self.sockets.mkdir()
        if os.geteuid() == 0:
            os.chmod(self.root, 0o755)
            for d in (self.data, self.sockets):
                shutil.chown(d, "postgres", "postgres")
        subprocess.run(_as_owner([str(self.bindir / "initdb"), "-D", str(self.data), "-U",
                                  USER, "--auth=trust", "-E", "UTF8", "--no-sync"]),
                       check=True, capture_output=True)

    def argv(self) -> list[str]:
        return _as_owner([self.binary, "-D", str(self.data), "-h", LOOPBACK, "-p",
                          str(self.port), "-k", str(self.sockets), "-c", "fsync=on"])

    def ready(self) -> bool:
        r = subprocess.run([str(self.bindir / "pg_isready"), "-h", LOOPBACK, "-p",
                            str(self.port)], capture_output=True)
        return r.returncode == 0

    def fresh_database(self) -> str:
        """A new empty database; its SQLAlchemy URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"host={LOOPBACK} port={self.port} user={USER} dbname={DB}",
                             autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return f"postgresql+psycopg://{USER}@{LOOPBACK}:{self.port}/{name}"

    def start(self) -> PostgresServer:
        super().start()
        subprocess.run([str(self.bindir / "createdb"), "-h", LOOPBACK, "-p", str(self.port),
                        "-U", USER, DB], capture_output=True)  # exists after a restart: fine
        return self


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    bindir = _bindir()
    if bindir is None:
        msg = "PostgreSQL is not installed (Debian: apt-get install postgresql)"
        if servers_required():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    root = Path(tempfile.mkdtemp(prefix="hg-pg-"))
    try:
        yield from _serve(PostgresServer(bindir, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)

"""The real `homeguard centre` for the alarm desk's tests (issue 18), on
SQLite and on a real PostgreSQL, with a few operators, and a registered
household so desk rows have an address and a grid cell.

    def test_x(desk: DeskCentre): ...                 # both databases

    @pytest.mark.parametrize("centre_env", [{"HG_CENTRE_CLAIM_IDLE_S": "2"}])
    def test_y(desk: DeskCentre): ...                 # with these settings

    def test_z(bare_centre: DeskCentre): ...          # only the bootstrap admin

    def test_w(shared_desk: DeskCentre): ...          # one centre per module and
                                                      # database: own devices, ids looked up
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness.postgres import DB, USER, PostgresServer
from tests.harness.proc import LOOPBACK, Proc, free_port
from tests.test_centre_browser import ADMIN, PASSWORD, CentreProc, homeguard_argv

OPERATORS = {"olga": "operator", "oscar": "operator", "sam": "supervisor", "tom": "technician"}
USER_PASSWORD = "desk-operator-pw1"
HOUSEHOLD = {"code": "H-0101", "address": "3号楼 2单元 201", "compound": "和平花园",
             "community": "和平社区", "grid_cell": "G-07",
             "contacts": [{"name": "王芳", "phone": "13800000001", "relation": "女儿"}]}
CELL = {"code": "G-07", "name": "和平第七网格", "community": "和平社区",
        "worker_name": "张三", "worker_phone": "13900000007"}
REGISTERED = "hg-b-0101"


class DeskCentre(CentreProc):
    db: str = "sqlite"

    def operator(self, name: str) -> httpx.Client:
        return self.client(name, USER_PASSWORD)


def _start(tmp_path: Path, db_url: str, env: dict[str, str],
           register: bool = True) -> Iterator[DeskCentre]:
    port = free_port()
    argv = [*homeguard_argv(), "centre", "--host", "127.0.0.1", "--port", str(port),
            "--db", db_url, "--gateway-token", "gw-browser-token",
            "--bootstrap-admin", f"{ADMIN}:{PASSWORD}"]
    proc = Proc("centre", argv, tmp_path, env=env)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    proc.start()
    running = DeskCentre(proc, url)
    try:
        proc.wait_ready(healthy, timeout=60)
        if not register:
            yield running
            return
        admin = running.client()
        for name, role in OPERATORS.items():
            r = admin.post("/api/v1/users", json={"username": name, "password": USER_PASSWORD,
                                                  "role": role, "display_name": name.title()})
            assert r.status_code == 201, r.text
        assert admin.post("/api/v1/registry/grid-cells", json=CELL).status_code == 201
        assert admin.post("/api/v1/registry/households", json=HOUSEHOLD).status_code == 201
        r = admin.post("/api/v1/registry/devices", json={
            "device_id": REGISTERED, "type": "button", "household": HOUSEHOLD["code"]})
        assert r.status_code == 201, r.text
        yield running
    finally:
        for c in running.clients:
            c.close()
        proc.stop()


@pytest.fixture
def centre_env() -> dict[str, str]:
    """HG_CENTRE_* settings of the `desk` centre (parametrize to change)."""
    return {}


def _clear_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("HG_CENTRE_"):  # the test's settings alone configure it
            monkeypatch.delenv(name)


def _db_url(request: pytest.FixtureRequest, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> str:
    _clear_env(monkeypatch)
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres").fresh_database())
    return f"sqlite:///{tmp_path / 'centre.db'}"


class RegisteredStores:
    """The registered store (operators, grid cell, household, device) made
    once per session and database by a real centre, then copied for each
    centre that wants it: users' password hashing and the registry's
    requests are not paid again for every test."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.made: dict[str, str] = {}  # database -> the template's SQLite path or name

    def copy(self, request: pytest.FixtureRequest, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> str:
        """A new store as the template, its URL (the test's HG_CENTRE_* cleared)."""
        db = request.param
        if db not in self.made:
            self.made[db] = self._make(request, monkeypatch)
        _clear_env(monkeypatch)
        if db == "postgresql":
            return _pg_copy(request.getfixturevalue("postgres"), self.made[db])
        target = tmp_path / "centre.db"
        for suffix in ("", "-wal"):  # a stopped centre's WAL, if it left one
            if Path(self.made[db] + suffix).exists():
                shutil.copyfile(self.made[db] + suffix, f"{target}{suffix}")
        return f"sqlite:///{target}"

    def _make(self, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
        folder = Path(tempfile.mkdtemp(prefix=request.param, dir=self.folder))  # new each try
        url = _db_url(request, folder, monkeypatch)
        for _ in _start(folder, url, {}):  # registered, then stopped
            pass
        return url.rsplit("/", 1)[1] if request.param == "postgresql" else str(
            folder / "centre.db")


def _pg_copy(server: PostgresServer, template: str) -> str:
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"host={LOOPBACK} port={server.port} user={USER} dbname={DB}",
                         autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
    return f"postgresql+psycopg://{USER}@{LOOPBACK}:{server.port}/{name}"


_STORES: list[RegisteredStores] = []  # the session's (a fixture would need importing)


def registered_stores(request: pytest.FixtureRequest) -> RegisteredStores:
    if not _STORES:
        made = request.getfixturevalue("tmp_path_factory").mktemp("desk-stores")
        _STORES.append(RegisteredStores(made))
    return _STORES[0]


@pytest.fixture(params=["sqlite", "postgresql"])
def bare_centre(request: pytest.FixtureRequest, tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[DeskCentre]:
    """A running centre with only the bootstrap admin, on each database."""
    for running in _start(tmp_path, _db_url(request, tmp_path, monkeypatch), {},
                          register=False):
        running.db = request.param
        yield running


@pytest.fixture(params=["sqlite", "postgresql"])
def desk(request: pytest.FixtureRequest, tmp_path: Path, centre_env: dict[str, str],
         monkeypatch: pytest.MonkeyPatch) -> Iterator[DeskCentre]:
    """A running centre with operators and one registered household, on each
    database (a copy of the session's registered store)."""
    url = registered_stores(request).copy(request, tmp_path, monkeypatch)
    for running in _start(tmp_path, url, centre_env, register=False):
        running.db = request.param
        yield running


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared_desk(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeskCentre]:
    """As `desk`, one centre for a whole module on each database: its tests
    use devices of their own and look their alarms' ids up (others' alarms
    stay on the desk)."""
    tmp = tmp_path_factory.mktemp("desk")
    with pytest.MonkeyPatch.context() as mp:
        for running in _start(tmp, registered_stores(request).copy(request, tmp, mp), {},
                              register=False):
            running.db = request.param
            yield running

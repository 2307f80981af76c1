"""Fixtures: real VictoriaMetrics, InfluxDB 1.x and Redis on free loopback ports.

Each fixture is session-scoped: one process for the whole run, data in a tmp
directory, stopped at the end.  `stop()`, `kill()` (SIGKILL, a power cut),
`start()` and `restart()` keep the port and the data directory, so fault
tests can take a server away and bring it back; bring it back in a
`finally` so later tests find it running.  When a test that uses one of
these fails, the tail of the server's log is added to the report.

    def test_x(victoria, influxdb1, redis_server):
        InfluxDBClient(url=victoria.influx_url, token="x", org="x")
        victoria.wait_for_samples('hg_telemetry_rms{dev="hg-e-0001"}')
        influxdb1.create_database("hg"); influxdb1.query("hg", "SELECT * FROM m")
        redis.Redis.from_url(redis_server.url)

`persistent_redis` (per test) is a Redis with an fsynced append-only file.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from homeguard.bench import servers
from homeguard.bench.servers import LOOPBACK, RedisServer, Server, free_port, http_ok, wait_until
from tests.harness.proc import require_binary

HTTP_TIMEOUT = 10.0


class VictoriaMetrics(servers.VictoriaMetrics):
    """The benchmarks' VictoriaMetrics (homeguard/bench/servers.py) with the
    tests' queries."""

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query at `at` (default: now, to the ms) after a flush; the
        `result` list of /api/v1/query."""
        self.flush()
        # an explicit time: VictoriaMetrics' default one can miss this second's points
        at = time.time() if at is None else at
        params = {"query": promql, "nocache": "1", "time": f"{at:.3f}"}
        r = httpx.get(self.url + "/api/v1/query", params=params, timeout=HTTP_TIMEOUT)
        if r.status_code != 200:
            raise AssertionError(f"query {promql!r} failed: {r.status_code} {r.text}")
        return list(r.json()["data"]["result"])

    def wait_for_samples(self, match: str, count: int = 1,
                         timeout: float = 10.0) -> list[dict[str, Any]]:
        """Poll export(match) until it holds at least `count` samples in all; return it."""
        found: list[dict[str, Any]] = []

        def enough() -> bool:
            found[:] = self.export(match)
            return sum(len(s["values"]) for s in found) >= count

        try:
            wait_until(enough, timeout, f"{count} samples of {match}", interval=0.1)
        except TimeoutError as e:
            raise AssertionError(f"{e}; VictoriaMetrics has {found}") from None
        return found


INFLUXDB1_CONF = """\
reporting-disabled = true
bind-address = "{host}:{rpc_port}"

[meta]
  dir = "{root}/meta"
  retention-autocreate = true
  logging-enabled = false

[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  wal-fsync-delay = "0s"
  index-version = "inmem"
  query-log-enabled = false

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false

[http]
  enabled = true
  bind-address = "{host}:{port}"
  auth-enabled = false
  log-enabled = false
  pprof-enabled = false

[logging]
  level = "warn"
  suppress-logo = true

[[graphite]]
  enabled = false

[[collectd]]
  enabled = false

[[opentsdb]]
  enabled = false

[[udp]]
  enabled = false
"""


class InfluxDB1(Server):
    """InfluxDB 1.x (Debian's influxd) with its config, meta, data and wal in tmp."""

    name = "influxd"

    def __init__(self, binary: str, root: Path) -> None:
        super().__init__(binary, root)
        self.rpc_port = free_port()
        while self.rpc_port == self.port:
            self.rpc_port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.config_path = self.root / "influxdb.conf"
        self.config_path.write_text(INFLUXDB1_CONF.format(
            host=LOOPBACK, port=self.port, rpc_port=self.rpc_port, root=self.root))

    def argv(self) -> list[str]:
        return [self.binary, "run", "-config", str(self.config_path)]

    def ready(self) -> bool:
        return http_ok(self.url + "/ping", 204)

    def query(self, db: str, influxql: str, epoch: str = "ns") -> dict[str, Any]:
        """POST /query; the JSON answer. Errors in the answer raise AssertionError."""
        r = httpx.post(self.url + "/query", params={"db": db, "q": influxql, "epoch": epoch},
                       timeout=HTTP_TIMEOUT)
        body = r.json()
        errors = [res["error"] for res in body.get("results", []) if "error" in res]
        if r.status_code != 200 or "error" in body or errors:
            raise AssertionError(f"InfluxQL {influxql!r} failed: {r.status_code} {r.text}")
        return dict(body)

    def create_database(self, name: str) -> None:
        self.query(name, f'CREATE DATABASE "{name}"')

    def write(self, db: str, lines: str, precision: str = "ns") -> None:
        """POST line protocol to the v1 /write endpoint."""
        r = httpx.post(self.url + "/write", params={"db": db, "precision": precision},
                       content=lines.encode(), timeout=HTTP_TIMEOUT)
        if r.status_code != 204:
            raise AssertionError(f"write to {db} failed: {r.status_code} {r.text}")


S = TypeVar("S", bound=Server)


def _serve(server: S) -> Iterator[S]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    binary = require_binary("victoria-metrics", "Debian: apt-get install victoria-metrics")
    yield from _serve(VictoriaMetrics(binary, tmp_path_factory.mktemp("victoria")))


@pytest.fixture(scope="session")
def influxdb1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB1]:
    binary = require_binary("influxd", "Debian: apt-get install influxdb")
    yield from _serve(InfluxDB1(binary, tmp_path_factory.mktemp("influxdb1")))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    binary = require_binary("redis-server", "Debian: apt-get install redis-server")
    yield from _serve(RedisServer(binary, tmp_path_factory.mktemp("redis")))


@pytest.fixture
def persistent_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own with an fsynced append-only file:
    restart() and kill()+start() keep every acknowledged write."""
    binary = require_binary("redis-server", "Debian: apt-get install redis-server")
    yield from _serve(RedisServer(binary, tmp_path / "redis", persistent=True))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """On a failing test, show the log tail of every server it used."""
    report = yield
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, Server) and value.logs():
                report.sections.append((f"{value.name} log (tail)", value.logs()))
    return report

"""Real server processes on free loopback ports, as the benchmarks start them
(the tests' harness starts its servers with the same classes).

A `Proc` is one process with its output in a log file, shown when it fails;
a `Server` is a process on a fixed port with a data dir that outlives
restarts (`stop()`, `kill()` a power cut, `start()`, `restart()`).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import redis

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 30.0
# Chromium as the benchmarks and the browser tests launch it
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    # without these Chromium reaches out to the network, which this machine refuses
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def port_open(port: int, host: str = LOOPBACK) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def http_ok(url: str, status: int = 200) -> bool:
    """The URL answers with this status right now."""
    try:
        return httpx.get(url, timeout=1.0).status_code == status
    except httpx.HTTPError:
        return False


class Proc:
    """One server process with its output in a log file, shown when it fails."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_dir: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_dir) / f"{name}.log"
        self.env = env
        self.cwd = cwd
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        env = dict(os.environ)
        env.update(self.env or {})
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.popen = subprocess.Popen(
            self.argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.cwd,
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def logs(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except FileNotFoundError:
            return ""

    def wait_ready(self, check: Callable[[], bool], timeout: float = 30.0) -> Proc:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited early:\n{self.logs()}")
            if check():
                return self
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} not ready after {timeout:.0f}s:\n{self.logs()}")

    def wait_port(self, port: int, timeout: float = 30.0) -> Proc:
        return self.wait_ready(lambda: port_open(port), timeout)

    def signal(self, sig: int) -> None:
        if self.alive():
            assert self.popen is not None
            os.killpg(self.popen.pid, sig)

    def kill(self) -> None:
        """SIGKILL, no chance to clean up: what a power cut does."""
        self.signal(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within timeout."""
        if self.popen is None:
            return None
        if self.alive():
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.popen.returncode


class Server:
    """One server process on a fixed loopback port with a data dir that outlives restarts."""

    name = "server"

    def __init__(self, binary: str, root: Path) -> None:
        self.binary = binary
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.host = LOOPBACK
        self.port = free_port()
        self.proc: Proc | None = None

    def argv(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def running(self) -> bool:
        return self.proc is not None and self.proc.alive()

    def start(self) -> Server:
        """Start (no-op when running) and return once it answers requests."""
        if not self.running():
            self.proc = Proc(self.name, self.argv(), self.root).start()
            self.proc.wait_ready(self.ready, START_TIMEOUT)
        return self

    def stop(self) -> None:
        """Graceful stop (SIGTERM): the server flushes what it holds."""
        if self.proc is not None:
            self.proc.stop()

    def kill(self) -> None:
        """SIGKILL: no chance to flush, like a power cut."""
        if self.proc is not None:
            self.proc.kill()

    def restart(self) -> Server:
        self.stop()
        return self.start()

    def logs(self, tail: int = 4000) -> str:
        return self.proc.logs(tail) if self.proc is not None else ""


class RedisServer(Server):
    """redis-server.  By default without persistence: a restart empties it.
    persistent=True keeps an append-only file in its dir, fsynced on every
    write, so even kill() loses nothing acknowledged."""

    name = "redis-server"

    def __init__(self, binary: str, root: Path, persistent: bool = False) -> None:
        super().__init__(binary, root)
        self.persistent = persistent
        self.url = f"redis://{LOOPBACK}:{self.port}/0"

    def argv(self) -> list[str]:
        aof = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else [
            "--appendonly", "no"]
        return [self.binary, "--bind", LOOPBACK, "--port", str(self.port), "--save", "",
                *aof, "--dir", str(self.root), "--daemonize", "no", "--loglevel", "warning"]

    def ready(self) -> bool:
        try:
            with redis.Redis(host=LOOPBACK, port=self.port, socket_timeout=1.0) as r:
                return bool(r.ping())
        except redis.RedisError:
            return False


class VictoriaMetrics(Server):
    """Single-node VictoriaMetrics.  InfluxDB line protocol names series
    `<measurement>_<field>`, tags become labels, and the v2 write's bucket/org
    are not stored.  Samples of one series with the same timestamp are
    de-duplicated (the last write wins), as InfluxDB overwrites them; pass
    dedup=False to see every stored sample."""

    name = "victoria-metrics"
    timeout_s = 10.0  # for a flush or a query

    def __init__(self, binary: str, root: Path, dedup: bool = True) -> None:
        super().__init__(binary, root)
        self.dedup = dedup
        self.url = f"http://{LOOPBACK}:{self.port}"
        # influxdb-client's WriteApi posts to <url>/api/v2/write, which VictoriaMetrics serves
        self.influx_url = self.url

    def argv(self) -> list[str]:
        argv = [
            self.binary,
            f"-storageDataPath={self.root / 'data'}",
            f"-httpListenAddr={LOOPBACK}:{self.port}",
            # long enough that fixed historic timestamps in tests are kept, not dropped
            "-retentionPeriod=100y",
            # a just-written point is visible to queries at once
            "-search.latencyOffset=0s",
            "-search.disableCache",
            "-loggerLevel=WARN",
        ]
        if self.dedup:
            argv.append("-dedup.minScrapeInterval=1ms")
        return argv

    def ready(self) -> bool:
        return http_ok(self.url + "/health")

    def flush(self) -> None:
        """Make every write acknowledged so far searchable now (it is buffered ~1 s)."""
        httpx.get(self.url + "/internal/force_flush", timeout=self.timeout_s).raise_for_status()

    def export(self, match: str) -> list[dict[str, Any]]:
        """Raw samples (flushes first): [{"metric": {...}, "values": [...],
        "timestamps": [ms, ...]}, ...], one dict per series."""
        self.flush()
        # `end` in the future: the default (now) can miss a point stamped this second
        params = {"match[]": match, "start": "0", "end": f"{time.time() + 86400:.0f}"}
        r = httpx.get(self.url + "/api/v1/export", params=params, timeout=self.timeout_s)
        if r.status_code != 200:
            raise RuntimeError(f"export {match!r} failed: {r.status_code} {r.text}")
        return [json.loads(line) for line in r.text.splitlines() if line.strip()]

"""The real-server test harness works: each fixture is exercised for real."""

from __future__ import annotations

import asyncio
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS

from hg import protocol
from tests.harness.micropython import MicroPythonError

# --- VictoriaMetrics ----------------------------------------------------------


def write_victoria(url: str, point: Point) -> None:
    with InfluxDBClient(url=url, token="x", org="x") as client:
        client.write_api(write_options=SYNCHRONOUS).write(bucket="homeguard", record=point)


def test_victoria_stores_an_influx_v2_point_with_tags_and_time(victoria) -> None:
    ts_ms = int(time.time() * 1000) - 5000
    write_victoria(victoria.influx_url, Point("hg_harness").tag("dev", "hg-e-0001")
                   .tag("cell", "g7").field("rms", 231).time(ts_ms, WritePrecision.MS))

    series = victoria.wait_for_samples('hg_harness_rms{dev="hg-e-0001"}')
    assert series == [{"metric": {"__name__": "hg_harness_rms", "dev": "hg-e-0001", "cell": "g7"},
                       "values": [231], "timestamps": [ts_ms]}]
    [result] = victoria.query('hg_harness_rms{cell="g7"}')
    assert result["metric"]["dev"] == "hg-e-0001"
    assert result["value"][1] == "231"


def test_victoria_point_written_now_is_queryable_at_once(victoria) -> None:
    write_victoria(victoria.influx_url, Point("hg_now").tag("dev", "d1").field("v", 1)
                   .time(time.time_ns(), WritePrecision.NS))
    assert [r["value"][1] for r in victoria.query("hg_now_v")] == ["1"]


def test_victoria_same_series_and_time_is_one_sample(victoria) -> None:
    ts_ms = int(time.time() * 1000) - 60_000
    for value in (1, 2):
        write_victoria(victoria.influx_url, Point("hg_replay").tag("dev", "d1")
                       .field("v", value).time(ts_ms, WritePrecision.MS))
    [series] = victoria.export("hg_replay_v")
    assert series["timestamps"] == [ts_ms]
    assert series["values"] == [2]


def test_victoria_restart_keeps_written_points(victoria) -> None:
    ts_ms = int(time.time() * 1000) - 2000
    write_victoria(victoria.influx_url, Point("hg_durable").tag("dev", "d2")
                   .field("v", 7).time(ts_ms, WritePrecision.MS))
    victoria.wait_for_samples("hg_durable_v")
    old_pid = victoria.proc.pid
    victoria.restart()
    assert victoria.proc.pid != old_pid
    [series] = victoria.export("hg_durable_v")
    assert (series["values"], series["timestamps"]) == ([7], [ts_ms])


def test_victoria_stop_refuses_writes_and_start_serves_again(victoria) -> None:
    victoria.stop()
    try:
        with pytest.raises(httpx.ConnectError):
            httpx.get(victoria.url + "/health")
    finally:
        victoria.start()
    assert httpx.get(victoria.url + "/health").text == "OK"


# --- InfluxDB 1.x -------------------------------------------------------------


def test_influxdb1_v1_write_then_query(influxdb1) -> None:
    influxdb1.create_database("hg_harness")
    ts_ns = 1_700_000_000_123_000_000
    r = httpx.post(influxdb1.url + "/write", params={"db": "hg_harness", "precision": "ns"},
                   content=f"telemetry,dev=hg-e-0002 rms=229i {ts_ns}".encode())
    assert r.status_code == 204, r.text

    body = influxdb1.query("hg_harness", "SELECT rms, dev FROM telemetry")
    [series] = body["results"][0]["series"]
    assert series["columns"] == ["time", "rms", "dev"]
    assert series["values"] == [[ts_ns, 229, "hg-e-0002"]]


def test_influxdb1_restart_keeps_data(influxdb1) -> None:
    influxdb1.create_database("hg_restart")
    influxdb1.write("hg_restart", "m,dev=x v=1i 1700000000000000000")
    influxdb1.restart()
    body = influxdb1.query("hg_restart", "SELECT v FROM m")
    assert body["results"][0]["series"][0]["values"] == [[1_700_000_000_000_000_000, 1]]


def test_influxdb1_reports_bad_influxql(influxdb1) -> None:
    with pytest.raises(AssertionError, match="failed"):
        influxdb1.query("hg_harness", "SELEKT nonsense")


# --- Redis --------------------------------------------------------------------


def test_redis_set_get(redis_server) -> None:
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    with redis.Redis.from_url(redis_server.url) as r:
        r.set("hg:harness", "ok")
        assert r.get("hg:harness") == b"ok"


def test_redis_restart_forgets_everything(redis_server) -> None:
    with redis.Redis.from_url(redis_server.url) as r:
        r.set("hg:volatile", "1")
    redis_server.restart()
    with redis.Redis.from_url(redis_server.url) as r:
        assert r.get("hg:volatile") is None


def test_persistent_redis_survives_a_kill(persistent_redis) -> None:
    with redis.Redis.from_url(persistent_redis.url) as r:
        r.set("hg:durable", "1")
    persistent_redis.kill()
    persistent_redis.start()
    with redis.Redis.from_url(persistent_redis.url) as r:
        assert r.get("hg:durable") == b"1"


# --- Chromium -----------------------------------------------------------------

PAGE = "<!doctype html><meta charset=utf-8><title>hg</title><h1 id=t>报警已送达</h1>".encode()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def tiny_site() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_browser_reads_a_local_page_and_screenshots_it(page, tiny_site, artifacts_dir) -> None:
    page.goto(tiny_site)
    assert page.locator("#t").inner_text() == "报警已送达"
    assert page.evaluate("navigator.language") == "zh-CN"
    assert page.viewport_size == {"width": 1366, "height": 800}
    shot = artifacts_dir / "harness-tiny-page.png"
    page.screenshot(path=str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.browser_locale("en-US")
def test_browser_locale_marker(page) -> None:
    assert page.evaluate("navigator.language") == "en-US"


def test_browser_in_use_before_an_asyncio_test(page) -> None:
    """Playwright marks its loop running between calls; other tests must not see it."""
    assert page.evaluate("1 + 1") == 2


def test_asyncio_run_after_the_browser_started() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert asyncio.run(answer()) == 42


def test_artifacts_dir_exists(artifacts_dir: Path) -> None:
    assert artifacts_dir.is_dir() and artifacts_dir.name == "test-artifacts"


# --- MicroPython --------------------------------------------------------------


def test_micropython_runs_code_and_returns_exact_stdout(micropython) -> None:
    out = micropython.run("import sys\nprint(sys.implementation.name)\nprint('中', end='')")
    assert out == "micropython\n中"


def test_micropython_exception_carries_the_traceback(micropython) -> None:
    with pytest.raises(MicroPythonError) as exc:
        micropython.run("print('before')\ndef f():\n    raise ValueError('boom')\nf()\n")
    assert "ValueError: boom" in exc.value.traceback
    assert 'line 3, in f' in exc.value.traceback
    assert exc.value.stdout == "before\n"


def test_micropython_top_level_await(micropython) -> None:
    code = ("import asyncio\nasync def g():\n    await asyncio.sleep_ms(1)\n    return 5\n"
            "print(await asyncio.create_task(g()))\n")
    assert micropython.run(code, async_=True) == "5\n"


def test_micropython_extra_files_and_bytes(micropython) -> None:
    out = micropython.run("import blob\nprint(blob.X)\nprint(open('/t/b.bin','rb').read())",
                          files={"/t/blob.py": "X = 3\n", "/t/b.bin": b"\x00\xff"},
                          firmware=False, path=["/t"])
    assert out == "3\nb'\\x00\\xff'\n"


def test_micropython_run_file(micropython, tmp_path: Path) -> None:
    script = tmp_path / "main.py"
    script.write_text("from hg import protocol\nprint(__name__, protocol.__name__)\n")
    assert micropython.run_file(script) == "__main__ hg.protocol\n"


def test_micropython_protocol_encode_matches_cpython(micropython) -> None:
    key = bytes(range(32))
    args = ("hg-b-0001", 42, "alarm", "fire", 1500, {"zone": "kitchen", "n": 3}, 1_763_800_000_000)
    code = f"import hg.protocol\nprint(hg.protocol.encode(bytes(range(32)), *{args!r}).decode())"
    assert micropython.run(code) == protocol.encode(key, *args).decode() + "\n"

"""Time-series sink: writes the telemetry lane to InfluxDB / VictoriaMetrics.

The lane hands every batch it commits to the sink in memory (`offer`: the
points with their store ids), and the sink writes them as line protocol
(sinks/lineproto.py), many points a request, without reading them back.
The store stays the durable fallback: the sink keeps a cursor (the last
lane id written; counters `cursor:timeseries`), and whatever was not
offered in memory is read from the store after it: after a restart, the
points the event lane commits (heartbeats), and batches offered while the
sink was MEMORY_MAX points behind (a slow or dead server: memory stays
bounded, the backlog waits in the store). A point is

    measurement  telemetry | heartbeat          (the message's kind)
    tags         device, device_type, household, grid   (registry; absent ones left out)
    fields       every integer member of `data` (booleans and strings are not fields)
    time         the event time in ms            (deterministic: a replay overwrites)

The cursor is saved at most every CURSOR_EVERY_S (and when the sink
stops), in a short transaction without an fsync, so the sink hardly ever
takes the store's write lock from the lanes; a gateway killed before a
save writes those points again after its restart, which overwrites them.

`api = "v2"` writes with influxdb-client's write API (POST /api/v2/write,
which VictoriaMetrics and InfluxDB 2.x / 1.8+ serve), given the line
protocol as bytes; `api = "v1"` POSTs the same body to /write?db=<bucket>
of an InfluxDB 1.x. A dead server is retried with backoff (sinks/worker.py)
from the cursor, so nothing is skipped. A message without any integer field
has no point: it is counted in hg_gateway_shed_total{lane="timeseries",
reason="no_numeric_fields"} and skipped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, Literal

import httpx
from pydantic import Field

from gateway import metrics
from gateway.section import Section
from gateway.sinks import Context
from gateway.sinks.lineproto import Encoder
from gateway.sinks.worker import SinkWorker
from gateway.store import Point, PointBatch, Store

if TYPE_CHECKING:
    from gateway.config import GatewayConfig

log = logging.getLogger("homeguard.gateway.timeseries")
SINK = "timeseries"
NO_FIELDS = "no_numeric_fields"
MEMORY_MAX = 20_000  # points offered and not yet written, at most; more wait in the store
CURSOR_EVERY_S = 1.0  # the cursor is saved at most this often
GAUGES_EVERY_S = 1.0  # the backlog is counted in the store at most this often


class TimeseriesSection(Section):
    """[timeseries]: this sink's server, and the telemetry lane's queue."""

    ENV: ClassVar[dict[str, str]] = {"HG_GATEWAY_TIMESERIES_TOKEN": "token"}

    url: str = Field("", pattern=r"^(https?://.+)?$")  # "" = keep points in SQLite only
    api: Literal["v2", "v1"] = "v2"
    token: str = ""
    org: str = "homeguard"
    bucket: str = Field("homeguard", min_length=1)
    batch_size: int = Field(500, ge=1, le=10000)
    timeout_s: float = Field(10.0, gt=0)
    backoff_min_s: float = Field(0.5, gt=0)
    backoff_max_s: float = Field(30.0, gt=0)
    queue_max: int = Field(10000, ge=10)
    queue_wait_s: float = Field(2.0, ge=0)

    @classmethod
    def of(cls, cfg: GatewayConfig) -> TimeseriesSection:
        return cfg.of(cls, SINK)


class TimeseriesSink(SinkWorker):
    name = SINK

    def __init__(self, cfg: TimeseriesSection, store: Store,
                 device_of: Callable[[str], dict | None]) -> None:
        self.cfg = cfg
        self.encoder = Encoder(device_of)
        # imported here, not when the config is read: 0.2 s a gateway without
        # a time-series server need not spend
        from influxdb_client import InfluxDBClient, WritePrecision
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.precision = WritePrecision.MS
        timeout_ms = int(cfg.timeout_s * 1000)
        self.client = InfluxDBClient(url=cfg.url, token=cfg.token, org=cfg.org,
                                     timeout=timeout_ms, retries=False)
        self.writer = self.client.write_api(write_options=SYNCHRONOUS)
        headers = {"Authorization": f"Token {cfg.token}"} if cfg.token else {}
        self.http = httpx.Client(timeout=cfg.timeout_s, headers=headers)
        super().__init__(store, cfg.backoff_min_s, cfg.backoff_max_s)
        self.cursor = store.cursor(SINK)  # every lane id up to here is written
        self._saved = self.cursor
        self._saved_at = time.monotonic()
        self._counted_at = -GAUGES_EVERY_S
        self._offered: deque[PointBatch] = deque()
        self._offered_n = 0  # points in _offered
        self._lock = threading.Lock()  # offer() runs on the lanes' threads
        self._latency = metrics.LATENCY.labels(SINK)

    def offer(self, batch: PointBatch) -> None:
        """Points the lane has just committed; kept in memory unless the sink
        is MEMORY_MAX behind (then it reads them from the store later)."""
        if batch.points:
            with self._lock:
                if self._offered_n + len(batch.points) <= MEMORY_MAX:
                    self._offered.append(batch)
                    self._offered_n += len(batch.points)
        self.wake()

    def deliver_once(self) -> int:
        points, upto, caught_up = self._next(self.cfg.batch_size)
        written = 0
        if points:
            body, written, empty = self.encoder.encode(points)
            if written:
                self._write(body)
            if empty:
                metrics.SHED.labels(SINK, NO_FIELDS).inc(empty)
            now = time.time() * 1000
            for p in points:
                self._latency.observe(max(0.0, (now - p.gateway_time_ms) / 1000))
            metrics.DELIVERED.labels(SINK).inc(written)
            log.debug("written sink=timeseries points=%d last_id=%d", written, upto)
        moved = upto != self.cursor
        self.cursor = upto
        self._gauges(caught_up)
        self._save(force=False)
        return len(points) or int(moved)

    def _next(self, limit: int) -> tuple[list[Point], int, bool]:
        """The next points after the cursor (at most `limit`), the id the
        cursor moves to once they are written, and whether the store has
        nothing more for now."""
        with self._lock:
            while self._offered and self._offered[0].last <= self.cursor:
                self._offered_n -= len(self._offered.popleft().points)  # read from the store
            head = self._offered[0].after if self._offered else None
        if head is not None and head <= self.cursor:
            return self._take(limit)
        # not in memory: committed before the first offered batch, or nothing is offered
        points = self.store.points_after(self.cursor, limit, upto=head)
        if len(points) == limit:
            return points, _id(points[-1]), False
        if head is not None:
            return points, head, False  # every id up to the offered batch is read
        return points, _id(points[-1]) if points else self.cursor, True

    def _take(self, limit: int) -> tuple[list[Point], int, bool]:
        """Offered points from the cursor on, while their batches follow each other."""
        out: list[Point] = []
        upto = self.cursor
        with self._lock:
            while self._offered and len(out) < limit and self._offered[0].after <= upto:
                batch = self._offered.popleft()
                self._offered_n -= len(batch.points)
                points = batch.points if batch.after == upto else [
                    p for p in batch.points if _id(p) > upto]
                room = limit - len(out)
                if len(points) > room:  # the rest stays at the head
                    rest = PointBatch(_id(points[room - 1]), batch.last, points[room:])
                    self._offered.appendleft(rest)
                    self._offered_n += len(rest.points)
                    points, upto = points[:room], rest.after
                else:
                    upto = batch.last
                out += points
        return out, upto, False

    def _write(self, body: bytes) -> None:
        if self.cfg.api == "v2":
            self.writer.write(bucket=self.cfg.bucket, org=self.cfg.org, record=body,
                              write_precision=self.precision)  # type: ignore[arg-type]
            return
        r = self.http.post(self.cfg.url.rstrip("/") + "/write",
                           params={"db": self.cfg.bucket, "precision": "ms"}, content=body)
        if r.status_code != 204:
            raise httpx.HTTPStatusError(f"InfluxDB answered {r.status_code}: {r.text[:200]}",
                                        request=r.request, response=r)

    def _save(self, force: bool) -> None:
        """Save the cursor if it moved, at most every CURSOR_EVERY_S unless forced."""
        now = time.monotonic()
        if self.cursor != self._saved and (force or now - self._saved_at >= CURSOR_EVERY_S):
            self.store.set_cursor(SINK, self.cursor)
            self._saved, self._saved_at = self.cursor, now

    def close(self) -> None:
        try:
            self._save(force=True)
        except Exception:  # noqa: BLE001 - the points are written again after a restart
            log.exception("saving the timeseries cursor failed")
        self.writer.close()
        self.client.close()
        self.http.close()

    def log_failure(self, exc: Exception, backoff: float) -> None:
        try:
            depth = self._count()
        except Exception:  # noqa: BLE001 - the store itself may be what failed
            depth = -1
        log.warning("timeseries write failed url=%s error=%r backlog=%d retry_in=%.1fs",
                    self.cfg.url, f"{type(exc).__name__}: {str(exc)[:300]}", depth, backoff)

    def backlog(self) -> tuple[int, int | None]:
        return self.store.points_backlog(self.cursor)

    def _gauges(self, caught_up: bool) -> None:
        """Backlog gauges: 0 when caught up, else counted at most every GAUGES_EVERY_S."""
        if caught_up:
            metrics.BACKLOG.labels(SINK).set(0)
            metrics.OLDEST.labels(SINK).set(0)
        elif time.monotonic() - self._counted_at >= GAUGES_EVERY_S:
            self._count()

    def _count(self) -> int:
        self._counted_at = time.monotonic()
        depth, oldest = self.store.points_backlog(self.cursor)
        metrics.BACKLOG.labels(SINK).set(depth)
        age = 0.0 if oldest is None else max(0.0, time.time() - oldest / 1000)
        metrics.OLDEST.labels(SINK).set(age)
        return depth


def _id(p: Point) -> int:
    assert p.id is not None  # points from the store, or offered after their commit
    return p.id


def build(ctx: Context) -> TimeseriesSink:
    return TimeseriesSink(TimeseriesSection.of(ctx.cfg), ctx.store, ctx.registry.get)

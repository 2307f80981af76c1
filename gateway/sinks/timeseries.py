"""Time-series sink: writes the telemetry lane to InfluxDB / VictoriaMetrics.

Reads the `telemetry` table after its cursor (counters `cursor:timeseries`),
writes one batch of points, then moves the cursor past it. A point is

    measurement  telemetry | heartbeat          (the message's kind)
    tags         device, device_type, household, grid   (registry; absent ones left out)
    fields       every integer member of `data` (booleans and strings are not fields)
    time         the event time in ms            (deterministic: a replay overwrites)

`api = "v2"` writes with influxdb-client's write API (POST /api/v2/write,
which VictoriaMetrics and InfluxDB 2.x / 1.8+ serve); `api = "v1"` POSTs the
same line protocol to /write?db=<bucket> of an InfluxDB 1.x. A dead server
is retried with backoff (sinks/worker.py) from the cursor, so nothing is
skipped; a crash between a write and the cursor moving rewrites the batch,
which overwrites the same points. A message without any integer field has
no point: it is counted in hg_gateway_shed_total{lane="timeseries",
reason="no_numeric_fields"} and skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import httpx
from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client import Point as InfluxPoint
from influxdb_client.client.write_api import SYNCHRONOUS

from gateway import metrics
from gateway.config import TimeseriesSection
from gateway.sinks import Context
from gateway.sinks.worker import SinkWorker
from gateway.store import Point, Store

log = logging.getLogger("homeguard.gateway.timeseries")
SINK = "timeseries"
TAGS = ("household", "grid")
NO_FIELDS = "no_numeric_fields"


def to_line(p: Point, device: dict | None) -> str | None:
    """The point's line protocol, or None when it has no integer field."""
    fields = {k: v for k, v in sorted(p.data.items())
              if isinstance(v, int) and not isinstance(v, bool)}
    if not fields:
        return None
    point = InfluxPoint(p.kind).tag("device", p.device)
    if device is not None:
        if isinstance(device.get("type"), str):
            point.tag("device_type", device["type"])
        for tag in TAGS:
            if isinstance(device.get(tag), str) and device[tag]:
                point.tag(tag, device[tag])
    for name, value in fields.items():
        point.field(name, value)
    return str(point.time(p.event_time_ms, WritePrecision.MS).to_line_protocol())


class TimeseriesSink(SinkWorker):
    name = SINK

    def __init__(self, cfg: TimeseriesSection, store: Store,
                 device_of: Callable[[str], dict | None]) -> None:
        self.cfg = cfg
        self.device_of = device_of
        timeout_ms = int(cfg.timeout_s * 1000)
        self.client = InfluxDBClient(url=cfg.url, token=cfg.token, org=cfg.org,
                                     timeout=timeout_ms, retries=False)
        self.writer = self.client.write_api(write_options=SYNCHRONOUS)
        headers = {"Authorization": f"Token {cfg.token}"} if cfg.token else {}
        self.http = httpx.Client(timeout=cfg.timeout_s, headers=headers)
        super().__init__(store, cfg.backoff_min_s, cfg.backoff_max_s)

    def close(self) -> None:
        self.writer.close()
        self.client.close()
        self.http.close()

    def deliver_once(self) -> int:
        batch = self.store.points_after(self.store.cursor(SINK), self.cfg.batch_size)
        self._gauges()
        if not batch:
            return 0
        lines = [line for line in (self._line(p) for p in batch) if line is not None]
        if lines:
            self._write(lines)
        assert batch[-1].id is not None
        self.store.set_cursor(SINK, batch[-1].id)
        now = time.time() * 1000
        for p in batch:
            metrics.LATENCY.labels(SINK).observe(max(0.0, (now - p.gateway_time_ms) / 1000))
        metrics.DELIVERED.labels(SINK).inc(len(lines))
        log.debug("written sink=timeseries points=%d last_id=%d", len(lines), batch[-1].id)
        return len(batch)

    def _line(self, p: Point) -> str | None:
        line = to_line(p, self.device_of(p.device))
        if line is None:
            metrics.SHED.labels(SINK, NO_FIELDS).inc()
        return line

    def _write(self, lines: list[str]) -> None:
        if self.cfg.api == "v2":
            self.writer.write(bucket=self.cfg.bucket, org=self.cfg.org, record=lines,
                              write_precision=WritePrecision.MS)  # type: ignore[arg-type]
            return
        r = self.http.post(self.cfg.url.rstrip("/") + "/write",
                           params={"db": self.cfg.bucket, "precision": "ms"},
                           content="\n".join(lines).encode())
        if r.status_code != 204:
            raise httpx.HTTPStatusError(f"InfluxDB answered {r.status_code}: {r.text[:200]}",
                                        request=r.request, response=r)

    def log_failure(self, exc: Exception, backoff: float) -> None:
        try:
            depth = self._gauges()
        except Exception:  # noqa: BLE001 - the store itself may be what failed
            depth = -1
        log.warning("timeseries write failed url=%s error=%r backlog=%d retry_in=%.1fs",
                    self.cfg.url, f"{type(exc).__name__}: {str(exc)[:300]}", depth, backoff)

    def backlog(self) -> tuple[int, int | None]:
        return self.store.points_backlog(SINK)

    def _gauges(self) -> int:
        depth, oldest = self.store.points_backlog(SINK)
        metrics.BACKLOG.labels(SINK).set(depth)
        age = 0.0 if oldest is None else max(0.0, time.time() - oldest / 1000)
        metrics.OLDEST.labels(SINK).set(age)
        return depth


def build(ctx: Context) -> TimeseriesSink:
    return TimeseriesSink(ctx.cfg.timeseries, ctx.store, ctx.registry.get)

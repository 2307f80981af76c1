"""The gateway's HTTP endpoint on [metrics] port: /metrics, /health and
/telemetry.

GET /telemetry?device=<id>&since_ms=<ms>&limit=<n> answers the device's
points in the store's telemetry table (the embedded time-series store when
no InfluxDB is configured) with event time >= since_ms, oldest first, at
most `limit` (1-5000, default 1000):

    {"device": "hg-s-0001", "points": [{"t": 1763..., "kind": "telemetry",
                                        "data": {"leak_ma": 12, ...}}, ...]}

so the centre can chart recent telemetry; 400 with a reason on bad input.

GET /devices/<id> answers whether the gateway will accept the device's
messages now, i.e. its registry holds a key for it (read-only; provisioning
waits on it, docs/technician.md):

    200 {"device": "hg-b-0001", "known": true, "key_id": "<16 hex>"}
    404 {"device": "hg-b-0001", "known": false}

`key_id` is the first 16 hex digits of the key's SHA-256, so a caller that
holds the key can tell the gateway has this key and not an older one.

GET /health answers 200 when the gateway is healthy and 503 otherwise, with

    {"status": "ok" | "degraded", "broker": true, "store": "ok" | "<error>",
     "sinks": {"centre": {"backlog": 0, "oldest_age_s": 0.0, "failing": false}, ...},
     "telemetry_queue": 0}

Degraded: the broker is not connected, or the store cannot commit a write.
A sink that is failing (its last attempt failed) is reported but does not
make the gateway degraded by itself: its events wait safely in the store.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hg import protocol

log = logging.getLogger("homeguard.gateway.health")


class HealthServer:
    """Serves /metrics and /health(report) from a daemon thread."""

    def __init__(self, host: str, port: int, report: Callable[[], dict],
                 points: Callable[[str, int, int], list[dict]] | None = None,
                 key_of: Callable[[str], bytes | None] | None = None) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                owner.answer(self)

            def log_message(self, *args: object) -> None:
                pass

        self.report = report
        self.points = points
        self.key_of = key_of
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="http",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
        if path == "/metrics":
            return _reply(h, 200, generate_latest(), CONTENT_TYPE_LATEST)
        if path == "/telemetry" and self.points is not None:
            return self._telemetry(h)
        if path.startswith("/devices/") and self.key_of is not None:
            return self._device(h, path[len("/devices/"):])
        if path != "/health":
            return _reply(h, 404, b'{"detail": "not found"}')
        try:
            body = self.report()
        except Exception as exc:  # noqa: BLE001 - a broken check is itself unhealthy
            log.exception("health check failed")
            body = {"status": "degraded", "error": f"{type(exc).__name__}: {exc}"}
        _reply(h, 200 if body["status"] == "ok" else 503, json.dumps(body).encode())


    def _device(self, h: BaseHTTPRequestHandler, device: str) -> None:
        assert self.key_of is not None
        if not protocol.valid_id(device):
            return _reply(h, 400, b'{"detail": "device: 3-32 of [a-z0-9-] required"}')
        key = self.key_of(device)  # re-reads the registry file when it changed
        if key is None:
            return _reply(h, 404, json.dumps({"device": device, "known": False}).encode())
        body = {"device": device, "known": True, "key_id": key_id(key)}
        _reply(h, 200, json.dumps(body).encode())

    def _telemetry(self, h: BaseHTTPRequestHandler) -> None:
        assert self.points is not None
        query = parse_qs(urlsplit(h.path).query)
        device = query.get("device", [""])[0]
        if not protocol.valid_id(device):
            return _reply(h, 400, b'{"detail": "device: 3-32 of [a-z0-9-] required"}')
        try:
            since = int(query.get("since_ms", ["0"])[0])
            limit = int(query.get("limit", ["1000"])[0])
        except ValueError:
            return _reply(h, 400, b'{"detail": "since_ms and limit must be integers"}')
        if not 1 <= limit <= 5000:
            return _reply(h, 400, b'{"detail": "limit must be 1 to 5000"}')
        body = {"device": device, "points": self.points(device, since, limit)}
        _reply(h, 200, json.dumps(body).encode())


def key_id(key: bytes) -> str:
    """The key's public fingerprint: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(key).hexdigest()[:16]


def _reply(h: BaseHTTPRequestHandler, code: int, raw: bytes,
           ctype: str = "application/json") -> None:
    h.send_response(code)
    h.send_header("Content-Type", ctype)
    h.send_header("Content-Length", str(len(raw)))
    h.end_headers()
    h.wfile.write(raw)


def backlog(depth: int, oldest_ms: int | None, failing: bool) -> dict:
    age = 0.0 if oldest_ms is None else round(max(0.0, time.time() - oldest_ms / 1000), 3)
    return {"backlog": depth, "oldest_age_s": age, "failing": failing}

"""Recent telemetry of a device for the alarm detail's chart.

The points come from the gateways' embedded stores (each gateway serves
GET /telemetry?device=&since_ms=&limit= on its metrics port, gateway/health.py);
`telemetry_urls` lists them. A device's points may be on several gateways
(a share group), so every source is asked and the answers merged in time
order. A source that does not answer is skipped and named in `unavailable`,
so the chart shows what there is instead of failing.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

log = logging.getLogger("homeguard.centre.telemetry")
TIMEOUT_S = 3.0
LIMIT = 2000


def recent(urls: list[str], device: str, since_ms: int) -> dict[str, Any]:
    points: dict[int, dict[str, Any]] = {}
    unavailable: list[str] = []
    for url in urls:
        try:
            r = httpx.get(url.rstrip("/") + "/telemetry", timeout=TIMEOUT_S,
                          params={"device": device, "since_ms": since_ms, "limit": LIMIT})
            r.raise_for_status()
            for p in r.json()["points"]:
                points[int(p["t"])] = p  # the same point from two sources: once
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            log.warning("telemetry source %s: %s", url, exc)
            unavailable.append(url)
    return {"device": device, "since_ms": since_ms,
            "points": [points[t] for t in sorted(points)], "unavailable": unavailable}

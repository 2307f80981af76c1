"""Verify stage: protocol v1 checks (hg.protocol.verify) with counted,
rate-limited logging of every rejection."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from gateway import fastverify, metrics
from hg import protocol

log = logging.getLogger("homeguard.gateway.verify")
LOG_EVERY_S = 60.0
MAX_REMEMBERED = 10_000  # (device, reason) pairs kept for rate limiting


class Rejections:
    """Counts every rejection; logs each (device, reason) at most once a minute."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], float] = {}
        self.counts: dict[str, int] = {}

    def record(self, reason: str, topic: str, detail: str) -> None:
        metrics.REJECTED.labels(reason).inc()
        self.counts[reason] = self.counts.get(reason, 0) + 1
        parts = topic.split("/")
        device = parts[2] if len(parts) > 2 else "?"
        now = time.monotonic()
        if now - self._last.get((device, reason), -LOG_EVERY_S) >= LOG_EVERY_S:
            if len(self._last) >= MAX_REMEMBERED:  # forget the ones whose minute is over
                self._last = {k: t for k, t in self._last.items() if now - t < LOG_EVERY_S}
            self._last[(device, reason)] = now
            log.warning("rejected reason=%s device=%s topic=%s detail=%r total=%d",
                        reason, device, topic, detail, self.counts[reason])


def verify(topic: str, payload: bytes, key_of: Callable[[str], bytes | None], now_ms: int,
           behind_ms: int, ahead_ms: int) -> dict:
    """The message dict, or protocol.Reject (see docs/protocol.md for the order).
    A good message takes the fast path (fastverify.py); any doubt goes to
    hg.protocol, which has the last word and the reason."""
    msg = fastverify.accept(topic, payload, key_of, now_ms, behind_ms, ahead_ms)
    if msg is not None:
        return msg
    return protocol.verify(topic, payload, key_of, now_ms, behind_ms, ahead_ms)

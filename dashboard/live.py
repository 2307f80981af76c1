"""In-process fan-out of newly stored events to live stream clients.

Ingest and workflow transitions run in worker threads; `Hub.publish` hands items to the event loop
with call_soon_threadsafe.  `Hub.ordered()` is held around commit+publish so
items reach every subscriber in commit order, which for this store is id
order (events by event id, transitions by audit id): a client can resume
from the last pair of ids it saw.  A subscriber that
falls `maxsize` items behind is cut off (counted and logged) rather than
silently skipped: its browser reconnects and replays the gap from the
database.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("homeguard.centre.live")


@dataclass(frozen=True)
class LiveItem:
    """One SSE message: name is the SSE event name; id is the event id
    (cursor "event") or the audit row id (cursor "audit", a transition)."""

    id: int
    name: str
    payload: dict[str, Any]
    cursor: str = "event"


class Overflow(Exception):
    """The subscriber fell too far behind and must resume from the store."""


class Subscription:
    def __init__(self, maxsize: int) -> None:
        self.queue: asyncio.Queue[LiveItem] = asyncio.Queue(maxsize)
        self.overflowed = False

    def offer(self, item: LiveItem) -> bool:
        if self.overflowed:
            return False
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True
            return False
        return True

    async def get(self, timeout: float) -> LiveItem | None:
        """The next item, or None when nothing came within timeout."""
        if self.overflowed and self.queue.empty():
            raise Overflow()
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            if self.overflowed:
                raise Overflow() from None
            return None


class Hub:
    def __init__(self, maxsize: int = 1000) -> None:
        self.maxsize = maxsize
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subs: set[Subscription] = set()
        self._order = threading.Lock()
        self.cut_off = 0

    def bind(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Attach to the server's event loop (None detaches at shutdown)."""
        self._loop = loop

    def ordered(self) -> threading.Lock:
        return self._order

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        sub = Subscription(self.maxsize)
        self._subs.add(sub)
        try:
            yield sub
        finally:
            self._subs.discard(sub)

    def publish(self, items: list[LiveItem]) -> None:
        """Thread-safe; call after the items' transaction committed."""
        loop = self._loop
        if not items or loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._deliver, items)
        except RuntimeError:  # loop closed between the check and the call
            return

    def _deliver(self, items: list[LiveItem]) -> None:
        for sub in list(self._subs):
            if sub.overflowed:
                continue
            for item in items:
                if not sub.offer(item):
                    self.cut_off += 1
                    log.warning(
                        "live client %d items behind, cut off at event %d; it will replay",
                        self.maxsize, item.id,
                    )
                    break

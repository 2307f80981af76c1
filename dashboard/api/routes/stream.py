"""GET /api/v1/stream: Server-Sent Events of newly stored events.

Each message carries `id: <event id>`, `event: alarm` (an alarm was raised)
or `event: event` (anything else), and the Public model as JSON.  A client
resumes with `Last-Event-ID` (browsers send it on reconnect) or
`?after=<event id>`: the stream first replays stored events after that id,
then goes live.  It subscribes before replaying and skips live items it
already sent, so nothing committed in between is lost or repeated.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, status
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from dashboard.api.deps import CentreDep
from dashboard.centre import Centre
from dashboard.live import LiveItem, Overflow
from dashboard.queries import items_after, last_event_id

log = logging.getLogger("homeguard.centre.stream")

router = APIRouter(tags=["stream"])

REPLAY_PAGE = 200
RETRY_MS = 2000


def sse_message(item: LiveItem) -> str:
    data = json.dumps(item.payload, ensure_ascii=False, separators=(",", ":"))
    return f"id: {item.id}\nevent: {item.name}\ndata: {data}\n\n"


def _start_id(after: int | None, last_event_id: str | None) -> int | None:
    if last_event_id is not None and last_event_id.strip():
        try:
            value = int(last_event_id)
        except ValueError:
            value = -1
        if value < 0:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST, "Last-Event-ID must be an event id (0 or more)"
            )
        return value
    return after


@router.get("/stream")
async def stream(
    centre: CentreDep,
    after: Annotated[int | None, Query(ge=0, description="replay events after this id")] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    start = _start_id(after, last_event_id)
    return StreamingResponse(
        _events(centre, start),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _replay_page(centre: Centre, after: int) -> list[LiveItem]:
    with centre.sessions() as session:
        return items_after(session, after, REPLAY_PAGE)


def _current_last(centre: Centre) -> int:
    with centre.sessions() as session:
        return last_event_id(session)


async def _events(centre: Centre, start: int | None) -> AsyncIterator[str]:
    async with centre.hub.subscribe() as sub:
        # the resume point is fixed after subscribing and before the client
        # hears "connected": anything committed later reaches it live
        last = start if start is not None else await run_in_threadpool(_current_last, centre)
        yield f"retry: {RETRY_MS}\n: connected\n\n"
        while True:
            page = await run_in_threadpool(_replay_page, centre, last)
            for item in page:
                yield sse_message(item)
                last = item.id
            if len(page) < REPLAY_PAGE:
                break
        while True:
            try:
                got = await sub.get(centre.settings.keepalive_s)
            except Overflow:
                log.warning("stream client fell behind at event %d; closing so it replays", last)
                return
            if got is None:
                yield ": keepalive\n\n"
            elif got.id > last:
                yield sse_message(got)
                last = got.id

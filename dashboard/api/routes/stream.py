"""GET /api/v1/stream: Server-Sent Events of new events and alarm transitions.

Messages: `event: alarm` (an alarm was raised, the AlarmPublic), `event:
event` (any other event, the EventPublic) and `event: transition` (an
operator moved an alarm on: {"alarm": AlarmPublic, "audit": AuditPublic}).
Each carries `id: E:A`, the last event id and the last audit id sent so far.
A client resumes with `Last-Event-ID` (browsers send it on reconnect) or
`?after=E:A`: the stream first replays stored events after E and
transitions after A, then goes live.  A bare `E` replays events only, and
transitions from now.  It subscribes before replaying and skips live items
it already sent, so nothing committed in between is lost or repeated.

While they run, the streams also record the release of claims whose holder
went idle (claims.IdleSweep: one sweep per interval for all of them), so
every desk sees an idle claim end, and mark grid workers' tasks not accepted
in time overdue (worker.OverdueSweep), so every desk is alerted to re-dispatch.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from dashboard.api.auth import ViewerDep
from dashboard.api.deps import CentreDep
from dashboard.centre import Centre
from dashboard.claims import IdleSweep
from dashboard.live import LiveItem, Overflow
from dashboard.queries import items_after, last_audit_id, last_event_id, transitions_after
from dashboard.worker import OverdueSweep

log = logging.getLogger("homeguard.centre.stream")

router = APIRouter(tags=["stream"])

REPLAY_PAGE = 200
RETRY_MS = 2000
CURSOR = re.compile(r"^(\d{1,18})(?::(\d{1,18}))?$")

Cursor = tuple[int | None, int | None]


def sse_message(item: LiveItem, cursor: dict[str, int]) -> str:
    data = json.dumps(item.payload, ensure_ascii=False, separators=(",", ":"))
    return f"id: {cursor['event']}:{cursor['audit']}\nevent: {item.name}\ndata: {data}\n\n"


def parse_cursor(text: str | None, what: str) -> Cursor:
    """'E:A' or 'E' -> (E, A or None); None or blank -> (None, None)."""
    if text is None or not text.strip():
        return None, None
    m = CURSOR.match(text.strip())
    if m is None:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"{what} must be '<event id>:<audit id>' or '<event id>', got {text!r}")
    return int(m[1]), int(m[2]) if m[2] is not None else None


@router.get("/stream")
async def stream(
    request: Request,
    centre: CentreDep,
    _user: ViewerDep,
    after: Annotated[str | None, Query(description="replay after this 'E:A' (or 'E')")] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    start = parse_cursor(last_event_id, "Last-Event-ID")
    if start == (None, None):
        start = parse_cursor(after, "after")
    sweep = getattr(request.app.state, "claim_sweep", None)
    if sweep is None:
        sweep = request.app.state.claim_sweep = IdleSweep(centre.settings.claim_idle_s)
    return StreamingResponse(
        _events(centre, start, sweep, overdue_sweep(request, centre)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def overdue_sweep(request: Request, centre: Centre) -> OverdueSweep:
    """The app's one sweep of overdue grid worker tasks, shared by all streams."""
    sweep = getattr(request.app.state, "overdue_sweep", None)
    if sweep is None:
        sweep = request.app.state.overdue_sweep = OverdueSweep(centre.settings.worker_accept_s)
    return sweep


def _replay_page(centre: Centre, cursor: str, after: int) -> list[LiveItem]:
    with centre.sessions() as session:
        if cursor == "event":
            return items_after(session, after, REPLAY_PAGE)
        return transitions_after(session, after, REPLAY_PAGE)


def _current(centre: Centre) -> dict[str, int]:
    with centre.sessions() as session:
        return {"event": last_event_id(session), "audit": last_audit_id(session)}


async def _replay(centre: Centre, last: dict[str, int], cursor: str) -> AsyncIterator[str]:
    while True:
        page = await run_in_threadpool(_replay_page, centre, cursor, last[cursor])
        for item in page:
            last[cursor] = item.id
            yield sse_message(item, last)
        if len(page) < REPLAY_PAGE:
            return


def _sweep(centre: Centre, sweep: IdleSweep) -> None:
    with centre.sessions() as session:
        released = sweep.run(session, centre.hub)
    if released:
        log.info("released %d idle claim(s)", released)


def sweep_overdue(centre: Centre, sweep: OverdueSweep) -> None:
    with centre.sessions() as session:
        late = sweep.run(session, centre.hub)
    if late:
        log.info("%d grid worker task(s) not accepted in time: overdue", late)


async def _events(centre: Centre, start: Cursor, sweep: IdleSweep,
                  overdue: OverdueSweep) -> AsyncIterator[str]:
    async with centre.hub.subscribe() as sub:
        # the resume point is fixed after subscribing and before the client
        # hears "connected": anything committed later reaches it live
        now = await run_in_threadpool(_current, centre)
        last = {"event": now["event"] if start[0] is None else start[0],
                "audit": now["audit"] if start[1] is None else start[1]}
        yield f"retry: {RETRY_MS}\n: connected\n\n"
        for cursor in ("event", "audit"):  # an alarm before its transitions
            async for msg in _replay(centre, last, cursor):
                yield msg
        keepalive = centre.settings.keepalive_s
        quiet_since = time.monotonic()
        while True:
            try:
                got = await sub.get(min(keepalive, sweep.every_s, overdue.every_s))
            except Overflow:
                log.warning("stream client fell behind at %s; closing so it replays", last)
                return
            if sweep.due():
                await run_in_threadpool(_sweep, centre, sweep)
            if overdue.due():
                await run_in_threadpool(sweep_overdue, centre, overdue)
            if got is None:
                if time.monotonic() - quiet_since >= keepalive:
                    quiet_since = time.monotonic()
                    yield ": keepalive\n\n"
            elif got.id > last[got.cursor]:
                quiet_since = time.monotonic()
                last[got.cursor] = got.id
                yield sse_message(got, last)

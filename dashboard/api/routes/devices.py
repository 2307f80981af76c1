"""POST /api/v1/devices/status (gateways report device status) and the
/devices page (the device board)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from dashboard import devstatus, labels, registry
from dashboard.api.deps import CentreDep, GatewayDep, SessionDep, SettingsDep, acting_as
from dashboard.api.routes.pages import TEMPLATES, lang_of
from dashboard.api.routes.registry import Viewer, page_boot
from dashboard.centre import Centre
from dashboard.db import begin_write
from dashboard.live import Hub, LiveItem, Overflow
from dashboard.registry_schemas import StatusBatch, StatusResult

log = logging.getLogger("homeguard.centre.devices")

router = APIRouter(tags=["devices"])
pages = APIRouter(include_in_schema=False)

UPDATE_EVERY_S = 0.5  # the device stream sends a burst of changes as one update
RETRY_MS = 2000


@router.post("/devices/status", response_model=StatusResult)
def post_status(batch: StatusBatch, request: Request, session: SessionDep,
                who: GatewayDep, centre: CentreDep) -> StatusResult:
    """A gateway's batch of device status: online/offline and heartbeat
    fields (battery_mv, rssi, outbox, fw) as of `at_ms`.  An item older
    than what the centre holds for its device is `stale` (ignored); an
    unregistered device is `unknown` (reported, never created).  A
    heartbeat without `online` marks the device online.  A `gateway`
    given must be the credential's own (else 403); left out, it is."""
    if "gateway" in batch.model_fields_set:
        acting_as(session, request, who, batch.gateway)
    begin_write(session)
    result = devstatus.apply_status(session, batch.items, who.gateway_id)
    session.commit()
    if result.updated:
        centre.devices.publish([LiveItem(0, "status", {"ids": list(result.updated)})])
    log.info("status from %s: %d items, %d devices updated", who.gateway_id,
             len(batch.items), len(result.updated))
    return result


@pages.get("/devices", response_class=HTMLResponse)
def device_board(request: Request, settings: SettingsDep, user: Viewer) -> HTMLResponse:
    ctx = labels.page_context(lang_of(request))
    boot = page_boot(request, settings, user, ctx)
    ctx.update(boot=boot, user=user, csrf=boot["csrf"])
    return TEMPLATES.TemplateResponse(request, "devices.html", ctx)


@router.get("/devices/stream")
async def device_stream(centre: CentreDep, _u: Viewer) -> StreamingResponse:
    """Server-Sent Events for the device board: `event: devices` with every
    device (on connect, and again after falling behind), then `event:
    update` with the rows of devices whose status or open alarms changed
    (gateways' status batches, new events, alarm transitions), at most one
    message per UPDATE_EVERY_S. A reconnecting browser gets a fresh list."""
    return StreamingResponse(_device_events(centre), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _rows(centre: Centre, ids: set[str] | None) -> list[dict[str, Any]]:
    with centre.sessions() as session:
        rows = registry.list_devices(session)
    return [r.model_dump() for r in rows if ids is None or r.device_id in ids]


def _sse(name: str, payload: object) -> str:
    return f"event: {name}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"


def devices_of(item: LiveItem) -> list[str]:
    """The devices a live item is about: a status batch names them; an
    event or an alarm transition is about its device."""
    p = item.payload
    if "ids" in p:
        return list(p["ids"])
    alarm = p.get("alarm")
    device = alarm.get("device") if isinstance(alarm, dict) else p.get("device")
    return [device] if isinstance(device, str) else []


async def _device_events(centre: Centre) -> AsyncIterator[str]:
    changed: set[str] = set()
    wake = asyncio.Event()
    behind = False

    async def pump(hub: Hub) -> None:
        nonlocal behind
        async with hub.subscribe() as sub:
            while True:
                try:
                    item = await sub.get(3600)
                except Overflow:
                    behind = True
                    wake.set()
                    return
                if item is not None:
                    changed.update(devices_of(item))
                    wake.set()

    pumps = [asyncio.ensure_future(pump(h)) for h in (centre.hub, centre.devices)]
    try:
        await asyncio.sleep(0)  # subscribed before the list is read: no change falls between
        yield f"retry: {RETRY_MS}\n" + _sse("devices", await run_in_threadpool(_rows, centre, None))
        while True:
            try:
                await asyncio.wait_for(wake.wait(), centre.settings.keepalive_s)
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            if behind:
                return  # the browser reconnects and gets the whole list again
            await asyncio.sleep(UPDATE_EVERY_S)  # gather a burst into one update
            wake.clear()
            ids, changed = set(changed), set()
            if ids:
                yield _sse("update", await run_in_threadpool(_rows, centre, ids))
    finally:
        for p in pumps:
            p.cancel()

"""POST /api/v1/devices/status (gateways report device status) and the
/devices page (the device board)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from dashboard import devstatus, labels
from dashboard.api.deps import GatewayDep, SessionDep, SettingsDep, acting_as
from dashboard.api.routes.pages import TEMPLATES, lang_of
from dashboard.api.routes.registry import Viewer, page_boot
from dashboard.db import begin_write
from dashboard.registry_schemas import StatusBatch, StatusResult

log = logging.getLogger("homeguard.centre.devices")

router = APIRouter(tags=["devices"])
pages = APIRouter(include_in_schema=False)

# seconds between the device board's refreshes
BOARD_REFRESH_S = 5


@router.post("/devices/status", response_model=StatusResult)
def post_status(batch: StatusBatch, request: Request, session: SessionDep,
                who: GatewayDep) -> StatusResult:
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
    log.info("status from %s: %d items, %d devices updated", who.gateway_id,
             len(batch.items), len(result.updated))
    return result


@pages.get("/devices", response_class=HTMLResponse)
def device_board(request: Request, settings: SettingsDep, user: Viewer) -> HTMLResponse:
    ctx = labels.page_context(lang_of(request))
    boot = page_boot(request, settings, user, ctx)
    boot["refresh_s"] = BOARD_REFRESH_S
    ctx.update(boot=boot, user=user, csrf=boot["csrf"])
    return TEMPLATES.TemplateResponse(request, "devices.html", ctx)

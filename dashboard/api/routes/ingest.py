"""POST /api/v1/ingest: gateways deliver batches of verified events here.

A gateway delivers only as itself: the batch's `gateway` must be its
credential's (else 403), and it may not raise events for another gateway
(gateways.refusals: 422 naming the items, so an honest gateway sets them
aside and the rest of its outbox goes on).  Both are audited."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse

from dashboard import authaudit
from dashboard.api.deps import (
    GatewayDep,
    HubDep,
    SessionDep,
    SettingsDep,
    acting_as,
    client_address,
)
from dashboard.flood import FloodRule
from dashboard.gateways import known_gateways, refusals
from dashboard.ingest import store_batch
from dashboard.schemas import IngestBatch, IngestResponse

log = logging.getLogger("homeguard.centre.ingest")

router = APIRouter(tags=["ingest"])

ANSWERS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no gateway credential, or one not accepted (unknown or revoked)"},
    403: {"description": "the batch's gateway is not the credential's"},
    422: {"description": "an invalid batch, or events this gateway may not raise; "
                         "nothing was stored"},
}


@router.post("/ingest", response_model=IngestResponse, responses=ANSWERS)
def ingest(
    batch: IngestBatch, request: Request, session: SessionDep, hub: HubDep,
    settings: SettingsDep, gateway: GatewayDep,
) -> IngestResponse | JSONResponse:
    """Store a batch in one transaction; the whole batch was validated
    before (422 names the bad item and nothing is stored).  Each event is
    "accepted" the first time its (device, seq) arrives, else "duplicate"."""
    acting_as(session, request, gateway, batch.gateway)
    problems = refusals(gateway, batch, known_gateways(session, settings))
    if problems:
        lines = "; ".join(f"{p['where']}: {p['message']}" for p in problems)
        log.warning("batch from %s refused: %s", gateway.gateway_id, lines)
        authaudit.write(session, authaudit.Action.GATEWAY_REFUSED, gateway.gateway_id,
                        gateway.gateway_id, client_address(request), lines[:2000])
        return JSONResponse(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            content={"detail": f"refused for gateway {gateway.gateway_id}; nothing was "
                               f"stored: {lines}", "errors": problems})
    session.commit()  # end the reads above: store_batch begins holding the write lock
    received_ms = time.time_ns() // 1_000_000
    results, fresh = store_batch(session, batch, received_ms, FloodRule.of(settings))
    # commit and publish under one lock: live clients see commit (= id) order
    with hub.ordered():
        session.commit()
        hub.publish(fresh)
    log.info(
        "batch from %s: %d events, %d new", batch.gateway, len(results), len(fresh)
    )
    return IngestResponse(results=results)

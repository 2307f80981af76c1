"""POST /api/v1/ingest: gateways deliver batches of verified events here."""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter

from dashboard.api.deps import GatewayTokenDep, HubDep, SessionDep
from dashboard.ingest import store_batch
from dashboard.schemas import IngestBatch, IngestResponse

log = logging.getLogger("homeguard.centre.ingest")

router = APIRouter(tags=["ingest"])


@router.post("/ingest", response_model=IngestResponse)
def ingest(
    batch: IngestBatch, session: SessionDep, hub: HubDep, _token: GatewayTokenDep
) -> IngestResponse:
    """Store a batch in one transaction; the whole batch was validated
    before (422 names the bad item and nothing is stored).  Each event is
    "accepted" the first time its (device, seq) arrives, else "duplicate"."""
    received_ms = time.time_ns() // 1_000_000
    results, fresh = store_batch(session, batch, received_ms)
    # commit and publish under one lock: live clients see commit (= id) order
    with hub.ordered():
        session.commit()
        hub.publish(fresh)
    log.info(
        "batch from %s: %d events, %d new", batch.gateway, len(results), len(fresh)
    )
    return IngestResponse(results=results)

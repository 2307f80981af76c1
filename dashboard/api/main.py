"""The /api/v1 router: one include per resource."""

from __future__ import annotations

from fastapi import APIRouter

from dashboard.api.routes import (
    alarms,
    authaudit,
    desk,
    devices,
    events,
    feedback,
    hazards,
    history,
    ingest,
    map,
    notify,
    overview,
    plans,
    registry,
    reports,
    stream,
    users,
    worker,
)

api_router = APIRouter()
api_router.include_router(ingest.router)
api_router.include_router(feedback.router)
api_router.include_router(alarms.router)
api_router.include_router(desk.api)
api_router.include_router(events.router)
api_router.include_router(stream.router)
api_router.include_router(users.router)
api_router.include_router(authaudit.router)
api_router.include_router(registry.router)
api_router.include_router(map.router)
api_router.include_router(devices.router)
api_router.include_router(notify.router)
api_router.include_router(hazards.router)
api_router.include_router(plans.router)
api_router.include_router(overview.router)
api_router.include_router(history.router)
api_router.include_router(reports.router)
api_router.include_router(worker.router)

"""create_app(settings) -> the centre's FastAPI application."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from dashboard import claims
from dashboard.api.auth import LoginRequired, login_required
from dashboard.api.errors import validation_error
from dashboard.api.main import api_router
from dashboard.api.routes import (
    desk,
    devices,
    docs,
    hazards,
    health,
    history,
    login,
    map,
    overview,
    plans,
    registry,
    reports,
    worker,
)
from dashboard.centre import Centre
from dashboard.notify.channels import build_notifiers
from dashboard.notify.worker import NotifyWorker
from dashboard.security_headers import SecurityHeaders, trusted_hosts
from dashboard.settings import Settings

API_PREFIX = "/api/v1"
STATIC = Path(__file__).resolve().parent / "static"
SESSION_COOKIE = "hg_session"


def create_app(settings: Settings) -> FastAPI:
    centre = Centre.open(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        centre.hub.bind(asyncio.get_running_loop())
        notifier = asyncio.create_task(app.state.notify.run(), name="notify")
        stop_sweep = asyncio.Event()
        sweeper = asyncio.create_task(
            claims.sweep_forever(centre.sessions, centre.hub, app.state.claim_sweep, stop_sweep),
            name="claim-sweep")
        try:
            yield
        finally:
            app.state.notify.stop.set()
            stop_sweep.set()
            await notifier
            await sweeper
            centre.hub.bind(None)
            centre.close()

    app = FastAPI(title="Homeguard centre", version="1", lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.centre = centre
    # idle claims: released by the background task above, and by open desk
    # streams (routes/stream.py), both through this one sweep
    app.state.claim_sweep = claims.IdleSweep(settings.claim_idle_s)
    app.state.notify = NotifyWorker(centre.sessions, settings, build_notifiers(settings))
    app.add_middleware(
        SessionMiddleware, secret_key=centre.session_secret, session_cookie=SESSION_COOKIE,
        max_age=int(settings.session_hours * 3600), same_site="lax",
        https_only=settings.secure_cookie)
    # added last = runs first: a foreign Host is refused before anything
    # reads it, and that refusal carries the security headers too
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=trusted_hosts(settings),
                       www_redirect=False)
    app.add_middleware(SecurityHeaders, hsts=settings.hsts)
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(LoginRequired, login_required)
    app.include_router(api_router, prefix=API_PREFIX)
    app.include_router(health.router)
    app.include_router(login.router)
    app.include_router(docs.router)
    app.include_router(desk.router)
    app.include_router(registry.pages)
    app.include_router(map.pages)
    app.include_router(devices.pages)
    app.include_router(hazards.pages)
    app.include_router(overview.pages)
    app.include_router(plans.pages)
    app.include_router(history.pages)
    app.include_router(reports.pages)
    app.include_router(worker.pages)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app

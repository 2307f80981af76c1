"""GET /openapi.json and /docs, for logged-in users only."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from dashboard.api.auth import UserDep
from dashboard.security_headers import docs_policy

router = APIRouter(include_in_schema=False)


@router.get("/openapi.json")
def openapi(request: Request, _user: UserDep) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs")
def docs(_user: UserDep) -> HTMLResponse:
    page = get_swagger_ui_html(openapi_url="/openapi.json", title="Homeguard centre API")
    page.headers["Content-Security-Policy"] = docs_policy(bytes(page.body).decode())
    return page

"""/api/v1/map: what the map draws (dashboard/mapdata.py); /api/v1/map/alarms:
its open alarms alone, which the page polls; and the /map page (Leaflet,
served from /static/vendor/leaflet).

Everyone who may view alarms may see the map.  The page's content policy is
the centre's own, with img-src widened to the configured tile server's
origin (settings.map_tile_url) and nothing else.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from dashboard import map_labels, mapdata
from dashboard.api.auth import ViewerDep
from dashboard.api.deps import SessionDep, SettingsDep
from dashboard.api.routes.pages import TEMPLATES, lang_of
from dashboard.api.routes.registry import page_boot
from dashboard.mapdata import MapAlarms, MapData
from dashboard.security_headers import PAGE_POLICY

router = APIRouter(prefix="/map", tags=["map"])
pages = APIRouter(include_in_schema=False)

# seconds between the page's looks at the open alarms
POLL_S = 5


@router.get("", response_model=MapData)
def map_data(session: SessionDep, _u: ViewerDep) -> MapData:
    """Grid cells with an outline, households and devices with coordinates,
    and the open alarms at their device's place (its own, else its
    household's); `alarms.unplaced` counts open alarms with no place."""
    return mapdata.everything(session)


@router.get("/alarms", response_model=MapAlarms)
def map_alarms(session: SessionDep, _u: ViewerDep) -> MapAlarms:
    """The open alarms alone, most urgent first (what the page polls)."""
    return mapdata.open_alarms(session)


def tile_origin(url: str) -> str:
    """The CSP source of a tile URL template: its scheme and host, a {s}
    subdomain as '*' (https://{s}.tile.example.org/... -> https://*.tile.example.org)."""
    parts = urlsplit(url.replace("{s}", "s-placeholder"))
    host = (parts.netloc or "").replace("s-placeholder", "*")
    return f"{parts.scheme}://{host}"


def page_policy(tile_url: str) -> str:
    if not tile_url:
        return PAGE_POLICY
    return PAGE_POLICY.replace("img-src 'self'", f"img-src 'self' {tile_origin(tile_url)}")


@pages.get("/map", response_class=HTMLResponse)
def map_page(request: Request, settings: SettingsDep, user: ViewerDep) -> HTMLResponse:
    ctx = map_labels.page_context(lang_of(request))
    boot = page_boot(request, settings, user, ctx)
    boot.update(tile_url=settings.map_tile_url, attribution=settings.map_tile_attribution,
                poll_s=POLL_S)
    ctx.update(boot=boot, user=user, csrf=boot["csrf"])
    page = TEMPLATES.TemplateResponse(request, "map.html", ctx)
    page.headers["Content-Security-Policy"] = page_policy(settings.map_tile_url)
    return page

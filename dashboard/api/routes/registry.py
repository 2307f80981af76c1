"""/api/v1/registry: grid cells, households (with contacts) and devices,
device keys for gateways; and the /registry page.

Everyone logged in may read (`registry.view`); changes need
`registry.manage` and, from a browser, the X-CSRF-Token header.  A
duplicate code or id is 409, an unknown one 404, a bad one 422.  Device
keys are written here (PUT .../key) but read back only through
GET /registry/keys, by a gateway's credential or an admin (audited).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dashboard import (
    authaudit,
    map_labels,
    registry,
    registry_csv,
    registry_import,
    registry_xlsx,
)
from dashboard.api.auth import csrf_token, current_user, require
from dashboard.api.deps import SessionDep, SettingsDep, bearer, client_address, require_gateway
from dashboard.api.routes.pages import TEMPLATES, lang_of
from dashboard.db import begin_write
from dashboard.models import User
from dashboard.registry_schemas import (
    CODE_PATTERN,
    DeviceCreate,
    DevicePublic,
    DeviceUpdate,
    GridCellCreate,
    GridCellPublic,
    GridCellUpdate,
    HouseholdCreate,
    HouseholdPublic,
    HouseholdUpdate,
    KeyBody,
    KeyExport,
    KeySet,
)
from dashboard.roles import allowed, permissions_of
from dashboard.schemas import ID_PATTERN
from hg import protocol

router = APIRouter(prefix="/registry", tags=["registry"])
pages = APIRouter(include_in_schema=False)

Viewer = Annotated[User, Depends(require("registry.view"))]
Manager = Annotated[User, Depends(require("registry.manage"))]
CodePath = Annotated[str, Path(pattern=CODE_PATTERN)]
DevicePath = Annotated[str, Path(pattern=ID_PATTERN)]
T = TypeVar("T")

ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such grid cell, household or device (the message names it)"},
    409: {"description": "the code or device id exists already"},
}


def _write(session: Session, fn: Callable[..., T], *args: Any) -> T:
    """Run one change holding the write lock, commit; registry errors -> 404/409."""
    session.commit()  # end the login check's read: the write begins holding the lock
    begin_write(session)
    try:
        result = fn(session, *args)
        session.commit()
    except registry.NotFound as exc:
        session.rollback()
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except registry.Duplicate as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except IntegrityError as exc:  # a racing request added the same code first
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"conflicts with a registry entry: {exc.orig}") from None
    return result


def _read(session: Session, fn: Callable[..., T], *args: Any) -> T:
    try:
        return fn(session, *args)
    except registry.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


# --- grid cells ---


@router.get("/grid-cells", response_model=list[GridCellPublic])
def list_cells(session: SessionDep, _u: Viewer) -> list[GridCellPublic]:
    return registry.list_cells(session)


@router.post("/grid-cells", response_model=GridCellPublic, status_code=201, responses=ERRORS)
def add_cell(body: GridCellCreate, session: SessionDep, _u: Manager) -> GridCellPublic:
    """A grid cell (网格) with its grid worker's name and phone."""
    return _write(session, registry.add_cell, body)


@router.patch("/grid-cells/{code}", response_model=GridCellPublic, responses=ERRORS)
def change_cell(code: CodePath, body: GridCellUpdate, session: SessionDep,
                _u: Manager) -> GridCellPublic:
    return _write(session, registry.update_cell, code, body)


@router.delete("/grid-cells/{code}", status_code=204, responses=ERRORS)
def delete_cell(code: CodePath, session: SessionDep, _u: Manager) -> Response:
    """Its households stay, with no grid cell."""
    _write(session, registry.delete_cell, code)
    return Response(status_code=204)


# --- households ---


@router.get("/households", response_model=list[HouseholdPublic])
def list_households(session: SessionDep, _u: Viewer) -> list[HouseholdPublic]:
    """Every household with its contacts (in rank order) and device ids."""
    return registry.list_households(session)


@router.get("/households/{code}", response_model=HouseholdPublic, responses=ERRORS)
def get_household(code: CodePath, session: SessionDep, _u: Viewer) -> HouseholdPublic:
    return _read(session, registry.get_household, code)


@router.post("/households", response_model=HouseholdPublic, status_code=201,
             responses=ERRORS)
def add_household(body: HouseholdCreate, session: SessionDep, _u: Manager) -> HouseholdPublic:
    """A household with its bound contacts; `grid_cell` is a grid cell's code."""
    return _write(session, registry.add_household, body)


@router.patch("/households/{code}", response_model=HouseholdPublic, responses=ERRORS)
def change_household(code: CodePath, body: HouseholdUpdate, session: SessionDep,
                     _u: Manager) -> HouseholdPublic:
    """Fields left out stay; `contacts`, when given, replaces the list."""
    return _write(session, registry.update_household, code, body)


@router.delete("/households/{code}", status_code=204, responses=ERRORS)
def delete_household(code: CodePath, session: SessionDep, _u: Manager) -> Response:
    """Its contacts go too; its devices stay, unassigned."""
    _write(session, registry.delete_household, code)
    return Response(status_code=204)


# --- devices and keys ---


@router.get("/devices", response_model=list[DevicePublic])
def list_devices(session: SessionDep, _u: Viewer) -> list[DevicePublic]:
    """Every device with its status (never its key)."""
    return registry.list_devices(session)


@router.get("/devices/{device_id}", response_model=DevicePublic, responses=ERRORS)
def get_device(device_id: DevicePath, session: SessionDep, _u: Viewer) -> DevicePublic:
    return _read(session, registry.get_device, device_id)


@router.post("/devices", response_model=DevicePublic, status_code=201, responses=ERRORS)
def add_device(body: DeviceCreate, session: SessionDep, _u: Manager) -> DevicePublic:
    """A device; its status fields are filled by gateways' status batches."""
    return _write(session, registry.add_device, body)


@router.patch("/devices/{device_id}", response_model=DevicePublic, responses=ERRORS)
def change_device(device_id: DevicePath, body: DeviceUpdate, session: SessionDep,
                  _u: Manager) -> DevicePublic:
    return _write(session, registry.update_device, device_id, body)


@router.delete("/devices/{device_id}", status_code=204, responses=ERRORS)
def delete_device(device_id: DevicePath, session: SessionDep, _u: Manager) -> Response:
    """The device and its key (a gateway's next full key export lacks it)."""
    _write(session, registry.delete_device, device_id)
    return Response(status_code=204)


@router.put("/devices/{device_id}/key", response_model=KeySet, responses=ERRORS)
def put_key(device_id: DevicePath, body: KeyBody, session: SessionDep,
            _u: Manager) -> KeySet:
    """Set the device's HMAC key (16-64 bytes as hex).  The answer never
    repeats the key: {"device_id", "updated_ms"}."""
    at = _write(session, registry.set_key, device_id, body.key_hex)
    return KeySet(device_id=device_id, updated_ms=at)


def key_reader(
    request: Request, session: SessionDep, settings: SettingsDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """A gateway's credential (its id), or a logged-in admin (registry.keys)."""
    if creds is not None:
        return require_gateway(session, settings, creds).gateway_id
    user = current_user(request, session)
    if not allowed(user.role, "registry.keys"):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"role {user.role} may not read device keys (admin or a gateway "
                            "credential only)")
    return user.username


@router.get("/keys", response_model=KeyExport)
def export_keys(request: Request, session: SessionDep,
                who: Annotated[str, Depends(key_reader)],
                after_ms: Annotated[int, Query(ge=0, le=protocol.MAX_INT)] = 0) -> KeyExport:
    """{device_id: key_hex} of keys set after `after_ms` (0: all), and the
    `updated_ms` to pass next time.  Gateways sync their registry from it.
    The registry does not say which gateway serves a device, so every
    gateway reads every key; each answer that carries keys is audited."""
    export = registry.export_keys(session, after_ms)
    if export.keys:
        authaudit.write(session, authaudit.Action.KEYS_EXPORTED, who, who,
                        client_address(request),
                        f"{len(export.keys)} keys set after {after_ms}: "
                        + ", ".join(sorted(export.keys))[:1500])
    return export


# --- import of a whole file ---


async def upload(request: Request) -> bytes:
    """The request's body, refused (413) past registry_csv.MAX_BYTES."""
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > registry_csv.MAX_BYTES:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                                f"the file is over {registry_csv.MAX_BYTES} bytes: split it")
    return bytes(data)


@router.post("/import", response_model=registry_import.Report, responses={
    413: {"description": "the file is too large"},
    422: {"model": registry_import.Report,
          "description": "problems in the file (row, column, message): nothing written"}},
    openapi_extra={"requestBody": {"required": True, "content": {
        "text/csv": {"schema": {"type": "string", "format": "binary"}},
        registry_xlsx.MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}}})
def import_file(request: Request, session: SessionDep, user: Manager,
                data: Annotated[bytes, Depends(upload)],
                dry_run: Annotated[bool, Query(description="check and count only")] = True,
                ) -> Any:
    """Import grid cells, households, contacts and devices from one file, the
    body: CSV (`text/csv`, UTF-8 or GB18030) or an Excel workbook (`.xlsx`,
    its first sheet, told by its content; sent as the .xlsx media type it
    must be one), with the columns in docs/registry-import.md, all or
    nothing.  `dry_run=true` (the default) checks every row and reports
    what would be created or changed, writing nothing; `dry_run=false`
    writes the file when every row is good.  Problems: 422 with the same
    report, its `errors` naming row (as the spreadsheet numbers it), column
    and what is wrong; row 0 is the file as a whole (not a workbook,
    password-protected, too large unpacked); nothing is written."""
    try:
        report = registry_import.import_file(session, data, dry_run, user.username,
                                             client_address(request),
                                             request.headers.get("content-type", ""))
    except IntegrityError as exc:  # a racing request added the same code first
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"conflicts with a registry entry: {exc.orig}") from None
    if not report.ok:
        return JSONResponse(report.model_dump(mode="json"), status_code=422)
    return report


# --- the page ---


def page_boot(request: Request, settings: Any, user: User,
              ctx: dict[str, Any]) -> dict[str, Any]:
    """What the registry and device pages' scripts start from."""
    return {
        "api": "/api/v1", "csrf": csrf_token(request), "lang": ctx["lang"],
        "timezone": settings.timezone, "labels": ctx["labels"],
        "user": {"username": user.username, "role": user.role,
                 "permissions": permissions_of(user.role)},
    }


@pages.get("/registry", response_class=HTMLResponse)
def registry_page(request: Request, settings: SettingsDep, user: Viewer) -> HTMLResponse:
    ctx = map_labels.page_context(lang_of(request))
    boot = page_boot(request, settings, user, ctx)
    boot["can_manage"] = allowed(user.role, "registry.manage")
    ctx.update(boot=boot, user=user, csrf=boot["csrf"])
    return TEMPLATES.TemplateResponse(request, "registry.html", ctx)

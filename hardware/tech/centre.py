"""Registering a device with the centre: grid cell, household, device and key.

A small client for the centre's registry API (/api/v1/registry/...).  That
API is being written alongside this tool; until a centre has it, register()
raises NoRegistryAPI and provisioning says so (the device still works: the
gateway verifies it from its own registry file and the centre accepts its
events).  The paths used are in one place, PATHS, to match the API when it lands.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from hardware.tech.errors import TechError

PATHS = {
    "grid": "/api/v1/registry/grid-cells/{code}",
    "household": "/api/v1/registry/households/{code}",
    "device": "/api/v1/registry/devices/{id}",
}


class NoRegistryAPI(TechError):
    def __init__(self, url: str) -> None:
        super().__init__(f"the centre at {url} has no device registry API yet "
                         "(/api/v1/registry): registration skipped")


@dataclass
class DeviceRecord:
    device_id: str
    type: str
    board: str
    firmware: str
    household: str
    grid: str
    key_hex: str


class CentreRegistry:
    def __init__(self, url: str, token: str, timeout: float = 10) -> None:
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}
        self.timeout = timeout

    def _put(self, path: str, body: dict) -> dict:
        try:
            r = httpx.put(self.url + path, json=body, headers=self.headers,
                          timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise TechError(f"centre {self.url} unreachable: {exc}") from None
        if r.status_code in (404, 405):
            raise NoRegistryAPI(self.url)
        if r.status_code >= 400:
            raise TechError(f"centre refused {path}: HTTP {r.status_code} {r.text[:200]}")
        return r.json() if r.content else {}

    def register(self, rec: DeviceRecord) -> None:
        """Create or update (PUT is idempotent) the grid cell, household and device."""
        if rec.grid:
            self._put(PATHS["grid"].format(code=rec.grid), {"code": rec.grid})
        if rec.household:
            self._put(PATHS["household"].format(code=rec.household),
                      {"code": rec.household, "grid_cell": rec.grid or None})
        self._put(PATHS["device"].format(id=rec.device_id), {
            "device_id": rec.device_id, "type": rec.type, "board": rec.board,
            "firmware": rec.firmware, "household": rec.household or None,
            "key_hex": rec.key_hex})

"""Registering a device with the centre's registry (/api/v1/registry).

The technician logs in as a centre user whose role may manage the registry
(technician, supervisor or admin), exactly as the registry page does: the
login form, then the CSRF token from /api/v1/me on every write. Then:

- the grid cell and the household are created when the centre does not have
  them yet and the technician gave what they need (a grid cell: its
  community; a household: its address and community); a household that is
  missing without those is an error that says where to register it;
- the device is created, or updated when it exists (re-provisioning the same
  board changes nothing else), and its HMAC key is set (write-only: the
  centre never shows it again, gateways fetch it with their token).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from homeguard.tech.errors import TechError

API = "/api/v1/registry"


class NoRegistryAPI(TechError):
    def __init__(self, url: str) -> None:
        super().__init__(f"the centre at {url} has no device registry API "
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
    address: str = ""
    community: str = ""
    compound: str = ""
    contacts: tuple[dict[str, str], ...] = ()  # a new household's, as the registry takes them
    grid_name: str = ""  # a new grid cell's name (else its code)
    worker_name: str = ""  # a new grid cell's grid worker
    worker_phone: str = ""


class CentreRegistry:
    def __init__(self, url: str, username: str, password: str, timeout: float = 10) -> None:
        self.url = url.rstrip("/")
        self.username = username
        self.password = password
        self.timeout = timeout
        self._client: httpx.Client | None = None
        self._csrf = ""

    def _login(self) -> httpx.Client:
        if self._client is not None:
            return self._client
        c = httpx.Client(base_url=self.url, timeout=self.timeout)
        try:
            page = c.get("/login")
            m = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            if m is None:
                raise TechError(f"{self.url} is not a Homeguard centre (no login form)")
            r = c.post("/login", data={"username": self.username, "password": self.password,
                                       "csrf_token": m.group(1)}, follow_redirects=False)
            me = c.get("/api/v1/me")
            if r.status_code != 303 or me.status_code != 200:
                raise TechError(f"the centre refused the login of {self.username!r}")
        except httpx.HTTPError as exc:
            c.close()
            raise TechError(f"centre {self.url} unreachable: {exc}") from None
        self._csrf = me.json()["csrf_token"]
        self._client = c
        return c

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _call(self, method: str, path: str, body: dict | None = None) -> httpx.Response:
        c = self._login()
        try:
            r = c.request(method, API + path, json=body, headers={"X-CSRF-Token": self._csrf})
        except httpx.HTTPError as exc:
            raise TechError(f"centre {self.url} unreachable: {exc}") from None
        if r.status_code == 404 and r.headers.get("content-type", "").startswith("text/html"):
            raise NoRegistryAPI(self.url)
        if r.status_code in (401, 403):
            raise TechError(f"the centre user {self.username!r} may not change the registry "
                            f"(HTTP {r.status_code}): use a technician account")
        return r

    @staticmethod
    def _check(r: httpx.Response, what: str) -> Any:
        if r.status_code >= 400:
            raise TechError(f"centre refused {what}: HTTP {r.status_code} {r.text[:300]}")
        return r.json() if r.content else {}

    def _ensure_grid(self, rec: DeviceRecord) -> None:
        code = rec.grid
        cells = self._check(self._call("GET", "/grid-cells"), "the grid cells")
        if any(c["code"] == code for c in cells):
            return
        if not rec.community:
            raise TechError(f"grid cell {code} is not registered at the centre: register it "
                            "on the centre's /registry page, or give --community")
        self._check(self._call("POST", "/grid-cells", {
            "code": code, "name": rec.grid_name or code, "community": rec.community,
            "worker_name": rec.worker_name, "worker_phone": rec.worker_phone}),
            f"grid cell {code}")

    def _ensure_household(self, rec: DeviceRecord) -> None:
        r = self._call("GET", f"/households/{rec.household}")
        if r.status_code == 200:
            return
        if r.status_code != 404:
            self._check(r, f"household {rec.household}")
        if not (rec.address and rec.community):
            raise TechError(f"household {rec.household} is not registered at the centre: "
                            "register it on the centre's /registry page, or give --address "
                            "and --community")
        self._check(self._call("POST", "/households", {
            "code": rec.household, "address": rec.address, "community": rec.community,
            "compound": rec.compound, "grid_cell": rec.grid or None,
            "contacts": list(rec.contacts)}), f"household {rec.household}")

    def register(self, rec: DeviceRecord) -> str:
        """Register (or update) the device, its household and grid cell, and
        set its key; returns what was done, for the technician."""
        try:
            if rec.grid:
                self._ensure_grid(rec)
            if rec.household:
                self._ensure_household(rec)
            fields = {"type": rec.type, "board": rec.board, "firmware": rec.firmware[:32],
                      "household": rec.household or None}
            r = self._call("GET", f"/devices/{rec.device_id}")
            if r.status_code == 404:
                self._check(self._call("POST", "/devices", {"device_id": rec.device_id,
                                                            **fields}), "the device")
                done = "registered"
            else:
                self._check(r, "the device")
                fields["household"] = rec.household or ""
                self._check(self._call("PATCH", f"/devices/{rec.device_id}", fields),
                            "the device")
                done = "updated"
            self._check(self._call("PUT", f"/devices/{rec.device_id}/key",
                                   {"key_hex": rec.key_hex}), "the device key")
            return done
        finally:
            self.close()

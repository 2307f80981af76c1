"""Device registry: which devices exist and their HMAC keys.

A JSON file written by provisioning (and the demo):
    {"devices": [{"id": "hg-b-0001", "key": "<64 hex>", "type": "button",
                  "household": "H-0001", "grid": "G-01"}]}
It is re-read when its modification time changes (checked at most once a
second), so newly provisioned devices work without restarting the gateway.
A file that becomes invalid is logged and the last good copy is kept.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

from hg import protocol

log = logging.getLogger("homeguard.gateway.registry")


class RegistryError(Exception):
    pass


def parse(text: str, source: str) -> dict[str, dict]:
    try:
        devices = json.loads(text)["devices"]
    except (ValueError, KeyError, TypeError) as exc:
        raise RegistryError(f"{source}: not a device registry ({exc})") from None
    out: dict[str, dict] = {}
    for i, d in enumerate(devices):
        dev = d.get("id") if isinstance(d, dict) else None
        if not isinstance(dev, str) or not protocol.valid_id(dev):
            raise RegistryError(f"{source}: devices[{i}] has no valid id")
        try:
            key = bytes.fromhex(d["key"])
        except (KeyError, ValueError, TypeError):
            raise RegistryError(f"{source}: device {dev} has no hex key") from None
        if not 16 <= len(key) <= 64:  # docs/protocol.md: 16..64 bytes, 32 made
            raise RegistryError(f"{source}: device {dev} key must be 16..64 bytes, "
                                f"not {len(key)}")
        out[dev] = {**d, "key": key}
    return out


class Registry:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._checked = 0.0
        self._mtime = self._stat()
        self._devices = parse(self._read(), str(self.path))

    def _stat(self) -> tuple[int, int]:
        """(mtime in ns, size): a rewrite within one timestamp tick still shows."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            raise RegistryError(f"{self.path}: device registry file not found") from None
        return st.st_mtime_ns, st.st_size

    def _read(self) -> str:
        return self.path.read_text()

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < 1.0:
            return
        self._checked = now
        try:
            mtime = self._stat()
            if mtime == self._mtime:
                return
            # remembered before parsing: a bad file is reported once, not every second
            self._mtime = mtime
            self._devices = parse(self._read(), str(self.path))
            log.info("registry reloaded devices=%d", len(self._devices))
        except (RegistryError, OSError) as exc:
            log.error("registry reload failed, keeping the last good copy: %s", exc)

    def key_of(self, dev: str) -> bytes | None:
        with self._lock:
            self._refresh()
            d = self._devices.get(dev)
        return d["key"] if d else None

    def get(self, dev: str) -> dict | None:
        with self._lock:
            return self._devices.get(dev)

    def ids(self) -> list[str]:
        """Every registered device id (after a reload check)."""
        with self._lock:
            self._refresh()
            return list(self._devices)

"""Device keys from the centre's registry into the gateway's registry file.

With `[registry] centre_sync_s` > 0, a thread asks the centre every that
many seconds for the keys set since its last answer
(`GET /api/v1/registry/keys?after_ms=`, gateway token) and writes them into
the registry file (temp + rename, so the file is whole at every moment),
keeping every other field of an entry and every entry the centre does not
know; an entry the sync wrote itself is removed once the centre no longer
holds a key for that device. The registry re-reads the file within a second (registry.py), so a
device registered and keyed at the centre is accepted without a restart.
The first request after a start asks for every key.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import httpx

from gateway.config import CentreSection
from gateway.worker import Worker

log = logging.getLogger("homeguard.gateway.keysync")
OVERLAP_MS = 1000
SOURCE = "centre"  # marks registry entries this sync wrote


def merge(path: Path, keys: dict[str, str], keyed: list[str] | None = None) -> int:
    """Put the keys into the registry file; how many entries changed.

    `keyed` (every device the centre holds a key for): entries that came from
    the centre and are no longer there are removed; entries written by hand
    or by provisioning are never touched."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        doc = {"devices": []}
    devices = [d for d in doc.get("devices", []) if isinstance(d, dict) and "id" in d]
    changed = 0
    if keyed is not None:
        keep = set(keyed)
        kept = [d for d in devices if d.get("source") != SOURCE or d["id"] in keep]
        changed += len(devices) - len(kept)
        devices = kept
    entries = {d["id"]: d for d in devices}
    for dev, key in keys.items():
        entry = entries.get(dev)
        if entry is None:
            entries[dev] = entry = {"id": dev, "source": SOURCE}
            devices.append(entry)
        if entry.get("key") != key:
            entry["key"] = key
            changed += 1
    doc["devices"] = devices
    if changed:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        os.replace(tmp, path)
    return changed


class KeySync(Worker):
    name = "keysync"

    def __init__(self, cfg: CentreSection, path: Path, every_s: float) -> None:
        super().__init__(cfg.backoff_min_s, cfg.backoff_max_s)
        self.idle_s = every_s
        self.path = Path(path)
        self.url = cfg.url.rstrip("/") + "/api/v1/registry/keys"
        self.http = httpx.Client(timeout=cfg.timeout_s,
                                 headers={"Authorization": f"Bearer {cfg.token}"})
        self.after_ms = 0

    def close(self) -> None:
        self.http.close()

    def once(self) -> bool:
        self.sync_once()
        return False

    def sync_once(self) -> int:
        # ask again for the last second too: a key set in the same millisecond
        # as the previous answer's newest is not missed (merging is idempotent)
        r = self.http.get(self.url, params={"after_ms": max(0, self.after_ms - OVERLAP_MS)})
        r.raise_for_status()
        body = r.json()
        changed = merge(self.path, body["keys"], body.get("device_ids"))
        self.after_ms = int(body["updated_ms"])
        if changed:
            log.info("keys from the centre: %d devices added or changed", changed)
        return changed

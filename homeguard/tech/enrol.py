"""The host side of provisioning: the broker account and the gateway's registry.

Both are upserts, so provisioning the same board again changes nothing
(or repairs what an earlier, interrupted run left half done).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from broker import layout
from broker.errors import BrokerError
from homeguard.tech.errors import TechError


def broker_account(broker_dir: Path, device_id: str, password: str) -> bool:
    """Set the device's account (username = device id; the broker's pattern ACL
    then limits it to its own topics) and reload; False when no broker runs."""
    try:
        layout.add_device(broker_dir, device_id, password)
    except BrokerError as exc:
        raise TechError(f"broker {broker_dir}: {exc}") from None
    return layout.reload(broker_dir)


def broker_ca(broker_dir: Path) -> bytes | None:
    ca = layout.BrokerDir(broker_dir).tls_paths.ca_cert
    return ca.read_bytes() if ca.is_file() else None


def registry_entry(path: Path, entry: dict) -> bool:
    """Add or replace the device in the gateway's registry file (the format of
    gateway/registry.py), atomically; True when the file changed."""
    path = Path(path)
    doc: dict = {"devices": []}
    if path.exists():
        try:
            doc = json.loads(path.read_text())
            if not isinstance(doc["devices"], list):
                raise TypeError("devices is not a list")
        except (ValueError, KeyError, TypeError):
            raise TechError(f"{path}: not a device registry file") from None
    devices = [d for d in doc["devices"] if d.get("id") != entry["id"]]
    old = next((d for d in doc["devices"] if d.get("id") == entry["id"]), None)
    if old == entry:
        return False
    doc["devices"] = [*devices, entry]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)
    return True

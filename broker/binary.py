"""Where Mosquitto is installed: PATH first, then Debian's and a source
build's locations (sbin is often not on a user's PATH)."""

from __future__ import annotations

import os
import shutil

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in MOSQUITTO_PATHS if os.access(p, os.X_OK)), None)

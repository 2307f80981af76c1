"""`homeguard device flash`: write the MicroPython runtime with esptool."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from homeguard.tech.errors import NoBoard, TechError

CHIPS = ("esp32", "esp32c3", "esp32s3")
# where MicroPython's ESP32 images start (the bootloader offset of each chip)
OFFSET = {"esp32": "0x1000", "esp32c3": "0x0", "esp32s3": "0x0"}


def esptool_argv(port: str, chip: str, baud: int, image: Path, erase: bool) -> list[list[str]]:
    base = [sys.executable, "-m", "esptool", "--chip", chip, "--port", port, "--baud", str(baud)]
    steps = [[*base, "erase-flash"]] if erase else []
    offset = OFFSET.get(chip, "0x1000")
    return [*steps, [*base, "write-flash", "-z", offset, str(image)]]


def flash(port: str, image: Path, chip: str, baud: int = 460800,
          erase: bool = True) -> None:
    if chip not in CHIPS:
        raise TechError(f"unknown chip {chip!r}; use one of {', '.join(CHIPS)} "
                        "(esp32 for the sensor, esp32c3 for the button)")
    if not Path(image).is_file():
        raise TechError(f"{image}: no such firmware image (download the MicroPython .bin "
                        "for your board from micropython.org)")
    if not os.path.exists(port):
        raise NoBoard(port, "the port does not exist")
    for argv in esptool_argv(port, chip, baud, Path(image), erase):
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode != 0:
            raise _explain(port, proc.stdout + proc.stderr)


def _explain(port: str, out: str) -> TechError:
    text = out.strip().splitlines()
    last = text[-1] if text else "esptool failed"
    if any(s in out for s in ("Failed to connect", "No serial data received",
                              "could not open port", "Could not open")):
        return NoBoard(port, f"esptool could not talk to the chip ({last}); hold BOOT "
                       "while pressing RESET to enter the bootloader, then retry")
    return TechError(f"esptool failed: {last}")

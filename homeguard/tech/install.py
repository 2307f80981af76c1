"""Install a firmware bundle on a board so that an interruption never breaks it.

    /lib/hg        the live tree (what the board runs)
    /lib/hg.new    staging: the new tree is copied here, file by file, each
                   verified by SHA-256 on the board, the manifest last
    /lib/hg.prev   the previous tree, kept for `homeguard device rollback`

The swap is one command run on the board (drop the old .prev, live -> .prev,
staging -> live); it keeps running even if the cable is pulled after it was
sent.  recover() (run before every install, and by the firmware's boot.py)
repairs the only unsafe moment, a power cut between the two renames: no live
tree but a .prev one -> the .prev one goes back.  Staging left over from an
interrupted copy is deleted and never run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from homeguard.tech import files
from homeguard.tech.bundle import MANIFEST, Bundle
from homeguard.tech.errors import DeviceError, TechError
from homeguard.tech.link import Board

LIVE = "/lib/hg"
STAGE = "/lib/hg.new"
PREV = "/lib/hg.prev"

_HAS = ("import os\ndef hg_has(p):\n try:\n  os.stat(p)\n  return True\n"
        " except OSError:\n  return False\n")

RECOVER = _HAS + f"""
if not hg_has({LIVE!r}) and hg_has({PREV!r}):
    os.rename({PREV!r}, {LIVE!r})
    print('restored')
"""

# The board's /boot.py and /main.py, written by every install: the recovery
# rule above before anything is imported, /lib/hg on sys.path (the app,
# package apps.<type>, is installed inside the firmware tree), then the app.
BOOT_PY = ("# Homeguard (written by `homeguard device install`)\n" + RECOVER.replace(
    "print('restored')", "pass") + f"import sys\nsys.path.append({LIVE!r})\n")
PATH_SETUP = f"import sys\nif {LIVE!r} not in sys.path:\n    sys.path.append({LIVE!r})\n"


def main_py(device_type: str) -> str:
    return f"# Homeguard (written by `homeguard device install`)\nimport apps.{device_type}.main\n"


# Guarded by the staging tree's existence, so a repeat (the answer to the
# first try was lost) does nothing instead of swapping twice.
SWAP = _HAS + f"""
if hg_has({STAGE!r}):
    if hg_has({PREV!r}):
        hg_rm({PREV!r})
    if hg_has({LIVE!r}):
        os.rename({LIVE!r}, {PREV!r})
    os.rename({STAGE!r}, {LIVE!r})
print('swapped')
"""

ROLLBACK = _HAS + f"""
if not hg_has({PREV!r}):
    raise OSError('no previous firmware on this board')
os.rename({LIVE!r}, '/lib/hg.tmp')
os.rename({PREV!r}, {LIVE!r})
os.rename('/lib/hg.tmp', {PREV!r})
print('rolled back')
"""

# Every file the staged manifest names must be there with its hash.
CHECK_STAGE = f"""
import json
m = json.load(open({STAGE + '/' + MANIFEST!r}))
bad = [p for p, h in m['files'].items() if hg_sha({STAGE!r} + '/' + p) != h]
"""


@dataclass
class InstallResult:
    version: str
    previous: str | None
    restored: bool  # recover() had to put the previous tree back first


def recover(board: Board) -> bool:
    """Repair a swap cut by a power loss; True when the previous tree was restored."""
    return "restored" in board.retry(lambda: board.run(RECOVER, what="recovery check"),
                                     "recovery check")


def installed_manifest(board: Board, tree: str = LIVE) -> dict | None:
    raw = board.retry(lambda: files.read(board, f"{tree}/{MANIFEST}"), "reading the manifest")
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _dirs(bundle: Bundle) -> list[str]:
    return sorted({f"{STAGE}/{p.rsplit('/', 1)[0]}" for p in bundle.files if "/" in p})


def stage(board: Board, bundle: Bundle, on_bytes: files.Progress | None = None,
          on_retry: Callable[[int], None] | None = None) -> None:
    """Copy the bundle into a fresh staging tree and check it whole."""
    board.retry(lambda: files.rmtree(board, STAGE), "clearing the staging area")
    for d in [STAGE, *_dirs(bundle)]:
        board.retry(partial(files.mkdirs, board, d), f"creating {d}")
    items = [*sorted(bundle.files.items()), (MANIFEST, bundle.manifest())]
    for rel, data in items:
        files.put_file(board, f"{STAGE}/{rel}", data, on_bytes, on_retry)
    bad = board.retry(lambda: board.eval("bad", files._SHA + CHECK_STAGE,
                                         what="checking the staged tree"),
                      "checking the staged tree")
    if bad:
        raise TechError(f"staged files changed on the board after copying: {bad}; "
                        "the live firmware was not touched")


def install(board: Board, bundle: Bundle, on_bytes: files.Progress | None = None,
            on_retry: Callable[[int], None] | None = None) -> InstallResult:
    restored = recover(board)
    old = installed_manifest(board)
    stage(board, bundle, on_bytes, on_retry)
    try:
        board.retry(lambda: board.run(files._RMTREE + SWAP, what="swap"), "swapping trees")
    except DeviceError as exc:
        recover(board)
        raise TechError(f"the swap failed on the board, previous firmware kept: {exc}") from None
    new = installed_manifest(board)
    if not new or new.get("version") != bundle.version:
        raise TechError("after the swap the board does not report the new version")
    files.put_file(board, "/boot.py", BOOT_PY.encode(), None, on_retry)
    files.put_file(board, "/main.py", main_py(bundle.type).encode(), None, on_retry)
    return InstallResult(bundle.version, old.get("version") if old else None, restored)


def rollback(board: Board) -> str | None:
    """Swap the previous tree back in; returns the version now live."""
    recover(board)
    board.retry(lambda: board.run(ROLLBACK, what="rollback"), "rolling back")
    manifest = installed_manifest(board)
    return manifest.get("version") if manifest else None

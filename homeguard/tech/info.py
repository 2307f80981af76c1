"""`homeguard device info`: what is on the board, without its secrets."""

from __future__ import annotations

from homeguard.tech.install import LIVE, PREV, installed_manifest, recover
from homeguard.tech.link import Board
from homeguard.tech.provision import read_config, redacted

_STATE = """
import gc, sys, os
gc.collect()
try:
    st = os.statvfs('/')
    fs_free = st[0] * st[3]
except (AttributeError, OSError):
    fs_free = None
s = {'micropython': '.'.join(str(x) for x in sys.implementation.version[:3]),
     'machine': sys.implementation._machine, 'free_heap': gc.mem_free(),
     'fs_free': fs_free}
"""


def board_info(board: Board) -> dict:
    """Firmware version (live and kept for rollback), runtime, free heap, config summary."""
    restored = recover(board)
    state = board.retry(lambda: board.eval("s", _STATE, what="reading the board state"),
                        "reading the board state")
    live = installed_manifest(board, LIVE) or {}
    prev = installed_manifest(board, PREV) or {}
    cfg = read_config(board)
    info = dict(state) if isinstance(state, dict) else {}
    info.update({
        "firmware": live.get("version"), "firmware_type": live.get("type"),
        "previous_firmware": prev.get("version"),
        "config": redacted(cfg) if cfg else None,
    })
    if restored:
        info["note"] = "an interrupted firmware swap was found and the previous tree restored"
    return info

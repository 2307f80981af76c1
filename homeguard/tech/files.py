"""Files on the board, over the raw REPL.

put_file() never leaves a partial file in place: the data goes to
`<path>.part` in base64 chunks, the board computes its SHA-256, and only a
matching file is renamed over `<path>`.  A failed attempt removes the .part
file (or the next attempt truncates it) and sends the whole file again.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

from homeguard.tech.errors import DeviceError, LinkError, VerifyFailed
from homeguard.tech.link import Board

CHUNK = 768  # raw bytes per write command (1 KiB of base64)
PART = ".part"
Progress = Callable[[int], None]  # called with the bytes just written

_SHA = """
import hashlib, binascii
def hg_sha(p):
    h = hashlib.sha256()
    try:
        f = open(p, 'rb')
    except OSError:
        return None
    b = bytearray(512)
    while True:
        n = f.readinto(b)
        if not n:
            break
        h.update(b[:n])
    f.close()
    return binascii.hexlify(h.digest()).decode()
"""

_RMTREE = """
import os
def hg_rm(p):
    try:
        st = os.stat(p)
    except OSError:
        return
    if st[0] & 0x4000:
        for n in os.listdir(p):
            hg_rm(p + '/' + n)
        os.rmdir(p)
    else:
        os.remove(p)
"""

_MKDIRS = """
import os
def hg_mkdirs(p):
    cur = ''
    for part in p.split('/'):
        if not part:
            continue
        cur += '/' + part
        try:
            os.mkdir(cur)
        except OSError:
            pass
"""


def sha256(board: Board, path: str) -> str | None:
    """Hex SHA-256 of a file on the board, None when it does not exist."""
    got = board.eval(f"hg_sha({path!r})", _SHA, what=f"hashing {path}")
    return got if isinstance(got, str) else None


def exists(board: Board, path: str) -> bool:
    return bool(board.eval(f"hg_exists({path!r})",
                           "import os\ndef hg_exists(p):\n try:\n  os.stat(p)\n  return True\n"
                           " except OSError:\n  return False", what=f"checking {path}"))


def rmtree(board: Board, path: str) -> None:
    board.run(f"{_RMTREE}\nhg_rm({path!r})", what=f"removing {path}")


def mkdirs(board: Board, path: str) -> None:
    board.run(f"{_MKDIRS}\nhg_mkdirs({path!r})", what=f"creating {path}")


def read(board: Board, path: str) -> bytes | None:
    """A (small) file's bytes, None when it does not exist."""
    got = board.eval(f"hg_read({path!r})",
                     "def hg_read(p):\n try:\n  f = open(p, 'rb')\n except OSError:\n"
                     "  return None\n d = f.read()\n f.close()\n return d",
                     what=f"reading {path}")
    return got if isinstance(got, bytes) else None


def _send(board: Board, part: str, data: bytes, progress: Progress | None) -> None:
    board.run(f"hgf = open({part!r}, 'wb')", what=f"opening {part}")
    for i in range(0, len(data), CHUNK):
        chunk = base64.b64encode(data[i:i + CHUNK]).decode()
        board.run(f"hgf.write(binascii.a2b_base64(b'{chunk}'))", what=f"writing {part}")
        if progress:
            progress(len(data[i:i + CHUNK]))
    board.run("hgf.close()\ndel hgf", what=f"closing {part}")


def put_once(board: Board, path: str, data: bytes, progress: Progress | None = None) -> None:
    """One attempt: write, verify on the board, rename into place."""
    part = path + PART
    board.run("import binascii, os", what="setup")
    try:
        _send(board, part, data, progress)
        expected = hashlib.sha256(data).hexdigest()
        got = sha256(board, part) or "(missing)"
        if got != expected:
            raise VerifyFailed(path, expected, got)
        board.run(f"import os\nos.rename({part!r}, {path!r})", what=f"renaming {part}")
    except (LinkError, DeviceError, VerifyFailed):
        _discard(board, part)
        raise


def _discard(board: Board, part: str) -> None:
    """Best effort: drop the .part file now (the next attempt rewrites it anyway)."""
    try:
        board.recover()
        board.run(f"{_RMTREE}\nhg_rm({part!r})", what=f"removing {part}")
    except (LinkError, DeviceError):
        pass


def put_file(board: Board, path: str, data: bytes, progress: Progress | None = None,
             restart: Progress | None = None) -> None:
    """put_once() with retries; before a retry, restart(bytes reported by the failed
    attempt) lets a progress bar step back."""
    sent = 0

    def counted(n: int) -> None:
        nonlocal sent
        sent += n
        if progress:
            progress(n)

    def attempt() -> None:
        nonlocal sent
        if sent and restart:
            restart(sent)
        sent = 0
        put_once(board, path, data, counted)

    board.retry(attempt, f"copying {path}", (LinkError, DeviceError, VerifyFailed))

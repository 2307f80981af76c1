"""One process per state: an exclusive lock on a data directory or file.

Two gateways (or two demos) on one store would each believe their acks and
de-dup state are the whole truth: the second one's alarms can be taken for
the first one's duplicates. `hold(path, what)` takes an exclusive, non-
blocking `flock` on `<path>.lock` (for a directory: `<dir>/.lock`) for the
life of the process and writes who holds it there; a second start fails at
once with a one-line message naming the other process. The kernel drops the
lock when its holder exits, kill -9 included, so no stale lock survives.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path
from typing import IO

_HELD: list[IO[str]] = []  # kept open (and so locked) until the process exits


class InUse(Exception):
    """The state is held by another process; str() names it."""


def hold(path: Path, what: str, directory: bool = True) -> Path:
    """Lock `path` (a directory, made if missing; else a file) for this
    process, or raise InUse; returns the lock file."""
    path = Path(path).resolve()
    lock = path / ".lock" if directory else path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    f = open(lock, "a+", encoding="utf-8")  # noqa: SIM115 - held open on purpose
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise InUse(f"{path} is in use by {holder}; stop it first, or give this {what} "
                    "its own state") from None
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()} ({what}: {' '.join(sys.argv)[:200]})\n")
    f.flush()
    _HELD.append(f)
    return lock

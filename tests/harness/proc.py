"""Start and stop real server processes on free loopback ports for tests.

The process helpers are the benchmarks' own (homeguard/bench/servers.py);
what is here is the tests' rule for a server that is not installed."""

from __future__ import annotations

import os
import shutil

import pytest

from homeguard.bench.servers import LOOPBACK, Proc, free_port, port_open, wait_until

__all__ = ["LOOPBACK", "Proc", "free_port", "port_open", "wait_until",
           "servers_required", "require_binary"]


def servers_required() -> bool:
    """In CI (and under scripts/test) a missing server is a failure, never a skip."""
    return bool(os.environ.get("CI")) or os.environ.get("HG_REQUIRE_SERVERS") == "1"


def require_binary(name: str, hint: str) -> str:
    """Path of an executable; fails in CI, skips with an install hint elsewhere."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
    )
    if path:
        return path
    msg = f"{name} is not installed ({hint}); scripts/test installs it"
    if servers_required():
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)

"""Name lookups do not hold the board loop (issue 13, always armed):
getaddrinfo blocks (seconds during an outage, and MicroPython has no
asynchronous lookup), so hg.net.address() keeps each address across
attempts and looks a name up again only after FAILS failed attempts in a
row (or an hour), never twice within EVERY_S.  Here getaddrinfo, in the socket
layer hg.net and hg.sntp use, blocks 1.5 s per call (CPython, real sockets):

1. The button (ButtonApp + hg.device + SimHAL, in the board loop's order)
   with a broker name whose address refuses every connect: presses made
   during the repeated failed connects reach the flash outbox, and the
   lookups come at most once per EVERY_S (set to 4 s here: a first one,
   then again only after three failed connects).
2. SNTP against a server name whose address never answers, a sync retried
   every 100 ms: lookups at most once per EVERY_S (2 s here) as well.
3. The defaults: at most one lookup a minute, again after 3 failures or an
   hour."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from hg import net
from hg.sntp import SNTP
from tests.test_button_app import HOLD_MS
from tests.test_fw_armed import ArmedButton, write_config

BLOCK_S = 1.5
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, str]]:
    """Every getaddrinfo call (monotonic s, host); each blocks BLOCK_S and
    gives a loopback port where nothing listens (TCP refused, UDP
    unanswered).  hg.net starts with no address known."""
    monkeypatch.setattr(net, "known", {})
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    closed = s.getsockname()[1]
    s.close()
    real = socket.getaddrinfo
    calls: list[tuple[float, str]] = []

    def slow(host, port, *args):  # noqa: ANN001,ANN002,ANN202
        calls.append((time.monotonic(), host))
        time.sleep(BLOCK_S)  # the resolver waiting for an unreachable DNS server
        return real("127.0.0.1", closed, *args)

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    return calls


def spaced(calls: list[tuple[float, str]], every_s: float) -> bool:
    return all(b[0] - a[0] >= every_s - 0.05 for a, b in zip(calls, calls[1:], strict=False))


def test_presses_are_kept_while_lookups_block_and_connects_fail(
        tmp_path: Path, lookups: list[tuple[float, str]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(net, "EVERY_S", 4)
    write_config(tmp_path, 1883, "hg-b-0080", bytes(range(32)), "pw", host="broker.test")
    b = ArmedButton(tmp_path)
    start = time.monotonic()
    b.run(lambda: b.dev.link.failures >= 1, "a first failed connect")
    b.press(HOLD_MS + 200, "btn_fire")
    b.run(lambda: b.dev.link.failures >= 3, "three failed connects")
    b.press(HOLD_MS + 200, "btn_medical")
    b.run(lambda: b.pending() == ["fire", "medical"], "both alarms in the flash outbox")
    b.run(lambda: len(lookups) >= 2, "the name looked up again after the failures",
          timeout=30)
    b.run_for(3000)
    elapsed = time.monotonic() - start
    assert b.pending() == ["fire", "medical"] and b.led() == "blink"
    assert {h for _, h in lookups} == {"broker.test"}
    assert spaced(lookups, 4.0), lookups
    assert len(lookups) <= 1 + elapsed / 4.0, (len(lookups), elapsed)
    assert b.dev.link.failures > len(lookups)  # most attempts did not look the name up
    b.dev.close()


def test_sntp_lookups_are_throttled_too(lookups: list[tuple[float, str]],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(net, "EVERY_S", 2)
    clock = SNTP("ntp.test", retry_ms=100, wait_ms=100)
    start = time.monotonic()
    try:
        while time.monotonic() - start < 7:
            clock.poll(time.monotonic_ns() // 1000000)
            time.sleep(0.01)
    finally:
        clock.close()
    assert clock.offset is None and clock.failures >= 6
    assert 2 <= len(lookups) <= 1 + 7 / 2.0 and spaced(lookups, 2.0), lookups
    assert {h for _, h in lookups} == {"ntp.test"}


def test_the_default_rates() -> None:
    assert (net.EVERY_S, net.FAILS, net.STALE_S) == (60, 3, 3600)

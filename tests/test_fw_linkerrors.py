"""Every link error is a link error (issue 13, defect 4): a refused TLS
certificate, a failed name lookup, a refused connection and MicroPython's
ValueError for a bad certificate all go through hg.link's backoff with
jitter, each cause logged once.

- The default schedule allows at most 10 attempts in any first minute, even
  with the jitter always at its fastest.
- The real device (hg.device + SimHAL + hg.net) against Mosquitto's TLS
  listener with a CA from another authority: nothing sent in clear, the
  cause (certificate verify failed) logged once, and attempts spaced by the
  backoff.  Run on a clock scaled by 1/10 (base 100 ms, cap 12 s): the 8th
  attempt comes no earlier than 6.35 s, so at most 7 fell in the first
  6.35 s, i.e. at most 7 a minute at full scale.
- Refused, DNS and ValueError failures from the transport factory: each
  counted, spaced and logged once."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from broker import tls
from hg.device import Device
from hg.link import Link
from hg.mqtt import MQTTClient
from hg.net import tcp
from hg.simhal import SimHAL
from tests.harness.proc import wait_until

DEV = "hg-b-0078"
KEY = bytes(range(32))
pytestmark = pytest.mark.timeout(90)


def attempts_in(link: Link, window_ms: int) -> int:
    """Attempts a Link makes in its first window_ms of failures."""
    t = n = 0
    while t <= window_ms:
        n += 1
        t += link.delay(n - 1)
    return n


def test_default_backoff_allows_at_most_10_attempts_a_minute() -> None:
    fastest = Link(MQTTClient("d", None), rand=lambda: 0)  # jitter always at its minimum
    slowest = Link(MQTTClient("d", None), rand=lambda: 65535)
    assert attempts_in(fastest, 60000) == 7  # at 0, .5, 1.5, 3.5, 7.5, 15.5, 31.5 s (63.5)
    assert attempts_in(slowest, 60000) == 6  # at 0, 1, 3, 7, 15, 31 s (63)
    assert fastest.delay(30) == 60000 and slowest.delay(30) == 119999  # the cap: 60-120 s


def run_until(dev: Device, hal: SimHAL, cond, what: str, timeout: float) -> None:  # noqa: ANN001
    def step() -> bool:
        dev.poll(hal.ticks_ms())
        return bool(cond())
    wait_until(step, timeout, what, interval=0.005)


def test_broker_certificate_from_another_ca(tmp_path: Path, mosquitto) -> None:  # noqa: ANN001
    other = tls.ensure(tmp_path / "other-ca")
    (tmp_path / "config.json").write_text(json.dumps({
        "v": 1, "device_id": DEV, "type": "button", "board": "button-c3",
        "broker": {"host": mosquitto.host, "port": mosquitto.tls_port, "tls": True,
                   "ca": str(other.ca_cert), "username": DEV,
                   "password": mosquitto.add_device(DEV)},
        "key_hex": KEY.hex()}))
    hal, logged = SimHAL(), []
    dev = Device.boot(hal, object(), str(tmp_path), log=logged.append)
    link = dev.link
    link.base_ms, link.cap_ms = 100, 12000  # the schedule scaled by 1/10
    tries: list[int] = []
    seen = [0]

    def attempt() -> bool:
        if link.failures > seen[0]:
            seen[0] = link.failures
            tries.append(hal.ticks_ms())
        return link.failures >= 8

    t0 = hal.ticks_ms()
    run_until(dev, hal, attempt, "8 refused handshakes", timeout=60)
    assert tries[-1] - t0 >= 6350, tries  # 50+100+200+400+800+1600+3200 ms at the least
    assert link.connects == 0 and not link.connected
    assert "CERTIFICATE_VERIFY_FAILED" in (link.last_error or ""), link.last_error
    assert len(logged) == 1 and logged[0].startswith(f"{DEV} link: ")
    assert "CERTIFICATE_VERIFY_FAILED" in logged[0]
    assert dev.loop_errors == 0  # handled by the link, not by the loop's catch-all
    dev.close()


def failing_link(transport) -> tuple[Link, list[str]]:  # noqa: ANN001
    logged: list[str] = []
    link = Link(MQTTClient(DEV, transport), rand=lambda: 0, backoff_ms=(1000, 8000),
                log=logged.append)
    return link, logged


def drive(link: Link, polls: int) -> list[int]:
    """Poll at every ms when an attempt is due; the times attempts were made."""
    times, now = [], 0
    for _ in range(polls):
        before = link.failures
        link.poll(now)
        if link.failures > before:
            times.append(now)
        now = link.next_try
    return times


def test_refused_dns_and_value_errors_go_through_the_backoff() -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: connection refused
    link, logged = failing_link(tcp("127.0.0.1", port))
    times = []
    for now in range(0, 20000, 10):  # the loop polls every 10 ms
        before = link.failures
        link.poll(now)
        if link.failures > before:
            times.append(now)
        deadline = time.monotonic() + 2
        while link.connecting and time.monotonic() < deadline:  # the refusal arrives
            link.poll(now)
    assert times[:5] == [0, 500, 1500, 3500, 7500] and link.connects == 0
    assert link.last_error == "111 Connection refused"
    assert logged == ["link: 111 Connection refused (retrying with backoff)"]

    def no_dns() -> None:
        raise socket.gaierror(-2, "Name or service not known")

    link, logged = failing_link(no_dns)
    assert drive(link, 4) == [0, 500, 1500, 3500]
    assert logged == ["link: -2 Name or service not known (retrying with backoff)"]

    def bad_cert() -> None:  # MicroPython's TLS refusing a certificate
        raise ValueError("MBEDTLS_ERR_X509_CERT_VERIFY_FAILED")

    link, logged = failing_link(bad_cert)
    assert drive(link, 4) == [0, 500, 1500, 3500]
    assert logged == ["link: OSError ValueError: MBEDTLS_ERR_X509_CERT_VERIFY_FAILED "
                      "(retrying with backoff)"]

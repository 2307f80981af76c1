"""Int milliseconds on every port, in step with the second (issue 13,
defect 3): the board's wall clock comes from hg.sntp (the SNTP answer's
transmit time to the ms, half the round trip added, anchored on the
monotonic ticks), never from time.time() (whole seconds on some ports, a
float on others -- the npm MicroPython's is a float -- and its sub-second
part zero after ntptime).

- unix_ms() of server answers, the same ints under CPython and MicroPython;
- SNTP against a UDP server on loopback: one request, the offset from the
  answer, a retry after a silent server, no call waits;
- hg.esp32hal's time_ms() under the npm MicroPython with the virtual
  board's machine/network modules: an int, None before the first answer;
  hg.sntp unloaded again once the sync is over."""

from __future__ import annotations

import socket
import struct
import threading

import pytest

from hg import sntp
from homeguard.bench.firmware import VHW  # the virtual board's machine/network
from tests.harness.proc import wait_until

T0 = 1796189408  # 2026-12-02, seconds since 1970


def answer(unix_s: int, frac: int, mode: int = 4, stratum: int = 2) -> bytes:
    pkt = bytearray(48)
    pkt[0] = (3 << 3) | mode  # version 3
    pkt[1] = stratum
    pkt[40:48] = struct.pack("!II", unix_s + sntp.NTP_DELTA_S, frac)
    return bytes(pkt)


CASES = [(T0, 0), (T0, 0x80000000), (T0, 0xFFFFFFFF), (T0 + 1, 0x1999999A)]
CHECK = """
from hg import sntp
import binascii
for h in %r:
    ms = sntp.unix_ms(binascii.unhexlify(h))
    print(ms, type(ms).__name__)
for h in %r:
    try:
        sntp.unix_ms(binascii.unhexlify(h))
    except ValueError as e:
        print('ValueError', e)
"""
BAD = [answer(T0, 0, mode=3), answer(T0, 0, stratum=0), answer(T0, 0)[:47]]


def test_unix_ms_is_an_int_to_the_ms_on_both_runtimes(micropython) -> None:  # noqa: ANN001
    got = [sntp.unix_ms(answer(s, f)) for s, f in CASES]
    assert got == [T0 * 1000, T0 * 1000 + 500, T0 * 1000 + 999, (T0 + 1) * 1000 + 100]
    assert all(type(ms) is int for ms in got)
    for pkt in BAD:
        with pytest.raises(ValueError, match="not an SNTP server answer"):
            sntp.unix_ms(pkt)
    code = CHECK % ([answer(s, f).hex() for s, f in CASES], [p.hex() for p in BAD])
    assert micropython.run(code).splitlines() == (
        [f"{ms} int" for ms in got] + ["ValueError not an SNTP server answer"] * 3)


class Server:
    """A one-socket SNTP server on loopback that answers T0.5 s, or stays silent."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.silent = False
        self.requests: list[bytes] = []
        self.running = True
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while self.running:
            try:
                data, peer = self.sock.recvfrom(64)
            except OSError:
                continue
            self.requests.append(data)
            if not self.silent:
                self.sock.sendto(answer(T0, 0x80000000), peer)

    def stop(self) -> None:
        self.running = False
        self.thread.join(2)
        self.sock.close()


def test_sntp_sets_the_clock_without_waiting() -> None:
    server = Server()
    clock = sntp.SNTP("127.0.0.1", server.port, every_ms=60000, retry_ms=30000, wait_ms=2000)
    try:
        assert clock.poll(1000) is False and clock.time_ms(1000) is None  # request sent
        wait_until(lambda: server.requests, 5, "the request")
        assert server.requests and server.requests[0][0] == 0x1B and len(server.requests[0]) == 48
        wait_until(lambda: clock.poll(1040), 5, "the answer")  # 40 ms round trip (ticks)
        assert clock.time_ms(1040) == T0 * 1000 + 500 + 20  # transmit time + half the trip
        assert clock.time_ms(5040) == T0 * 1000 + 4520 and clock.syncs == 1
        assert clock.poll(30000) and len(server.requests) == 1  # next sync due at 61040
        server.silent = True
        clock.poll(61040)  # a new request...
        wait_until(lambda: len(server.requests) == 2, 5, "the second request")
        clock.poll(62000)
        assert clock.failures == 0
        clock.poll(63040)  # ...unanswered for 2 s: given up, retried 30 s later
        assert (clock.failures, clock.last_error) == (1, "sntp 110 no answer from 127.0.0.1")
        assert clock.time_ms(63040) == T0 * 1000 + 62520  # the clock keeps running
        server.silent = False
        clock.poll(93039)
        clock.poll(93040)
        wait_until(lambda: len(server.requests) == 3, 5, "the retry")
        wait_until(lambda: clock.poll(93050) and clock.syncs == 2, 5, "the second answer")
        assert clock.time_ms(93050) == T0 * 1000 + 505
    finally:
        clock.close()
        server.stop()


HAL_CHECK = """
import sys
sys.path.insert(0, '/t')
from hg import esp32hal
import time
print(type(time.time()).__name__)
hal = esp32hal.ESP32HAL({'inputs': {}, 'outputs': {}})
print(hal.time_ms())

class UDP:  # the answer is there on the first read
    def recv(self, n):
        return PKT
    def close(self):
        pass

import binascii
PKT = binascii.unhexlify(%r)
from hg import sntp
hal.sntp = sntp.SNTP('pool.ntp.org')  # a sync under way: its request is out
hal.sntp._sock = UDP()
hal.sntp._sent = hal.ticks_ms()
print(hal.sync_time())
t = hal.time_ms()
print(type(t).__name__, %d <= t - %d < 5000)
print(hal.sntp, 'hg.sntp' in sys.modules)  # unloaded until the next sync
"""


def test_esp32hal_time_ms_is_an_int_on_a_port_whose_time_is_a_float(micropython) -> None:  # noqa: ANN001,E501
    vhw = {f"/t/{n}.py": (VHW / f"{n}.py").read_text()
           for n in ("machine", "network")}
    code = HAL_CHECK % (answer(T0, 0).hex(), 0, T0 * 1000)
    assert micropython.run(code, files=vhw).splitlines() == ["float", "None", "True", "int True",
                                                             "None False"]

# mypy: ignore-errors
# MicroPython code (time.ticks_*, ROOT set by the runner): not for mypy
# Firmware figures under a real MicroPython (and, for comparison, CPython):
# heap in use after the device runtime and the button app are up and after
# 1000 alarm events,
# and the time from send_event (what a debounced press calls) to the
# PUBLISH bytes written to the socket.  The broker and the gateway are an
# in-memory stream: CONNACK, SUBACK and PUBACK at once, and a signed
# `stored` ack for every event, so the outbox empties as on a real link.
# Prints one JSON line.  Set ROOT (a writable folder) before running.
import json
import os
import time

from hg import protocol

try:
    clock_us = time.ticks_us
    diff = time.ticks_diff
except AttributeError:  # CPython
    def clock_us():
        return int(time.perf_counter() * 1000000)

    def diff(a, b):
        return a - b

DEV = "hg-b-0900"
KEY = b"k" * 32
EVENTS = 1000


def packet(first, body):
    n = len(body)
    out = bytearray([first])
    while True:
        n, d = n >> 7, n & 0x7F
        out.append(d | (0x80 if n else 0))
        if not n:
            break
    return bytes(out) + body


class Link:
    """The broker + gateway side of the device's socket."""

    def __init__(self):
        self.rx = b""
        self.buf = b""
        self.seq = 1 << 30
        self.published_us = 0  # clock when the last event PUBLISH arrived

    def settimeout(self, t):
        pass

    def setblocking(self, flag):
        pass

    def send(self, data):
        self.buf += bytes(data)
        while len(self.buf) >= 2:
            n = shift = 0
            i = 1
            while True:
                c = self.buf[i]
                n |= (c & 0x7F) << shift
                shift += 7
                i += 1
                if not c & 0x80:
                    break
            if len(self.buf) < i + n:
                break
            self._packet(self.buf[0], self.buf[i:i + n])
            self.buf = self.buf[i + n:]
        return len(data)

    def _packet(self, first, body):
        kind = first >> 4
        if kind == 1:  # CONNECT
            self.rx += b"\x20\x02\x00\x00"
        elif kind == 8:  # SUBSCRIBE
            self.rx += packet(0x90, body[:2] + b"\x01" * 3)
        elif kind == 12:  # PINGREQ
            self.rx += b"\xd0\x00"
        elif kind == 3:  # PUBLISH
            tl = body[0] << 8 | body[1]
            topic = body[2:2 + tl].decode()
            qos = (first >> 1) & 3
            rest = body[2 + tl:]
            if qos:
                self.rx += packet(0x40, rest[:2])
                rest = rest[2:]
            if topic.endswith("/event"):
                self.published_us = clock_us()
                seq = json.loads(rest[:rest.find(b',"sig"')] + b"}")["seq"]
                self._ack(seq)

    def _ack(self, ref):
        self.seq += 1
        wire = protocol.encode(KEY, DEV, self.seq, "ack", "stored", 0, {"ref": ref})
        t = protocol.topic(DEV, "ack").encode()
        self.rx += packet(0x32, bytes([len(t) >> 8, len(t) & 255]) + t
                          + bytes([self.seq >> 8 & 255, self.seq & 255]) + wire)

    def recv(self, n):
        if not self.rx:
            return None
        d, self.rx = self.rx[:n], self.rx[n:]
        return d

    def close(self):
        pass


class HAL:
    def __init__(self, link):
        self.link = link
        self.t0 = clock_us()

    def ticks_ms(self):
        return diff(clock_us(), self.t0) // 1000

    def time_ms(self):
        return None

    def rssi(self):
        return -60

    def supply_mv(self):
        return 3000

    def reset_cause(self):
        return "power_on"

    def wdt_feed(self):
        pass

    def reboot(self):
        pass

    def led(self, p):
        pass

    def buzzer(self, p):
        pass

    def connect_socket(self, host, port, tls, ca):
        return self.link

    def pin(self, name):
        return 0


# the button-c3 profile's inputs (hardware/boards/button-c3.json)
PROFILE = {"inputs": {"btn_fire": {}, "btn_medical": {}, "btn_security": {}, "tamper": {}},
           "buttons": {"fire": "btn_fire", "medical": "btn_medical",
                       "security": "btn_security"},
           "analog": {"battery": {"low_mv": 2600}}}


def setup(root):
    """hg.device with the household-guard button app, connected."""
    from apps.button.app import ButtonApp

    from hg import config
    from hg.device import Device
    try:
        os.mkdir(root)
    except OSError:
        pass
    with open(root + "/config.json", "w") as f:
        f.write(json.dumps({"v": 1, "device_id": DEV, "type": "button",
                            "broker": {"host": "b", "port": 1, "tls": False,
                                       "username": DEV, "password": "p"},
                            "key_hex": "6b" * 32, "heartbeat_s": 300}))
    link = Link()
    hal = HAL(link)
    cfg, _ = config.load(root + "/config.json")
    app = ButtonApp(cfg, hal, PROFILE)
    dev = Device(cfg, hal, app, root)
    app.attach(dev)
    while not (dev.link and dev.link.connected):
        now = hal.ticks_ms()
        dev.poll(now)
        app.step(now)
    return dev, link, hal


def events(dev, link, hal, n):
    """n alarm events, each acked `stored` before the next; (p50, p99) of
    press->PUBLISH us, as a histogram of 1 ms buckets (no list of n samples
    stays on the heap being measured)."""
    hist = [0] * 256  # [ms] -> count; 255 = 255 ms or more
    for _ in range(n):
        t0 = clock_us()
        dev.send_event("fire", {"btn": "f"})
        ms = diff(link.published_us, t0) // 1000
        hist[min(ms, 255)] += 1
        while len(dev.obx):
            now = hal.ticks_ms()
            dev.poll(now)
            dev.app.step(now)
    return percentile(hist, n, 50), percentile(hist, n, 99)


def percentile(hist, n, p):
    """Upper edge (us) of the 1 ms bucket holding the p-th percentile."""
    need = (p * n + 99) // 100
    seen = 0
    for ms in range(256):
        seen += hist[ms]
        if seen >= need:
            return (ms + 1) * 1000
    return 256000


def report(press, dev, heap):
    print(json.dumps({"heap_before_import": heap[0], "heap_after_init": heap[1],
                      "heap_after_events": heap[2], "events": EVENTS,
                      "outbox_left": len(dev.obx),
                      "press_to_publish_us_p50": press[0],
                      "press_to_publish_us_p99": press[1]}))


# Heap in use: MicroPython's collector is conservative and scans the native
# stack; in the npm WebAssembly build that stack still holds the garbage of a
# synchronous run, so each reading is taken after `await asyncio.sleep(0)`
# (back to the event loop) and gc.collect(): MICROPYTHON_MAIN below, run
# with top-level await.  Under CPython, main() gives the timings only.
MICROPYTHON_MAIN = """
import asyncio
import gc
async def heap_now():
    await asyncio.sleep(0)
    gc.collect()
    return gc.mem_alloc()
h0 = await heap_now()
dev, link, hal = setup(ROOT)
h1 = await heap_now()
press = events(dev, link, hal, EVENTS)
h2 = await heap_now()
report(press, dev, (h0, h1, h2))
"""


def main(root):
    dev, link, hal = setup(root)
    report(events(dev, link, hal, EVENTS), dev, (0, 0, 0))


if "ASYNC" not in globals():
    main(ROOT)  # noqa: F821 - set by the runner

# A simulated hardware layer for CPython (tests, the demo): the clock from
# time.monotonic, plain or TLS sockets through hg.mqtt.tcp, in-memory pins,
# and a record of what the LED, buzzer, watchdog and reboot were asked to
# do.  Not for boards: it imports time and socket through hg.mqtt.
import time

from hg.mqtt import tcp


class SimHAL:
    def __init__(self, synced=True, reset_cause="power_on", rssi=-61, supply_mv=3012):
        self._t0 = time.monotonic()
        self.synced = synced
        self.cause = reset_cause
        self.rssi_dbm = rssi
        self.mv = supply_mv
        self.clock_offset_ms = 0  # added to the wall clock (a device clock off)
        self.pins = {}  # name -> value, set by tests, read by apps
        self.leds = []  # patterns asked for, in order
        self.buzzes = []
        self.feeds = 0
        self.reboots = 0

    def ticks_ms(self):
        return int((time.monotonic() - self._t0) * 1000)

    def time_ms(self):
        if not self.synced:
            return None
        return int(time.time() * 1000) + self.clock_offset_ms

    def rssi(self):
        return self.rssi_dbm

    def supply_mv(self):
        return self.mv

    def reset_cause(self):
        return self.cause

    def wdt_feed(self):
        self.feeds += 1

    def reboot(self):
        self.reboots += 1

    def led(self, pattern):
        self.leds.append(pattern)

    def buzzer(self, pattern):
        self.buzzes.append(pattern)

    def pin(self, name):
        return self.pins.get(name, 0)

    def connect_socket(self, host, port, tls, ca):
        return tcp(host, port, ca=ca if tls else None, timeout_s=5)()

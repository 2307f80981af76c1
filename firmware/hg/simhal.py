# The simulated hardware layer: the hal hg.device and the apps expect
# (docs/firmware.md) without a board, for the tests, the demo and
# `homeguard simulate`.  MicroPython subset: it runs under CPython and under
# MicroPython (tests/firmware/simhal_check.py).  What it simulates:
#   - a clock: ms since the hal was made, from `clock` (any monotonic ms
#     source, e.g. one shared by a fleet, or a fake one a test advances),
#     else time.ticks_ms (MicroPython) / time.monotonic_ns (CPython);
#   - the wall clock, synced or not, `clock_offset_ms` off;
#   - sockets: `connect(host, port, tls, ca)` when given, else
#     open_stream(), the transport boards use;
#   - input pins: `pins[name] = 1` while a button is pressed;
#   - analog channels of the board profile: `values[name]` in the channel's
#     unit (mA, mV, 0.1 degC) becomes the ADC counts the profile's gains
#     expect (mains sine waves, NTC divider); None reads as an open input;
#   - a record of what the LED, buzzer, watchdog and reboot were asked to do.
import math
import time

try:
    _ticks = time.ticks_ms
    _diff = time.ticks_diff
except AttributeError:  # CPython
    def _ticks():
        return time.monotonic_ns() // 1000000

    def _diff(a, b):
        return a - b

_BLOCKS = {}  # (channel spec values, value, n, period) -> counts, shared by every hal
_MAX_BLOCKS = 256


class Clock:
    """ms since it was made; never wraps (MicroPython's ticks_ms does)."""

    def __init__(self):
        self._last = _ticks()
        self.ms = 0

    def __call__(self):
        raw = _ticks()
        self.ms += _diff(raw, self._last)
        self._last = raw
        return self.ms


def wall_ms():
    """ms since 1970 UTC from the host clock, an int on every port."""
    ns = getattr(time, "time_ns", None)
    return ns() // 1000000 if ns else int(time.time() * 1000)


def open_stream(host, port, tls, ca):
    """A broker connection as a board opens it (hg.net.tcp; hg.mqtt.tcp
    before hg.net existed)."""
    try:
        from hg.net import tcp
    except ImportError:
        from hg.mqtt import tcp  # type: ignore[attr-defined,no-redef]
    return tcp(host, port, ca=ca if tls else None)()


class SimHAL:
    def __init__(self, synced=True, reset_cause="power_on", rssi=-61, supply_mv=3012,
                 clock=None, connect=None, profile=None):
        self.clock = clock or Clock()
        self._t0 = self.clock()
        self.synced = synced
        self.cause = reset_cause
        self.rssi_dbm = rssi
        self.mv = supply_mv
        self.clock_offset_ms = 0  # added to the wall clock (a device clock off)
        self.connect = connect
        self.profile = profile or {}
        self.pins = {}  # name -> value, set by tests, read by apps
        self.values = {}  # analog channel -> value in its unit
        self.leds = []  # patterns asked for, in order
        self.buzzes = []
        self.feeds = 0
        self.reboots = 0

    def ticks_ms(self):
        return self.clock() - self._t0

    def time_ms(self):
        if not self.synced:
            return None
        return wall_ms() + self.clock_offset_ms

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
        if self.connect:
            return self.connect(host, port, tls, ca)
        return open_stream(host, port, tls, ca)

    def adc_block(self, name, n, period_us):
        """n ADC counts of an analog channel, period_us apart, for the value
        in `values` (as hg.esp32hal reads them on a board)."""
        spec = self.profile.get("analog", {}).get(name, {})
        value = self.values.get(name)
        if value is None:
            return [0] * n
        s = self.profile.get("sampling", {})
        key = (name, value, n, period_us, spec.get("gain_num"), spec.get("gain_den"),
               spec.get("offset"), s.get("mains_hz"), s.get("adc_bits"))
        block = _BLOCKS.get(key)
        if block is None:
            if len(_BLOCKS) >= _MAX_BLOCKS:
                _BLOCKS.clear()
            block = _BLOCKS[key] = _counts(name, value, n, period_us, spec, s)
        return block


def _counts(name, value, n, period_us, spec, sampling):
    full = (1 << sampling.get("adc_bits", 12)) - 1
    if name == "temp_ntc":  # 0.1 degC -> NTC resistance (Beta) -> divider counts
        t = value / 10 + 273.15
        r = spec["ntc_r25"] * math.exp(spec["ntc_beta"] * (1 / t - 1 / 298.15))
        return [int(full * r / (r + spec["divider_r"]) + 0.5)] * n
    mid = sampling.get("mid_counts", (full + 1) // 2)
    rms = (value - spec.get("offset", 0)) * spec.get("gain_den", 1) / spec.get("gain_num", 1)
    amp = rms * math.sqrt(2)
    w = 2 * math.pi * sampling.get("mains_hz", 50) * period_us / 1000000
    out = []
    for k in range(n):
        c = mid + int(amp * math.sin(w * k) + 0.5)
        out.append(0 if c < 0 else full if c > full else c)
    return out

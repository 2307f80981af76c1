# The hardware layer on an ESP32 / ESP32-C3 board: the one module that
# touches machine, network and the clock.  It implements the `hal` methods
# hg.device documents (ticks_ms, time_ms, rssi, supply_mv, reset_cause,
# wdt_feed, reboot, led, buzzer, connect_socket) from a board profile
# (hardware/boards/<board>.json, copied to /boards/ on the device), plus what
# the apps need: pin(name) for inputs, adc_block(channel, n, period_us) (counts) for
# the sensor's waveforms, wifi/ntp, and deep sleep for the battery button.
# LED and buzzer patterns are driven from tick(now_ms), called by the loop.
import time

import machine

try:
    import network
except ImportError:  # pragma: no cover - every ESP32 build has it
    network = None  # type: ignore[assignment]

from hg import config
from hg.net import tcp

# pattern -> its steps, repeated: each byte is one step, on (0x80) and
# its length in 10 ms (bytes: compact on the heap); "off"/"on" are steady
PATTERNS = {
    "off": b"\x64",
    "on": b"\xe4",
    "blink": b"\x99\x19",  # 250 ms on, 250 off
    "slow": b"\xe4\x64",
    "fault": b"\x8a\x0a\x8a\x46",
    "locate": b"\x8a\x0a",
    "beep": b"\x8f\x55",
    "failed": b"\xa8\x14\xa8\x7f\x49",  # 400 on, 200 off, 400 on, 2 s off
}
RESET = {}  # machine.reset_cause() code -> name, filled at import
for _name, _label in (("PWRON_RESET", "power_on"), ("HARD_RESET", "hard"),
                      ("WDT_RESET", "watchdog"), ("DEEPSLEEP_RESET", "deep_sleep"),
                      ("SOFT_RESET", "soft")):
    if hasattr(machine, _name):
        RESET[getattr(machine, _name)] = _label


class Output:
    """A GPIO driven by a pattern; PWM when the profile gives pwm_hz."""

    def __init__(self, spec):
        self.active_high = spec.get("active", "high") == "high"
        self.pin = machine.Pin(spec["gpio"], machine.Pin.OUT)
        self.pwm = None
        if spec.get("pwm_hz"):
            self.pwm = machine.PWM(self.pin, freq=spec["pwm_hz"], duty_u16=0)
        self.pattern = "off"
        self.since = 0
        self.set(0)

    def set(self, on):
        if self.pwm is not None:
            self.pwm.duty_u16(32768 if on else 0)
        else:
            self.pin.value(1 if bool(on) == self.active_high else 0)

    def show(self, pattern, now):
        if pattern != self.pattern:
            self.pattern, self.since = pattern, now

    def tick(self, now):
        steps = PATTERNS.get(self.pattern, PATTERNS["off"])
        period = 0
        for b in steps:
            period += b & 0x7F
        t = (now - self.since) // 10 % period
        for b in steps:
            if t < b & 0x7F:
                self.set(b >> 7)
                return
            t -= b & 0x7F


class ESP32HAL:
    def __init__(self, profile, wdt_ms=30000, ntp_host="pool.ntp.org"):
        self.inputs = {}
        for name, spec in profile.get("inputs", {}).items():
            pull = machine.Pin.PULL_UP if spec.get("pull") == "up" else machine.Pin.PULL_DOWN
            self.inputs[name] = (machine.Pin(spec["gpio"], machine.Pin.IN, pull),
                                 spec.get("active", "low") == "high")
        outs = profile.get("outputs", {})
        self.outputs = {n: Output(s) for n, s in outs.items() if n in ("led", "buzzer")}
        self.enable = {n: machine.Pin(s["gpio"], machine.Pin.OUT)
                       for n, s in outs.items() if n.endswith("_en")}
        self.adcs = {}
        for name, spec in profile.get("analog", {}).items():
            adc = machine.ADC(machine.Pin(spec["gpio"]))
            adc.atten(machine.ADC.ATTN_11DB)
            self.adcs[name] = (adc, spec)
        self._last_raw = time.ticks_ms()
        self._ticks = 0
        self.ntp_host = ntp_host
        self.offset = None  # ms since 1970 minus ticks, from the last SNTP answer
        self.sntp = None  # the hg.sntp.SNTP of a sync under way
        self._sync_at = 0
        self.wlan = network.WLAN(network.STA_IF) if network else None
        self.wdt = machine.WDT(timeout=wdt_ms) if wdt_ms else None

    # -- hg.device's hal ----------------------------------------------------
    def ticks_ms(self):
        raw = time.ticks_ms()
        self._ticks += time.ticks_diff(raw, self._last_raw)
        self._last_raw = raw
        return self._ticks

    def time_ms(self):
        """ms since 1970 (int) from the SNTP answer and the ticks since;
        None until the first answer (time.time() is not used: whole seconds
        on some ports, a float on others, its epoch 2000 on older ones)."""
        return None if self.offset is None else self.ticks_ms() + self.offset

    def rssi(self):
        try:
            return self.wlan.status("rssi") if self.wlan and self.wlan.isconnected() else None
        except (OSError, ValueError):
            return None

    def supply_mv(self):
        name = "battery" if "battery" in self.adcs else "supply"
        if name not in self.adcs:
            return None
        adc, spec = self.adcs[name]
        en = self.enable.get("bat_sense_en")
        if en is not None:
            en.value(1)
        uv = 0
        for _ in range(8):
            uv += adc.read_uv()
        if en is not None:
            en.value(0)
        return uv // 8 * spec.get("divider_num", 1) // spec.get("divider_den", 1) // 1000

    def reset_cause(self):
        return RESET.get(machine.reset_cause(), "unknown")

    def wdt_feed(self):
        if self.wdt is not None:
            self.wdt.feed()

    def reboot(self):
        machine.reset()

    def led(self, pattern):
        self._show("led", pattern)

    def buzzer(self, pattern):
        self._show("buzzer", pattern)

    def connect_socket(self, host, port, tls, ca):
        return tcp(host, port, ca=ca if tls else None)()

    # -- for the apps -------------------------------------------------------
    def pin(self, name):
        """1 when the input is active (pressed, tamper open), else 0."""
        p, active_high = self.inputs[name]
        return 1 if p.value() == (1 if active_high else 0) else 0

    def adc_block(self, name, n, period_us):
        """n raw 12-bit samples (counts, as the profile's gains expect) of an
        analog channel, period_us apart."""
        adc = self.adcs[name][0]
        out = []
        t = time.ticks_us()
        for _ in range(n):
            out.append(adc.read_u16() >> 4)
            t = time.ticks_add(t, period_us)
            while time.ticks_diff(t, time.ticks_us()) > 0:
                pass
        return out

    def tick(self, now):
        for out in self.outputs.values():
            out.tick(now)

    def wifi(self, ssid, password):
        """Start joining; True once connected."""
        if self.wlan is None:
            return False
        if not self.wlan.active():
            self.wlan.active(True)
        if not self.wlan.isconnected() and self.wlan.status() != network.STAT_CONNECTING:
            self.wlan.connect(ssid, password)
        return self.wlan.isconnected()

    def sync_time(self):
        """Carry the SNTP sync on (never waits); True once the clock is set.
        hg.sntp is loaded only while a sync runs (hourly, or 30 s after a
        failed one) and unloaded after: its code is not kept on the heap."""
        t = self.ticks_ms()
        c = self.sntp
        if c is None:
            if t < self._sync_at:
                return self.offset is not None
            from hg.sntp import SNTP
            c = self.sntp = SNTP(self.ntp_host)
        c.poll(t)
        if not c.busy:  # answered, or given up
            if c.offset is not None:
                self.offset = c.offset
            self._sync_at = c.next_ms
            self.sntp = None
            config.unload("sntp")
        return self.offset is not None

    def rtc_memory(self, data=None):
        """RTC slow memory (kept through deep sleep): read, or write `data`."""
        rtc = machine.RTC()
        if data is None:
            return rtc.memory()
        rtc.memory(data)
        return data

    def deep_sleep(self, ms, wake_inputs=()):
        """Battery variant: sleep; a press on one of wake_inputs wakes the board."""
        pins = [self.inputs[n][0] for n in wake_inputs if n in self.inputs]
        if pins:
            import esp32
            if hasattr(esp32, "wake_on_gpio"):  # ESP32-C3
                esp32.wake_on_gpio(pins, esp32.WAKEUP_ALL_LOW)
            else:
                esp32.wake_on_ext1(pins, esp32.WAKEUP_ALL_LOW)
        machine.deepsleep(ms)

    def _show(self, name, pattern):
        out = self.outputs.get(name)
        if out is not None:
            out.show(pattern, self.ticks_ms())

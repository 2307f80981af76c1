# The electrical-safety sensor app: samples the board profile's analog
# channels, computes true RMS over whole mains cycles (and the NTC
# temperature), runs the alarm detectors, reports sensor faults, and sends
# min/mean/max telemetry every `telemetry_s`.  Hardware comes from the hal
# (hg.esp32hal on a board; a simulated one in tests): hal.adc_block(name, n,
# period_us) -> counts.  It only reports: it never switches the supply.
from apps.sensor import measure
from apps.sensor.detect import Stats, detectors

SAMPLE_MS = 1000  # one measurement of every channel per second
PREFIX = {"current": "i", "voltage": "v", "residual": "r", "temp_ntc": "t"}
AC = ("current", "voltage", "residual")


class SensorApp:
    def __init__(self, cfg, hal, profile):
        self.cfg = cfg
        self.hal = hal
        self.dev = None  # the hg.device.Device, set by attach()
        sampling = profile.get("sampling", {})
        self.rate = sampling.get("rate_hz", 2000)
        self.mains = sampling.get("mains_hz", 50)
        self.full = (1 << sampling.get("adc_bits", 12)) - 1
        self.channels = profile.get("analog", {})
        self.detectors = detectors(cfg["thresholds"])
        self.stats = {n: Stats() for n in self.channels}
        self.faulty = {}  # channel -> reason while it is faulty
        self.last = {}  # channel -> latest value
        self.next_sample = 0
        self.next_telemetry = None
        self.events = 0

    def attach(self, dev):
        self.dev = dev

    def read(self, name):
        """(value in the channel's unit, None) or (None, fault reason)."""
        spec = self.channels[name]
        if name == "temp_ntc":
            block = self.hal.adc_block(name, 4, 1000)
            return measure.ntc_dc(sum(block) // len(block), spec, self.full)
        n = measure.block_len(self.rate, self.mains, spec.get("mains_cycles", 10))
        block = self.hal.adc_block(name, n, 1000000 // self.rate)
        why = measure.rail(block, self.full)
        if why:
            return None, why
        value = measure.scale(measure.rms(block), spec, self.cfg.get("cal", {}), name)
        if measure.implausible(name, value):
            return None, "implausible"
        return value, None

    def step(self, now_ms):
        """Call from the main loop; measures once per SAMPLE_MS."""
        if self.next_telemetry is None:
            self.next_telemetry = now_ms + self.cfg["telemetry_s"] * 1000
        if now_ms >= self.next_sample:
            self.next_sample = now_ms + SAMPLE_MS
            for name in self.channels:
                self._measure(name, now_ms)
        if now_ms >= self.next_telemetry:
            self.next_telemetry = now_ms + self.cfg["telemetry_s"] * 1000
            self._telemetry()

    def _measure(self, name, now_ms):
        value, why = self.read(name)
        if why:
            if self.faulty.get(name) != why:
                self.faulty[name] = why
                self._send("sensor", {"reason": name + " " + why, "ch": name}, "fault")
            return
        self.faulty.pop(name, None)
        self.last[name] = value
        self.stats[name].add(value)
        for d in self.detectors.get(name, ()):
            change = d.update(value, now_ms)
            if change == "alarm":
                self._send(d.type, {"v": value, "set": d.set}, "alarm")
            elif change == "restore":
                self._send(d.type, {"v": value, "set": d.set}, "restore")

    def _telemetry(self):
        data = {}  # type: dict
        for name, st in self.stats.items():
            st.put(data, PREFIX.get(name, name[:1]))
            st.reset()
        if data and self.dev is not None:
            self.dev.send_telemetry(data)

    def _send(self, typ, data, kind):
        self.events += 1
        if self.dev is not None:
            self.dev.send_event(typ, data, kind)

    # hg.device app hooks
    def self_test(self):
        out = {}
        for name in self.channels:
            value, why = self.read(name)
            out[PREFIX.get(name, name[:1])] = why or value
        return out

    def on_feedback(self, kind, ref):
        pass

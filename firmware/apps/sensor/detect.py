# Alarm detectors with set point, hysteresis and minimum duration, and the
# per-period statistics the telemetry carries.  Pure logic, time passed in.
# Detectors only report: the sensor never trips the supply.


class Detector:
    """One alarm condition on one channel.

    above=True: alarm when the value stays > set for min_ms; restore when it
    stays < set - hyst for min_ms.  above=False mirrors it (under-voltage).
    update(value, now_ms) -> None, "alarm" or "restore"."""

    def __init__(self, typ, set_point, hyst, min_ms, above=True):
        self.type = typ
        self.set = set_point
        self.hyst = hyst
        self.min_ms = min_ms
        self.above = above
        self.alarmed = False
        self.since = None  # when the condition for the next change began

    def _over(self, v):
        return v > self.set if self.above else v < self.set

    def _clear(self, v):
        return v < self.set - self.hyst if self.above else v > self.set + self.hyst

    def update(self, value, now_ms):
        going = self._clear(value) if self.alarmed else self._over(value)
        if not going:
            self.since = None
            return None
        if self.since is None:
            self.since = now_ms
        if now_ms - self.since < self.min_ms:
            return None
        self.since = None
        self.alarmed = not self.alarmed
        return "alarm" if self.alarmed else "restore"


class Stats:
    """min / mean / max of integer readings over a telemetry period."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.n = 0
        self.total = 0
        self.lo = None
        self.hi = None

    def add(self, v):
        self.n += 1
        self.total += v
        self.lo = v if self.lo is None or v < self.lo else self.lo
        self.hi = v if self.hi is None or v > self.hi else self.hi

    def put(self, out, prefix):
        """Write <prefix>_min/_avg/_max into the dict `out` (nothing when empty)."""
        if self.n:
            out[prefix + "_min"] = self.lo
            out[prefix + "_avg"] = (self.total + self.n // 2) // self.n
            out[prefix + "_max"] = self.hi


def detectors(th):
    """The detectors from the config's thresholds (hg.config defaults), in the
    channel units the app measures: mA, mV, 0.1 degC."""
    r, t, i = th["residual_ma"], th["over_temp_c"], th["over_current_a"]
    ov, uv = th["over_voltage_v"], th["under_voltage_v"]
    return {
        "residual": [Detector("residual_current", r["set"], r["hyst"], r["min_ms"])],
        "temp_ntc": [Detector("over_temp", t["set"] * 10, t["hyst"] * 10, t["min_ms"])],
        "current": [Detector("over_current", i["set"] * 1000, i["hyst"] * 1000, i["min_ms"])],
        "voltage": [Detector("over_voltage", ov["set"] * 1000, ov["hyst"] * 1000, ov["min_ms"]),
                    Detector("under_voltage", uv["set"] * 1000, uv["hyst"] * 1000,
                             uv["min_ms"], above=False)],
    }

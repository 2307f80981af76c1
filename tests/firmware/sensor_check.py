# Deterministic checks of the sensor's measurement and detection on
# synthetic waveforms; prints one line per result.  Runs unchanged under
# CPython and the npm MicroPython (tests/test_sensor_app.py compares them).
import math

from apps.sensor import measure
from apps.sensor.detect import Detector, Stats, detectors

RATE, MAINS, CYCLES, MID, FULL = 2000, 50, 10, 2048, 4095
RES = {"gain_num": 1000, "gain_den": 1320, "offset": 0}
NTC = {"ntc_r25": 10000, "ntc_beta": 3950, "divider_r": 10000}
_seed = [12345]


def noise(span):
    """A fixed LCG: the same 'random' noise on both runtimes."""
    _seed[0] = (_seed[0] * 1103515245 + 12345) & 0x7FFFFFFF
    return _seed[0] % (2 * span + 1) - span


def wave(ma, spec=RES, harmonic=0.1, span=3, phase=0.3):
    """One block of ADC counts carrying `ma` RMS (fundamental + 3rd harmonic)."""
    rms_counts = (ma - spec["offset"]) * spec["gain_den"] / spec["gain_num"]
    a1 = rms_counts * math.sqrt(2) / math.sqrt(1 + harmonic * harmonic)
    n = measure.block_len(RATE, MAINS, CYCLES)
    out = []
    for k in range(n):
        t = 2 * math.pi * MAINS * k / RATE
        x = MID + a1 * math.sin(t + phase) + a1 * harmonic * math.sin(3 * t)
        out.append(max(0, min(FULL, int(x + 0.5) + noise(span))))
    return out


def measured(ma):
    return measure.scale(measure.rms(wave(ma)), RES, {}, "residual")


for ma in (30, 150, 285, 300, 315, 500, 1000):
    print("rms", ma, measured(ma))

# calibration constants from the config override the profile's
print("cal", measure.scale(measure.rms(wave(300)), RES,
                           {"r_gain_num": 1100, "r_gain_den": 1320, "r_offset": -5}, "residual"))

# leakage ramp 0 -> 600 mA over 60 s, one measurement a second
d = Detector("residual_current", 300, 30, 1000)
crossed = alarm_at = None
for s in range(61):
    ma = 10 * s
    v = measured(ma)
    if crossed is None and ma > 300:
        crossed = s
    if d.update(v, s * 1000) == "alarm":
        alarm_at = s
        break
print("ramp crossed_s", crossed, "alarm_s", alarm_at)

# held at 94 % and at 106 % of the set point for 60 s
for pct in (94, 106):
    d = Detector("residual_current", 300, 30, 1000)
    first = None
    for s in range(61):
        if d.update(measured(300 * pct // 100), s * 1000) == "alarm" and first is None:
            first = s
    print("hold", pct, "alarm_s", first)

# restore: back under set - hysteresis for min_ms
d = Detector("residual_current", 300, 30, 1000)
events = []
for s, ma in enumerate([400, 400, 400, 290, 280, 260, 260, 260, 350]):
    change = d.update(measured(ma), s * 1000)
    if change:
        events.append(change + "@" + str(s))
print("restore", " ".join(events))

# under-voltage mirrors it
d = Detector("under_voltage", 196000, 5000, 5000, above=False)
print("under", [d.update(v, s * 1000) for s, v in enumerate(
    [230000, 190000, 190000, 190000, 190000, 190000, 190000, 199000, 202000, 202000,
     202000, 202000, 202000, 202000])].count("alarm"),
      d.alarmed)

# faults: rails and implausible values
print("rail", measure.rail([0] * 10, FULL), measure.rail([FULL] * 10, FULL),
      measure.rail(wave(300), FULL))
print("implausible", measure.implausible("residual", 9000),
      measure.implausible("residual", 300))

# NTC: 25 degC is half scale with a 10k divider; open and short
print("ntc", measure.ntc_dc(2048, NTC, FULL)[0], measure.ntc_dc(1000, NTC, FULL)[0],
      measure.ntc_dc(FULL, NTC, FULL)[1], measure.ntc_dc(0, NTC, FULL)[1])

# telemetry statistics
st = Stats()
for v in (5, 9, 7, 3):
    st.add(v)
out = {}
st.put(out, "r")
print("stats", out["r_min"], out["r_avg"], out["r_max"])

# detectors from the config's default thresholds
th = {"residual_ma": {"set": 300, "hyst": 30, "min_ms": 1000},
      "over_temp_c": {"set": 70, "hyst": 5, "min_ms": 10000},
      "over_current_a": {"set": 32, "hyst": 2, "min_ms": 5000},
      "over_voltage_v": {"set": 253, "hyst": 5, "min_ms": 5000},
      "under_voltage_v": {"set": 196, "hyst": 5, "min_ms": 5000}}
ds = detectors(th)
print("detectors", " ".join(sorted(d.type + ":" + str(d.set) for v in ds.values() for d in v)))

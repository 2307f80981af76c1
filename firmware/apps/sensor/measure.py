# Measurement for the electrical-safety sensor: true RMS over whole mains
# cycles, scaling with calibration constants, NTC temperature, and the
# plausibility checks that turn a broken sensor into a `fault` event.
# Pure logic: samples come in as lists of ADC counts.  MicroPython subset.
import math

# the config's `cal` prefixes (hardware/calibration.md)
CAL_PREFIX = {"current": "i", "voltage": "v", "residual": "r"}
RAIL_MARGIN = 8  # counts from 0 or full scale that mean "stuck at a rail"


def rms(samples):
    """True RMS of the AC part (mean removed) of a block of whole mains
    cycles; the DC bias of the front end never counts."""
    n = len(samples)
    if n == 0:
        return 0
    total = 0
    squares = 0
    for x in samples:
        total += x
        squares += x * x
    var = (squares - total * total / n) / n  # E[x^2] - E[x]^2
    return math.sqrt(var) if var > 0 else 0.0


def block_len(rate_hz, mains_hz, cycles):
    """Samples in `cycles` whole mains cycles."""
    return rate_hz * cycles // mains_hz


def scale(counts_rms, spec, cal, name):
    """counts -> the channel's unit: rms × gain_num ÷ gain_den + offset, the
    constants from the config's cal (i_/v_/r_gain_num, _gain_den, _offset)
    when present, else the board profile's design values."""
    p = CAL_PREFIX.get(name, name[:1]) + "_"
    num = cal.get(p + "gain_num", spec.get("gain_num", 1))
    den = cal.get(p + "gain_den", spec.get("gain_den", 1)) or 1
    off = cal.get(p + "offset", spec.get("offset", 0))
    return int(counts_rms * num / den + off + 0.5)


def rail(samples, full):
    """'short' or 'open' when every sample sits at a rail, else None."""
    lo = hi = 0
    for x in samples:
        if x <= RAIL_MARGIN:
            lo += 1
        elif x >= full - RAIL_MARGIN:
            hi += 1
    if lo == len(samples):
        return "open"
    if hi == len(samples):
        return "short"
    return None


def ntc_dc(counts, spec, full):
    """NTC divider reading -> tenths of a degree C (Beta equation), or a
    fault reason: 'open' (no NTC) or 'short'."""
    if counts >= full - RAIL_MARGIN:
        return None, "open"
    if counts <= RAIL_MARGIN:
        return None, "short"
    r = spec["divider_r"] * counts / (full - counts)  # NTC on the low side
    inv = 1 / 298.15 + math.log(r / spec["ntc_r25"]) / spec["ntc_beta"]
    return int((1 / inv - 273.15) * 10 + (0.5 if inv > 0 else -0.5)), None


# plausible ranges per channel, in its unit: outside them the sensor (not
# the installation) is what is wrong
PLAUSIBLE = {
    "current": (0, 200000),      # mA
    "voltage": (0, 400000),      # mV
    "residual": (0, 5000),       # mA
    "temp_ntc": (-400, 1500),    # 0.1 degC
}


def implausible(name, value):
    lo, hi = PLAUSIBLE.get(name, (None, None))
    if lo is None:
        return False
    return value < lo or value > hi

#!/usr/bin/env python3
"""Calibration constants for the electrical-safety sensor from measured pairs.

Measure each channel at several reference points (reference meter reading,
and the RMS ADC counts the device reports with `homeguard device info` or
its raw telemetry), then:

    python hardware/calibrate.py --channel residual --points 0:0 120:150 240:300 400:500
    python hardware/calibrate.py --channel current --csv current.csv   # columns counts,reference

It fits reference = counts * gain + offset by least squares, prints each
point's error, checks the accuracy requirement (±5 % of the set point for the
residual-current channel, GB 14287.2-2014), and prints the integer `cal`
entries for the device config.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from fractions import Fraction

PREFIX = {"current": "i", "voltage": "v", "residual": "r"}
DEN = 1320  # counts for 1 V rms at 11 dB attenuation: keeps gain_num an integer near 1 unit


def fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares gain and offset of reference = counts * gain + offset."""
    n = len(points)
    if n < 2 or len({c for c, _ in points}) < 2:
        raise ValueError("need at least two points with different counts")
    sx = sum(c for c, _ in points)
    sy = sum(r for _, r in points)
    sxx = sum(c * c for c, _ in points)
    sxy = sum(c * r for c, r in points)
    gain = (n * sxy - sx * sy) / (n * sxx - sx * sx)
    return gain, (sy - gain * sx) / n


def cal_entries(channel: str, gain: float, offset: float) -> dict[str, int]:
    p = PREFIX[channel]
    frac = Fraction(gain).limit_denominator(100000)
    num, den = (frac.numerator, frac.denominator) if frac.denominator > 1 else (
        round(gain * DEN), DEN)
    return {f"{p}_gain_num": num, f"{p}_gain_den": den, f"{p}_offset": round(offset)}


def check(points: list[tuple[float, float]], gain: float, offset: float, set_point: float,
          tolerance: float) -> tuple[list[tuple[float, float, float]], bool]:
    rows = [(c, r, c * gain + offset - r) for c, r in points]
    near = [abs(err) for c, r, err in rows if r and abs(r - set_point) <= 0.25 * set_point]
    ok = all(e <= tolerance * set_point for e in near) if near else False
    return rows, ok


def read_points(args: argparse.Namespace) -> list[tuple[float, float]]:
    if args.csv:
        with open(args.csv, newline="") as f:
            return [(float(r["counts"]), float(r["reference"])) for r in csv.DictReader(f)]
    return [(float(a), float(b)) for a, b in (p.split(":") for p in args.points)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--channel", choices=sorted(PREFIX), required=True)
    p.add_argument("--points", nargs="*", default=[], help="counts:reference pairs")
    p.add_argument("--csv", help="CSV with columns counts,reference")
    p.add_argument("--set-point", type=float, default=300.0,
                   help="alarm set point in the channel's unit (residual default 300 mA)")
    p.add_argument("--tolerance", type=float, default=0.05,
                   help="allowed error, share of set point")
    args = p.parse_args(argv)
    points = read_points(args)
    gain, offset = fit(points)
    rows, ok = check(points, gain, offset, args.set_point, args.tolerance)
    print(f"{'counts':>10} {'reference':>10} {'fitted':>10} {'error':>8}")
    for c, r, err in rows:
        print(f"{c:>10.1f} {r:>10.1f} {r + err:>10.1f} {err:>8.1f}")
    verdict = "within" if ok else "NOT within"
    print(f"accuracy near the set point {args.set_point:g}: {verdict} "
          f"±{args.tolerance:.0%} ({args.tolerance * args.set_point:g})")
    print(json.dumps({"cal": cal_entries(args.channel, gain, offset)}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

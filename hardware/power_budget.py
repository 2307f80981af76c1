#!/usr/bin/env python3
"""Expected battery life of the household-guard button (ESP32-C3, deep sleep).

    python hardware/power_budget.py                      # the documented defaults
    python hardware/power_budget.py --heartbeat-min 60 --capacity-mah 1500

Charge per day = sleep current x 24 h
               + wakes per day (heartbeats + presses) x awake time x awake current.
Life = usable capacity / charge per day, less self-discharge. See power.md
for where each default comes from.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    capacity_mah: float = 3000.0  # 2 x AA lithium (Li-FeS2), in series behind an LDO
    usable: float = 0.85  # below ~2.6 V at the cells the radio browns out
    sleep_ua: float = 25.0  # chip ~5 uA + LDO quiescent + pull-ups + divider off
    heartbeat_min: float = 30.0  # supervision period (commercial panic buttons)
    presses_per_day: float = 0.2  # alarms, tests and cancels
    awake_s: float = 2.5  # wake -> Wi-Fi (DHCP) -> TLS MQTT -> publish -> ack -> sleep
    awake_ma: float = 95.0  # average while awake; Wi-Fi TX peaks are ~300 mA
    self_discharge_per_year: float = 0.01

    def mah_per_day(self) -> dict[str, float]:
        wakes = 24 * 60 / self.heartbeat_min + self.presses_per_day
        return {
            "sleep": self.sleep_ua / 1000 * 24,
            "heartbeats": 24 * 60 / self.heartbeat_min * self.awake_s / 3600 * self.awake_ma,
            "presses": self.presses_per_day * self.awake_s / 3600 * self.awake_ma,
            "wakes_per_day": wakes,
        }

    def per_press_mc(self) -> float:
        """Charge of one press in millicoulombs (mA x s)."""
        return self.awake_s * self.awake_ma

    def life_days(self) -> float:
        parts = self.mah_per_day()
        per_day = parts["sleep"] + parts["heartbeats"] + parts["presses"]
        per_day += self.capacity_mah * self.self_discharge_per_year / 365
        return self.capacity_mah * self.usable / per_day


def main(argv: list[str] | None = None) -> Budget:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    defaults = Budget()
    for name, value in vars(defaults).items():
        p.add_argument("--" + name.replace("_", "-"), type=float, default=value)
    b = Budget(**vars(p.parse_args(argv)))
    parts = b.mah_per_day()
    rows = [
        ("sleep", f"{parts['sleep']:.3f} mAh/day"),
        ("heartbeats", f"{parts['heartbeats']:.3f} mAh/day ({parts['wakes_per_day']:.1f} wakes)"),
        ("presses", f"{parts['presses']:.3f} mAh/day"),
        ("per press", f"{b.per_press_mc():.0f} mC ({b.per_press_mc() / 3600:.4f} mAh)"),
        ("battery life", f"{b.life_days():.0f} days ({b.life_days() / 365:.1f} years)"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return b


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Draws hardware/wiring/<board>.svg from hardware/boards/<board>.json.

A block diagram: the module on the left with one labelled pin per role,
a wire to each part on the right. Generated from the profile so that the
diagram can never disagree with the pins the firmware uses.

    python hardware/wiring/make_svg.py          # rewrite both SVGs
    python hardware/wiring/make_svg.py --check  # exit 1 if one is stale
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from xml.sax.saxutils import escape

HERE = Path(__file__).parent
BOARDS = HERE.parent / "boards"

PARTS = {  # role -> what sits at the other end of the wire
    "btn_fire": "SW1 fire button (red) to GND",
    "btn_medical": "SW2 medical button (green) to GND",
    "btn_security": "SW3 security button (blue) to GND",
    "tamper": "SW4 tamper switch (opens with the lid)",
    "btn_test": "SW1 test / locate button to GND",
    "onewire": "DS18B20 data (4.7 k pull-up), alt. to NTC",
    "led": "LED + 1 k to GND",
    "buzzer": "Q1 NPN -> piezo buzzer 2.7 kHz",
    "bat_sense_en": "Q2 load switch for the battery divider",
    "battery": "battery divider 100 k / 100 k",
    "current": "CT1 clamp 30 A:1 V on the live conductor, 1.65 V bias",
    "voltage": "T1 isolated 230:6 V + divider, 1.65 V bias",
    "residual": "CT2 zero-sequence CT (L+N), 100 R burden, x10 amp",
    "temp_ntc": "TH1 NTC 10 k B3950 / 10 k divider",
}


def pins(profile: dict) -> list[tuple[str, int, str]]:
    out = []
    for group in ("inputs", "outputs", "analog"):
        for role, spec in profile.get(group, {}).items():
            extra = spec.get("adc", "")
            out.append((role, spec["gpio"], extra))
    return out


def render(profile: dict) -> str:
    rows = pins(profile)
    h = 120 + 40 * len(rows)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="980" height="{h}" '
        f'viewBox="0 0 980 {h}" font-family="DejaVu Sans, sans-serif" font-size="13">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="20" y="30" font-size="18" font-weight="bold">{escape(profile["title"])}</text>',
        f'<text x="20" y="52" fill="#555">board profile: {profile["board"]} · chip: '
        f'{profile["chip"]} · power: {profile["power"]}</text>',
        f'<rect x="20" y="70" width="260" height="{40 * len(rows) + 20}" rx="8" '
        'fill="#eef3fb" stroke="#345" stroke-width="2"/>',
        f'<text x="40" y="{70 + 40 * len(rows) // 2 + 15}" font-size="16" fill="#345">'
        f'{profile["chip"].upper()} module</text>',
    ]
    for i, (role, gpio, adc) in enumerate(rows):
        y = 100 + 40 * i
        label = f"GPIO{gpio}" + (f" {adc}" if adc else "")
        parts += [
            f'<text x="270" y="{y + 4}" text-anchor="end" fill="#123">{escape(label)}</text>',
            f'<line x1="280" y1="{y}" x2="560" y2="{y}" stroke="#c33" stroke-width="2"/>',
            f'<circle cx="280" cy="{y}" r="4" fill="#c33"/>',
            f'<text x="300" y="{y - 6}" fill="#555">{escape(role)}</text>',
            f'<rect x="560" y="{y - 14}" width="400" height="28" rx="4" fill="#fff8e8" '
            'stroke="#a80"/>',
            f'<text x="570" y="{y + 5}">{escape(PARTS.get(role, role))}</text>',
        ]
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> int:
    stale = 0
    for path in sorted(BOARDS.glob("*.json")):
        profile = json.loads(path.read_text())
        out = HERE / f"{profile['board']}.svg"
        text = render(profile)
        if "--check" in sys.argv:
            stale += out.read_text() != text if out.exists() else 1
        else:
            out.write_text(text)
            print(f"wrote {out}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())

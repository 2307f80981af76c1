"""De-duplication and replay window: identity = (device, seq).

The store's UNIQUE(device, seq) decides *duplicate* exactly; this stage adds
the replay bound: a seq at or below the device's highest seen seq minus the
window is too old to tell apart from a replay and is rejected. The highest
seqs are rebuilt from the store at start, so the window survives restarts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NEW = "new"
REPLAY = "replay"


@dataclass
class Window:
    size: int = 4096
    highest: dict[str, int] = field(default_factory=dict)

    def classify(self, device: str, seq: int) -> str:
        """NEW or REPLAY; duplicates within the window are found by the store."""
        top = self.highest.get(device)
        if top is not None and seq <= top - self.size:
            return REPLAY
        return NEW

    def seen(self, device: str, seq: int) -> None:
        if seq > self.highest.get(device, 0):
            self.highest[device] = seq

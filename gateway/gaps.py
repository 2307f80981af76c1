"""Seqs a device used that never reached this gateway: counted, not invisible.

A device numbers every message it sends (events, telemetry, heartbeats,
status) from one counter, so a seq that never arrives is a message lost on
the way: dropped by the broker when the gateway's queue was full, shed by
the device while it was offline, or lost with a link. Alarms come back (the
device resends them until they are stored); telemetry does not, so without
this count a broker that drops a backlog loses points silently.

Per device: the highest seq seen and the runs of seqs below it not seen
yet. A run is *missing* once it has waited `grace_ms` (late messages still
arrive: a resent alarm, the other session's backlog). Not counted:

- the run just below a device's `online` status: what a reconnect or reboot
  skips by design (the unused seq of the previous connection's last will,
  and the reserved seqs a reboot jumps over, hg/seqres.py). A loss in that
  same run is not counted either; the count is a floor, never an inflation;
- anything before the first seq seen from a device since this gateway
  started, unless the store remembers an earlier one (`seed`): after a
  gateway outage the gap to the backlog's first message *is* counted.

Only verified messages are fed in (a forged seq cannot open a gap). In a
share group (Redis de-dup) each gateway sees only part of a device's
messages, so the service does not count there (docs/gateway.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

GRACE_MS = 300_000  # how long a missing seq may still arrive late
MAX_RUNS = 64  # per device; past this the oldest run is counted at once


@dataclass
class Run:
    lo: int
    hi: int  # inclusive
    since_ms: int  # when the gap was noticed


@dataclass
class Device:
    highest: int
    runs: list[Run] = field(default_factory=list)  # ascending, disjoint


@dataclass
class Missing:
    device: str
    count: int
    lo: int
    hi: int


class Gaps:
    def __init__(self, seed: Callable[[str], int] = lambda device: 0,
                 grace_ms: int = GRACE_MS) -> None:
        self.seed = seed  # the device's highest stored seq (0: none) at its first message
        self.grace_ms = grace_ms
        self.devices: dict[str, Device] = {}
        self.open: set[str] = set()  # devices with runs not seen yet
        self._due: list[Missing] = []  # counted early (too many runs)

    def seen(self, device: str, seq: int, now_ms: int, online: bool = False) -> None:
        d = self.devices.get(device)
        if d is None:
            d = self.devices[device] = Device(max(self.seed(device), 0))
            if d.highest == 0:
                d.highest = seq
                return
        if seq > d.highest:
            if seq > d.highest + 1:
                d.runs.append(Run(d.highest + 1, seq - 1, now_ms))
                self.open.add(device)
                if len(d.runs) > MAX_RUNS:
                    r = d.runs.pop(0)
                    self._due.append(Missing(device, r.hi - r.lo + 1, r.lo, r.hi))
            d.highest = seq
        else:
            self._fill(d, seq)
        if online:  # the run just below it is a reconnect's or reboot's skip
            d.runs = [r for r in d.runs if r.hi != seq - 1]

    @staticmethod
    def _fill(d: Device, seq: int) -> None:
        for i, r in enumerate(d.runs):
            if r.lo <= seq <= r.hi:
                parts = [Run(lo, hi, r.since_ms) for lo, hi in ((r.lo, seq - 1), (seq + 1, r.hi))
                         if lo <= hi]
                d.runs[i:i + 1] = parts
                return

    def expire(self, now_ms: int) -> list[Missing]:
        """The runs that waited past the grace: missing for good."""
        out, self._due = self._due, []
        for device in list(self.open):
            d = self.devices[device]
            if d.runs and d.runs[0].since_ms + self.grace_ms <= now_ms:
                keep = []
                for r in d.runs:
                    if r.since_ms + self.grace_ms <= now_ms:
                        out.append(Missing(device, r.hi - r.lo + 1, r.lo, r.hi))
                    else:
                        keep.append(r)
                d.runs = keep
            if not d.runs:
                self.open.discard(device)
        return out

    def pending(self) -> int:
        """Seqs not seen yet and still within their grace."""
        return sum(r.hi - r.lo + 1 for dev in self.open for r in self.devices[dev].runs)

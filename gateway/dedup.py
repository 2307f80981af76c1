"""De-duplication and replay window: identity = (device, seq).

Per device the state is its highest stored seq and a bitmap of which of the
`window` seqs just below it are stored (an anti-replay window in the manner
of RFC 4303 §3.4.3; 512 bytes per device for the default 4096):

    seq <= highest - window          -> REPLAY (too old to tell apart)
    seq within the window, bit set   -> DUPLICATE (acked again, not forwarded)
    otherwise                        -> NEW

`check` is a pure function of the state; `remember` updates it and is called
only after the store has committed the event, so a failed commit leaves no
trace. `rebuild` restores the state from the store at start. The store's
UNIQUE(device, seq) stays the last word should the two ever disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

NEW = "new"
DUPLICATE = "duplicate"
REPLAY = "replay"


@dataclass
class Seen:
    highest: int
    bits: int = 1  # bit i set: seq highest - i is stored


@dataclass
class State:
    window: int = 4096
    devices: dict[str, Seen] = field(default_factory=dict)


def check(state: State, device: str, seq: int) -> str:
    """NEW, DUPLICATE or REPLAY for (device, seq); does not change the state."""
    seen = state.devices.get(device)
    if seen is None or seq > seen.highest:
        return NEW
    back = seen.highest - seq
    if back >= state.window:
        return REPLAY
    return DUPLICATE if seen.bits >> back & 1 else NEW


def remember(state: State, device: str, seq: int) -> None:
    """Record (device, seq) as stored."""
    seen = state.devices.get(device)
    if seen is None:
        state.devices[device] = Seen(seq)
        return
    if seq > seen.highest:
        shift = seq - seen.highest
        # a jump past the whole window starts a fresh bitmap (no huge shifts)
        bits = seen.bits << shift | 1 if shift < state.window else 1
        seen.bits = bits & ((1 << state.window) - 1)
        seen.highest = seq
    elif seen.highest - seq < state.window:
        seen.bits |= 1 << (seen.highest - seq)


def rebuild(window: int, stored: Iterable[tuple[str, int]]) -> State:
    """The state after remembering every stored (device, seq), in any order."""
    state = State(window)
    pairs = sorted(stored, key=lambda p: (p[0], -p[1]))  # highest first: no shifting
    for device, seq in pairs:
        remember(state, device, seq)
    return state


class LocalDedup:
    """The state in this process (the default backend), rebuilt from the store."""

    def __init__(self, window: int, stored: Iterable[tuple[str, int]] = ()) -> None:
        self.state = rebuild(window, stored)

    def check(self, device: str, seq: int) -> str:
        return check(self.state, device, seq)

    def remember(self, device: str, seq: int) -> None:
        remember(self.state, device, seq)

    def check_remember(self, device: str, seq: int) -> str:
        verdict = check(self.state, device, seq)
        if verdict == NEW:
            remember(self.state, device, seq)
        return verdict

    def close(self) -> None:
        pass


class Backend(Protocol):
    def check(self, device: str, seq: int) -> str: ...

    def remember(self, device: str, seq: int) -> None: ...

    def check_remember(self, device: str, seq: int) -> str: ...

    def close(self) -> None: ...

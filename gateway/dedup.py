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

A DUPLICATE verdict only says the identity is taken. Whether the message is
the same event sent again or a different event under a reused seq (a board
whose counter went back) is decided by its content: `digest` is the same
for a resend (kind, type, ts and data; `age` and `sig` change between
resends) and differs for anything else. Same identity, same content =
DUPLICATE; same identity, other content = CONFLICT (docs/protocol.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from gateway.outcome import Outcome

NEW = "new"
DUPLICATE = Outcome.DUPLICATE.value
REPLAY = Outcome.REPLAY.value
CONFLICT = Outcome.SEQ_CONFLICT.value


def digest(kind: str, typ: str, ts: int | None, data: dict) -> str:
    """The content of a message, less what changes between resends (age, sig)."""
    text = "\n".join((kind, typ, "" if ts is None else str(ts),
                      json.dumps(data, sort_keys=True, separators=(",", ":"))))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


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


def highest(state: State, device: str) -> int:
    """The device's highest remembered seq (0 when none)."""
    seen = state.devices.get(device)
    return seen.highest if seen is not None else 0


class LocalDedup:
    """The state in this process (the default backend), rebuilt from the store.

    Content is not kept here: the gateway's own store has every remembered
    event, so a DUPLICATE is compared with the stored row."""

    shared = False  # other gateways do not store into this state

    def __init__(self, window: int, stored: Iterable[tuple[str, int]] = ()) -> None:
        self.state = rebuild(window, stored)

    def check(self, device: str, seq: int) -> str:
        return check(self.state, device, seq)

    def remember(self, device: str, seq: int, content: str | None = None) -> None:
        remember(self.state, device, seq)

    def highest(self, device: str) -> int:
        return highest(self.state, device)

    def content(self, device: str, seq: int) -> str | None:
        return None

    def check_remember(self, device: str, seq: int) -> str:
        verdict = check(self.state, device, seq)
        if verdict == NEW:
            remember(self.state, device, seq)
        return verdict

    def check_many(self, pairs: Sequence[tuple[str, int]]) -> list[str]:
        return [check(self.state, device, seq) for device, seq in pairs]

    def remember_many(self, items: Sequence[tuple[str, int, str | None]]) -> None:
        for device, seq, _ in items:
            remember(self.state, device, seq)

    def close(self) -> None:
        pass


class Backend(Protocol):
    # True when other gateways remember into the same state (Redis): then an
    # identity may be taken by an event this gateway's store never saw
    shared: bool

    def check(self, device: str, seq: int) -> str: ...

    def remember(self, device: str, seq: int, content: str | None = None) -> None:
        """Record (device, seq) as stored, with its digest when it is an event
        a device waits an ack for (kept by shared backends only)."""

    def highest(self, device: str) -> int: ...

    def content(self, device: str, seq: int) -> str | None:
        """The digest remembered with (device, seq), if this backend keeps one."""

    def check_remember(self, device: str, seq: int) -> str: ...

    def check_many(self, pairs: Sequence[tuple[str, int]]) -> list[str]:
        """check() for each (device, seq) against the state as it is (a batch:
        one round trip for a shared backend)."""

    def remember_many(self, items: Sequence[tuple[str, int, str | None]]) -> None:
        """remember() each (device, seq, content), in order."""

    def close(self) -> None: ...

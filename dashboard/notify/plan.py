"""Which notification attempts are due for one alarm: a pure function of
who is to be told, whether an operator acknowledged, what was tried, and
the time.

Step 0 (the first person) is always told.  Each later step follows while
the alarm is unacknowledged: `escalate_ms` after the previous step began,
or at once when the previous step failed on every channel.  Within a step
each channel is tried up to `attempts` times, waiting `backoff_ms`, then
twice that, and so on, after each failure.  An attempt still "sending"
blocks its channel: nothing is sent twice while one is under way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Policy:
    attempts: int
    backoff_ms: int
    escalate_ms: int


@dataclass(frozen=True)
class Tried:
    """One attempt made before (a `notifications` row)."""

    step: int
    channel: str
    attempt: int
    status: str  # sending | sent | failed
    at_ms: int
    done_ms: int | None


@dataclass(frozen=True)
class Due:
    step: int
    channel: str
    attempt: int


def due(channels: Sequence[Sequence[str]], acked: bool, tried: Sequence[Tried], now_ms: int,
        policy: Policy) -> list[Due]:
    """Attempts to make now.  `channels[s]` are the channels that reach the
    person of step s (empty when none does: that step is skipped)."""
    if not tried:
        return _start(0, channels)
    step = max(t.step for t in tried)
    rows = [t for t in tried if t.step == step]
    retries: list[Due] = []
    final, success = True, False
    for channel in channels[step] if step < len(channels) else ():
        mine = [t for t in rows if t.channel == channel]
        state = _channel(mine, now_ms, policy)
        if isinstance(state, Due):
            retries.append(Due(step, channel, state.attempt))
        success = success or state == "sent"
        final = final and state in ("sent", "failed")
    if not final:
        return retries
    if acked:
        return []
    began = min(t.at_ms for t in rows)
    if success and now_ms < began + policy.escalate_ms:
        return []
    return _start(step + 1, channels)


def finished(channels: Sequence[Sequence[str]], acked: bool, tried: Sequence[Tried],
             policy: Policy) -> bool:
    """Nothing will ever be due again: the step under way is over and either
    the alarm was acknowledged or nobody is left to tell."""
    if not tried:
        return not any(channels)
    step = max(t.step for t in tried)
    for channel in channels[step] if step < len(channels) else ():
        mine = [t for t in tried if t.step == step and t.channel == channel]
        if _channel(mine, 2**62, policy) not in ("sent", "failed"):
            return False
    return acked or not any(channels[step + 1:])


def next_escalation_ms(tried: Sequence[Tried], policy: Policy) -> int | None:
    """When the next step falls due (for display), None before any attempt."""
    if not tried:
        return None
    step = max(t.step for t in tried)
    return min(t.at_ms for t in tried if t.step == step) + policy.escalate_ms


def _start(step: int, channels: Sequence[Sequence[str]]) -> list[Due]:
    while step < len(channels):
        if channels[step]:
            return [Due(step, c, 1) for c in channels[step]]
        step += 1
    return []


def _channel(mine: list[Tried], now_ms: int, policy: Policy) -> str | Due:
    """"sent", "failed" (given up), "busy" (in flight or waiting), or the
    retry that is due now."""
    if any(t.status == "sent" for t in mine):
        return "sent"
    if not mine:
        return Due(0, "", 1)
    if any(t.status == "sending" for t in mine):
        return "busy"
    last = max(mine, key=lambda t: t.attempt)
    if last.attempt >= policy.attempts:
        return "failed"
    wait = policy.backoff_ms * 2 ** (last.attempt - 1)
    if now_ms >= (last.done_ms or last.at_ms) + wait:
        return Due(0, "", last.attempt + 1)
    return "busy"

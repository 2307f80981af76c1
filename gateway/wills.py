"""Last wills held for `[supervision] link_grace_s` before they count.

When Mosquitto restarts it publishes the last will of every device it
disconnects, to the gateway while the gateway is still connected or, when
the gateway went first, into its persistent session for delivery right
after it reconnects. So a will that arrives within the grace before the
gateway's own connection drops, or after it comes back, is part of one
loss of the link, not news about its device. The rest are each device's
own, acted on once the grace has passed without a link change.

Pure bookkeeping: times are monotonic seconds passed in; Supervisor holds
the lock and raises the events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class Will:
    at: float  # when it arrived
    link: bool  # around a loss of the gateway's own link


class Wills:
    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self.held: dict[str, Will] = {}
        self.up_at: float | None = None  # when the link last came back; None while down
        # devices whose will came with a link loss: not yet in a link_report(), and
        # in the last one (kept to make it again when it could not be stored)
        self.unreported: set[str] = set()
        self.reported: set[str] = set()

    def add(self, device: str, now: float) -> bool:
        """Hold a device's last will; False without a grace (act on it at once)."""
        if self.grace_s <= 0:
            return False
        if device not in self.held:
            link = self.up_at is not None and now - self.up_at <= self.grace_s
            self.held[device] = Will(now, link)
            if link:
                self.unreported.add(device)
        return True

    def heard(self, device: str) -> bool:
        """The device is heard from (or reported offline): its will is done
        with; True when one was held."""
        return self.held.pop(device, None) is not None

    def link_down(self, now: float) -> None:
        """The gateway lost the broker: the wills just before are part of it."""
        self.up_at = None
        for device, will in self.held.items():
            if not will.link and now - will.at <= self.grace_s:
                will.link = True
                self.unreported.add(device)

    def link_up(self, now: float) -> None:
        self.up_at = now

    def due(self, now: float) -> list[str]:
        """Devices whose own will has had its grace (no link change around
        it): each is reported offline now; they are no longer held."""
        done = [d for d, w in self.held.items() if not w.link and now - w.at >= self.grace_s]
        for device in done:
            del self.held[device]
        return done

    def gone(self, known: Callable[[str], object]) -> list[str]:
        """Drop the wills of devices no longer registered (known() is None)."""
        gone = [d for d in self.held if known(d) is None]
        for device in gone:
            del self.held[device]
        return gone

    def link_waiting(self) -> int:
        """Devices whose will came around a link loss and that are not back."""
        return sum(1 for w in self.held.values() if w.link)

    def link_report(self, now: float) -> dict[str, int] | None:
        """Once the link has been back for the grace (every will of the loss
        is in): how many devices' wills came with it and how many of those
        devices are still away, then nothing until the next loss."""
        if not self.unreported or self.up_at is None or now - self.up_at < self.grace_s:
            return None
        report = {"devices": len(self.unreported), "waiting": self.link_waiting()}
        self.reported, self.unreported = self.unreported, set()
        return report

    def unreport(self) -> None:
        """The last report could not be stored: make it again next time."""
        self.unreported |= self.reported

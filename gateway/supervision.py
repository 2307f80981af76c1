"""Device supervision: a `supervision` event when a device falls silent or
its last will arrives, and a restore when it comes back.

Every registered device has a window (`[supervision] windows` by the
registry's `type`, else `default_s`). Any new message from the device
restarts it. Past the window without a message, or when its signed last
will (`status`/`offline`) arrives, the gateway stores a `supervision`
event of type `offline`, forwarded to the centre like a device's events;
the device's next message stores type `online`.

While the gateway has lost the broker, silence is not counted (the devices
may be fine; the gateway cannot hear them): after `gateway_grace_s` without
the broker one `gateway_offline` event is stored for the gateway itself,
and on reconnect every device gets a fresh window (and the gateway an
`online` event when `gateway_offline` was raised).

A broker restart or a lost link makes every connected device's last will
fire at once. So a last will is acted on `link_grace_s` after it arrives
(wills.py): when the gateway's own connection dropped or came back within
`link_grace_s` of it, it is part of one link loss, reported as a single
`link_lost` event for the gateway; such a device that is heard again within
its window produces nothing of its own, one that stays away gets its own
`offline` when its window has passed, and once none is left waiting the
gateway gets an `online` that restores the `link_lost`.

Identities never collide with the devices' own: an event the gateway
originates carries its device's id (the gateway id for events about the
gateway, which must not be a registered device) and a negative seq whose
magnitude is max(the id's last magnitude + 1, seconds since 2025-01-01),
so it grows over time and never repeats; devices use 1 ... 2^31-1. Whether
a device is reported offline is kept across restarts: it is the type of
its latest supervision event in the store.

Several gateways in one share group all hear every heartbeat and last will
(source.UNSHARED) and all keep windows; with `claim` (RedisClaims, when the
de-dup state is in Redis) a device's change of state is raised by whichever
gateway claims it first in Redis, and the others only follow it, so the
centre gets one `offline` and one `online`, not one per gateway.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from gateway import metrics
from gateway.config import ConfigError, SupervisionSection
from gateway.registry import Registry
from gateway.store import SUPERVISION, Event, Store
from gateway.wills import Wills
from gateway.worker import Worker
from hg import protocol

log = logging.getLogger("homeguard.gateway.supervision")
EPOCH_S = 1735689600  # 2025-01-01T00:00:00Z
OFFLINE, ONLINE, GATEWAY_OFFLINE = "offline", "online", "gateway_offline"
LINK_LOST = "link_lost"
# device faults the gateway reports without changing the device's state (report())
FAULTS = ("seq_conflict",)
# the gateway's warnings about itself (service.py raises them, at most one per
# type per WARN_EVERY_S): messages lost on the way (gaps.py), the store's disk
# below min_free_mb, telemetry shed when overloaded
WARNINGS = ("data_lost", "disk_low", "shedding")
# how often the supervision thread looks at the broker connection between checks
LINK_POLL_S = 0.25


def next_seq(last: int, now_s: float) -> int:
    """The seq of the next event the gateway originates for an id whose last
    one was `last` (0: none): negative, and larger in magnitude than any before."""
    return -max(-last + 1 if last < 0 else 1, int(now_s) - EPOCH_S)


class Claim(Protocol):
    def take(self, device: str, typ: str) -> str | None:
        """Record `typ` as the device's state; returns the state it replaced."""

    def undo(self, device: str, previous: str | None) -> None:
        """Put back the state take() replaced (the event could not be stored)."""

    def seq(self, device: str, at_least: int) -> int:
        """A magnitude for the id's next gateway event, at least `at_least` and
        above every one any gateway of the group took before (unique)."""


# the next magnitude: above the stored one and the caller's floor, atomically
_NEXT_SEQ = """
local n = math.max(tonumber(redis.call('GET', KEYS[1]) or '0') + 1, tonumber(ARGV[1]))
redis.call('SET', KEYS[1], n)
return n
"""


class RedisClaims:
    """Each device's supervision state in Redis, shared by a share group."""

    PREFIX = "hg:supervision:"

    def __init__(self, url: str) -> None:
        import redis

        self.redis = redis.Redis.from_url(url, socket_timeout=5)
        self._next_seq = self.redis.register_script(_NEXT_SEQ)

    def seq(self, device: str, at_least: int) -> int:
        # two gateways raising for one device in the same second must not
        # share an identity: the centre would take the second as a duplicate
        return int(self._next_seq(keys=[f"hg:supervision-seq:{{{device}}}"],
                                  args=[at_least]))

    def take(self, device: str, typ: str) -> str | None:
        old = self.redis.set(self.PREFIX + device, typ, get=True)
        return old.decode() if isinstance(old, bytes) else None

    def undo(self, device: str, previous: str | None) -> None:
        try:
            if previous is None:
                self.redis.delete(self.PREFIX + device)
            else:
                self.redis.set(self.PREFIX + device, previous)
        except Exception:  # noqa: BLE001 - the state is raised again next time
            log.exception("cannot put back the supervision state of %s", device)


class Supervisor(Worker):
    """The supervision thread: a Worker whose round checks every window
    (every `check_s`) or, between the checks, only the broker link."""

    name = "supervision"

    def __init__(self, cfg: SupervisionSection, gateway_id: str, store: Store,
                 registry: Registry, connected: Callable[[], bool],
                 on_raised: Callable[[], None] = lambda: None,
                 claim: Claim | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not protocol.valid_id(gateway_id) or registry.get(gateway_id) is not None:
            raise ConfigError(f"gateway.id {gateway_id!r} must be 3-32 of [a-z0-9-] and not a "
                              "registered device: supervision events about the gateway use it")
        # a failed round is tried again after one look at the link, as any round
        poll_s = min(cfg.check_s, LINK_POLL_S)
        super().__init__(backoff_min_s=poll_s, backoff_max_s=poll_s)
        self.idle_s = poll_s
        self.cfg = cfg
        self.gateway_id = gateway_id
        self.store = store
        self.registry = registry
        self.connected = connected
        self.on_raised = on_raised
        self.claim = claim
        self.clock = clock
        self.last: dict[str, float] = {}  # device -> monotonic time of its last message
        self.seqs: dict[str, int] = {}  # id -> the last seq the gateway gave it (negative)
        self.offline: set[str] = set()
        self.link_lost = False  # a link_lost event waits for its online
        for device, typ, seq in store.last_supervision():
            if seq < 0:
                self.seqs[device] = seq
            if typ in (OFFLINE, GATEWAY_OFFLINE):
                self.offline.add(device)
            elif typ == LINK_LOST and device == gateway_id:
                self.link_lost = True
        self.wills = Wills(cfg.link_grace_s)
        # the broker counts as lost until the first connect: last wills queued
        # in the gateway's session while it was away come right after it
        self.down_since: float | None = clock()
        self._lock = threading.Lock()
        self._due = 0.0  # when the next check of every window is due

    def window_s(self, device: str) -> float:
        info = self.registry.get(device) or {}
        return self.cfg.windows.get(str(info.get("type")), self.cfg.default_s)

    def seen(self, e: Event) -> None:
        """A new message from a device (the pipeline's on_seen)."""
        with self._lock:
            now = self.clock()
            if self.down_since is not None and self.connected():
                self._broker_back(now)  # here before the thread noticed the broker back
            self.last[e.device] = now
            if e.kind == "status" and e.type == OFFLINE:
                if e.device not in self.offline and not self.wills.add(e.device, now):
                    self._raise(e.device, OFFLINE, {"reason": "last_will"})
                return
            self.wills.heard(e.device)
            if e.device in self.offline:
                self._raise(e.device, ONLINE, {"reason": e.kind})

    def report(self, device: str, typ: str, data: dict) -> int | None:
        """Store one supervision event of a fault type (FAULTS) about a device,
        leaving its online/offline state alone; its seq, or None when it
        could not be stored (logged)."""
        if typ not in FAULTS + WARNINGS:
            raise ValueError(f"supervision type {typ!r} is not a fault or warning; one of "
                             f"{FAULTS + WARNINGS}")
        with self._lock:
            return self._store(device, typ, data)

    def once(self) -> bool:
        if self.clock() >= self._due:
            self._due = self.clock() + self.cfg.check_s
            self.tick()
        else:
            self.poll_link()
        return False

    def failed(self, exc: Exception, backoff: float) -> None:
        log.error("supervision check failed; next one in %.1fs", self.cfg.check_s,
                  exc_info=exc)  # every one, with its traceback: supervision must keep running

    def recovered(self) -> None:
        pass  # the next event it raises says so

    def poll_link(self) -> bool:
        """Notice a lost or returned broker (between the checks too, so the
        last wills around it are known to be part of it); True when connected."""
        with self._lock:
            return self._link(self.clock())

    def tick(self) -> None:
        """Check every window; the lock is held only to act, not while scanning,
        so the pipeline's seen() never waits for a scan of every device."""
        with self._lock:
            now = self.clock()
            if not self._link(now):
                return
            self._settle_wills(now)
            last = dict(self.last)
            offline = set(self.offline)
        fresh, late = [], []
        for device in self.registry.ids():
            if device not in last:
                fresh.append(device)
            elif device not in offline and now - last[device] > self.window_s(device):
                late.append(device)
        with self._lock:
            for device in fresh:
                self.last.setdefault(device, now)
            for device in late:
                self._late(device, now)
            if self.link_lost and not self.wills.link_waiting():
                self._raise(self.gateway_id, ONLINE, {"reason": "devices_settled"})

    def _late(self, device: str, now: float) -> None:
        silent = now - self.last[device]
        window = self.window_s(device)
        if device in self.offline or silent <= window or not self.connected():
            return
        reason = "last_will" if self.wills.heard(device) else "silent"
        self._raise(device, OFFLINE, {"reason": reason, "silent_s": int(silent),
                                      "window_s": int(window)})

    def _settle_wills(self, now: float) -> None:
        """Report the last wills whose grace has passed with the link up, and
        one link_lost for the wills around a loss of the gateway's link."""
        for device in self.wills.gone(self.registry.get):
            log.info("last will of %s dropped: no longer registered", device)
        for device in self.wills.due(now):
            if device not in self.offline and not self._raise(
                    device, OFFLINE, {"reason": "last_will"}):
                self.wills.add(device, now)  # not stored: try again next time
        report = self.wills.link_report(now)
        if report is None:
            return
        if self.link_lost:
            log.info("last wills of %d more devices around a link loss join the open "
                     "link_lost", report["devices"])
        elif not self._raise(self.gateway_id, LINK_LOST, {"reason": "last_wills", **report}):
            self.wills.unreport()

    def _link(self, now: float) -> bool:
        if not self.connected():
            self._broker_down(now)
            return False
        if self.down_since is not None:
            self._broker_back(now)
        return True

    def _broker_down(self, now: float) -> None:
        if self.down_since is None:
            self.down_since = now
            self.wills.link_down(now)
            log.warning("broker lost: device silence is not counted until it is back")
        if now - self.down_since >= self.cfg.gateway_grace_s \
                and self.gateway_id not in self.offline:
            self._raise(self.gateway_id, GATEWAY_OFFLINE,
                        {"reason": "broker_lost", "down_s": int(now - self.down_since)})

    def _broker_back(self, now: float) -> None:
        log.info("broker connected after %.1fs without it: every device gets a fresh window",
                 now - (self.down_since or now))
        self.down_since = None
        self.wills.link_up(now)
        for device in self.last:
            self.last[device] = now
        if self.gateway_id in self.offline:
            self._raise(self.gateway_id, ONLINE, {"reason": "broker_back"})

    def _set_state(self, device: str, typ: str) -> None:
        if typ == ONLINE:
            self.offline.discard(device)
            if device == self.gateway_id:
                self.link_lost = False
        elif typ == LINK_LOST:
            self.link_lost = True
        else:
            self.offline.add(device)

    def _raise(self, device: str, typ: str, data: dict) -> bool:
        """Store a change of state (the caller holds the lock); the state
        changes only once it is committed, so a failed commit is retried."""
        previous = None
        if self.claim is not None and device != self.gateway_id:
            previous = self.claim.take(device, typ)
            if previous == typ:  # another gateway raised it: follow
                self._set_state(device, typ)
                log.info("supervision %s device=%s raised by another gateway", typ, device)
                return True
        if self._store(device, typ, data) is None:
            if self.claim is not None and device != self.gateway_id:
                self.claim.undo(device, previous)
            return False
        self._set_state(device, typ)
        return True

    def _store(self, device: str, typ: str, data: dict) -> int | None:
        now_ms = int(time.time() * 1000)
        seq = next_seq(self.seqs.get(device, 0), now_ms / 1000)
        if self.claim is not None:  # unique across the share group too
            seq = -self.claim.seq(device, -seq)
        event = Event(device=device, seq=seq, kind=SUPERVISION, type=typ,
                      event_time_ms=now_ms, device_time_ms=None, gateway_time_ms=now_ms,
                      age_ms=0, skew_ms=None, data=data)
        try:
            self.store.insert(event)
        except Exception:  # noqa: BLE001 - logged; the condition is raised again next time
            log.exception("cannot store supervision %s device=%s", typ, device)
            return None
        self.seqs[device] = seq
        metrics.SUPERVISION.labels(typ).inc()
        log.warning("supervision %s device=%s seq=%d %s", typ, device, seq,
                    " ".join(f"{k}={v}" for k, v in data.items()))
        self.on_raised()
        return seq

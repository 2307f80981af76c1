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

Identities (device, seq) never collide with the devices' own: a device's
supervision events use its own id (the gateway's use the gateway id, which
must not be a registered device) with seqs from SEQ_BASE (2^30) up, as
SEQ_BASE + seconds since 2025-01-01, bumped past the last one stored.
Devices keep their seqs below 2^30 (34 years at one message a second).
Whether a device is reported offline is kept across restarts: it is the
type of its latest supervision event in the store.

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
from hg import protocol

log = logging.getLogger("homeguard.gateway.supervision")
SEQ_BASE = 1 << 30
EPOCH_S = 1735689600  # 2025-01-01T00:00:00Z
OFFLINE, ONLINE, GATEWAY_OFFLINE = "offline", "online", "gateway_offline"


class Claim(Protocol):
    def take(self, device: str, typ: str) -> str | None:
        """Record `typ` as the device's state; returns the state it replaced."""

    def undo(self, device: str, previous: str | None) -> None:
        """Put back the state take() replaced (the event could not be stored)."""


class RedisClaims:
    """Each device's supervision state in Redis, shared by a share group."""

    PREFIX = "hg:supervision:"

    def __init__(self, url: str) -> None:
        import redis

        self.redis = redis.Redis.from_url(url, socket_timeout=5)

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


class Supervisor:
    def __init__(self, cfg: SupervisionSection, gateway_id: str, store: Store,
                 registry: Registry, connected: Callable[[], bool],
                 on_raised: Callable[[], None] = lambda: None,
                 claim: Claim | None = None) -> None:
        if not protocol.valid_id(gateway_id) or registry.get(gateway_id) is not None:
            raise ConfigError(f"gateway.id {gateway_id!r} must be 3-32 of [a-z0-9-] and not a "
                              "registered device: supervision events about the gateway use it")
        self.cfg = cfg
        self.gateway_id = gateway_id
        self.store = store
        self.registry = registry
        self.connected = connected
        self.on_raised = on_raised
        self.claim = claim
        self.last: dict[str, float] = {}  # device -> monotonic time of its last message
        self.seqs: dict[str, int] = {}
        self.offline: set[str] = set()
        for device, typ, seq in store.last_supervision():
            self.seqs[device] = seq
            if typ in (OFFLINE, GATEWAY_OFFLINE):
                self.offline.add(device)
        self.down_since: float | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="supervision", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5.0)

    def window_s(self, device: str) -> float:
        info = self.registry.get(device) or {}
        return self.cfg.windows.get(str(info.get("type")), self.cfg.default_s)

    def seen(self, e: Event) -> None:
        """A new message from a device (the pipeline's on_seen)."""
        with self._lock:
            self.last[e.device] = time.monotonic()
            if e.kind == "status" and e.type == OFFLINE:
                if e.device not in self.offline:
                    self._raise(e.device, OFFLINE, {"reason": "last_will"})
            elif e.device in self.offline:
                self._raise(e.device, ONLINE, {"reason": e.kind})

    def _run(self) -> None:
        while not self._stopping.wait(self.cfg.check_s):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - supervision must keep running
                log.exception("supervision check failed; next one in %.1fs", self.cfg.check_s)

    def tick(self) -> None:
        """Check every window; the lock is held only to act, not while scanning,
        so the pipeline's seen() never waits for a scan of every device."""
        with self._lock:
            now = time.monotonic()
            if not self.connected():
                self._broker_down(now)
                return
            if self.down_since is not None:
                self._broker_back(now)
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
                silent = now - self.last[device]
                window = self.window_s(device)
                if device not in self.offline and silent > window and self.connected():
                    self._raise(device, OFFLINE, {"reason": "silent", "silent_s": int(silent),
                                                  "window_s": int(window)})

    def _broker_down(self, now: float) -> None:
        if self.down_since is None:
            self.down_since = now
            log.warning("broker lost: device silence is not counted until it is back")
        if now - self.down_since >= self.cfg.gateway_grace_s \
                and self.gateway_id not in self.offline:
            self._raise(self.gateway_id, GATEWAY_OFFLINE,
                        {"reason": "broker_lost", "down_s": int(now - self.down_since)})

    def _broker_back(self, now: float) -> None:
        log.info("broker back after %.1fs: every device gets a fresh window",
                 now - (self.down_since or now))
        self.down_since = None
        for device in self.last:
            self.last[device] = now
        if self.gateway_id in self.offline:
            self._raise(self.gateway_id, ONLINE, {"reason": "broker_back"})

    def _set_state(self, device: str, typ: str) -> None:
        if typ == ONLINE:
            self.offline.discard(device)
        else:
            self.offline.add(device)

    def _raise(self, device: str, typ: str, data: dict) -> None:
        """Store a supervision event (the caller holds the lock); the state
        changes only once it is committed, so a failed commit is retried."""
        previous = None
        if self.claim is not None and device != self.gateway_id:
            previous = self.claim.take(device, typ)
            if previous == typ:  # another gateway raised it: follow
                self._set_state(device, typ)
                log.info("supervision %s device=%s raised by another gateway", typ, device)
                return
        now_ms = int(time.time() * 1000)
        seq = max(self.seqs.get(device, 0) + 1, SEQ_BASE + now_ms // 1000 - EPOCH_S)
        event = Event(device=device, seq=seq, kind=SUPERVISION, type=typ,
                      event_time_ms=now_ms, device_time_ms=None, gateway_time_ms=now_ms,
                      age_ms=0, skew_ms=None, data=data)
        try:
            self.store.insert(event)
        except Exception:  # noqa: BLE001 - logged; the condition is raised again next time
            log.exception("cannot store supervision %s device=%s", typ, device)
            if self.claim is not None and device != self.gateway_id:
                self.claim.undo(device, previous)
            return
        self.seqs[device] = seq
        self._set_state(device, typ)
        metrics.SUPERVISION.labels(typ).inc()
        log.warning("supervision %s device=%s seq=%d %s", typ, device, seq,
                    " ".join(f"{k}={v}" for k, v in data.items()))
        self.on_raised()

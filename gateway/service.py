"""The gateway service: wires source -> pipeline -> store -> sinks and runs
until SIGTERM/SIGINT, then shuts down gracefully (stop taking messages,
commit the queued telemetry, one last delivery round, close the store)."""

from __future__ import annotations

import logging
import shutil
import signal
import sys
import threading
import time
from functools import partial
from pathlib import Path

from gateway import health, metrics, statelock
from gateway.ack import Acker
from gateway.config import Config
from gateway.freshness import Away
from gateway.gaps import Missing
from gateway.lane import TelemetryLane
from gateway.pipeline import ACKED_KINDS, Pipeline
from gateway.registry import Registry
from gateway.sinks import Context, event_sinks
from gateway.sinks.centre import CentreSink, conflict_fault
from gateway.sinks.timeseries import TimeseriesSection
from gateway.source import EVENT_LEAVES, TELEMETRY_LEAVES, Deferred, MQTTSource, topics
from gateway.store import Event, PointBatch, Store
from gateway.supervision import Supervisor
from gateway.workers import Workers

log = logging.getLogger("homeguard.gateway")
CONFLICT_FAULT_S = 600.0  # one seq_conflict device fault per device per 10 minutes
WARN_EVERY_S = 600.0  # at most one warning of each type (supervision.WARNINGS) per 10 min
WATCH_EVERY_S = 5.0  # how often the disk and the shed count are looked at while busy


class Gateway:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        if cfg.registry.centre_sync_s > 0 and not Path(cfg.registry.path).exists():
            Path(cfg.registry.path).write_text('{"devices": []}')  # key sync fills it
        self.registry = Registry(cfg.registry.path)
        self.store = Store(Path(cfg.gateway.data_dir) / "gateway.db", sinks=event_sinks(cfg))
        # from the last thing stored until the broker grants the subscriptions,
        # the session queued what devices sent: freshness.py
        self.away = Away(self.store.last_alive_ms() or int(time.time() * 1000),
                         cfg.verify.backlog_max_s * 1000, ("events", "telemetry"))
        # two sessions, so no alarm waits behind telemetry in the broker's queue:
        # events, heartbeats and status on the gateway's account, telemetry on
        # its companion account (source.py, docs/broker.md)
        self.source = MQTTSource(cfg.mqtt, self._handle, self.away, EVENT_LEAVES, "events")
        self.telemetry_source = MQTTSource(cfg.mqtt.telemetry(), self._handle, self.away,
                                           TELEMETRY_LEAVES, "telemetry")
        self.sources = (self.source, self.telemetry_source)
        self._unsubscribed = {s.name for s in self.sources}  # since the last log line
        self._subscribed_lock = threading.Lock()
        for source in self.sources:
            source.on_subscribed = partial(self._subscribed, source.name)
        self.acker = Acker(self.store, self.registry.key_of, self.source.publish)
        # every configured sink and background worker, from their tables
        # (gateway/sinks/__init__.py SINKS, gateway/workers.py WORKERS)
        self.workers = Workers(Context(cfg, self.store, self.registry, self.acker.send,
                                       self.source.connected.is_set, self._raised))
        self.sinks = self.workers.sinks
        self.event_sinks, self.point_sinks = self.workers.event_sinks, self.workers.point_sinks
        self.supervisor = self.workers.find(Supervisor)
        lane = TimeseriesSection.of(cfg)  # [timeseries] also sizes the telemetry lane
        self.lane = TelemetryLane(self.store, lane.queue_max, self._points_written,
                                  lane.queue_wait_s)
        self.pipeline = Pipeline(
            cfg, self.store, self.registry, self.acker, on_stored=self._stored,
            sinks=tuple(w.name for w in self.event_sinks), lane=self.lane,
            on_seen=self.supervisor.seen if self.supervisor else lambda e: None,
            event_lane=True, on_conflict=self._conflict, away=self.away,
            on_missing=self._missing)
        self._conflicts: dict[str, float] = {}  # device -> when its fault was last raised
        for sink in self.event_sinks:
            if isinstance(sink, CentreSink):
                sink.on_conflict = self._centre_conflict
        self._disk_low = False  # last disk() verdict, to log each change once
        self._warned: dict[str, float] = {}  # warning type -> when it was last raised
        self._warn_lock = threading.Lock()  # both lanes' threads watch
        self._watched = 0.0  # when _watch last looked
        self._shed_seen = 0  # the lane's shed count at the last look
        # either lane may release PUBACKs of either session (a telemetry
        # message an older gateway's session still held comes on the events one)
        self.lane.after_batch = self._flush_acks
        if self.pipeline.events is not None:
            self.pipeline.events.after_batch = self._flush_acks
            self.lane.yield_to = self.pipeline.events.busy  # alarms commit first
        self.http: health.HealthServer | None = None
        if cfg.metrics.port:
            self.http = health.HealthServer(cfg.metrics.host, cfg.metrics.port, self.health,
                                            self.store.points_of, self.registry.key_of)

    def _handle(self, topic: str, payload: bytes, received_ms: int,
                retained: bool = False) -> str | Deferred:
        return self.pipeline.handle(topic, payload, received_ms, retained)

    def _flush_acks(self) -> None:
        for source in self.sources:
            source.flush_acks()

    def _subscribed(self, name: str) -> None:
        """One line once every session has its subscriptions (again)."""
        with self._subscribed_lock:
            self._unsubscribed.discard(name)
            if self._unsubscribed:
                return
            self._unsubscribed = {s.name for s in self.sources}
        log.info("subscribed topics=%s", ",".join(
            t for s in self.sources for t, _ in topics(s.cfg.share_group, s.leaves)))

    def _conflict(self, device: str, seq: int, hi: int) -> None:
        """A device reused a seq for other content: raise a device fault at the
        centre, once per CONFLICT_FAULT_S per device (the NAK makes the device
        move past `hi`, so a burst is one incident)."""
        now = time.monotonic()
        if self.supervisor is None or now - self._conflicts.get(device, -1e9) < CONFLICT_FAULT_S:
            return
        self._conflicts[device] = now
        self.supervisor.report(device, "seq_conflict", {"seq": seq, "hi": hi})

    def _centre_conflict(self, e: Event) -> bool:
        """The centre holds other content under an identity this gateway stored
        and acked `stored` (its state missed the first event): no NAK can reach
        the device. An event it waited for (an alarm...) goes to the desk as a
        `seq_conflict` fault carrying its content, every one (the centre gives
        it the alarm's priority); others are the device fault above. False when
        the fault could not be stored (the sink keeps the event and retries)."""
        if self.supervisor is None:
            log.error("centre conflict device=%s seq=%d kind=%s type=%s: supervision is off, "
                      "nothing reports it to the desk", e.device, e.seq, e.kind, e.type)
            return True
        if e.kind not in ACKED_KINDS:
            self._conflict(e.device, e.seq, self.pipeline.dedup.highest(e.device))
            return True
        return self.supervisor.report(e.device, "seq_conflict", conflict_fault(e)) is not None

    def _warn(self, typ: str, data: dict) -> None:
        """A warning about the gateway itself on the desk, at most once per
        WARN_EVERY_S per type (the metrics and the log have every one)."""
        now = time.monotonic()
        with self._warn_lock:
            if self.supervisor is None or now - self._warned.get(typ, -1e9) < WARN_EVERY_S:
                return
            before, self._warned[typ] = self._warned.get(typ, -1e9), now
        if self.supervisor.report(self.cfg.gateway.id, typ, data) is None:
            self._warned[typ] = before  # not stored (a full disk): raised again next time

    def _missing(self, found: list[Missing]) -> None:
        """Seqs that never arrived (gaps.py): data lost on the way."""
        worst = max(found, key=lambda m: m.count)
        self._warn("data_lost", {"seqs": sum(m.count for m in found), "devices": len(
            {m.device for m in found}), "most": worst.device, "most_seqs": worst.count})

    def _watch(self) -> None:
        """While messages are committed: the store's disk and the telemetry
        the lane shed since the last look, as desk warnings."""
        now = time.monotonic()
        with self._warn_lock:
            if now - self._watched < WATCH_EVERY_S:
                return
            self._watched = now
        self.disk()  # raises disk_low while it is
        shed, self._shed_seen = self.lane.shed - self._shed_seen, self.lane.shed
        if shed > 0:
            self._warn("shedding", {"shed": shed})

    def _raised(self) -> None:
        """The gateway stored an event of its own (supervision)."""
        for w in self.event_sinks:
            w.wake()

    def _stored(self) -> None:
        for w in self.sinks:  # an event, and for a heartbeat a point too
            w.wake()
        self._watch()

    def _points_written(self, batch: PointBatch) -> None:
        for w in self.point_sinks:
            w.offer(batch)  # in memory: no sink reads the lane's points back
        self._watch()

    def health(self) -> dict:
        store = "ok"
        try:
            self.store.touch()
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            store = f"{type(exc).__name__}: {exc}"
        sinks = {w.name: health.backlog(*w.backlog(), w.failing) for w in self.sinks}
        sessions = {s.name: s.connected.is_set() for s in self.sources}
        broker = all(sessions.values())
        disk = self.disk()
        ok = broker and store == "ok" and not disk["low"]
        return {"status": "ok" if ok else "degraded",
                "broker": broker, "sessions": sessions, "store": store, "disk": disk,
                "sinks": sinks,
                "telemetry_queue": self.lane.depth(),
                "event_queue": self.pipeline.events.depth() if self.pipeline.events else 0}

    def disk(self) -> dict:
        """Free space where the store lives, against [gateway] min_free_mb."""
        free = shutil.disk_usage(self.store.path.parent).free
        metrics.DISK_FREE.set(free)
        low = free < self.cfg.gateway.min_free_mb << 20
        if low != self._disk_low:
            self._disk_low = low
            (log.warning if low else log.info)(
                "disk %s: %d MB free in %s (min_free_mb %d)", "low" if low else "ok",
                free >> 20, self.store.path.parent, self.cfg.gateway.min_free_mb)
        if low:
            self._warn("disk_low", {"free_mb": free >> 20,
                                    "min_free_mb": self.cfg.gateway.min_free_mb})
        return {"free_mb": free >> 20, "min_free_mb": self.cfg.gateway.min_free_mb, "low": low}

    def start(self) -> None:
        if self.http is not None:
            self.http.start()
        self.lane.start()
        if self.pipeline.events is not None:
            self.pipeline.events.start()
        self.workers.start()
        for source in self.sources:
            source.start()
        log.info("gateway started id=%s broker=%s:%d centre=%s timeseries=%s",
                 self.cfg.gateway.id, self.cfg.mqtt.host, self.cfg.mqtt.port,
                 self.cfg.centre.url, TimeseriesSection.of(self.cfg).url or "embedded")

    def stop(self) -> None:
        log.info("gateway stopping")
        for source in self.sources:
            source.stop()
        self.workers.stop_background()
        if self.pipeline.events is not None:
            self.pipeline.events.stop()
        self.lane.stop()
        self.workers.stop_sinks()
        if self.http is not None:
            self.http.stop()
        self.pipeline.dedup.close()
        self.store.close()
        log.info("gateway stopped")


# The source's thread gives the GIL away on every socket read; with the
# default 5 ms switch interval it can wait that long behind a lane thread
# before taking the next message. 1 ms keeps it fed (measured: homeguard
# bench throughput, docs/benchmarks.md).
SWITCH_INTERVAL_S = 0.001


def run(cfg: Config) -> None:
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    statelock.hold(Path(cfg.gateway.data_dir), "gateway")  # one gateway per store
    gw = Gateway(cfg)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    gw.start()
    done.wait()
    gw.stop()

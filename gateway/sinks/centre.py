"""Centre sink: POSTs stored events, in store order, to the centre's ingest API.

Delivery is at-least-once and the centre is idempotent on (device, seq), so
a crash between the centre's answer and our marking the deliveries done only
causes a resend that the centre reports as "duplicate". Deliveries are
marked done only after the centre has answered 200 for the batch; a failed
attempt is counted on each delivery row with its error. A dead centre is retried
with capped exponential backoff (sinks/worker.py); events wait in the store meanwhile.
A batch the centre refuses as invalid (422) is split so that only the
refused events are set aside as dead letters (counted and logged).

A `conflict` answer (the centre holds other content under the identity:
this gateway's state missed the first event, and the device was already
acked `stored`, so no NAK can reach it) is handed to `on_conflict`, which
puts it on the desk (the service: a `seq_conflict` device fault carrying
the refused content, see conflict_fault); only once that is stored is the
event set aside, counted and logged. Until then it stays pending and the
batch is retried with backoff, so a conflict is never dropped quietly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import httpx

from gateway import metrics
from gateway.config import CentreSection
from gateway.pipeline import ACKED_KINDS
from gateway.sinks import Context
from gateway.sinks.worker import SinkWorker
from gateway.store import Event, Store
from hg.protocol import MAX_DATA_KEYS

log = logging.getLogger("homeguard.gateway.centre")
SINK = "centre"
CONFLICT = "conflict"  # the centre's answer for an identity it holds with other content
PER_DEVICE = 20  # events of one device at the head of a batch, before the rest


class Refused(Exception):
    """The centre answered 422: this batch will never be accepted as it is."""


class Unreported(Exception):
    """A conflict the centre answered could not be put on the desk yet (the
    fault was not stored): the event stays pending, retried with backoff."""


class BadAnswer(Exception):
    """The centre answered 200 with something that is not the ingest contract's
    result list for this batch; nothing is marked delivered, the batch is retried."""


def _results(r: httpx.Response, batch: list[Event]) -> list[dict]:
    try:
        results = r.json()["results"]
    except (ValueError, KeyError, TypeError):
        raise BadAnswer(f"no results list in the centre's answer: {r.text[:200]!r}") from None
    if not isinstance(results, list) or len(results) != len(batch):
        raise BadAnswer(f"{len(batch)} events sent, the answer's results are {results!r:.200}")
    for e, res in zip(batch, results, strict=True):
        if not isinstance(res, dict) or (res.get("device"), res.get("seq")) != (e.device, e.seq) \
                or res.get("status") not in ("accepted", "duplicate", CONFLICT):
            raise BadAnswer(f"result {res!r} does not confirm {e.device} seq {e.seq}")
    return results


class CentreSink(SinkWorker):
    name = SINK

    def __init__(self, cfg: CentreSection, gateway_id: str, store: Store,
                 ack: Callable[[str, int, str], object]) -> None:
        self.cfg = cfg
        self.gateway_id = gateway_id
        self.ack = ack
        self.http = httpx.Client(
            timeout=cfg.timeout_s, headers={"Authorization": f"Bearer {cfg.token}"})
        self.url = cfg.url.rstrip("/") + "/api/v1/ingest"
        # a conflict the centre answered -> True once it is reported (stored
        # as a desk fault); the service sets it (without supervision: logged only)
        self.on_conflict: Callable[[Event], bool] = lambda e: True
        # devices with a request in flight: each is in one request at a time,
        # so its events reach the centre in order whichever request has them
        self._busy: set[str] = set()
        self._busy_lock = threading.Lock()
        super().__init__(store, cfg.backoff_min_s, cfg.backoff_max_s)
        self.second = Second(self)

    # --- two requests in flight (the second: Second, below) -----------------------

    def start(self) -> None:
        super().start()
        self.second.start()

    def wake(self) -> None:
        super().wake()
        self.second.wake()

    def stop(self, join_s: float = 10.0) -> None:
        self.second.stop(join_s)  # its close() leaves the client to this one
        super().stop(join_s)

    def close(self) -> None:
        self.http.close()

    def log_failure(self, exc: Exception, backoff: float) -> None:
        try:
            depth = self._gauges()
        except Exception:  # noqa: BLE001 - the store itself may be what failed
            depth = -1
        if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code in (401, 403):
            log.error("centre refused the gateway token status=%d backlog=%d retry_in=%.1fs "
                      "(check centre.token / HG_GATEWAY_CENTRE_TOKEN)",
                      exc.response.status_code, depth, backoff)
        elif isinstance(exc, httpx.HTTPError | OSError):
            log.warning("centre unreachable error=%r backlog=%d retry_in=%.1fs",
                        str(exc), depth, backoff)
        else:
            log.error("centre delivery failed error=%r backlog=%d retry_in=%.1fs",
                      f"{type(exc).__name__}: {exc}", depth, backoff)

    def deliver_once(self) -> int:
        """Deliver the next batch; returns how many events it moved."""
        with self._busy_lock:
            # fair: a flooding device cannot hold back another device's alarm;
            # and none of the devices the other request has in flight
            batch = self.store.pending(SINK, self.cfg.batch_size, PER_DEVICE, ACKED_KINDS,
                                       skip=self._busy)
            mine = {e.device for e in batch}
            self._busy |= mine
        try:
            self._gauges()
            if not batch:
                return 0
            try:
                try:
                    self._post(batch)
                except Refused:
                    self._split(batch)
            except Exception as exc:
                self._note_failure(batch, exc)
                raise
            return len(batch)
        finally:
            with self._busy_lock:
                self._busy -= mine

    def _note_failure(self, batch: list[Event], exc: Exception) -> None:
        try:
            self.store.mark_failed(SINK, [e.id for e in batch if e.id is not None],
                                   f"{type(exc).__name__}: {exc}")
        except Exception:  # noqa: BLE001 - the store itself may be what failed
            log.exception("cannot record the failed attempt")

    def _post(self, batch: list[Event]) -> None:
        body = {"gateway": self.gateway_id, "events": [e.to_centre() for e in batch]}
        r = self.http.post(self.url, json=body)
        if r.status_code == 422:
            raise Refused(r.text[:500])
        if r.status_code != 200:
            raise httpx.HTTPStatusError(f"centre answered {r.status_code}: {r.text[:200]}",
                                        request=r.request, response=r)
        results = _results(r, batch)
        now = time.time() * 1000
        # a conflict: the centre holds other content under this identity; it is
        # reported to the desk, then set aside (never "delivered"), counted and
        # logged; one not reported yet stays pending (Unreported below)
        unreported = {e.id for e, res in zip(batch, results, strict=True)
                      if res["status"] == CONFLICT and not self.on_conflict(e)}
        self.store.mark_done(SINK, [(e.id, "refused" if res["status"] == CONFLICT
                                     else res["status"]) for e, res in zip(
            batch, results, strict=True) if e.id is not None and e.id not in unreported])
        for e, res in zip(batch, results, strict=True):
            if res["status"] == CONFLICT:
                if e.id not in unreported:
                    metrics.DEAD.labels(SINK).inc()
                    log.error("centre refused device=%s seq=%d reason=%s: it holds other "
                              "content under this identity; reported as a seq_conflict "
                              "fault with kind=%s type=%s", e.device, e.seq, CONFLICT,
                              e.kind, e.type)
                continue
            metrics.DELIVERED.labels(SINK).inc()
            metrics.LATENCY.labels(SINK).observe(max(0.0, (now - e.gateway_time_ms) / 1000))
            if e.kind in ACKED_KINDS:
                self.ack(e.device, e.seq, "delivered")
            log.info("delivered sink=centre device=%s seq=%d status=%s",
                     e.device, e.seq, res.get("status"))
        if unreported:
            raise Unreported(f"{len(unreported)} conflict(s) the centre answered could not "
                             "be reported yet; kept pending")

    def _split(self, batch: list[Event]) -> None:
        """Send one by one; set aside only what the centre refuses alone."""
        for e in batch:
            try:
                self._post([e])
            except Refused as exc:
                assert e.id is not None
                self.store.mark_done(SINK, [(e.id, "refused")], str(exc)[:500])
                metrics.DEAD.labels(SINK).inc()
                log.error("centre refused device=%s seq=%d reason=%s", e.device, e.seq, exc)

    def backlog(self) -> tuple[int, int | None]:
        return self.store.backlog(SINK)

    def _gauges(self) -> int:
        """Update the outbox gauges; returns the depth."""
        depth, oldest = self.store.backlog(SINK)
        metrics.BACKLOG.labels(SINK).set(depth)
        age = 0.0 if oldest is None else max(0.0, time.time() - oldest / 1000)
        metrics.OLDEST.labels(SINK).set(age)
        return depth


class Second(SinkWorker):
    """The centre sink's second request in flight, on its own thread: while
    one request carries a flooding device's batch (the centre stores a batch
    in one transaction, up to a hundred events), another device's alarm goes
    in the other instead of waiting for it. Both take the next fair batch of
    the devices the other has not in flight (CentreSink.deliver_once), so
    each device's events still reach the centre in order."""

    name = SINK

    def __init__(self, first: CentreSink) -> None:
        super().__init__(first.store, first.backoff_min_s, first.backoff_max_s)
        self.first = first
        self._thread.name = f"{SINK}-2"  # (its metrics are the sink's: `name`)

    def deliver_once(self) -> int:
        return self.first.deliver_once()

    def log_failure(self, exc: Exception, backoff: float) -> None:
        if not self.first.failing:  # the first says it once for both
            self.first.log_failure(exc, backoff)

    def backlog(self) -> tuple[int, int | None]:
        return self.first.backlog()


def conflict_fault(e: Event) -> dict:
    """The data of the `seq_conflict` fault for an event the centre refused:
    which seq, and what the device sent under it (its kind, type, event time
    and data keys, flat as the centre's event data is), so the operator sees
    the alarm on the desk. Data keys that do not fit are counted in `cut`."""
    fault: dict = {"seq": e.seq, "kind": e.kind, "type": e.type,
                   "event_time_ms": e.event_time_ms, "at": "centre"}
    room = MAX_DATA_KEYS - len(fault) - 1  # one kept for `cut`
    keys = [k for k in sorted(e.data) if k not in fault and k != "cut"]
    fault.update((k, e.data[k]) for k in keys[:room])
    if len(keys) > room or len(keys) < len(e.data):
        fault["cut"] = len(e.data) - len(keys[:room])
    return fault


def build(ctx: Context) -> CentreSink:
    return CentreSink(ctx.cfg.centre, ctx.cfg.gateway.id, ctx.store, ctx.ack)

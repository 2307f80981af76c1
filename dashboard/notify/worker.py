"""The centre's notification task: every `notify_poll_s` it looks at the
open household alarms, claims the attempts that are due (inserting their
`notifications` rows, status "sending", in one committed transaction),
sends them and records each outcome.  All state is in the store: after a
restart the worker carries on from the rows; an attempt a stopped centre
left "sending" is marked failed (and retried like any failure), so a step
that got through is never sent again."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dashboard.db import begin_write
from dashboard.ingest import PRIORITY
from dashboard.models import OPEN_STATES, Alarm, Device, Event
from dashboard.notify.channels import DeliveryFailed, Message, Notifier
from dashboard.notify.models import Notification
from dashboard.notify.people import Site, message, site_of
from dashboard.notify.plan import Due, Policy, Tried, due, finished
from dashboard.settings import Settings

log = logging.getLogger("homeguard.centre.notify")

# fire, people in danger, electrical hazards (desk priorities 1-3)
NOTIFY_TYPES = frozenset(t for t, p in PRIORITY.items() if p <= 3)
SENDERS = 8  # attempts made at once
INTERRUPTED = "interrupted: the centre stopped during this attempt"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Claim:
    row_id: int
    msg: Message
    notifier: Notifier


class NotifyWorker:
    def __init__(self, sessions: sessionmaker[Session], settings: Settings,
                 notifiers: list[Notifier]) -> None:
        self.sessions, self.settings = sessions, settings
        self.notifiers = {n.channel: n for n in notifiers}
        self.policy = Policy(settings.notify_attempts, int(settings.notify_backoff_s * 1000),
                             int(settings.notify_escalate_s * 1000))
        self.nobody: set[int] = set()  # alarms logged as having nobody to tell
        self.settled: set[int] = set()  # alarms for which nothing will be due again
        self.unbound_after = 0  # alarms up to this id were checked for a household
        self.stop = threading.Event()
        self.rounds = 0  # looks at the store so far (tests wait on it)

    def recover(self) -> int:
        """Mark attempts a stopped centre left "sending" as failed."""
        with self.sessions() as session:
            begin_write(session)
            done = session.execute(
                update(Notification).where(Notification.status == "sending")
                .values(status="failed", error=INTERRUPTED, done_ms=_now_ms()))
            session.commit()
        count = int(getattr(done, "rowcount", 0) or 0)
        if count:
            log.warning("%d notification attempt(s) were interrupted by a stop; retrying", count)
        return count

    def tick(self, now_ms: int | None = None) -> int:
        """One look at the store: claim and make the due attempts."""
        claims = self._claim(_now_ms() if now_ms is None else now_ms)
        if len(claims) == 1:
            self._send(claims[0])
        elif claims:  # a slow receiver must not hold up everyone else's attempts
            with ThreadPoolExecutor(min(SENDERS, len(claims)), "notify") as pool:
                list(pool.map(self._send, claims))
        return len(claims)

    def _claim(self, now_ms: int) -> list[Claim]:
        with self.sessions() as session:  # a look without the write lock first
            if not any(self._due(session, a, now_ms)[1]
                       for a in self._candidates(session, now_ms)):
                return []
            session.rollback()
        with self.sessions() as session:
            begin_write(session)
            claims: list[Claim] = []
            try:
                for alarm in self._candidates(session, now_ms):
                    claims += self._claim_alarm(session, alarm, now_ms)
                session.commit()
            except IntegrityError:  # another centre process claimed first
                session.rollback()
                log.info("notification attempts claimed elsewhere; skipping this round")
                return []
        return claims

    def _candidates(self, session: Session, now_ms: int) -> list[Alarm]:
        """Open household alarms of devices bound to a household."""
        oldest = now_ms - int(self.settings.notify_max_age_s * 1000)
        self._log_unbound(session, oldest)
        found = session.scalars(
            select(Alarm).join(Event, Event.id == Alarm.event_id)
            .join(Device, Device.device_id == Alarm.device_id)
            .where(Event.kind == "alarm", Alarm.type.in_(NOTIFY_TYPES),
                   Alarm.state.in_(OPEN_STATES), Alarm.created_ms >= oldest,
                   Device.household_id.is_not(None))
            .order_by(Alarm.priority, Alarm.id))
        return [a for a in found if a.id not in self.settled]

    def _log_unbound(self, session: Session, oldest: int) -> None:
        """Log once each new household alarm whose device is in no household."""
        rows = session.execute(
            select(Alarm.id, Alarm.type, Alarm.device_id, Device.household_id)
            .join(Event, Event.id == Alarm.event_id)
            .outerjoin(Device, Device.device_id == Alarm.device_id)
            .where(Alarm.id > self.unbound_after, Event.kind == "alarm",
                   Alarm.type.in_(NOTIFY_TYPES), Alarm.created_ms >= oldest)).all()
        for alarm_id, typ, device, household in rows:
            if household is None:
                log.warning("alarm %d (%s from %s): nobody to notify (device not registered "
                            "or in no household)", alarm_id, typ, device)
        self.unbound_after = max([self.unbound_after, *(r[0] for r in rows)])

    def _due(self, session: Session, alarm: Alarm, now_ms: int) -> tuple[Site | None, list[Due]]:
        site = site_of(session, alarm, self.settings)
        if site is None or not site.people:
            if alarm.id not in self.nobody:
                self.nobody.add(alarm.id)
                log.warning("alarm %d (%s from %s): nobody to notify (device not bound to a "
                            "household with contacts)", alarm.id, alarm.type, alarm.device_id)
            return None, []
        rows = session.scalars(select(Notification).where(Notification.alarm_id == alarm.id))
        tried = [Tried(r.step, r.channel, r.attempt, r.status, r.at_ms, r.done_ms) for r in rows]
        reach = [[c for c, n in self.notifiers.items() if _reach(n, p.phone, p.email)]
                 for p in site.people]
        acked = alarm.state != "received"
        if finished(reach, acked, tried, self.policy):
            self.settled.add(alarm.id)
            return site, []
        return site, due(reach, acked, tried, now_ms, self.policy)

    def _claim_alarm(self, session: Session, alarm: Alarm, now_ms: int) -> list[Claim]:
        site, dues = self._due(session, alarm, now_ms)
        claims = []
        for d in dues:
            assert site is not None
            msg = message(alarm, site, d.step, d.channel)
            notifier = self.notifiers[d.channel]
            row = Notification(alarm_id=alarm.id, step=d.step, role=msg.role, name=msg.name,
                               channel=d.channel, target=notifier.address(msg),
                               attempt=d.attempt, status="sending", at_ms=now_ms)
            session.add(row)
            session.flush()
            claims.append(Claim(row.id, msg, notifier))
        return claims

    def _send(self, claim: Claim) -> None:
        if self.stop.is_set():  # left "sending": the next start retries it
            return
        error: str | None = None
        try:
            claim.notifier.send(claim.msg)
        except DeliveryFailed as exc:
            error = str(exc)
            log.warning("notification %d (alarm %d step %d) failed: %s", claim.row_id,
                        claim.msg.alarm_id, claim.msg.step, exc)
        with self.sessions() as session:
            begin_write(session)
            session.execute(update(Notification).where(Notification.id == claim.row_id).values(
                status="failed" if error else "sent", error=error, done_ms=_now_ms()))
            session.commit()

    async def run(self) -> None:
        """Until `stop` is set: recover, then tick every notify_poll_s."""
        await asyncio.to_thread(self.recover)
        while not self.stop.is_set():
            try:
                await asyncio.to_thread(self.tick)
            except Exception:  # the task must outlive a bad round; it is logged
                log.exception("notification round failed; trying again")
            self.rounds += 1
            await self._pause(self.settings.notify_poll_s)

    async def _pause(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.stop.is_set() and time.monotonic() < end:
            await asyncio.sleep(min(0.05, seconds))


def _reach(notifier: Notifier, phone: str, email: str) -> bool:
    probe = Message("", 0, "", "", "", "", 0, "", "", phone, email, "")
    return bool(notifier.address(probe))

"""Action plans: per alarm type a checklist of steps (call the household,
call contact 1, notify the grid worker, call 119 if confirmed ...), each
step recorded on an alarm with its outcome, time and operator.

A type's plan is its `action_plans` row when a supervisor edited it, else
the shipped default (plan_defaults.py).  Recording a step is a workflow
act on the alarm: it needs the alarm taken (not `received`) and open,
respects and touches the claim (claims.py), and adds an `alarm_audit` row
(action `step`, `outcome` = the step's outcome) that reaches every desk as
a live transition, with an `alarm_steps` row beside it naming the step.
A step may be recorded more than once (no answer, then done); the last
record is its outcome.  Steps with no record are "skipped": resolving
warns about them (the desk asks to confirm), it does not refuse.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard import authaudit, claims, labels
from dashboard.db import begin_write
from dashboard.models import OPEN_STATES, ActionPlan, Alarm, AlarmAudit, AlarmStep, User
from dashboard.plan_defaults import default_steps
from dashboard.workflow import AlarmNotFound

STEP_OUTCOMES = ("done", "no_answer", "not_needed", "failed")
MAX_STEPS = 12
MAX_TEXT = 200
MAX_NOTE = 2000
KEY = re.compile(r"^[a-z0-9_]{1,32}$")


class PlanError(ValueError):
    """A plan or a step record that cannot be taken: says what is wrong."""


class NotTaken(Exception):
    """The alarm is not in a state where plan steps are recorded."""

    def __init__(self, alarm_id: int, state: str) -> None:
        why = "take it first (ack)" if state == "received" else "it is closed"
        super().__init__(f"alarm {alarm_id} is {state}: no plan step is recorded; {why}")
        self.alarm_id, self.state = alarm_id, state


@dataclass(frozen=True)
class Plan:
    alarm_type: str
    steps: list[dict[str, str]]
    custom: bool
    updated_by: str | None = None
    updated_ms: int | None = None

    def public(self) -> dict[str, Any]:
        return {"type": self.alarm_type, "steps": self.steps, "custom": self.custom,
                "updated_by": self.updated_by, "updated_ms": self.updated_ms}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def plan_of(session: Session, alarm_type: str) -> Plan:
    row = session.get(ActionPlan, alarm_type)
    if row is None:
        return Plan(alarm_type, default_steps(alarm_type), custom=False)
    return Plan(alarm_type, list(row.steps), True, row.updated_by, row.updated_ms)


def all_plans(session: Session) -> list[Plan]:
    """Every alarm type's plan, in the catalogue's order."""
    rows = {r.alarm_type: r for r in session.scalars(select(ActionPlan))}
    return [Plan(t, list(rows[t].steps), True, rows[t].updated_by, rows[t].updated_ms)
            if t in rows else Plan(t, default_steps(t), custom=False)
            for t in labels.ALARM_TYPES]


def _known_type(alarm_type: str) -> None:
    if alarm_type not in labels.ALARM_TYPES:
        raise PlanError(f"no alarm type {alarm_type!r}; one of {', '.join(labels.ALARM_TYPES)}")


def checked_steps(steps: list[dict[str, str]]) -> list[dict[str, str]]:
    """Steps as stored: each with a key (made from its place when missing)
    and its words in both languages; PlanError naming the first bad one."""
    if not 1 <= len(steps) <= MAX_STEPS:
        raise PlanError(f"a plan has 1 to {MAX_STEPS} steps, not {len(steps)}")
    out: list[dict[str, str]] = []
    for i, step in enumerate(steps, 1):
        key = (step.get("key") or f"step_{i}").strip()
        if not KEY.match(key):
            raise PlanError(f"step {i}: key {key!r} is not 1-32 of a-z, 0-9, _")
        if key in {s["key"] for s in out}:
            raise PlanError(f"step {i}: key {key!r} is used twice")
        words = {lang: (step.get(lang) or "").strip() for lang in labels.LANGS}
        for lang, text in words.items():
            if not text or len(text) > MAX_TEXT:
                raise PlanError(f"step {i}: its {lang} text must be 1-{MAX_TEXT} characters")
        out.append({"key": key, **words})
    return out


def save(session: Session, alarm_type: str, steps: list[dict[str, str]], user: User,
         address: str = "") -> Plan:
    """Replace the type's plan (the caller commits); audited (plan_changed)."""
    _known_type(alarm_type)
    stored = checked_steps(steps)
    begin_write(session)
    row = session.get(ActionPlan, alarm_type)
    now = _now_ms()
    if row is None:
        session.add(ActionPlan(alarm_type=alarm_type, steps=stored, updated_ms=now,
                               updated_by=user.username))
    else:
        row.steps, row.updated_ms, row.updated_by = stored, now, user.username
    authaudit.record(session, authaudit.Action.PLAN_CHANGED, alarm_type, user.username,
                     address, " / ".join(s["key"] for s in stored))
    session.flush()
    return plan_of(session, alarm_type)


def reset(session: Session, alarm_type: str, user: User, address: str = "") -> Plan:
    """Back to the shipped plan (the caller commits); audited (plan_reset)."""
    _known_type(alarm_type)
    begin_write(session)
    row = session.get(ActionPlan, alarm_type)
    if row is not None:
        session.delete(row)
    authaudit.record(session, authaudit.Action.PLAN_RESET, alarm_type, user.username, address)
    session.flush()
    return plan_of(session, alarm_type)


def record(session: Session, alarm_id: int, step: str, outcome: str, user: User, *,
           note: str = "", idle_ms: int = 2**62,
           released: list[tuple[Alarm, AlarmAudit]] | None = None,
           ) -> tuple[Alarm, AlarmAudit]:
    """Record a step's outcome on the alarm (the caller commits and
    publishes); AlarmNotFound, NotTaken, PlanError, claims.ClaimHeld."""
    if outcome not in STEP_OUTCOMES:
        raise PlanError(f"outcome {outcome!r}: one of {', '.join(STEP_OUTCOMES)}")
    begin_write(session)
    now = _now_ms()
    alarm = session.scalar(select(Alarm).where(Alarm.id == alarm_id).with_for_update()
                           .execution_options(populate_existing=True))
    if alarm is None:
        raise AlarmNotFound(alarm_id)
    if alarm.state not in OPEN_STATES or alarm.state == "received":
        raise NotTaken(alarm_id, alarm.state)
    found = next((s for s in plan_of(session, alarm.type).steps if s["key"] == step), None)
    if found is None:
        raise PlanError(f"the {alarm.type} plan has no step {step!r}")
    claims.take(session, alarm_id, user, idle_ms, now, [] if released is None else released)
    session.refresh(alarm)
    audit = AlarmAudit(alarm_id=alarm.id, at_ms=now, user_id=user.id, username=user.username,
                       action="step", from_state=alarm.state, to_state=alarm.state,
                       outcome=outcome, dispatched_to=None, note=note[:MAX_NOTE],
                       claimed_by=alarm.claimed_by)
    session.add(audit)
    session.flush()
    session.add(AlarmStep(alarm_id=alarm.id, audit_id=audit.id, step=step,
                          label={lang: found[lang] for lang in labels.LANGS}, outcome=outcome,
                          at_ms=now, username=user.username, note=note[:MAX_NOTE]))
    session.flush()
    return alarm, audit


def progress(session: Session, alarm: Alarm) -> dict[str, Any]:
    """The alarm's plan with what was recorded on each step (oldest first),
    steps recorded that the plan no longer has after it, and the keys of
    the plan's steps nobody recorded (`skipped`)."""
    records = list(session.scalars(select(AlarmStep).where(AlarmStep.alarm_id == alarm.id)
                                   .order_by(AlarmStep.id)))
    plan = plan_of(session, alarm.type)
    steps: dict[str, dict[str, Any]] = {
        s["key"]: {"key": s["key"], "label": {lang: s[lang] for lang in labels.LANGS},
                   "in_plan": True, "records": []} for s in plan.steps}
    for r in records:
        entry = steps.setdefault(r.step, {"key": r.step, "label": r.label, "in_plan": False,
                                          "records": []})
        entry["records"].append({"outcome": r.outcome, "at_ms": r.at_ms,
                                 "username": r.username, "note": r.note,
                                 "audit_id": r.audit_id})
    return {"type": alarm.type, "custom": plan.custom, "steps": list(steps.values()),
            "skipped": [k for k, s in steps.items() if s["in_plan"] and not s["records"]]}

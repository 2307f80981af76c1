"""Action plans (plans.py): every alarm type's plan, editing one
(plan.manage), an alarm's plan with the steps recorded on it, recording a
step (pushed to every desk like a workflow action), and the /plans page."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Request, status
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from dashboard import claims, labels, plan_defaults, plans, workflow
from dashboard.api.auth import ViewerDep, require
from dashboard.api.deps import HubDep, SessionDep, SettingsDep
from dashboard.api.routes.alarms import CONFLICT, AlarmId, held
from dashboard.api.routes.pages import TEMPLATES, lang_of
from dashboard.api.routes.registry import page_boot
from dashboard.models import Alarm, AlarmAudit, User
from dashboard.roles import allowed

log = logging.getLogger("homeguard.centre.plans")

router = APIRouter(tags=["plans"])
pages = APIRouter(include_in_schema=False)

PlanManager = Annotated[User, Depends(require("plan.manage"))]
StepUser = Annotated[User, Depends(require("alarm.ack"))]
AlarmType = Annotated[str, Path(max_length=32)]


class StepText(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    key: str | None = Field(default=None, max_length=32)
    zh: str = Field(alias="zh-CN", max_length=plans.MAX_TEXT)
    en: str = Field(max_length=plans.MAX_TEXT)


class PlanBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: list[StepText] = Field(max_length=plans.MAX_STEPS)


class StepBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    step: str = Field(max_length=32)
    outcome: Literal["done", "no_answer", "not_needed", "failed"]
    note: str = Field(default="", max_length=plans.MAX_NOTE)


def _address(request: Request) -> str:
    return request.client.host if request.client else ""


@router.get("/plans")
def list_plans(session: SessionDep, _user: ViewerDep) -> list[dict[str, Any]]:
    """Every alarm type's plan (a supervisor's, else the shipped default)."""
    return [p.public() for p in plans.all_plans(session)]


@router.put("/plans/{alarm_type}")
def put_plan(alarm_type: AlarmType, body: PlanBody, request: Request, session: SessionDep,
             user: PlanManager) -> dict[str, Any]:
    """Replace the type's steps (1-12, each in zh-CN and en); audited."""
    session.commit()
    steps = [{"key": s.key or "", "zh-CN": s.zh, "en": s.en} for s in body.steps]
    try:
        plan = plans.save(session, alarm_type, steps, user, _address(request))
    except plans.PlanError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    session.commit()
    log.info("plan of %s changed by %s", alarm_type, user.username)
    return plan.public()


@router.delete("/plans/{alarm_type}")
def reset_plan(alarm_type: AlarmType, request: Request, session: SessionDep,
               user: PlanManager) -> dict[str, Any]:
    """Back to the shipped plan; audited."""
    session.commit()
    try:
        plan = plans.reset(session, alarm_type, user, _address(request))
    except plans.PlanError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    session.commit()
    return plan.public()


@router.get("/alarms/{alarm_id}/plan", responses={404: CONFLICT[404]})
def alarm_plan(alarm_id: AlarmId, session: SessionDep, _user: ViewerDep) -> dict[str, Any]:
    """The alarm's plan, each step with what was recorded on it, and the
    plan's steps nobody recorded (`skipped`)."""
    alarm = session.get(Alarm, alarm_id)
    if alarm is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alarm {alarm_id}")
    return plans.progress(session, alarm)


@router.post("/alarms/{alarm_id}/steps", responses=CONFLICT, response_model=None)
def record_step(alarm_id: AlarmId, body: StepBody, session: SessionDep, hub: HubDep,
                settings: SettingsDep, user: StepUser) -> dict[str, Any] | JSONResponse:
    """Record a plan step's outcome (done, no_answer, not_needed, failed) on
    the alarm the user holds (or takes); 409 before it is taken, once it is
    closed, or while another operator holds it (`claimed_by`)."""
    session.commit()
    released: list[tuple[Alarm, AlarmAudit]] = []
    try:
        alarm, audit = plans.record(session, alarm_id, body.step, body.outcome, user,
                                    note=body.note, released=released,
                                    idle_ms=int(settings.claim_idle_s * 1000))
    except workflow.AlarmNotFound as exc:
        session.rollback()
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except plans.NotTaken as exc:
        session.rollback()
        return JSONResponse({"detail": str(exc), "state": exc.state},
                            status_code=status.HTTP_409_CONFLICT)
    except plans.PlanError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    except claims.ClaimHeld as exc:
        session.rollback()
        return held(exc)
    claims.commit_and_publish(session, hub, [*released, (alarm, audit)])
    log.info("step %s %s on alarm %d by %s", body.step, body.outcome, alarm_id, user.username)
    return plans.progress(session, alarm)


@pages.get("/plans", response_class=HTMLResponse)
def plans_page(request: Request, session: SessionDep, settings: SettingsDep,
               user: ViewerDep) -> HTMLResponse:
    ctx = labels.page_context(lang_of(request))
    boot = page_boot(request, settings, user, ctx)
    boot["can_manage"] = allowed(user.role, "plan.manage")
    boot["plans"] = [p.public() for p in plans.all_plans(session)]
    boot["defaults"] = {t: plan_defaults.default_steps(t) for t in labels.ALARM_TYPES}
    ctx.update(boot=boot, user=user, csrf=boot["csrf"])
    return TEMPLATES.TemplateResponse(request, "plans.html", ctx)

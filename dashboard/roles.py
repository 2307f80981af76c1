"""Roles and what each may do: one table, checked by every route.

operator    watches the desk and works alarms through to resolution
supervisor  what an operator does, and reassigns alarms others hold
technician  installs and tests devices: sees alarms, may acknowledge and
            verify (marking a test press as `test`), never dispatches or resolves
admin       manages users, and may do everything at the desk
grid_worker the grid worker (网格员) on their phone: sees and works only the
            tasks dispatched to them (task.work, dashboard/worker.py); no
            desk page, no desk action, no registry

Registry: all read it (registry.view); technicians, supervisors and admins
change it (registry.manage); only admins read device keys (registry.keys).
Action plans: supervisors and admins edit them (plan.manage).
"""

from __future__ import annotations

ROLES = ("operator", "supervisor", "technician", "admin", "grid_worker")

# everyone at the centre: the grid worker is not (they see their own tasks only)
_ALL = frozenset({"operator", "supervisor", "technician", "admin"})
_DESK = frozenset({"operator", "supervisor", "admin"})

PERMISSIONS: dict[str, frozenset[str]] = {
    "alarm.view": _ALL,
    "alarm.ack": _ALL,
    "alarm.verify": _ALL,
    "alarm.dispatch": _DESK,
    "alarm.resolve": _DESK,
    # hand an alarm another operator holds to someone else (claims.py)
    "alarm.reassign": frozenset({"supervisor", "admin"}),
    "user.manage": frozenset({"admin"}),
    # the registry: everyone reads it; technicians register what they install;
    # device keys are read back by gateways' tokens and admins only
    "registry.view": _ALL,
    "registry.manage": frozenset({"technician", "supervisor", "admin"}),
    "registry.keys": frozenset({"admin"}),
    # electrical hazards: all see them; any role records an inspection's result
    "hazard.view": _ALL,
    "hazard.rectify": _ALL,
    # action plans (plans.py): everyone reads them and records steps on the
    # alarms they work (alarm.ack); supervisors and admins edit them
    "plan.manage": frozenset({"supervisor", "admin"}),
    # the worker's phone (/worker): the tasks dispatched to them, and their
    # steps on each (accept, arrive, report)
    "task.work": frozenset({"grid_worker"}),
}

# where each role lands after logging in (a role not named: the desk)
HOME = {"grid_worker": "/worker"}


def allowed(role: str, permission: str) -> bool:
    return role in PERMISSIONS[permission]


def permissions_of(role: str) -> list[str]:
    return sorted(p for p, roles in PERMISSIONS.items() if role in roles)


def roles_with(permission: str) -> list[str]:
    return [r for r in ROLES if r in PERMISSIONS[permission]]

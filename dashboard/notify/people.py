"""Who is told about an alarm, in order: the household's bound contacts by
rank (the household through the device's registry row), then the grid
worker of the household's grid cell, then the supervisor from settings."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from dashboard.models import Alarm, Device, GridCell, Household
from dashboard.notify.channels import Message
from dashboard.settings import Settings


@dataclass(frozen=True)
class Person:
    role: str  # contact | grid_worker | supervisor
    name: str
    phone: str
    email: str


@dataclass(frozen=True)
class Site:
    household: str
    address: str
    people: list[Person]


def site_of(session: Session, alarm: Alarm, settings: Settings) -> Site | None:
    """The alarm's household and whom to tell; None for a device that is
    not registered or not bound to a household (nobody to tell)."""
    device = session.get(Device, alarm.device_id)
    if device is None or device.household_id is None:
        return None
    home = session.get(Household, device.household_id)
    if home is None:
        return None
    people = [Person("contact", c.name, c.phone, c.email or "") for c in home.contacts]
    cell = session.get(GridCell, home.grid_cell_id) if home.grid_cell_id else None
    if cell is not None and cell.worker_phone:
        people.append(Person("grid_worker", cell.worker_name, cell.worker_phone, ""))
    if settings.notify_supervisor_phone or settings.notify_supervisor_email:
        people.append(Person("supervisor", settings.notify_supervisor_name,
                             settings.notify_supervisor_phone or "",
                             settings.notify_supervisor_email or ""))
    return Site(home.code, home.address, people)


def message(alarm: Alarm, site: Site, step: int, channel: str) -> Message:
    who = site.people[step]
    text = (f"Homeguard {alarm.type} alarm #{alarm.id} at {site.address} "
            f"(household {site.household}, device {alarm.device_id}).")
    if step > 0:
        text += " Nobody before you answered in time: please respond."
    return Message(
        key=f"{alarm.id}-{step}-{channel}", alarm_id=alarm.id, alarm_type=alarm.type,
        device=alarm.device_id, household=site.household, address=site.address, step=step,
        role=who.role, name=who.name, phone=who.phone, email=who.email, text=text)

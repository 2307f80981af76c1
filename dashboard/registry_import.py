"""Importing a whole registry file (docs/registry-import.md): grid cells,
households, their contacts and devices, all or nothing.

`import_file` reads the file (registry_csv.py: CSV, or an .xlsx
workbook's first sheet) before it takes the store's write lock; `run`
checks the rows against each other and the registry (codes named twice, a
household's grid cell, a contact's or device's household, contacts per
household), then writes every row through the registry's own functions in the caller's
transaction.  Any problem, or a dry run, and the caller rolls the
transaction back: a file is imported whole or not at all.  An entry whose
code exists is updated to the row (the file is the truth for it); a
household's contacts are replaced only when the file has contact rows for
it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard import authaudit, registry
from dashboard.db import begin_write
from dashboard.models import Device, GridCell, Household
from dashboard.registry_csv import Parsed, Problem, Row, parse
from dashboard.registry_schemas import (
    ContactIn,
    DeviceCreate,
    DeviceUpdate,
    GridCellCreate,
    GridCellUpdate,
    HouseholdCreate,
    HouseholdUpdate,
)

MAX_CONTACTS = 10
# kind -> the report's name for it, in the order rows are written
PLURAL = {"grid_cell": "grid_cells", "household": "households", "contact": "contacts",
          "device": "devices"}


class Entry(BaseModel):
    row: int
    kind: str
    key: str = Field(description="the code, device id, or a contact's household")
    action: Literal["create", "update"]


class Count(BaseModel):
    create: int = 0
    update: int = 0


class Report(BaseModel):
    """What an import did, or would do (dry_run), or why it did nothing."""

    ok: bool
    dry_run: bool
    written: bool = Field(description="true only when the rows are in the store now")
    encoding: str = Field(description="how the file was read: utf-8-sig, utf-8 or gb18030 "
                          "for CSV, xlsx for a workbook")
    sheet: str = Field("", description="the worksheet read (a workbook's first); empty for "
                       "CSV")
    rows: int
    counts: dict[str, Count]
    entries: list[Entry]
    errors: list[Problem]


def import_file(session: Session, data: bytes, dry_run: bool, actor: str,
                address: str = "", media_type: str = "", name: str = "") -> Report:
    """Import (or try, dry_run) the file in one transaction holding the write
    lock; committed, with an auth audit row, only when every row was good.
    media_type and name, as the sender gave them, tell a workbook that is
    not one (registry_csv.parse)."""
    parsed = parse(data, media_type, name)  # a large workbook takes seconds: not under the lock
    session.commit()  # end any read: the import begins holding the lock
    begin_write(session)
    try:
        report = run(session, parsed, dry_run)
        if report.written:
            authaudit.record(session, authaudit.Action.REGISTRY_IMPORTED, "registry", actor,
                             address, summary(report))
            session.commit()
        else:
            session.rollback()
    except BaseException:
        session.rollback()
        raise
    return report


def summary(report: Report) -> str:
    """'grid_cells 1 new 0 changed, households ...' for the audit and the CLI."""
    return ", ".join(f"{name} {c.create} new {c.update} changed"
                     for name, c in report.counts.items())


def run(session: Session, parsed: Parsed, dry_run: bool) -> Report:
    """Check and write the file's rows in the session's transaction.  The
    caller commits when the report is ok and not a dry run, else rolls back."""
    errors = parsed.problems + cross_check(session, parsed.rows)
    entries: list[Entry] = []
    if not errors:
        try:
            entries = write(session, parsed.rows)
        except registry.RegistryError as exc:  # checked above; a racing change
            errors = [Problem(row=0, column="", message=str(exc))]
    return _report(parsed, errors, entries, dry_run)


def _report(parsed: Parsed, errors: list[Problem], entries: list[Entry],
            dry_run: bool) -> Report:
    counts = {name: Count() for name in PLURAL.values()}
    for e in entries:
        count = counts[PLURAL[e.kind]]
        setattr(count, e.action, getattr(count, e.action) + 1)
    errors.sort(key=lambda p: (p.row, p.column))
    return Report(ok=not errors, dry_run=dry_run, written=not errors and not dry_run,
                  encoding=parsed.encoding, sheet=parsed.sheet, rows=len(parsed.rows),
                  counts=counts if not errors else {n: Count() for n in PLURAL.values()},
                  entries=entries if not errors else [], errors=errors)


# --- checks across rows ---


def cross_check(session: Session, rows: list[Row]) -> list[Problem]:
    known = {
        "grid_cell": set(session.scalars(select(GridCell.code))),
        "household": set(session.scalars(select(Household.code))),
    }
    problems = _duplicates(rows)
    in_file = {kind: {r.key for r in rows if r.kind == kind} for kind in known}
    for r in rows:
        ref = _reference(r)
        if ref is not None and ref[1] not in known[ref[0]] | in_file[ref[0]]:
            problems.append(Problem(row=r.number, column=ref[0], message=f"no {ref[0]} "
                                    f"{ref[1]!r}, in the registry or in this file"))
    return problems + _contact_problems(rows)


def _reference(r: Row) -> tuple[str, str] | None:
    """(kind, code) the row points at, if any."""
    if r.kind == "household" and r.entry.grid_cell:
        return "grid_cell", r.entry.grid_cell
    if r.kind in ("contact", "device") and r.entry.household:
        return "household", r.entry.household
    return None


def _duplicates(rows: list[Row]) -> list[Problem]:
    first: dict[tuple[str, str], int] = {}
    out = []
    for r in rows:
        if r.kind == "contact":
            continue
        seen = first.setdefault((r.kind, r.key), r.number)
        if seen != r.number:
            column = "device_id" if r.kind == "device" else "code"
            out.append(Problem(row=r.number, column=column,
                               message=f"{r.key!r} is on row {seen} already"))
    return out


def _contact_problems(rows: list[Row]) -> list[Problem]:
    out = []
    for contacts in _contacts_by_household(rows).values():
        if len(contacts) > MAX_CONTACTS:
            out.append(Problem(row=contacts[MAX_CONTACTS].number, column="household",
                               message=f"more than {MAX_CONTACTS} contacts for "
                                       f"{contacts[0].key!r}"))
        ranks: dict[int, int] = {}
        for i, r in enumerate(contacts):
            rank = r.entry.rank or i + 1
            if rank in ranks:
                out.append(Problem(row=r.number, column="rank", message=f"rank {rank} is "
                                   f"taken by row {ranks[rank]} of the same household"))
            ranks.setdefault(rank, r.number)
    return out


def _contacts_by_household(rows: list[Row]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        if r.kind == "contact":
            out[r.key].append(r)
    return out


# --- writing ---


def write(session: Session, rows: list[Row]) -> list[Entry]:
    """Every row through the registry's functions: grid cells first, then
    households (with their contacts), then devices."""
    contacts = _contacts_by_household(rows)
    entries: list[Entry] = []
    for r in rows:
        if r.kind == "grid_cell":
            entries.append(_write_cell(session, r))
    for r in rows:
        if r.kind == "household":
            entries += _write_household(session, r, contacts.pop(r.key, []))
    for code, group in contacts.items():  # contacts of households registered before
        registry.update_household(session, code, HouseholdUpdate(contacts=_people(group)))
        entries += _entries(group, "create")
    for r in rows:
        if r.kind == "device":
            entries.append(_write_device(session, r))
    return sorted(entries, key=lambda e: e.row)


def _entries(rows: list[Row], action: Literal["create", "update"]) -> list[Entry]:
    return [Entry(row=r.number, kind=r.kind, key=r.key, action=action) for r in rows]


def _people(group: list[Row]) -> list[ContactIn]:
    return [ContactIn(**c.entry.model_dump(exclude={"household"})) for c in group]


def _write_cell(session: Session, r: Row) -> Entry:
    body: GridCellCreate = r.entry
    if session.scalar(select(GridCell.id).where(GridCell.code == body.code)) is None:
        registry.add_cell(session, body)
        return _entries([r], "create")[0]
    registry.update_cell(session, body.code, GridCellUpdate(**body.model_dump()))
    return _entries([r], "update")[0]


def _write_household(session: Session, r: Row, group: list[Row]) -> list[Entry]:
    """The household, and its contacts when the file has any for it (they
    replace the ones it had)."""
    body: HouseholdCreate = r.entry
    fields = body.model_dump(exclude={"contacts"})
    if session.scalar(select(Household.id).where(Household.code == body.code)) is None:
        registry.add_household(session, HouseholdCreate(**fields, contacts=_people(group)))
        return _entries([r, *group], "create")
    fields["grid_cell"] = body.grid_cell or ""  # "": none, as the row says
    registry.update_household(session, body.code, HouseholdUpdate(
        **fields, contacts=_people(group) if group else None))
    return _entries([r], "update") + _entries(group, "create")


def _write_device(session: Session, r: Row) -> Entry:
    body: DeviceCreate = r.entry
    if session.get(Device, body.device_id) is None:
        registry.add_device(session, body)
        return _entries([r], "create")[0]
    fields = body.model_dump(exclude={"device_id"})
    fields["household"] = body.household or ""
    registry.update_device(session, body.device_id, DeviceUpdate(**fields))
    return _entries([r], "update")[0]

"""Reading a registry import file (docs/registry-import.md): CSV bytes, or
an .xlsx workbook's first sheet (registry_xlsx.py) -> rows, each a
validated registry model with its spreadsheet row number, and a list of
problems (row, column, what is wrong).

One file holds every kind of entry: the `kind` column says which
(grid_cell, household, contact, device) and a row fills only its kind's
columns.  Row numbers are as a spreadsheet shows them: the header is row 1.
Nothing here touches the store; dashboard/registry_import.py checks the
rows against each other and the registry, and writes them.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from dashboard import registry_xlsx
from dashboard.registry_schemas import ContactIn, DeviceCreate, GridCellCreate, HouseholdCreate

MAX_BYTES = 5_000_000
MAX_ROWS = 20_000
# what a centre's spreadsheet may be saved as: UTF-8 (with Excel's BOM or
# without), else the Chinese Windows code page Excel uses for "CSV"
ENCODINGS = ("utf-8-sig", "gb18030")

# kind -> its columns (the household and device a contact or device belongs
# to are the `household` column, by code)
KIND_COLUMNS: dict[str, tuple[str, ...]] = {
    "grid_cell": ("code", "name", "community", "worker_name", "worker_phone", "polygon"),
    "household": ("code", "address", "compound", "community", "grid_cell", "note",
                  "latitude", "longitude"),
    "contact": ("household", "name", "phone", "email", "relation", "rank"),
    "device": ("device_id", "type", "board", "firmware", "household", "key_ref",
               "latitude", "longitude"),
}
COLUMNS = ("kind", *dict.fromkeys(c for cols in KIND_COLUMNS.values() for c in cols))


class ContactRow(ContactIn):
    household: str


MODELS: dict[str, type[BaseModel]] = {
    "grid_cell": GridCellCreate, "household": HouseholdCreate, "contact": ContactRow,
    "device": DeviceCreate,
}


class Problem(BaseModel):
    """One thing wrong with the file; row 0 is the file as a whole."""

    row: int
    column: str
    message: str


@dataclass(frozen=True)
class Row:
    number: int
    kind: str
    entry: Any  # the kind's model: GridCellCreate, HouseholdCreate, ContactRow, DeviceCreate

    @property
    def key(self) -> str:
        return str(self.entry.device_id if self.kind == "device"
                   else self.entry.household if self.kind == "contact" else self.entry.code)


@dataclass
class Parsed:
    rows: list[Row]
    problems: list[Problem]
    encoding: str  # "xlsx" for a workbook
    sheet: str = ""  # the worksheet read, for a workbook


def decode(data: bytes) -> tuple[str, str]:
    """The text and the encoding it was read in; ValueError if none fits."""
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise ValueError("the file is neither UTF-8 nor GB18030 text: save it as CSV (UTF-8)")


def parse(data: bytes, media_type: str = "", name: str = "") -> Parsed:
    """Every row of the file, validated alone; problems of all rows at once.
    A workbook is told by its first bytes, else by the media type or name
    the sender gave (so a file named .xlsx that is not one says so)."""
    if registry_xlsx.is_workbook(data, media_type, name):
        try:
            sheet = registry_xlsx.read(data, MAX_ROWS)
        except registry_xlsx.WorkbookError as exc:
            return Parsed([], [Problem(row=0, column="", message=str(exc))], "xlsx")
        return check(iter(sheet.rows), "xlsx", sheet.refused, sheet.title)
    try:
        text, encoding = decode(data)
    except ValueError as exc:
        return Parsed([], [Problem(row=0, column="", message=str(exc))], "")
    return check(enumerate(csv.reader(io.StringIO(text, newline="")), start=1), encoding)


def check(records: Iterator[tuple[int, list[str]]], encoding: str,
          refused: Mapping[int, dict[int, str]] | None = None, sheet: str = "") -> Parsed:
    """The rows below the first record (the header), each numbered as the
    spreadsheet shows it; `refused`, row -> {column index: why}, are cells
    the reader could not take as text."""
    refused = refused or {}
    header = [h.strip().lower() for h in next(records, (1, []))[1]]
    problems = _header_problems(header)
    if problems:
        return Parsed([], problems, encoding, sheet)
    rows: list[Row] = []
    for number, cells in records:
        if number - 1 > MAX_ROWS:
            problems.append(Problem(row=number, column="",
                                    message=f"more than {MAX_ROWS} rows: split the file"))
            break
        bad = {header[i]: why for i, why in refused.get(number, {}).items() if i < len(header)}
        row = _row(number, header, cells, bad, problems)
        if row is not None:
            rows.append(row)
    if not rows and not problems:
        problems.append(Problem(row=0, column="", message="no rows below the header"))
    return Parsed(rows, problems, encoding, sheet)


def _header_problems(header: list[str]) -> list[Problem]:
    if not any(header):
        return [Problem(row=1, column="", message="the file is empty: the first row must "
                        "name the columns, kind first")]
    out = [Problem(row=1, column=h, message=f"unknown column (the columns are: "
                   f"{', '.join(COLUMNS)})") for h in header if h not in COLUMNS]
    out += [Problem(row=1, column=h, message="the column appears twice")
            for h in dict.fromkeys(h for h in header if header.count(h) > 1)]
    if "kind" not in header:
        out.append(Problem(row=1, column="kind", message="the kind column is missing"))
    return out


def _row(number: int, header: list[str], cells: list[str], bad: dict[str, str],
         problems: list[Problem]) -> Row | None:
    """The row's model, or None (a blank or comment row, or problems added)."""
    at = header.index("kind")
    if len(cells) > at and cells[at].strip().startswith("#"):
        return None  # a comment
    if len(cells) > len(header):
        problems.append(Problem(row=number, column="", message=f"{len(cells)} cells, but the "
                                f"header names {len(header)} columns"))
        return None
    values = {h: v.strip() for h, v in zip(header, cells, strict=False) if v.strip()}
    kind = values.pop("kind", "")
    if not kind and not values:
        return None  # a blank line
    if "kind" in bad:
        problems.append(Problem(row=number, column="kind", message=bad["kind"]))
        return None
    if kind not in KIND_COLUMNS:
        problems.append(Problem(row=number, column="kind", message=f"{kind!r} is not one of "
                                f"{', '.join(KIND_COLUMNS)}"))
        return None
    found = [Problem(row=number, column=c, message=f"not a column of a {kind} row (leave it "
                     "empty)") for c in values if c not in KIND_COLUMNS[kind]]
    found += [Problem(row=number, column=c, message=why) for c, why in bad.items()
              if c in KIND_COLUMNS[kind]]
    fields: dict[str, Any] = {c: v for c, v in values.items() if c not in bad}
    found += _convert(number, fields)
    if not found:
        try:
            return Row(number, kind, MODELS[kind].model_validate(fields))
        except ValidationError as exc:
            found = _problems(number, exc)
    problems.extend(found)
    return None


def _convert(number: int, fields: dict[str, Any]) -> list[Problem]:
    """Cells that are not plain text: rank (a whole number), polygon (JSON)."""
    out = []
    if "rank" in fields:
        try:
            fields["rank"] = int(fields["rank"])
        except ValueError:
            out.append(Problem(row=number, column="rank", message=f"{fields['rank']!r} is "
                               "not a whole number"))
    if "polygon" in fields:
        try:
            fields["polygon"] = json.loads(fields["polygon"])
        except ValueError as exc:
            out.append(Problem(row=number, column="polygon", message="not JSON (a list of "
                               f"[longitude, latitude] points): {exc}"))
    return out


def _problems(number: int, exc: ValidationError) -> list[Problem]:
    out = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        column = loc[0] if loc else ("latitude" if "latitude" in err["msg"] else "")
        where = f" (at {'/'.join(loc[1:])})" if len(loc) > 1 else ""
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            message = "required"
        out.append(Problem(row=number, column=column, message=message + where))
    return out

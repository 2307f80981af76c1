"""Reading a registry import file saved as an Excel workbook (.xlsx;
docs/registry-import.md): the first worksheet's rows as the text a CSV
file would have held, for registry_csv.py to check as it checks CSV rows.

The workbook is refused whole, with one message, before any row is read
when it is not a workbook, is password-protected (or an old .xls), or
would unpack past MAX_UNZIPPED bytes; while reading, when a row goes past
MAX_COLUMNS or the sheet past MAX_CELLS.  A cell that is not text or a
number (a date, a time, TRUE/FALSE, a formula error) is refused by row and
column, as a CSV cell in the wrong form is.
"""

from __future__ import annotations

import datetime
import io
import warnings
import zipfile
from dataclasses import dataclass, field
from typing import Any

ZIP_MAGIC = b"PK\x03\x04"
# an OLE compound file: what Excel 97-2003 (.xls) and a password-protected
# .xlsx (encrypted inside such a file) both are
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_UNZIPPED = 50_000_000  # the workbook's parts, unpacked, before any is parsed
MAX_COLUMNS = 64  # the import has 23 columns
MAX_CELLS = 1_500_000  # cells the sheet stores (styled empty ones too), a row's gaps counted


class WorkbookError(ValueError):
    """The file as a whole cannot be read as a workbook; the message says why."""


@dataclass
class Sheet:
    """The first worksheet: each row's cells as text, numbered as Excel
    shows them (the first is 1), and the cells refused, row -> {column
    index: what is wrong}."""

    title: str
    rows: list[tuple[int, list[str]]] = field(default_factory=list)
    refused: dict[int, dict[int, str]] = field(default_factory=dict)


def is_workbook(data: bytes, media_type: str = "", name: str = "") -> bool:
    """Whether the file is meant as a workbook: by its first bytes (a zip or
    an OLE file), else by what the sender called it."""
    if data.startswith((ZIP_MAGIC, OLE_MAGIC)):
        return True
    media_type = media_type.split(";")[0].strip().lower()
    return media_type in (MEDIA_TYPE, "application/vnd.ms-excel") or name.lower().endswith(
        (".xlsx", ".xlsm", ".xls"))


def read(data: bytes, max_rows: int) -> Sheet:
    """The first worksheet of the workbook, to row max_rows + 2 at most (the
    header, max_rows rows and one to show there are more); WorkbookError
    if it cannot be read or is too large."""
    if data.startswith(OLE_MAGIC):
        raise WorkbookError("the workbook is password-protected, or an Excel 97-2003 .xls "
                            "file: save it as .xlsx without a password, or as CSV")
    if not data.startswith(ZIP_MAGIC):
        raise WorkbookError("not an .xlsx workbook (an .xlsx file is a zip archive): save "
                            "it from Excel as .xlsx, or as CSV")
    _check_size(data)
    from openpyxl import load_workbook  # on first use: ~0.4 s the centre's start need not spend

    try:
        with warnings.catch_warnings():  # unsupported extensions etc.: the cells still read
            warnings.simplefilter("ignore")
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True,
                                 keep_links=False)
            try:
                if not book.worksheets:
                    raise WorkbookError("the workbook has no worksheet")
                return _sheet(book.worksheets[0], max_rows)
            finally:
                book.close()
    except WorkbookError:
        raise
    except Exception as exc:  # anything the parser meets in a broken file
        raise WorkbookError(f"the file cannot be read as an .xlsx workbook ({exc}): save "
                            "it again from Excel as .xlsx, or as CSV") from None


def _check_size(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as exc:
        raise WorkbookError(f"not an .xlsx workbook: a broken zip archive ({exc})") from None
    # the sizes the archive declares bound what zipfile will unpack (it stops
    # at each member's file_size), so a bomb is refused here, unparsed
    unpacked = sum(m.file_size for m in members)
    if unpacked > MAX_UNZIPPED:
        raise WorkbookError(f"the workbook unpacks to {unpacked:,} bytes, more than "
                            f"{MAX_UNZIPPED:,}: split it, or save it as CSV")
    if not any(m.filename == "xl/workbook.xml" for m in members):
        raise WorkbookError("a zip archive, but not an .xlsx workbook (no xl/workbook.xml; "
                            "an .ods or .docx?): save it from Excel as .xlsx, or as CSV")


def _sheet(ws: Any, max_rows: int) -> Sheet:
    sheet = Sheet(title=str(ws.title))
    ws.reset_dimensions()  # rows as stored: a declared A1:XFD1048576 pads nothing
    cells = 0
    for number, row in enumerate(ws.iter_rows(min_row=1), start=1):
        if number > max_rows + 2:
            break  # registry_csv.parse says the file has too many rows
        cells += len(row) or 1
        if cells > MAX_CELLS:
            raise WorkbookError(f"the sheet stores more than {MAX_CELLS:,} cells: split it")
        if len(row) > MAX_COLUMNS and any(c.value is not None for c in row[MAX_COLUMNS:]):
            raise WorkbookError(f"row {number} has a cell past column {MAX_COLUMNS}: the "
                                f"sheet may use the first {MAX_COLUMNS} columns only")
        texts = []
        for index, cell in enumerate(row[:MAX_COLUMNS]):
            text, refused = text_of(cell)
            if refused:
                sheet.refused.setdefault(number, {})[index] = refused
            texts.append(text)
        while texts and not texts[-1]:
            texts.pop()
        sheet.rows.append((number, texts))
    return sheet


def text_of(cell: Any) -> tuple[str, str]:
    """A cell's value as CSV text, and why it is refused ("" if it is not).
    Whole numbers lose the ".0" a float keeps (a phone typed as a number
    keeps its digits); a number format of zeros ("00000") keeps its
    leading zeros."""
    value = cell.value
    if value is None:
        return "", ""
    if isinstance(value, bool):
        return str(value).upper(), "a TRUE/FALSE cell: the column takes text or a number"
    if isinstance(value, datetime.datetime | datetime.date | datetime.time | datetime.timedelta):
        shown = _shown(value)
        return shown, (f"a date or time cell ({shown}): the column takes text or a number; "
                       "Excel may have turned what was typed into a date: format the column "
                       "as Text and type it again")
    if cell.data_type == "e":
        return str(value), f"a formula error ({value}): the column takes text or a number"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        text = str(value)
        number_format = str(cell.number_format or "")
        if number_format and set(number_format) == {"0"}:
            text = text.zfill(len(number_format))
        return text, ""
    return str(value), ""


def _shown(value: datetime.date | datetime.time | datetime.timedelta) -> str:
    if isinstance(value, datetime.datetime) and value.time() == datetime.time():
        return value.date().isoformat()  # a date: Excel stores it as midnight
    return str(value) if isinstance(value, datetime.timedelta) else value.isoformat()

"""Registry import (POST /api/v1/registry/import) and the registry's places
(households' and devices' coordinates, grid cells' polygons); TestClient in
process against a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

import csv
import datetime
import io
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dashboard import registry_xlsx
from dashboard.registry_csv import parse
from tests.test_centre_registry import (  # noqa: F401 - the fixtures
    CELL,
    REG,
    admin,
    app,
    as_user,
    household,
)

EXAMPLE = Path(__file__).parents[1] / "docs" / "registry-import.example.csv"
EXAMPLE_XLSX = EXAMPLE.with_suffix(".xlsx")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEADER = ("kind,code,name,community,compound,address,grid_cell,household,note,worker_name,"
          "worker_phone,phone,email,relation,rank,device_id,type,board,firmware,key_ref,"
          "latitude,longitude,polygon")


def csv_of(*rows: dict[str, str]) -> bytes:
    """A file in the documented columns, each row given by its non-empty cells."""
    columns = HEADER.split(",")
    lines = [HEADER] + [",".join(f'"{r.get(c, "")}"' if r.get(c) else "" for c in columns)
                        for r in rows]
    return ("\n".join(lines) + "\n").encode()


def workbook(*rows: list[Any], title: str = "社区") -> bytes:
    """An .xlsx file whose first sheet holds the rows (row 1 first), cells as given."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = title
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def typed(cell: str) -> Any:
    """A CSV cell as Excel keeps it when typed: digits become a number."""
    try:
        return int(cell) if cell.isdigit() else float(cell) if "." in cell else cell
    except ValueError:
        return cell


def example_workbook() -> bytes:
    """docs/registry-import.example.csv as a sheet typed in Excel (how
    docs/registry-import.example.xlsx was made)."""
    lines = list(csv.reader(io.StringIO(EXAMPLE.read_text("utf-8-sig"))))
    return workbook(lines[0], *([typed(c) or None for c in line] for line in lines[1:]))


def post(client: TestClient, data: bytes, dry_run: bool, media_type: str = "text/csv") -> Any:
    return client.post(f"{REG}/import", params={"dry_run": str(dry_run).lower()}, content=data,
                       headers={"Content-Type": media_type})


def registry_of(client: TestClient) -> dict[str, Any]:
    return {kind: client.get(f"{REG}/{kind}").json()
            for kind in ("grid-cells", "households", "devices")}


def test_the_example_file_dry_runs_then_imports_whole(admin: TestClient) -> None:  # noqa: F811
    data = EXAMPLE.read_bytes()
    r = post(admin, data, dry_run=True)
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["ok"], report["dry_run"], report["written"], report["rows"]) == (
        True, True, False, 10)
    assert {k: v["create"] for k, v in report["counts"].items()} == {
        "grid_cells": 2, "households": 2, "contacts": 3, "devices": 3}
    assert report["entries"][0] == {"row": 3, "kind": "grid_cell", "key": "G-01",
                                    "action": "create"}
    assert registry_of(admin) == {"grid-cells": [], "households": [], "devices": []}

    r = post(admin, data, dry_run=False)
    assert r.status_code == 200 and r.json()["written"], r.text
    got = registry_of(admin)
    assert [c["code"] for c in got["grid-cells"]] == ["G-01", "G-02"]
    assert got["grid-cells"][0]["polygon"] == [[121.47, 31.23], [121.476, 31.23],
                                              [121.476, 31.235], [121.47, 31.235]]
    h1 = got["households"][0]
    assert (h1["code"], h1["grid_cell"], h1["latitude"], h1["longitude"]) == (
        "H-0001", "G-01", 31.2321, 121.4731)
    assert [(c["name"], c["rank"], c["email"]) for c in h1["contacts"]] == [
        ("王五", 1, None), ("李四", 2, "li.si@example.com")]
    assert h1["devices"] == ["hg-b-0001", "hg-s-0001"]
    devices = {d["device_id"]: d for d in got["devices"]}
    assert (devices["hg-b-0001"]["latitude"], devices["hg-s-0001"]["latitude"]) == (
        31.2321, None)
    audit = admin.get("/api/v1/auth-audit").json()
    assert audit[0]["action"] == "registry_imported" and audit[0]["actor"] == "admin"
    assert "households 2 new 0 changed" in audit[0]["detail"]

    # the same file again changes the entries in place: nothing new, nothing doubled
    report = post(admin, data, dry_run=False).json()
    assert {k: (v["create"], v["update"]) for k, v in report["counts"].items()} == {
        "grid_cells": (0, 2), "households": (0, 2), "contacts": (3, 0), "devices": (0, 3)}
    assert registry_of(admin) == got


def test_a_file_with_problems_names_each_and_writes_nothing(admin: TestClient) -> None:  # noqa: F811
    data = csv_of(
        {"kind": "grid_cell", "code": "G-01", "name": "一网格", "community": "幸福里社区",
         "polygon": "[[121.47,31.23],[121.48,31.23]]"},                         # row 2
        {"kind": "household", "code": "H-0001", "address": "幸福路 8 号",
         "community": "幸福里社区", "grid_cell": "G-09", "latitude": "91"},       # row 3
        {"kind": "contact", "household": "H-0001", "name": "王五", "phone": "call me"},  # 4
        {"kind": "contact", "household": "H-0404", "name": "李四", "phone": "13900000002",
         "rank": "one"},                                                          # row 5
        {"kind": "device", "device_id": "hg-b-0001", "type": "bell",
         "household": "H-0001"},                                                  # row 6
        {"kind": "device", "device_id": "hg-b-0002", "type": "button",
         "note": "spare"},                                                        # row 7
        {"kind": "houshold", "code": "H-0002"},                                   # row 8
        {"kind": "device", "device_id": "hg-b-0003", "type": "button",
         "longitude": "121.47"},                                                  # row 9
        {"kind": "grid_cell", "code": "G-02", "name": "二网格", "community": "幸福里社区"},
    )
    r = post(admin, data, dry_run=False)
    assert r.status_code == 422, r.text
    report = r.json()
    assert (report["ok"], report["written"], report["entries"]) == (False, False, [])
    got = {(e["row"], e["column"]) for e in report["errors"]}
    assert got == {(2, "polygon"), (3, "latitude"), (4, "phone"), (5, "rank"),
                   (6, "type"), (7, "note"), (8, "kind"), (9, "latitude")}, \
        report["errors"]
    by = {(e["row"], e["column"]): e["message"] for e in report["errors"]}
    assert "at least 3" in by[(2, "polygon")] and "less than or equal to 90" in by[(3, "latitude")]
    assert by[(9, "latitude")] == "latitude and longitude: give both or neither"
    assert by[(7, "note")] == "not a column of a device row (leave it empty)"
    # the good grid cell G-02 (row 10) was not written either: all or nothing
    assert registry_of(admin) == {"grid-cells": [], "households": [], "devices": []}

    # references and repeats: checked once every row is good alone
    data = csv_of(
        {"kind": "household", "code": "H-0001", "address": "幸福路 8 号",
         "community": "幸福里社区", "grid_cell": "G-09"},
        {"kind": "contact", "household": "H-0001", "name": "王五", "phone": "13900000001",
         "rank": "1"},
        {"kind": "contact", "household": "H-0001", "name": "李四", "phone": "13900000002",
         "rank": "1"},
        {"kind": "device", "device_id": "hg-b-0001", "type": "button", "household": "H-0404"},
        {"kind": "household", "code": "H-0001", "address": "x", "community": "y"})
    errors = post(admin, data, dry_run=True).json()["errors"]
    assert [(e["row"], e["column"], e["message"]) for e in errors] == [
        (2, "grid_cell", "no grid_cell 'G-09', in the registry or in this file"),
        (4, "rank", "rank 1 is taken by row 3 of the same household"),
        (5, "household", "no household 'H-0404', in the registry or in this file"),
        (6, "code", "'H-0001' is on row 2 already")]


def test_rows_may_point_at_the_registry_and_replace_contacts(
        admin: TestClient) -> None:  # noqa: F811
    assert admin.post(f"{REG}/grid-cells", json=CELL).status_code == 201
    assert admin.post(f"{REG}/households", json=household()).status_code == 201
    data = csv_of(
        {"kind": "contact", "household": "H-0001", "name": "陈七", "phone": "13900000003"},
        {"kind": "household", "code": "H-0002", "address": "幸福路 9 号",
         "community": "幸福里社区", "grid_cell": "G-01"},
        {"kind": "device", "device_id": "hg-b-0009", "type": "button", "household": "H-0001",
         "latitude": "31.5", "longitude": "121.5"})
    r = post(admin, data, dry_run=False)
    assert r.status_code == 200, r.text
    h1 = admin.get(f"{REG}/households/H-0001").json()
    assert [c["name"] for c in h1["contacts"]] == ["陈七"]  # the file's contacts replace
    assert h1["devices"] == ["hg-b-0009"] and h1["latitude"] is None
    assert admin.get(f"{REG}/households/H-0002").json()["grid_cell"] == "G-01"


def test_encodings_limits_and_who_may_import(app: FastAPI, admin: TestClient) -> None:  # noqa: F811
    data = ("kind,code,name,community\ngrid_cell,G-01,一网格,幸福里社区\n").encode("gb18030")
    report = post(admin, data, dry_run=True).json()
    assert (report["ok"], report["encoding"]) == (True, "gb18030")
    bom = "\ufeffkind,code,name,community\ngrid_cell,G-01,一网格,幸福里社区\n".encode()
    assert post(admin, bom, dry_run=True).json()["encoding"] == "utf-8-sig"
    assert post(admin, b"\xff\xfe\x00k", dry_run=True).json()["errors"][0]["row"] == 0
    assert post(admin, b"", dry_run=True).json()["errors"][0]["message"].startswith(
        "the file is empty")
    [bad] = post(admin, b"kind,code,colour\n", dry_run=True).json()["errors"]
    assert (bad["row"], bad["column"]) == (1, "colour")
    assert post(admin, b"x" * 5_000_001, dry_run=True).status_code == 413

    olga = as_user(app, "olga")
    r = post(olga, bom, dry_run=False)
    assert r.status_code == 403 and "registry.manage" in r.text
    del admin.headers["X-CSRF-Token"]
    assert post(admin, bom, dry_run=False).status_code == 403
    assert admin.get(f"{REG}/grid-cells").json() == []


def with_member(data: bytes, name: str, content: bytes) -> bytes:
    """The workbook with one more part in its zip archive."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(
            out, "w", zipfile.ZIP_DEFLATED) as dst:
        for member in src.infolist():
            if member.filename != name:
                dst.writestr(member, src.read(member))
        dst.writestr(name, content)
    return out.getvalue()


def test_a_workbook_imports_as_its_csv_does(admin: TestClient) -> None:  # noqa: F811
    data = EXAMPLE_XLSX.read_bytes()
    report = post(admin, data, dry_run=True, media_type=XLSX).json()
    assert (report["ok"], report["written"], report["encoding"], report["sheet"],
            report["rows"]) == (True, False, "xlsx", "社区", 10), report
    assert report["entries"][0] == {"row": 3, "kind": "grid_cell", "key": "G-01",
                                    "action": "create"}
    # told by its content, whatever the sender calls it
    r = post(admin, data, dry_run=False, media_type="application/octet-stream")
    assert r.status_code == 200 and r.json()["written"], r.text
    got = registry_of(admin)
    assert [(c["code"], c["worker_phone"]) for c in got["grid-cells"]] == [
        ("G-01", "13800138000"), ("G-02", "13800138001")]  # typed as numbers in the sheet
    h1, h2 = got["households"]
    assert (h1["latitude"], h1["longitude"], h2["longitude"]) == (31.2321, 121.4731, 121.479)
    assert [(c["name"], c["phone"], c["rank"]) for c in h1["contacts"] + h2["contacts"]] == [
        ("王五", "+86 139 0000 0001", 1), ("李四", "139-0000-0002", 2),
        ("陈七", "13900000003", 1)]
    assert len(got["devices"]) == 3

    # problems by the row numbers the sheet shows; the good row is not written
    bad = workbook(["kind", "code", "name", "community", "address", "latitude", "longitude",
                    "phone", "household"],
                   ["grid_cell", "G-09", "九网格", "幸福里社区"],                      # row 2
                   [],                                                                # row 3
                   ["household", datetime.date(2026, 3, 2), None, "幸福里社区", "x"],  # row 4
                   ["household", "H-0009", None, "幸福里社区", "y", 95, 121.47],       # row 5
                   ["contact", None, "王五", None, None, None, None, True, "H-0001"])  # row 6
    r = post(admin, bad, dry_run=False, media_type=XLSX)
    assert r.status_code == 422, r.text
    by = {(e["row"], e["column"]): e["message"] for e in r.json()["errors"]}
    assert set(by) == {(4, "code"), (5, "latitude"), (6, "phone")}, by
    assert by[(4, "code")].startswith("a date or time cell (2026-03-02)")
    assert by[(6, "phone")].startswith("a TRUE/FALSE cell")

    # the file as a whole: one clear problem, nothing written
    bomb = with_member(data, "xl/media/filler.bin", bytes(registry_xlsx.MAX_UNZIPPED))
    assert len(bomb) < 1_000_000
    for body, words in ((b"kind,code\ngrid_cell,G-09\n", "not an .xlsx workbook"),
                        (bomb, "the workbook unpacks to"),
                        (registry_xlsx.OLE_MAGIC + bytes(504), "password-protected")):
        r = post(admin, body, dry_run=False, media_type=XLSX)
        assert r.status_code == 422, r.text
        [problem] = r.json()["errors"]
        assert problem["row"] == 0 and words in problem["message"], problem
    assert registry_of(admin) == got


def test_the_example_workbook_holds_the_example_rows() -> None:
    from_csv, from_xlsx = parse(EXAMPLE.read_bytes()), parse(EXAMPLE_XLSX.read_bytes())
    assert from_xlsx.problems == [] and len(from_xlsx.rows) == 10
    assert from_xlsx.rows == from_csv.rows  # the same entries on the same row numbers
    assert parse(example_workbook()).rows == from_xlsx.rows


def test_workbook_cells_read_as_the_text_typed() -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in (["kind", "code", "name", "community", "worker_phone", "household", "phone",
                 "rank"],
                ["grid_cell", "G-01", "一网格", "幸福里社区", 1.3800138e10],  # a float phone
                ["grid_cell", 501, "二网格", "幸福里社区", 1380013800],      # "00000000000"
                [None],
                ["contact", None, "王五", None, None, "H-1", 13900000001, 2.0],
                ["contact", None, "李四", None, None, "H-1", datetime.time(13, 5), 3],
                ["contact", None, "陈七", None, None, "H-1", "#N/A", 4],
                ["contact", None, "赵六", None, None, "H-1", "=1/0", 5]):
        sheet.append(row)
    sheet["E3"].number_format = "00000000000"
    sheet["G7"].data_type = "e"
    out = io.BytesIO()
    book.save(out)
    parsed = parse(out.getvalue())
    assert (parsed.encoding, parsed.sheet) == ("xlsx", "Sheet")
    got = {r.number: r.entry for r in parsed.rows}
    assert (got[2].worker_phone, got[3].code, got[3].worker_phone) == (
        "13800138000", "501", "01380013800")
    assert (got[5].phone, got[5].rank) == ("13900000001", 2)
    # a formula is read as the value it last showed: one a program wrote
    # without ever computing it reads empty
    assert [(p.row, p.column, p.message.split(":")[0]) for p in parsed.problems] == [
        (6, "phone", "a date or time cell (13"), (7, "phone", "a formula error (#N/A)"),
        (8, "phone", "required")]

    # too wide, a zip that is not a workbook, a broken sheet: the file is refused
    wide = workbook(["kind", "code"], ["grid_cell", "G-01", *[None] * 62, "x"])
    assert parse(workbook(["kind", "code"], ["grid_cell", "G-01", *[None] * 61, "x"])
                 ).problems[0].column == ""  # column 64: the header names 2
    plain = io.BytesIO()
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr("community.csv", EXAMPLE.read_bytes())
    broken = with_member(workbook(["kind"]), "xl/worksheets/sheet1.xml", b"<sheetData")
    for data, words in ((wide, "row 2 has a cell past column 64"),
                        (plain.getvalue(), "a zip archive, but not an .xlsx workbook"),
                        (broken, "the file cannot be read as an .xlsx workbook")):
        [problem] = parse(data).problems
        assert problem.row == 0 and problem.message.startswith(words), problem
    # a file called .xlsx that is not one is not read as CSV
    assert parse(b"kind\n", name="c.xlsx").problems[0].message.startswith(
        "not an .xlsx workbook")


def test_places_through_the_registry_api(admin: TestClient) -> None:  # noqa: F811
    ring = [[121.47, 31.23], [121.48, 31.23], [121.48, 31.24], [121.47, 31.23]]
    r = admin.post(f"{REG}/grid-cells", json={**CELL, "polygon": ring})
    assert r.status_code == 201 and r.json()["polygon"] == ring[:3], r.text  # ring left open
    r = admin.post(f"{REG}/households", json=household(latitude=31.2321, longitude=121.4731))
    assert (r.json()["latitude"], r.json()["longitude"]) == (31.2321, 121.4731)
    half = admin.post(f"{REG}/households", json=household("H-0002", latitude=31.0))
    assert half.status_code == 422 and "both or neither" in half.text
    far = admin.post(f"{REG}/households", json=household("H-0002", latitude=31.0,
                                                          longitude=181))
    assert far.status_code == 422
    # PATCH: left out, they stay; both null, they go
    r = admin.patch(f"{REG}/households/H-0001", json={"note": "n"})
    assert r.json()["latitude"] == 31.2321
    r = admin.patch(f"{REG}/households/H-0001", json={"latitude": None, "longitude": None})
    assert (r.json()["latitude"], r.json()["longitude"]) == (None, None)
    r = admin.post(f"{REG}/devices", json={"device_id": "hg-b-0001", "type": "button",
                                           "latitude": -33.9, "longitude": 18.4})
    assert (r.json()["latitude"], r.json()["longitude"]) == (-33.9, 18.4), r.text
    r = admin.patch(f"{REG}/devices/hg-b-0001", json={"longitude": 18.5, "latitude": -33.8})
    assert r.json()["longitude"] == 18.5
    r = admin.patch(f"{REG}/grid-cells/G-01", json={"polygon": None})
    assert r.json()["polygon"] is None


def test_the_command_line_imports_all_or_nothing(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'centre.db'}"
    homeguard = Path(sys.executable).parent / "homeguard"

    def run(*argv: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(homeguard), "centre", "registry", "import", *map(str, argv),
                               "--db", db], capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)

    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_of({"kind": "grid_cell", "code": "G-01", "name": "一网格",
                            "community": "幸福里社区"},
                           {"kind": "grid_cell", "code": "G 2", "name": "二网格",
                            "community": "幸福里社区"}))
    done = run(bad)
    assert done.returncode == 2, done
    assert f"{bad}:3: code: String should match pattern" in done.stderr
    assert "1 problem(s): nothing was imported" in done.stderr
    done = run(EXAMPLE, "--dry-run")
    assert done.returncode == 0 and "would import 10 rows" in done.stdout, done
    done = run(EXAMPLE)
    assert done.returncode == 0, done
    assert "imported 10 rows (utf-8-sig): grid_cells 2 new 0 changed" in done.stdout
    # a workbook: the same rows again, in place; problems by the sheet's rows
    done = run(EXAMPLE_XLSX)
    assert done.returncode == 0, done
    assert ("imported 10 rows (xlsx, sheet '社区'): grid_cells 0 new 2 changed"
            in done.stdout), done
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(workbook(["kind", "code", "name", "community"], [],
                             ["grid_cell", "G-03", "三网格", datetime.date(2026, 1, 2)]))
    done = run(bad)
    assert done.returncode == 2 and f"{bad}:3: community: a date or time cell" in done.stderr

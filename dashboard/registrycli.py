"""`homeguard centre registry import FILE`: a registry file, CSV or .xlsx
(grid cells, households with contacts, devices; docs/registry-import.md)
into the centre's store, all or nothing, as POST /api/v1/registry/import
does."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dashboard import registry_import
from dashboard.usercli import DbOpt, open_store
from dashboard.usercli import fail as _fail

app = typer.Typer(help="The device registry: import a whole community from a file.",
                  no_args_is_help=True)


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(
        help="A CSV file (UTF-8 or GB18030) or an Excel workbook (.xlsx: its first sheet).",
        exists=True, dir_okay=False, readable=True)],
    db: DbOpt = "sqlite:///./homeguard-centre.db",
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Check every row and say what would change; write nothing.")] = False,
) -> None:
    """Import the file's rows, or none of them: problems are listed as
    FILE:ROW: COLUMN: what is wrong, and the exit status is 2."""
    with open_store(db) as session:
        report = registry_import.import_file(session, file.read_bytes(), dry_run, "cli",
                                             name=file.name)
    for p in report.errors:
        where = f"{file}:{p.row}" if p.row else str(file)
        typer.echo(f"{where}: {p.column + ': ' if p.column else ''}{p.message}", err=True)
    if not report.ok:
        raise _fail(f"{len(report.errors)} problem(s): nothing was imported",
                    "homeguard centre registry import")
    done = "would import" if dry_run else "imported"
    how = f"{report.encoding}, sheet {report.sheet!r}" if report.sheet else report.encoding
    typer.echo(f"{file}: {done} {report.rows} rows ({how}): "
               f"{registry_import.summary(report)}")

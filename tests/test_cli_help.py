"""Every command's --help reads as a user expects: values named by kind,
never by Python annotation (<bool>, <list[str]>), and every option's help
text shown whole (a '[word]' in it is not eaten as console markup)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import typer
from typer.testing import CliRunner

from homeguard.cli import app


def commands(cmd: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command below `cmd` (typer's own click: read by its attributes)."""
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from commands(sub, (*path, name))


def flat(text: str) -> str:
    """The text without spaces, line breaks or the panels' box drawing."""
    return re.sub(r"[\s│╭╮╰╯─]+", "", text)


def test_every_help_names_values_plainly_and_shows_every_help_text() -> None:
    root = typer.main.get_command(app)
    seen = 0
    for path, cmd in commands(root):
        out = CliRunner().invoke(app, [*path, "--help"], terminal_width=100)
        assert out.exit_code == 0, (path, out.output)
        assert not re.search(r"<(bool|list\[[^>]*\]|NoneType)>", out.output), (path, out.output)
        for param in cmd.params:
            text = getattr(param, "help", None)
            if text and "[" in text:  # shown as written, brackets and all
                shown = flat(text.replace("\\[", "["))
                assert shown in flat(out.output), (path, param.name, out.output)
        seen += 1
    assert seen > 30  # every group and command of the umbrella, not just the root


def test_running_one_part_imports_only_that_part() -> None:
    """`homeguard gateway` (re)starts without importing the centre, the
    benchmarks or the technician's tools: a gateway's restart time is part
    of how late an alarm can be (issue 16)."""
    import subprocess
    import sys

    code = ("import sys; from homeguard.cli import build; build('gateway'); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'dashboard', 'broker', 'hardware', 'homeguard', 'gateway'}), "
            "'homeguard.bench' in sys.modules, 'homeguard.tech' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout.strip()
    assert out == "['gateway', 'homeguard'] False False", out

"""The `homeguard` command: one subcommand per part of the system.

Each part registers its own commands from its own module, so adding a part
is one line in PARTS.  A part needs its extra of the package (pyproject.toml)
installed; without it, its commands say so in one line instead of a
traceback (and a command importing an optional module names the extra
that has it):

    homeguard centre needs the [centre] extra: pip install 'homeguard[centre]'
"""

from __future__ import annotations

import functools
import importlib
import re
import sys
from dataclasses import dataclass
from importlib import metadata

import typer
from rich.markup import escape

HELP = "Homeguard: household alarm terminals, electrical-safety sensors and their centre."


@dataclass(frozen=True)
class Part:
    module: str  # has register(app: typer.Typer) adding its commands
    commands: tuple[str, ...]  # the commands it adds
    extra: str  # the package's extra that installs what it needs
    extends: str = ""  # the command group (of an earlier part) it adds to


PARTS = (
    Part("broker.cli", ("broker",), "broker"),
    Part("homeguard.devbroker.cli", (), "broker", extends="broker"),  # `broker run`
    Part("gateway.service_cli", ("gateway",), "gateway"),
    Part("dashboard.cli", ("centre", "centre-user"), "centre"),
    Part("homeguard.demo", ("demo",), "demo"),
    Part("homeguard.simulator.cli", ("simulate",), "demo"),
    Part("homeguard.bench", ("bench",), "dev"),
    Part("homeguard.chaos.cli", ("chaos",), "dev"),
    Part("homeguard.tech.cli", ("device",), "tech"),
)
OWN = frozenset({"broker", "dashboard", "firmware", "gateway", "hardware", "hg", "homeguard"})
# 'name[extras] ...; extra == "x"': an extra's requirement in the package's metadata
REQUIREMENT = re.compile(r'^([A-Za-z0-9._-]+)(?:\[([^\]]*)\])?[^;]*;.*\bextra == "([^"]+)"')


@functools.cache
def extras() -> dict[str, list[tuple[str, list[str]]]]:
    """extra -> its requirements as (distribution, its extras), from the
    installed package's metadata; {} when that cannot be read."""
    try:
        requires = metadata.requires("homeguard") or []
    except metadata.PackageNotFoundError:
        return {}
    out: dict[str, list[tuple[str, list[str]]]] = {}
    for req in requires:
        m = REQUIREMENT.match(req)
        if m:
            named = [e.strip() for e in (m.group(2) or "").split(",") if e.strip()]
            out.setdefault(m.group(3), []).append((_canonical(m.group(1)), named))
    return out


def _canonical(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


@functools.cache
def installed() -> frozenset[str]:
    return frozenset(_canonical(d.metadata["Name"] or "") for d in metadata.distributions())


def not_installed(extra: str) -> list[str]:
    """What the extra needs (with the extras it names) that is not installed."""
    table, wanted, todo, seen = extras(), set(), [extra], set()
    while todo:
        name = todo.pop()
        seen.add(name)
        for dist, named in table.get(name, []):
            if dist == "homeguard":
                todo += [e for e in named if e not in seen]
            else:
                wanted.add(dist)
    return sorted(wanted - installed())


def missing_extra(part: Part, exc: ModuleNotFoundError) -> str | None:
    """The extra that installs the module `exc` misses: the part's own, or
    the one listing a distribution of the module's name (an optional feature
    of the part); None when it is something else (a real error)."""
    module = (exc.name or "").split(".")[0]
    if module in OWN:
        return None
    if not_installed(part.extra):
        return part.extra
    return next((extra for extra, reqs in extras().items()
                 if any(d == _canonical(module) for d, _ in reqs) and not_installed(extra)),
                None)


def message(command: str, extra: str) -> str:
    return f"homeguard {command} needs the [{extra}] extra: pip install 'homeguard[{extra}]'"


def _stub(app: typer.Typer, command: str, text: str) -> None:
    """A command that says what to install, whatever its arguments."""
    @app.command(command, help=escape(text), add_help_option=False,
                 context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def needs_extra() -> None:
        typer.secho(text, fg="red", err=True)
        raise typer.Exit(1)


def _group() -> None:
    """Homeguard: household alarm terminals, electrical-safety sensors and their centre."""


def build(command: str | None = None) -> typer.Typer:
    """The command with each part's commands, or when its extra is not
    installed (or a module it imports is missing) commands that say what to
    install. Given the command being run, only its part is imported: a
    gateway (re)starts without importing the centre, the benchmarks and the
    technician's tools (seconds on a small machine)."""
    app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False)
    app.callback()(_group)  # a group even with one part's command in it
    wanted = [p for p in PARTS
              if command is None or command in p.commands or command == p.extends]
    if not any(command in p.commands for p in wanted):
        wanted = list(PARTS)  # not a part's command: --help, a typo: all of them
    for part in wanted:
        extra = part.extra if not_installed(part.extra) else None
        if extra is None:
            try:
                importlib.import_module(part.module).register(app)
                continue
            except ModuleNotFoundError as exc:
                extra = missing_extra(part, exc)
                if extra is None:
                    raise
        for name in part.commands:
            _stub(app, name, message(name, extra))
    return app


def __getattr__(name: str) -> typer.Typer:
    """`homeguard.cli.app`: the whole command, every part (docs, tests)."""
    if name == "app":
        return build()
    raise AttributeError(name)


def main() -> None:
    command = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
    try:
        build(command)()
    except ModuleNotFoundError as exc:  # a command importing what an extra installs
        command = next((a for a in sys.argv[1:] if not a.startswith("-")), "")
        part = next((p for p in PARTS if command in p.commands), None)
        extra = missing_extra(part, exc) if part else None
        if extra is None:
            raise
        typer.secho(message(command, extra), fg="red", err=True)
        sys.exit(1)

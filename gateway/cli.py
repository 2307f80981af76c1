"""The `homeguard` command: one subcommand per part of the system.

Each part registers its own commands from its own module, so adding a part
is one line in PARTS.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    help="Homeguard: household alarm terminals, electrical-safety sensors and their centre.",
    no_args_is_help=True,
    add_completion=False,
)

# module -> each has register(app: typer.Typer) adding its commands
PARTS = (
    "broker.cli",
    "gateway.service_cli",
    "dashboard.cli",
    "gateway.demo",
    "gateway.simulate",
    "gateway.bench",
    "hardware.tech.cli",
)


def _register() -> None:
    for name in PARTS:
        importlib.import_module(name).register(app)


_register()


def main() -> None:
    app()

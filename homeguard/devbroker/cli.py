"""`homeguard broker run`: the development broker in the foreground.

The broker part (broker/cli.py) owns the `broker` command group and its
production commands; this tool adds `run` to that group, because the
embedded fallback it may start is a development tool, not the broker part."""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated

import typer

from broker import layout
from broker.binary import mosquitto_binary
from broker.cli import DEFAULT_DIR, DirOpt, fail
from broker.cli import app as broker_app
from broker.errors import BrokerError


def register(root: typer.Typer) -> None:
    """`run` joins the broker group, which broker.cli registered on root."""
    del root
    broker_app.command("run")(run)


def run(
    dir: DirOpt = DEFAULT_DIR,
    embedded: Annotated[bool, typer.Option(
        help="Use the embedded Python demo broker even if Mosquitto is installed.")] = False,
    lan: Annotated[bool, typer.Option(
        help="Bind the TLS listener as configured, not to 127.0.0.1.")] = False,
) -> None:
    """Run the broker in the foreground (development); Ctrl-C stops it.

    Mosquitto runs as you (not run_user) with the TLS listener on 127.0.0.1
    unless --lan, from mosquitto.dev.conf (same template and settings)."""
    bdir = layout.BrokerDir(dir)
    try:
        if not bdir.settings_file.exists():
            layout.init(dir)
        conf = layout.render_dev_config(dir, lan)
    except BrokerError as exc:
        raise fail(exc) from exc
    binary = mosquitto_binary()
    if binary and not embedded:
        typer.echo(f"mosquitto -c {conf}", nl=True)
        sys.stdout.flush()
        # become Mosquitto: a SIGTERM to this process (the demo stopping its
        # broker) then reaches Mosquitto itself instead of orphaning it
        os.execv(binary, [binary, "-c", str(conf)])
    from homeguard.devbroker import embedded as demo_broker

    if not binary:
        typer.secho("Mosquitto is not installed.", fg="yellow", err=True)
    typer.secho(demo_broker.BANNER, fg="red", bold=True, err=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("transitions").setLevel(logging.WARNING)
    demo_broker.run(bdir.root)

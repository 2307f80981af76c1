"""`homeguard gateway --config gateway.toml`."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Annotated

import typer

from gateway.config import ConfigError, load
from gateway.registry import RegistryError
from gateway.statelock import InUse
from gateway.store import StoreError


def gateway(
    config: Annotated[Path, typer.Option("--config", "-c", help="Gateway TOML config.")] = Path(
        "gateway.toml"),
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    """Run the gateway: verify, timestamp, de-duplicate, store and forward."""
    # the format uses none of the caller's file/line, thread or process: the
    # logging module is told not to collect them (a stack walk per record;
    # see "Optimization" in the logging HOWTO)
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from gateway import service

    try:
        cfg = load(config)
        service.run(cfg)
    except (ConfigError, RegistryError, InUse) as exc:
        typer.secho(f"gateway: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    except (OSError, sqlite3.Error, StoreError) as exc:
        typer.secho(f"gateway: cannot start: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None


def register(app: typer.Typer) -> None:
    app.command("gateway")(gateway)

"""`homeguard device ...`: the technician's commands (docs/technician.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from homeguard.tech import bundle as bundles
from homeguard.tech import flash as flasher
from homeguard.tech import install as installer
from homeguard.tech import provision as prov
from homeguard.tech.centre import CentreRegistry
from homeguard.tech.errors import TechError
from homeguard.tech.info import board_info
from homeguard.tech.link import Board

app = typer.Typer(help="Technician tools: flash, install, provision, test and inspect a board.",
                  no_args_is_help=True)
out = Console()
err = Console(stderr=True)

PortOpt = Annotated[str, typer.Option("--port", "-p", envvar="HG_PORT",
                                      help="Serial port of the board, e.g. /dev/ttyUSB0.")]
BaudOpt = Annotated[int, typer.Option(help="Serial speed.")]
TimeoutOpt = Annotated[float, typer.Option(
    help="Seconds of silence after which the link counts as broken (then retried).")]
AttemptsOpt = Annotated[int, typer.Option(help="Tries per step before giving up.")]
BrokerDirOpt = Annotated[Path | None, typer.Option(
    "--broker-dir", envvar="HG_BROKER_DIR", help="Broker directory (homeguard broker init).")]
CentreOpt = Annotated[str | None, typer.Option(envvar="HG_CENTRE_URL", help="Centre URL.")]
TokenOpt = Annotated[str, typer.Option(envvar="HG_CENTRE_TOKEN", help="Centre API token.")]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="device")


def _say(msg: str) -> None:
    err.print(f"[yellow]{msg}[/yellow]")


def _board(port: str, baud: int, timeout: float, attempts: int) -> Board:
    return Board(port, baud, timeout, attempts, say=_say)


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[red]error:[/red] {exc}")
    return typer.Exit(1)


@app.command()
def flash(
    port: PortOpt, image: Annotated[Path, typer.Argument(help="MicroPython .bin image.")],
    chip: Annotated[str, typer.Option(help="esp32 (sensor) or esp32c3 (button).")],
    baud: BaudOpt = 460800,
    erase: Annotated[bool, typer.Option(help="Erase the whole flash first.")] = True,
) -> None:
    """Write the MicroPython runtime onto the board with esptool."""
    try:
        flasher.flash(port, image, chip, baud, erase)
    except TechError as exc:
        raise _fail(exc) from exc
    out.print(f"flashed {image.name} to the {chip} on {port}")


@app.command()
def install(
    port: PortOpt,
    device_type: Annotated[str, typer.Option("--type", help="button or sensor.")],
    source: Annotated[bool, typer.Option(help="Copy .py sources instead of .mpy.")] = False,
    version: Annotated[str | None, typer.Option(help="Version to record.")] = None,
    baud: BaudOpt = 115200, timeout: TimeoutOpt = 3.0, attempts: AttemptsOpt = 4,
) -> None:
    """Copy the firmware to the board, verify it, swap it in (previous kept)."""
    try:
        bundle = bundles.build(device_type, source=source, version=version)
        with _board(port, baud, timeout, attempts) as board, _bar() as bar:
            task = bar.add_task(f"installing {bundle.version}", total=bundle.size)
            result = installer.install(
                board, bundle, on_bytes=lambda n: bar.advance(task, n),
                on_retry=lambda n: bar.advance(task, -n))
    except TechError as exc:
        raise _fail(exc) from exc
    if result.restored:
        out.print("an interrupted earlier swap was repaired first")
    out.print(f"installed {result.version} (previous: {result.previous or 'none'}; "
              f"{board.retries} retried steps)")


def _bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                    TimeRemainingColumn(), console=out)


@app.command()
def rollback(port: PortOpt, baud: BaudOpt = 115200, timeout: TimeoutOpt = 3.0,
             attempts: AttemptsOpt = 4) -> None:
    """Swap the previous firmware back in."""
    try:
        with _board(port, baud, timeout, attempts) as board:
            version = installer.rollback(board)
    except TechError as exc:
        raise _fail(exc) from exc
    out.print(f"rolled back; now running {version}")


@app.command()
def provision(
    port: PortOpt,
    device_type: Annotated[str, typer.Option("--type", help="button or sensor.")],
    household: Annotated[str, typer.Option(help="Household code, e.g. H-0001.")] = "",
    grid: Annotated[str, typer.Option(help="Grid cell code, e.g. G-01.")] = "",
    board_profile: Annotated[str, typer.Option("--board", help="hardware/boards profile.")] = "",
    wifi_ssid: Annotated[str, typer.Option(envvar="HG_WIFI_SSID")] = "",
    wifi_password: Annotated[str, typer.Option(envvar="HG_WIFI_PASSWORD")] = "",
    broker_host: Annotated[str, typer.Option(help="Broker host the device uses.")] = "127.0.0.1",
    broker_port: Annotated[int, typer.Option(help="Broker port the device uses.")] = 8883,
    tls: Annotated[bool, typer.Option(help="Device connects with TLS.")] = True,
    heartbeat: Annotated[int, typer.Option(help="Heartbeat period, seconds.")] = 300,
    thresholds: Annotated[Path | None, typer.Option(help="JSON file of thresholds.")] = None,
    new_identity: Annotated[bool, typer.Option(help="Replace the board's identity.")] = False,
    broker_dir: BrokerDirOpt = None,
    registry: Annotated[Path | None, typer.Option(
        envvar="HG_REGISTRY", help="The gateway's device registry file.")] = None,
    centre_url: CentreOpt = None,
    centre_user: Annotated[str, typer.Option(
        envvar="HG_CENTRE_USER", help="Centre user allowed to manage the registry.")] = "",
    centre_password: Annotated[str, typer.Option(
        envvar="HG_CENTRE_PASSWORD", help="That user's password.")] = "",
    address: Annotated[str, typer.Option(help="New household's address (at the centre).")] = "",
    community: Annotated[str, typer.Option(help="New household's / grid cell's community.")]
        = "",
    label_file: Annotated[Path | None, typer.Option(help="Also write the label here.")] = None,
    gateway_url: Annotated[str | None, typer.Option(
        envvar="HG_GATEWAY_URL",
        help="The gateway's metrics URL: wait until it has the device's key.")] = None,
    gateway_wait: Annotated[float, typer.Option(
        help="Seconds to wait for the gateway to load the key.")] = 30,
    baud: BaudOpt = 115200, timeout: TimeoutOpt = 3.0, attempts: AttemptsOpt = 4,
) -> None:
    """Give the board its identity and config; add it to broker, gateway and centre."""
    req = prov.Request(device_type, household, grid, board_profile, wifi_ssid, wifi_password,
                       broker_host, broker_port, tls, heartbeat,
                       json.loads(thresholds.read_text()) if thresholds else {}, new_identity,
                       address, community)
    centre = None
    if centre_url and centre_user:
        centre = CentreRegistry(centre_url, centre_user, centre_password)
    elif centre_url:
        out.print("centre: not registered (give --centre-user/--centre-password of a "
                  "technician account)")
    try:
        with _board(port, baud, timeout, attempts) as board:
            result = prov.provision(board, req, broker_dir, registry, centre, gateway_url,
                                    gateway_wait)
    except TechError as exc:
        raise _fail(exc) from exc
    cfg = result.config
    out.print(f"{'kept' if result.reused else 'new'} identity {cfg['device_id']}")
    if broker_dir:
        state = "reloaded" if result.broker_reloaded else "no broker running"
        out.print(f"broker account set ({state})")
    if registry:
        out.print(f"gateway registry {'updated' if result.registry_changed else 'unchanged'}")
    out.print(f"centre: {result.centre}")
    out.print(result.gateway_line())
    text = prov.label(cfg)
    out.print(text, highlight=False)
    if label_file:
        label_file.write_text(text + "\n")


@app.command()
def info(port: PortOpt, baud: BaudOpt = 115200, timeout: TimeoutOpt = 3.0,
         attempts: AttemptsOpt = 4,
         as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Firmware version, free heap and the config (secrets shown as set/missing)."""
    try:
        with _board(port, baud, timeout, attempts) as board:
            data = board_info(board)
    except TechError as exc:
        raise _fail(exc) from exc
    if as_json:
        typer.echo(json.dumps(data, sort_keys=True))
        return
    for key, value in data.items():
        shown = json.dumps(value, sort_keys=True) if isinstance(value, dict) else value
        out.print(f"{key:18} {shown}", highlight=False)


@app.command()
def console(port: PortOpt) -> None:
    """An interactive REPL on the board (mpremote; Ctrl-] leaves)."""
    raise typer.Exit(subprocess.call([sys.executable, "-m", "mpremote", "connect", port,
                                      "resume", "repl"]))


def _register_test(root: typer.Typer) -> None:
    from homeguard.tech import onsite_cli  # the test command lives in its own module

    onsite_cli.register(root)


_register_test(app)

"""`homeguard device test`: send a test event and report each hop's time."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from broker import layout
from homeguard.simulator.board import BoardSpec, stand_in_floor
from homeguard.simulator.fleet import Fleet
from homeguard.tech.errors import TechError
from homeguard.tech.install import PATH_SETUP
from homeguard.tech.link import Board
from homeguard.tech.onsite import Access, HopWatch
from homeguard.tech.provision import read_config

# the account `device test` watches a board's hops with (a gateway account of its own)
WATCH_USER = "hg-tech-watch"

out = Console()
err = Console(stderr=True)
# run on the board: the device app sends a `test` event and prints its seq
TRIGGER = PATH_SETUP + "from hg.app import test_event\nprint(test_event())"


def register(app: typer.Typer) -> None:
    app.command("test")(test)


def _sim_trigger(cfg: dict, host: str, port: int, ca: str | None, state: Path,
                 watch: HopWatch) -> tuple:
    """The board's firmware with its identity on simulated hardware (its flash
    in <state>/<id>/): the trigger sends the test event as hg.app does; the
    broker's PUBACK and the gateway's `stored` ack it receives are the
    broker and gateway hops."""
    dev = cfg["device_id"]
    fleet = Fleet()
    board = fleet.add(BoardSpec(
        dev, cfg["key_hex"], cfg["broker"]["password"], host, port, state / dev,
        type=cfg.get("type") or "button", tls_ca=ca, household=cfg.get("household", ""),
        grid=cfg.get("grid", ""), resend_ms=2000, seq_floor=stand_in_floor(state, dev)))

    def puback(leaf: str, seq: int) -> None:
        if leaf == "event":
            watch.mark("broker", seq)

    def ack(ref: int, typ: str) -> None:
        if typ == "stored":
            watch.mark("gateway", ref)
    board.watch.on_puback, board.watch.on_ack = puback, ack
    fleet.start()
    if not board.wait_connected(10):
        fleet.stop()
        raise TechError(f"the simulated {dev} could not connect to {host}:{port}")
    return fleet, board.send_test


def _board_trigger(board: Board) -> int:
    text = board.run(TRIGGER, timeout=15, what="test event").strip()
    try:
        return int(text.splitlines()[-1])
    except (ValueError, IndexError):
        raise TechError(f"the board's test_event() printed {text!r}, not a seq") from None


def test(
    port: Annotated[str, typer.Option("--port", "-p", envvar="HG_PORT")],
    broker_dir: Annotated[Path, typer.Option(envvar="HG_BROKER_DIR",
                                             help="Broker directory (gateway account).")],
    centre_url: Annotated[str, typer.Option(envvar="HG_CENTRE_URL")],
    centre_token: Annotated[str, typer.Option(envvar="HG_CENTRE_TOKEN")],
    broker_host: Annotated[str | None, typer.Option(help="Default: the device's.")] = None,
    broker_port: Annotated[int | None, typer.Option(help="Default: the device's.")] = None,
    sim: Annotated[bool, typer.Option(help=(
        "Send from the firmware on simulated hardware with the board's identity (a "
        "board without Wi-Fi or without the device app)."))] = False,
    state_dir: Annotated[Path, typer.Option(
        help="--sim: its flash (seqs, outbox).")] = Path("var/tech-sim"),
    wait: Annotated[float, typer.Option(help="Seconds to wait for the centre.")] = 30,
    timeout: Annotated[float, typer.Option(help="Serial silence timeout.")] = 3.0,
) -> None:
    """Trigger a test event and wait until the centre shows it, timing each hop."""
    try:
        with Board(port, timeout=timeout) as board:
            cfg = read_config(board)
            if not cfg:
                raise TechError("the board is not provisioned (no /config.json)")
            hops = _run(board, cfg, broker_dir, broker_host, broker_port, centre_url,
                        centre_token, sim, state_dir, wait)
    except TechError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    for hop in hops:
        out.print(str(hop), highlight=False)
    if any(h.ms is None for h in hops):
        err.print("[red]test event did not reach every hop[/red]")
        raise typer.Exit(1)
    out.print(f"{cfg['device_id']}: test event shown by the centre")


def watch_account(broker_dir: Path) -> tuple[str, str]:
    """The broker account the board path watches hops with: a gateway account
    of the tool's own, so neither the running gateway's session nor the
    board's (the broker keys sessions by account) is taken over."""
    password = layout.add_gateway(broker_dir, WATCH_USER)
    layout.reload(broker_dir)
    return WATCH_USER, password


def _run(board: Board, cfg: dict, broker_dir: Path, host: str | None, port: int | None,
         centre_url: str, token: str, sim: bool, state_dir: Path, wait: float) -> list:
    host = host or cfg["broker"]["host"]
    port = port or cfg["broker"]["port"]
    bdir = layout.BrokerDir(broker_dir)
    tls = bool(cfg["broker"].get("tls")) and port != bdir.settings().local_port
    ca = str(bdir.tls_paths.ca_cert) if tls else None
    user, password = watch_account(broker_dir) if not sim else (WATCH_USER, "")
    watch = HopWatch(cfg["device_id"], Access(host, port, user, password,
                                              cfg["broker"]["password"], centre_url, token, ca))
    device = None
    try:
        watch.start(mqtt_watch=not sim)
        if sim:
            device, trigger = _sim_trigger(cfg, host, port, ca, state_dir, watch)
        else:
            def trigger() -> int:
                return _board_trigger(board)
        return watch.run(trigger, wait)
    finally:
        watch.stop()
        if device is not None:
            device.stop()

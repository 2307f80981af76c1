"""`homeguard chaos`: the whole stack under random faults, reconciled from
outside (docs/reliability.md).  Prints a table, writes JSON (--out), exits
1 when any alarm or telemetry point was lost or an alarm doubled."""

from __future__ import annotations

import logging
import secrets
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from homeguard.bench import report
from homeguard.chaos.faults import FaultConfig
from homeguard.chaos.run import Params, run
from homeguard.chaos.stack import FleetConfig

log = logging.getLogger("homeguard.chaos")


def chaos(
    devices: Annotated[int, typer.Option(min=1, help="Simulated boards (the real firmware).")]
        = 100,
    duration: Annotated[float | None, typer.Option(
        help="Seconds of faults (default 600, or until --alarms when that is given).")] = None,
    alarms: Annotated[int, typer.Option(
        min=0, help="Stop once the centre has stored this many of the fleet's alarms.")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the faults and the fleet.")] = 1,
    centre_outage_s: Annotated[float, typer.Option(
        min=0, help="The centre's one outage (killed, started again after this), s; 0: none.")]
        = 60.0,
    centre_outage_at_s: Annotated[float | None, typer.Option(
        help="When the centre outage begins, s into the run (default: at random in its "
             "first half).")] = None,
    fault_every_s: Annotated[float, typer.Option(
        min=0.1, help="Mean seconds between faults (gateway kill -9, broker restart, "
                      "link cut).")] = 20.0,
    alarm_every_s: Annotated[float, typer.Option(
        min=0.1, help="Mean seconds between presses per board.")] = 30.0,
    reboot_every_s: Annotated[float, typer.Option(
        min=0, help="Mean seconds between reboots per board (0: none).")] = 120.0,
    board_outage_every_s: Annotated[float, typer.Option(
        min=0, help="Mean seconds between a board's own link losses (0: none).")] = 0.0,
    telemetry_s: Annotated[int, typer.Option(
        min=1, max=3600, help="Telemetry period of the sensors.")] = 10,
    heartbeat_s: Annotated[int, typer.Option(
        min=10, max=86400, help="Heartbeat period of every board.")] = 60,
    db: Annotated[str | None, typer.Option(
        help="The centre's store, e.g. postgresql+psycopg://user@host/db (default: SQLite "
             "in --dir).")] = None,
    settle_s: Annotated[float, typer.Option(
        help="After the faults: seconds the stack may take to deliver everything.")] = 300.0,
    out: Annotated[Path | None, typer.Option(help="Write the results as JSON here.")] = None,
    scratch: Annotated[Path | None, typer.Option(
        "--dir", help="Run directory (logs, stores, the fleet's flash); default: a temporary "
                      "one, removed after a clean run and kept when something was lost.")] = None,
) -> None:
    """Run the stack under random faults and check that nothing was lost or doubled."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the health checks' requests
    params = Params(
        fleet=FleetConfig(devices=devices, prefix=f"ch{secrets.token_hex(3)}",
                          alarm_every_s=alarm_every_s, telemetry_s=telemetry_s,
                          heartbeat_s=heartbeat_s, reboot_every_s=reboot_every_s,
                          outage_every_s=board_outage_every_s, seed=seed),
        faults=FaultConfig(every_s=fault_every_s, centre_outage_s=centre_outage_s,
                           centre_at_s=centre_outage_at_s, seed=seed),
        duration_s=duration if duration is not None or alarms else 600.0,
        alarms=alarms, db_url=db, settle_s=settle_s)
    # SIGTERM (e.g. `timeout`) unwinds like Ctrl-C, so every process is stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # started in the background (`nohup ... &`) SIGINT is ignored, and the fleet
    # would inherit that and never hear the SIGINT that ends its run
    signal.signal(signal.SIGINT, signal.default_int_handler)
    tmp = scratch or Path(tempfile.mkdtemp(prefix="hg-chaos-"))
    tmp.mkdir(parents=True, exist_ok=True)
    result = None
    try:
        result = run(params, tmp)
    finally:
        if scratch is None and result is not None and result["ok"]:
            shutil.rmtree(tmp, ignore_errors=True)
        elif scratch is None:
            log.info("the run's directory (logs, stores) is kept: %s", tmp)
    table(result)
    report.write(out, "chaos", params.as_dict(), result)
    if not result["ok"]:
        raise typer.Exit(1)


def table(result: dict) -> None:
    a, t, f = result["alarms"], result["telemetry"], result["faults"]
    report.show(f"chaos run ({result['streamed_s']:.0f} s, commit {result['commit']})",
                ["what", "count"], [
                    ["alarms pressed", a["pressed"]], ["alarms at the centre", a["at_centre"]],
                    ["alarms lost", a["lost"]],
                    ["alarms still in the boards' flash at the end (not lost)",
                     a.get("in_flash_at_end", 0)],
                    ["  of which acked 'stored' by the gateway", a["lost_after_stored_ack"]],
                    ["alarms duplicated", a["duplicates"]],
                    ["alarms at the centre never sent", a["unexpected"]],
                    ["telemetry acked by the broker", t["acked_by_broker"]],
                    ["telemetry stored", t["stored"]], ["telemetry shed (counted)", t["shed"]],
                    ["telemetry lost", t["lost"]]])
    report.show("faults", ["kind", "count"], [[k, v] for k, v in f.items()])
    lat = result["latency_ms"]
    report.show("press -> centre, ms", ["alarms pressed", "count", "p50", "p99", "max"], [
        [name.replace("_", " "), s.get("count", 0), s.get("p50", "-"), s.get("p99", "-"),
         s.get("max", "-")]
        for name, s in (("inside_outages", lat["inside_outages"]),
                        ("outside_outages", lat["outside_outages"]), ("all", lat["all"]),
                        *((f"during {kind}", v) for kind, v in lat["by_fault"].items()))])
    report.show("press -> centre after the part was back, ms (alarms pressed during one "
                "fault, with no other in force or ended in the 10 s before)",
                ["fault", "count", "p50", "p99", "max"], [
        [kind, s.get("count", 0), s.get("p50", "-"), s.get("p99", "-"), s.get("max", "-")]
        for kind, s in lat.get("after_back", {}).items()])
    verdict = "[green]nothing lost, nothing doubled[/]" if result["ok"] else \
        "[red]LOST OR DOUBLED: see the JSON's samples and the kept directory[/]"
    report.note(verdict + ("" if result["caught_up"] else
                           " [yellow](the stack had not caught up by --settle-s)[/]"))


def register(app: typer.Typer) -> None:
    app.command("chaos")(chaos)

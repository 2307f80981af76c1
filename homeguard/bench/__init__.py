"""`homeguard bench`: benchmarks, kept apart from the tests.

Each command prints a table and writes JSON (`--out`) with the machine
described. Every figure is a ratio or a distribution measured in the same
run against the same broker; docs/benchmarks.md explains each one.
"""

from __future__ import annotations

import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from homeguard.bench import report

T = TypeVar("T")

bench = typer.Typer(help="Benchmarks: print a table, write JSON.", no_args_is_help=True)

OutOpt = Annotated[Path | None, typer.Option("--out", help="Write the results as JSON here.")]
TmpOpt = Annotated[Path | None, typer.Option(
    "--dir", help="Scratch directory (default: a fresh temporary one, removed afterwards).")]


def _reader(value: str) -> str:
    if value not in ("paho", "tuned"):
        raise typer.BadParameter('"paho" or "tuned"')
    return value


ReaderOpt = Annotated[str, typer.Option(
    callback=_reader,
    help='The MQTT reader the gateways use: "paho" (the default) or "tuned".')]


def _in_scratch(given: Path | None, run: Callable[[Path], T]) -> T:
    """run(scratch dir), then remove the dir unless the user gave it (--dir)."""
    tmp, holder = _scratch(given)
    try:
        return run(tmp)
    finally:
        if holder:
            holder.cleanup()


def _scratch(given: Path | None) -> tuple[Path, tempfile.TemporaryDirectory[str] | None]:
    # SIGTERM (e.g. `timeout`) unwinds like Ctrl-C, so the stack's processes are stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        return given, None
    tmp = tempfile.TemporaryDirectory(prefix="hg-bench-")
    return Path(tmp.name), tmp


@bench.command("throughput")
def throughput_cmd(
    # 50k: paho drains 20k in under a second, too short for a steady figure
    messages: Annotated[int, typer.Option(help="Messages in the stream.")] = 50000,
    devices: Annotated[int, typer.Option(help="Device accounts publishing it.")] = 20,
    alarm_every: Annotated[int, typer.Option(
        help="Every n-th message of a device is an alarm (0: telemetry only).")] = 20,
    timeout: Annotated[float, typer.Option(help="Seconds each consumer may take.")] = 300,
    rounds: Annotated[int, typer.Option(min=1, help="Repeat; figures are medians.")] = 3,
    out: OutOpt = None,
    scratch: TmpOpt = None,
) -> None:
    """Gateway pipeline msg/s versus a bare paho subscriber and mosquitto_sub."""
    from homeguard.bench import throughput

    results = _in_scratch(scratch, lambda tmp: throughput.run(
        tmp, messages, devices, alarm_every, timeout, rounds))
    throughput.table(results)
    report.write(out, "throughput", {"messages": messages, "devices": devices,
                                     "alarm_every": alarm_every, "rounds": rounds}, results)


@bench.command("share")
def share_cmd(
    messages: Annotated[int, typer.Option(help="Messages in the stream.")] = 20000,
    devices: Annotated[int, typer.Option(help="Device accounts publishing it.")] = 20,
    alarm_every: Annotated[int, typer.Option(
        help="Every n-th message of a device is an alarm (0: telemetry only).")] = 20,
    timeout: Annotated[float, typer.Option(help="Seconds a group may take.")] = 300,
    rounds: Annotated[int, typer.Option(min=1, help="Repeat; figures are medians.")] = 3,
    reader: ReaderOpt = "paho",
    out: OutOpt = None,
    scratch: TmpOpt = None,
) -> None:
    """The gateway with Redis de-dup per process (vs bare paho and the local
    window), and two gateways in a $share group versus one, same stream."""
    from homeguard.bench import share

    results = _in_scratch(scratch, lambda tmp: share.run(
        tmp, messages, devices, alarm_every, timeout, rounds, reader))
    share.table(results)
    report.write(out, "share", {"messages": messages, "devices": devices,
                                "alarm_every": alarm_every, "rounds": rounds,
                                "reader": reader}, results)


@bench.command("connections")
def connections_cmd(
    devices: Annotated[str, typer.Option(
        help="Fleet sizes, comma-separated.")] = "1000,5000",
    duration: Annotated[float, typer.Option(help="Seconds each fleet runs.")] = 60,
    period: Annotated[float, typer.Option(
        help="Seconds between a device's heartbeats (and telemetry).")] = 30,
    out: OutOpt = None,
    scratch: TmpOpt = None,
) -> None:
    """Device connections one `homeguard simulate` process holds, and their cost."""
    from homeguard.bench import connections

    sizes = _ints(devices, "--devices")
    results = _in_scratch(scratch, lambda tmp: connections.run(tmp, sizes, duration, period))
    connections.table(results)
    report.write(out, "connections", {"devices": sizes, "duration_s": duration,
                                      "period_s": period}, results)


@bench.command("centre")
def centre_cmd(
    presses: Annotated[int, typer.Option(help="Alarms timed from ingest to the browser.")] = 100,
    open_alarms: Annotated[int, typer.Option(
        help="Open alarms when the desk's load time is measured again.")] = 10000,
    out: OutOpt = None,
    scratch: TmpOpt = None,
) -> None:
    """Centre: ingest -> browser latency, ingest throughput, desk load with many open alarms."""
    from homeguard.bench import centre

    results = _in_scratch(scratch, lambda tmp: centre.run(tmp, presses, open_alarms))
    centre.table(results)
    report.write(out, "centre", {"presses": presses, "open_alarms": open_alarms}, results)


@bench.command("latency")
def latency_cmd(
    loads: Annotated[str, typer.Option(
        help="Background telemetry rates, comma-separated: msg/s, or <k>x for k times the "
             "gateway's capacity, measured first (e.g. 0,1000,2x).")] = "0,1000",
    presses: Annotated[int, typer.Option(help="Alarm presses per background rate.")] = 50,
    gap: Annotated[float, typer.Option(help="Seconds between presses.")] = 0.1,
    duration: Annotated[float, typer.Option(
        help="Seconds each loaded row lasts at least (pressing all along).")] = 0.0,
    bg_devices: Annotated[int, typer.Option(help="Devices sending the background.")] = 20,
    out: OutOpt = None,
    scratch: TmpOpt = None,
) -> None:
    """Alarm press -> gateway -> centre -> browser SSE, p50/p95/p99 under load."""
    from homeguard.bench import latency

    rates = [x.strip() for x in loads.split(",") if x.strip()]
    if not all(x.isdigit() or (x.endswith("x") and x[:-1].replace(".", "", 1).isdigit())
               for x in rates):
        raise typer.BadParameter("use msg/s or <k>x, comma-separated", param_hint="--loads")
    results = _in_scratch(scratch, lambda tmp: latency.run(tmp, rates, presses, gap, bg_devices,
                                                           duration))
    latency.table(results)
    report.write(out, "latency", {"loads": rates, "presses": presses, "gap_s": gap,
                                  "duration_s": duration, "bg_devices": bg_devices}, results)


@bench.command("memory")
def memory_cmd(
    devices: Annotated[str, typer.Option(
        help="Tracked device counts, comma-separated.")] = "10000,100000",
    timeout: Annotated[float, typer.Option(
        help="Seconds the gateway may take to store every heartbeat.")] = 900,
    out: OutOpt = None,
    scratch: TmpOpt = None,
) -> None:
    """Gateway RSS with 10k and 100k tracked devices versus an idle gateway."""
    from homeguard.bench import memory

    sizes = _ints(devices, "--devices")
    results = _in_scratch(scratch, lambda tmp: memory.run(tmp, sizes, timeout))
    memory.table(results)
    report.write(out, "memory", {"devices": sizes}, results)


@bench.command("firmware")
def firmware_cmd(
    messages: Annotated[int, typer.Option(help="Messages encoded and verified per runtime.")]
        = 2000,
    mp_dir: Annotated[Path | None, typer.Option(
        "--mp-dir", envvar="HOMEGUARD_MP_DIR",
        help="Where the npm MicroPython is installed (default: "
             "$XDG_CACHE_HOME/homeguard/micropython).")] = None,
    install: Annotated[bool, typer.Option(
        "--install", help="Install the npm MicroPython into --mp-dir (npm ci, once), "
                          "then exit.")] = False,
    out: OutOpt = None,
) -> None:
    """.mpy sizes, heap per module, protocol encode/verify MicroPython vs CPython."""
    from homeguard.bench import firmware
    from homeguard.bench.rig import BenchError

    try:
        if install:
            typer.echo(firmware.install(mp_dir))
            return
        results = firmware.run(messages, mp_dir)
    except BenchError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from None
    firmware.table(results)
    report.write(out, "firmware", {"messages": messages}, results)


def _ints(text: str, option: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"{option} {text!r}: expected integers like 0,1000") from None


def register(app: typer.Typer) -> None:
    app.add_typer(bench, name="bench")


@bench.command("cost")
def cost_cmd(
    devices: Annotated[str, typer.Option(
        help="Device counts, comma-separated (rows at the first payload size).")]
        = "100,1000,10000,100000",
    payload_bytes: Annotated[str, typer.Option(
        help="Telemetry payload sizes in bytes, comma-separated, at most 1024 (rows at the "
             "first device count); the plain telemetry is 214-219 bytes.")] = "240,512,768,1024",
    messages: Annotated[int, typer.Option(
        help="Messages in each row's stream (at least the largest device count).")] = 100000,
    timeout: Annotated[float, typer.Option(help="Seconds each consumer may take.")] = 600,
    rounds: Annotated[int, typer.Option(min=1, help="Repeat; figures are medians.")] = 3,
    reader: ReaderOpt = "paho",
    out: OutOpt = None,
    scratch: TmpOpt = None,
) -> None:
    """Gateway CPU per message from 100 to 100,000 devices and up to 1,024-byte payloads."""
    from homeguard.bench import cost

    counts, sizes = _ints(devices, "--devices"), _ints(payload_bytes, "--payload-bytes")
    if not counts or not sizes:
        raise typer.BadParameter("give at least one device count and one payload size")
    results = _in_scratch(scratch, lambda tmp: cost.run(
        tmp, counts, sizes, messages, timeout, rounds, reader))
    cost.table(results)
    report.write(out, "cost", {"devices": counts, "payload_bytes": sizes, "messages": messages,
                               "rounds": rounds, "reader": reader}, results)


@bench.command("peers")
def peers_cmd(
    messages: Annotated[int, typer.Option(help="Messages in the stream (telemetry only).")]
        = 20000,
    # many: the TB gateway keys a device's values by their millisecond stamp, and
    # many messages of one device in a burst would share stamps
    devices: Annotated[int, typer.Option(help="Device accounts publishing it.")] = 1000,
    timeout: Annotated[float, typer.Option(help="Seconds each consumer may take.")] = 300,
    rounds: Annotated[int, typer.Option(min=1, help="Repeat; figures are medians.")] = 3,
    peers_dir: Annotated[Path | None, typer.Option(
        help="Where the peers are installed (default: ~/.cache/homeguard/peers).")] = None,
    install: Annotated[bool, typer.Option(
        "--install", help="Install Node-RED and thingsboard-gateway there first.")] = False,
    out: OutOpt = None,
    scratch: TmpOpt = None,
) -> None:
    """Node-RED and ThingsBoard IoT Gateway next to paho and the gateway, same stream."""
    from homeguard.bench import peers, peers_install

    where = peers_dir or peers_install.PEERS_DIR
    if install:
        peers_install.install(where)
    results = _in_scratch(scratch, lambda tmp: peers.run(
        tmp, where, messages, devices, timeout, rounds))
    peers.table(results)
    report.write(out, "peers", {"messages": messages, "devices": devices, "rounds": rounds,
                                "peers_dir": str(where)}, results)

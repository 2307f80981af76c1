"""`homeguard bench cost`: the gateway's CPU per message as the fleet grows
and as payloads grow (issue 17 goal 4: flat within 20 %).

Rows: each device count at the first payload size, then each further
payload size at the first device count; the first row is the baseline the
others are read against. Every device has its own key (derived from
fleet.KEY and its id), its own registry entry and its own broker account,
and logs in as itself to publish its share of the telemetry (wire.send_all,
a few dozen connections at a time, from several loopback source addresses
when there are many devices). Telemetry is padded with string members
(`pad00`, ... of up to protocol.MAX_STR characters) until the signed
payload is exactly the row's size.

Per row and round, as in throughput.py: a bare paho subscriber and then a
fresh gateway (its registry that row's devices, its own store) each drain
the same queued stream; the gateway's start-up (the registry load included)
is over before its first message, so neither the rate nor the CPU counts
it. The gateway's CPU is its whole process (every thread) from the first
message to the last; paho's is its network thread's. Afterwards the
gateway's store is counted: every message stored, once, for every device.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import sqlite3
import statistics
import time
from functools import partial
from pathlib import Path

from hg import protocol
from homeguard.bench import fleet, report, wire
from homeguard.bench.rig import BenchError, Rig, add_accounts, write_registry
from homeguard.bench.rig import forget_sessions as rig_forget
from homeguard.bench.throughput import Drained, GatewayConsumer, drain_paho, prime, summarise

PAD_MEMBER = len(',"pad00":""')  # the bytes one pad member adds besides its value
SPREAD_OVER = 1000  # more devices than this log in from several source addresses


def key_of(dev: str) -> bytes:
    """The device's own key: every registry entry differs, as in a real fleet."""
    return hashlib.sha256(fleet.KEY + dev.encode()).digest()


def pad(short: int) -> dict[str, str]:
    """Data members that add exactly `short` bytes to an encoded message."""
    out: dict[str, str] = {}
    while short:
        n = min(short - PAD_MEMBER, protocol.MAX_STR)
        rest = short - PAD_MEMBER - n
        if 0 < rest < PAD_MEMBER:  # leave room for one more member
            n -= PAD_MEMBER - rest
        if n < 0:
            raise BenchError(f"cannot pad a message by {short} bytes")
        out[f"pad{len(out):02d}"] = "x" * n
        short -= PAD_MEMBER + n
    return out


def telemetry(dev: str, seq: int, key: bytes, size: int) -> bytes:
    """fleet.telemetry padded to `size` bytes."""
    plain = fleet.telemetry(dev, seq, key)
    if size <= len(plain):
        if size < len(plain):
            raise BenchError(f"--payload-bytes {size}: the plain telemetry is {len(plain)}")
        return plain
    msg = protocol.parse(plain)[0]
    wire_ = protocol.encode(key, dev, seq, "telemetry", msg["type"], 0,
                            msg["data"] | pad(size - len(plain)))
    assert len(wire_) == size, (len(wire_), size)
    return wire_


def stream(ids: list[str], password: str, messages: int, size: int,
           first_seq: int) -> list[wire.Device]:
    """`messages` telemetry in all, spread evenly over the devices."""
    share, extra = divmod(messages, len(ids))
    out = []
    for i, dev in enumerate(ids):
        d = wire.Device(dev, key_of(dev), password)
        for seq in range(first_seq + 1, first_seq + 1 + share + (i < extra)):
            d.add("telemetry", telemetry(dev, seq, d.key, size))
        out.append(d)
    return out


def flood(rig: Rig, devices: list[wire.Device]) -> float:
    t0 = time.perf_counter()
    asyncio.run(wire.send_all(devices, rig.broker.host, rig.broker.port,
                              spread_sources=len(devices) > SPREAD_OVER))
    return time.perf_counter() - t0


def forget_sessions(rig: Rig) -> None:
    """Wipe the sessions of the gateway's accounts (bare paho logs in as the
    gateway too), so the next flood queues only for the consumer primed
    after this."""
    rig_forget(rig.broker.host, rig.broker.port, rig.gateway_user, rig.gateway_password)


def registry(tmp: Path, ids: list[str]) -> Path:
    """write_registry's file for these devices, each with its own key."""
    path = tmp / f"devices-{len(ids)}.json"
    if path.exists():  # the same devices every round
        return path
    write_registry(path, ids, fleet.KEY)
    doc = json.loads(path.read_text())
    for d in doc["devices"]:
        d["key"] = key_of(d["id"]).hex()
    path.write_text(json.dumps(doc))
    return path


def stored(data_dir: Path) -> tuple[int, int]:
    """(telemetry rows, distinct devices) in a stopped gateway's store."""
    db = sqlite3.connect(f"file:{data_dir / 'gateway.db'}?mode=ro", uri=True)
    try:
        rows, devices = db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT device) FROM telemetry").fetchone()
    finally:
        db.close()
    return rows, devices


def rows(devices: list[int], sizes: list[int]) -> list[tuple[int, int]]:
    """(devices, payload bytes): the device counts at the first size, then
    the other sizes at the first device count."""
    return [(d, sizes[0]) for d in devices] + [(devices[0], s) for s in sizes[1:]]


class Row:
    """One row's figures, round by round."""

    def __init__(self, devices: int, size: int, messages: int) -> None:
        self.devices, self.size, self.messages = devices, size, messages
        self.rates: dict[str, list[float]] = {"paho": [], "gateway": []}
        self.cpu: dict[str, list[float]] = {"paho": [], "gateway": []}
        self.flood_s: list[float] = []
        self.stored: list[list[int]] = []  # [rows, distinct devices] per round
        self.shed: list[int] = []

    def keep(self, rounds: int) -> None:
        """Forget a round begun but not finished (it is run again)."""
        for v in (*self.rates.values(), *self.cpu.values()):
            del v[rounds:]
        del self.stored[rounds:], self.shed[rounds:]
        del self.flood_s[2 * rounds:]

    def add(self, name: str, drained: Drained) -> None:
        first, last, cpu_s = drained
        self.rates[name].append((self.messages - 1) / max(last - first, 1e-6))
        self.cpu[name].append(cpu_s * 1e6 / self.messages)


def run_row(rig: Rig, tmp: Path, row: Row, password: str, r: int, timeout: float,
            reader: str) -> None:
    """One round of one row: the same stream into paho, then into a fresh gateway."""
    ids = fleet.ids("hg-c", row.devices)
    devices = stream(ids, password, row.messages, row.size,
                     r * -(-row.messages // row.devices))
    name = f"gw-cost-{row.devices}-{row.size}-{r + 1}"
    gateway = GatewayConsumer(rig, registry(tmp, ids), name, row.shed, reader)
    for consumer, do_prime, drain in (
            ("paho", partial(prime, rig, "bench-paho"),
             partial(drain_paho, rig, row.messages, timeout)),
            ("gateway", gateway.prime, partial(gateway.drain, row.messages, timeout))):
        do_prime()
        row.flood_s.append(flood(rig, devices))
        row.add(consumer, drain())
        forget_sessions(rig)  # so the next flood queues for the next consumer alone
    row.stored.append(list(stored(gateway.gw.data_dir)))
    shutil.rmtree(gateway.gw.data_dir)  # 100k padded points are ~100 MB a store


def run(tmp: Path, devices: list[int], sizes: list[int], messages: int, timeout: float,
        rounds: int = 3, reader: str = "paho") -> dict:
    """Every row once per round (rows in turn, so a round's rows share the
    machine's load); figures are medians over the rounds."""
    if messages < max(devices):
        raise BenchError(f"{messages} messages cannot come from {max(devices)} devices")
    if max(sizes) > protocol.MAX_PAYLOAD:
        raise BenchError(f"payloads are at most {protocol.MAX_PAYLOAD} bytes")
    rig = Rig(tmp)
    try:
        password = add_accounts(rig.broker, fleet.ids("hg-c", max(devices)))
        rig.start_centre()
        table = [Row(d, s, messages) for d, s in rows(devices, sizes)]
        for r in range(rounds):
            for row in table:
                try:
                    run_row(rig, tmp, row, password, r, timeout, reader)
                except RuntimeError as exc:
                    # a free port taken by another program before the gateway
                    # bound it (a shared machine): once more, on other ports
                    if "Address already in use" not in str(exc):
                        raise
                    row.keep(r)
                    forget_sessions(rig)
                    run_row(rig, tmp, row, password, r, timeout, reader)
        return {"rows": [summary(row, table[0]) for row in table]}
    finally:
        rig.stop()


def _per_round(a: list[float], b: list[float]) -> list[float]:
    return [x / y if y else 0.0 for x, y in zip(a, b, strict=True)]


def summary(row: Row, first: Row) -> dict:
    """The row's figures, its cost against the first row's in each round."""
    out = summarise(row.rates, row.cpu, row.messages)
    gw, paho = row.cpu["gateway"], row.cpu["paho"]
    vs_first = _per_round(gw, first.cpu["gateway"])
    paho_vs_first = _per_round(paho, first.cpu["paho"])
    own = [g - p for g, p in zip(gw, paho, strict=True)]
    return out | {
        "devices": row.devices, "payload_bytes": row.size, "messages": row.messages,
        "cost_vs_first": statistics.median(vs_first), "cost_vs_first_rounds": vs_first,
        "paho_cost_vs_first": statistics.median(paho_vs_first),
        "paho_cost_vs_first_rounds": paho_vs_first,
        "gateway_over_paho_us": statistics.median(own), "gateway_over_paho_us_rounds": own,
        "flood_s_rounds": row.flood_s, "stored_rounds": row.stored,
        "gateway_shed_rounds": row.shed,
    }


def table(results: dict) -> None:
    out = []
    for r in results["rows"]:
        g, p = r["gateway"], r["paho"]
        out.append([f"{r['devices']:,}", r["payload_bytes"], g["cpu_us_per_msg"],
                    f"{r['cost_vs_first'] - 1:+.0%}",
                    " ".join(f"{x - 1:+.0%}" for x in r["cost_vs_first_rounds"]),
                    g["msg_per_s"], p["cpu_us_per_msg"], f"{r['paho_cost_vs_first'] - 1:+.0%}",
                    p["msg_per_s"], r["gateway_over_paho_us"]])
    report.show("cost: the gateway's CPU per message (goal: within ±20 % of the first row; "
                "medians of the rounds, each round against the first row of that round)",
                ["devices", "payload B", "gw CPU µs/msg", "vs first", "rounds", "gw msg/s",
                 "paho CPU µs/msg", "vs first", "paho msg/s", "gw − paho µs"], out)
    for r in results["rows"]:
        bad = [s for s in r["stored_rounds"] if s != [r["messages"], r["devices"]]]
        if bad:
            report.note(f"[red]{r['devices']:,} devices, {r['payload_bytes']} B: the gateway "
                        f"stored {bad} (rows, devices), not {r['messages']} from "
                        f"{r['devices']}[/red]")
        if any(r["gateway_shed_rounds"]):
            report.note(f"[red]{r['devices']:,} devices, {r['payload_bytes']} B: the gateway "
                        f"shed telemetry: {r['gateway_shed_rounds']}[/red]")

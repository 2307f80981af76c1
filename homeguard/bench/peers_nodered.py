"""Node-RED as a peer of the gateway: `mqtt in` (QoS 1, a persistent
session) -> a function node that makes a point of the message's `data` ->
`influxdb out` (one write a message), or -> a `join` node (500 points, or
whatever came within 0.1 s) -> `influxdb batch` (one write a batch); both
write InfluxDB v2 line protocol to VictoriaMetrics (/api/v2/write). Nothing
checks the signature, de-duplicates or stores a message before it is acked:
that is what Node-RED does with a flow like this one.

The broker node does not connect at start: the bench waits until the flows
run, then POSTs /go (an `http in` node -> `mqtt out` with action "connect"),
so start-up is left out. A `complete` node on the write node counts the
points of each successful write and the time of the last (Node-RED's
clock, ms; the function node stamps the first message in), a `catch` node
those of a failed write; the bench
polls them on /progress. (VictoriaMetrics' own counters move once a
second, too coarse to time a drain.) The points in VictoriaMetrics are
counted at the end."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import psutil

from homeguard.bench.peers_install import NodeRed
from homeguard.bench.rig import BenchError, Proc, Rig, wait_until
from homeguard.bench.servers import VictoriaMetrics, free_port
from homeguard.bench.throughput import Drained, prime, samples_in

BATCH = 500
POINT_JS = """const m = msg.payload;
if (!flow.get('first')) flow.set('first', Date.now());
const fields = {rms_ma: m.data.rms_ma, v_dv: m.data.v_dv, leak_ma: m.data.leak_ma,
                temp_dc: m.data.temp_dc};
msg.payload = %s;
return msg;"""
EACH = "[fields, {device: m.dev}]"  # influxdb out: [fields, tags]
ONE = "{measurement: '%s', fields: fields, tags: {device: m.dev}}"  # influxdb batch: points
COUNT_JS = """const n = %s;
flow.set('last', Date.now());
flow.set('%s', (flow.get('%s') || 0) + n);
return null;"""
PROGRESS_JS = """msg.payload = {done: flow.get('done') || 0, failed: flow.get('failed') || 0,
               first: flow.get('first') || 0, last: flow.get('last') || 0};
return msg;"""


def _writer(measurement: str, batched: bool) -> tuple[str, list[dict], dict]:
    """(the point function's code, the nodes between it and the write, the write node)."""
    write: dict = {"id": "write", "z": "tab", "influxdb": "vm", "org": "hg", "bucket": "bench",
                   "precisionV18FluxV20": "ms", "wires": []}
    if not batched:
        return POINT_JS % EACH, [], write | {"type": "influxdb out", "measurement": measurement}
    join = {"id": "join", "type": "join", "z": "tab", "mode": "custom", "build": "array",
            "property": "payload", "propertyType": "msg", "count": str(BATCH),
            "timeout": "0.1", "accumulate": False, "wires": [["write"]]}
    return POINT_JS % (ONE % measurement), [join], write | {"type": "influxdb batch"}


def _progress(batched: bool) -> list[dict]:
    """Count the points of successful and failed writes; serve them on /progress."""
    n = "msg.payload.length" if batched else "1"
    return [
        {"id": "ok", "type": "complete", "z": "tab", "scope": ["write"], "uncaught": False,
         "wires": [["count-ok"]]},
        {"id": "count-ok", "type": "function", "z": "tab", "outputs": 1, "wires": [[]],
         "func": COUNT_JS % (n, "done", "done")},
        {"id": "bad", "type": "catch", "z": "tab", "scope": ["write"], "uncaught": False,
         "wires": [["count-bad"]]},
        {"id": "count-bad", "type": "function", "z": "tab", "outputs": 1, "wires": [[]],
         "func": COUNT_JS % (n, "failed", "failed")},
        {"id": "get", "type": "http in", "z": "tab", "url": "/progress", "method": "get",
         "upload": False, "wires": [["answer"]]},
        {"id": "answer", "type": "function", "z": "tab", "outputs": 1, "func": PROGRESS_JS,
         "wires": [["reply"]]},
        {"id": "reply", "type": "http response", "z": "tab", "statusCode": "", "headers": {},
         "wires": []},
        {"id": "go", "type": "http in", "z": "tab", "url": "/go", "method": "post",
         "upload": False, "wires": [["connect", "reply"]]},
        {"id": "connect", "type": "change", "z": "tab", "wires": [["out"]], "rules": [
            {"t": "set", "p": "action", "pt": "msg", "to": "connect", "tot": "str"}]},
        {"id": "out", "type": "mqtt out", "z": "tab", "broker": "broker", "wires": []}]


def flows(rig: Rig, victoria: VictoriaMetrics, client_id: str, measurement: str,
          batched: bool) -> list[dict]:
    code, steps, write = _writer(measurement, batched)
    nodes: list[dict] = [
        {"id": "tab", "type": "tab", "label": "bench"},
        {"id": "broker", "type": "mqtt-broker", "broker": rig.broker.host,
         "port": str(rig.broker.port), "clientid": client_id, "autoConnect": False,
         "usetls": False, "protocolVersion": "4", "keepalive": "60", "cleansession": False,
         "autoUnsubscribe": False},
        {"id": "vm", "type": "influxdb", "influxdbVersion": "2.0", "url": victoria.url,
         "timeout": "10", "rejectUnauthorized": False},
        {"id": "in", "type": "mqtt in", "z": "tab", "topic": "hg/v1/+/telemetry", "qos": "1",
         "datatype": "json", "broker": "broker", "nl": False, "rap": True, "rh": 0,
         "inputs": 0, "wires": [["point"]]},
        {"id": "point", "type": "function", "z": "tab", "func": code, "outputs": 1,
         "wires": [[(steps[0] if steps else write)["id"]]]},
        *steps, write, *_progress(batched)]
    for i, n in enumerate(n for n in nodes if "z" in n):
        n |= {"x": 100 + 150 * i, "y": 100}  # a node without a place is a config node
    return nodes


class NodeRedConsumer:
    """One Node-RED process with one of the two flows, in its own user dir."""

    def __init__(self, rig: Rig, found: NodeRed, victoria: VictoriaMetrics, name: str,
                 batched: bool) -> None:
        self.rig, self.victoria, self.measurement = rig, victoria, name
        self.client_id = f"bench-{name.replace('_', '-')}"
        home = rig.tmp / name
        home.mkdir(parents=True, exist_ok=True)
        (home / "flows.json").write_text(json.dumps(
            flows(rig, victoria, self.client_id, name, batched), indent=1))
        (home / "flows_cred.json").write_text(json.dumps({
            "broker": {"user": rig.gateway_user, "password": rig.gateway_password},
            "vm": {"token": "bench"}}))
        self.port = free_port()
        (home / "settings.js").write_text(_settings(home, found, self.port))
        self.proc = Proc(name, [str(found.node), str(found.red_js), "--userDir", str(home),
                                "--settings", str(home / "settings.js")], rig.tmp)
        rig.procs.append(self.proc)

    def prime(self) -> None:
        prime(self.rig, self.client_id)

    def progress(self) -> dict[str, int] | None:
        """{done, failed, first, last} (points; ms) or None while it does not answer."""
        try:
            r = httpx.get(f"http://127.0.0.1:{self.port}/progress", timeout=2)
            return {k: int(v) for k, v in r.json().items()} if r.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None

    def drain(self, count: int, timeout: float) -> Drained:
        """Rate from its own stamps of the first and the last write; CPU from
        the connect to the poll that saw the last (every 50 ms)."""
        self.proc.start()
        try:
            self.proc.wait_ready(lambda: self.progress() is not None, 60)
            cpu0 = tree_cpu(self.proc)
            httpx.post(f"http://127.0.0.1:{self.port}/go", timeout=5).raise_for_status()
            seen: dict[str, int] = {}

            def finished() -> bool:
                seen.update(self.progress() or {})
                return seen.get("done", 0) + seen.get("failed", 0) >= count

            wait_until(finished, timeout, f"{self.proc.name} to write {count} points")
            cpu1 = tree_cpu(self.proc)
        except (TimeoutError, RuntimeError, httpx.HTTPError) as e:
            raise BenchError(f"{e} (at {seen})\n{self.proc.logs()}") from e
        finally:
            self.proc.stop()
        return seen["first"] / 1000, seen["last"] / 1000, cpu1 - cpu0

    def stored(self) -> int:
        return samples_in(self.victoria, f"{self.measurement}_v_dv")


def _settings(home: Path, found: NodeRed, port: int) -> str:
    """Headless (no editor; HTTP nodes for /progress), credentials in clear in
    the user dir, the influxdb nodes from the peers' node_modules."""
    return "module.exports = " + json.dumps({
        "uiHost": "127.0.0.1", "uiPort": port, "httpAdminRoot": False,
        "httpNodeRoot": "/", "credentialSecret": False, "flowFile": str(home / "flows.json"),
        "nodesDir": [str(found.red_js.parent.parent / "node-red-contrib-influxdb")],
        "logging": {"console": {"level": "warn"}},
        # no update check or telemetry: the bench sends nothing off this machine
        "telemetry": {"enabled": False}, "diagnostics": {"enabled": False}}) + ";\n"


def tree_cpu(proc: Proc) -> float:
    """User + system CPU seconds of a process and its children."""
    root = psutil.Process(proc.pid)
    total = 0.0
    for p in (root, *root.children(recursive=True)):
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total

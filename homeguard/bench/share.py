"""`homeguard bench share`: two gateway processes in one MQTT shared
subscription group (Redis de-dup state) versus one, on the same broker and
the same stream, in the same run.

For each round and each group size: fresh Redis state and fresh gateway
stores; the gateways are started and subscribed ($share/bench/...), then
the flood publisher sends the stream live (pre-encoded, PUBACK-paced, so it
is not the bottleneck) and the gateways' /metrics are polled every 20 ms.
The rate is messages from the first to the last one handled by the group.
Next to it: the publisher's own rate (if it is close to the group's, the
group was waiting for the publisher) and how the messages were split."""

from __future__ import annotations

import shutil
import statistics
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import redis
from paho.mqtt.enums import CallbackAPIVersion

from homeguard.bench import fleet, report, throughput
from homeguard.bench.rig import BenchError, Gateway, Rig, add_accounts, write_registry
from homeguard.bench.servers import RedisServer

GROUP = "bench"


def _redis(tmp: Path) -> RedisServer:
    binary = shutil.which("redis-server")
    if binary is None:
        raise BenchError("redis-server is not installed (Debian: redis-server)")
    server = RedisServer(binary, tmp / "redis")
    server.start()
    return server


def _drain(gws: list, count: int, timeout: float) -> tuple[float, float, list[int]]:
    first = 0.0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        split = [g.handled() for g in gws]
        n, now = sum(split), time.time()
        if n and not first:
            first = now
        if n >= count:
            return first, now, split
        time.sleep(0.02)
    raise BenchError(f"the group handled {sum(g.handled() for g in gws)} of {count} "
                     f"in {timeout:.0f}s")


def forget_session(gw: Gateway) -> None:
    """End a gateway's persistent session (a clean-session connect with its
    account, which the broker keys sessions by): Mosquitto keeps handing a share
    group's messages to the stored session of a member that left, where they
    would wait for it to come back."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=gw.user, clean_session=True)
    c.username_pw_set(gw.user, gw.password)
    c.connect("127.0.0.1", gw.broker_port)
    c.loop_start()
    c.disconnect()
    c.loop_stop()


def one_round(rig: Rig, registry: Path, size: int, stream: list, messages: int,
              redis_url: str, tag: str, timeout: float) -> dict:
    redis.Redis.from_url(redis_url).flushdb()
    extra = f'\n[dedup]\nbackend = "redis"\nredis_url = "{redis_url}"\n'
    gws = [rig.gateway(f"gw-{tag}-{size}-{i}", registry, extra=extra, share_group=GROUP)
           for i in range(size)]
    try:
        for g in gws:
            g.start()
        published: list[float] = []
        pub = threading.Thread(target=lambda: published.append(throughput.flood(rig, stream)))
        pub.start()
        first, last, split = _drain(gws, messages, timeout)
        pub.join(timeout)
    finally:
        for g in gws:
            g.proc.stop()
            forget_session(g)
    return {"msg_per_s": (messages - 1) / max(last - first, 1e-6),
            "publisher_msg_per_s": messages / published[0] if published else 0.0,
            "split": split}


def run(tmp: Path, messages: int, devices: int, alarm_every: int, timeout: float,
        rounds: int) -> dict:
    rig = Rig(tmp)
    server = _redis(tmp)
    try:
        ids = fleet.ids("hg-s", devices)
        password = add_accounts(rig.broker, ids)
        registry = tmp / "devices.json"
        write_registry(registry, ids, fleet.KEY)
        rig.start_centre()
        per_device = -(-messages // devices)
        runs: dict[int, list[dict]] = {1: [], 2: []}
        for r in range(rounds):
            for size in (1, 2):
                first_seq = (2 * r + size - 1) * per_device  # a fresh stream each time
                stream = fleet.mixed(ids, password, messages, alarm_every, first_seq)
                runs[size].append(one_round(rig, registry, size, stream, messages,
                                            server.url, f"r{r + 1}", timeout))
        return summarise(runs, messages)
    finally:
        server.stop()
        rig.stop()


def summarise(runs: dict[int, list[dict]], messages: int) -> dict:
    out: dict = {}
    for size, rs in runs.items():
        rates = [x["msg_per_s"] for x in rs]
        out[f"gateways_{size}"] = {
            "messages": messages, "msg_per_s": statistics.median(rates), "rounds": rates,
            "publisher_msg_per_s": statistics.median(x["publisher_msg_per_s"] for x in rs),
            "split": [x["split"] for x in rs]}
    ratios = [b / a for a, b in zip(out["gateways_1"]["rounds"], out["gateways_2"]["rounds"],
                                    strict=True)]
    out["ratio_two_one"] = statistics.median(ratios)
    out["ratio_two_one_rounds"] = ratios
    return out


def table(results: dict) -> None:
    rows = [[name, r["messages"], r["msg_per_s"], min(r["rounds"]), max(r["rounds"]),
             r["publisher_msg_per_s"], " ".join("/".join(map(str, s)) for s in r["split"])]
            for name, r in results.items() if isinstance(r, dict)]
    report.show("share group: one stream, live, msg/s (Redis de-dup state)",
                ["group", "messages", "median", "min", "max", "publisher", "split per round"],
                rows)
    report.show("ratio, median of the rounds", ["ratio", "median", "rounds"], [
        ["two gateways / one", results["ratio_two_one"],
         " ".join(f"{x:.2f}" for x in results["ratio_two_one_rounds"])]])

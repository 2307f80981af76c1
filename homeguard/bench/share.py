"""`homeguard bench share`: the gateway with its de-dup state in Redis, per
process and in an MQTT shared subscription group, in the same run.

Per process (issue 17: the Redis mode at >= 0.5 of bare paho): bare paho,
the gateway with its local window and the gateway with the state in Redis
drain the same queued stream in turn, as `homeguard bench throughput` does
(throughput.py: prime the session, queue the stream, drain), with each
one's CPU per message.

Share group: for each group size, fresh Redis state and fresh gateway
stores; the gateways are started and subscribed ($share/bench/...), then
the flood publisher sends the stream live (pre-encoded, PUBACK-paced, so it
is not the bottleneck) and the gateways' /metrics are polled every 20 ms.
The rate is messages from the first to the last one handled by the group.
Next to it: the publisher's own rate (if it is close to the group's, the
group was waiting for the publisher), how the messages were split, and
each gateway's CPU per message it handled (on a machine with fewer cores
than processes the rate cannot show what a second gateway adds; the CPU per
message can)."""

from __future__ import annotations

import shutil
import statistics
import threading
import time
from pathlib import Path

import psutil
import redis

from homeguard.bench import fleet, report, throughput
from homeguard.bench.rig import (
    BenchError,
    Gateway,
    Rig,
    add_accounts,
    forget_sessions,
    write_registry,
)
from homeguard.bench.servers import RedisServer

GROUP = "bench"
CONNECT_TRIES = 30
PER_PROCESS = ("paho", "gateway_local", "gateway_redis")


def redis_extra(url: str) -> str:
    return f'\n[dedup]\nbackend = "redis"\nredis_url = "{url}"\n'


def _redis(tmp: Path) -> RedisServer:
    binary = shutil.which("redis-server")
    if binary is None:
        raise BenchError("redis-server is not installed (Debian: redis-server)")
    server = RedisServer(binary, tmp / "redis")
    server.start()
    return server


def redis_cpu(url: str) -> float:
    """CPU seconds the Redis server has used (user + system)."""
    info = redis.Redis.from_url(url).info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _cpu(gw: Gateway) -> float:
    t = psutil.Process(gw.proc.pid).cpu_times()
    return t.user + t.system


def _drain(gws: list, count: int, timeout: float) -> tuple[float, float, list[int], list[float]]:
    """(first, last, messages per gateway, CPU s per gateway between the two)."""
    first = 0.0
    cpu0: list[float] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        split = [g.handled() for g in gws]
        n, now = sum(split), time.time()
        if n and not first:
            first, cpu0 = now, [_cpu(g) for g in gws]
        if n >= count:
            return first, now, split, [_cpu(g) - c for g, c in zip(gws, cpu0, strict=True)]
        time.sleep(0.02)
    raise BenchError(f"the group handled {sum(g.handled() for g in gws)} of {count} "
                     f"in {timeout:.0f}s")


def forget_session(gw: Gateway) -> None:
    """End a gateway's persistent sessions: Mosquitto keeps handing a share
    group's messages to the stored session of a member that left, where they
    would wait for it to come back, and an idle plain session would go on
    queueing every message."""
    forget_sessions("127.0.0.1", gw.broker_port, gw.user, gw.password, CONNECT_TRIES)


def one_round(rig: Rig, registry: Path, size: int, stream: list, messages: int,
              redis_url: str, tag: str, timeout: float, reader: str) -> dict:
    redis.Redis.from_url(redis_url).flushdb()
    gws = [rig.gateway(f"gw-{tag}-{size}-{i}", registry, extra=redis_extra(redis_url),
                       share_group=GROUP, reader=reader) for i in range(size)]
    try:
        for g in gws:
            g.start()
        published: list[float] = []
        pub = threading.Thread(target=lambda: published.append(throughput.flood(rig, stream)))
        redis0 = redis_cpu(redis_url)
        pub.start()
        first, last, split, cpu = _drain(gws, messages, timeout)
        redis_s = redis_cpu(redis_url) - redis0
        pub.join(timeout)
    finally:
        for g in gws:
            g.proc.stop()
            forget_session(g)
    return {"msg_per_s": (messages - 1) / max(last - first, 1e-6),
            "publisher_msg_per_s": messages / published[0] if published else 0.0,
            "split": split,
            "cpu_us_per_msg": [c * 1e6 / max(n, 1) for c, n in zip(cpu, split, strict=True)],
            "redis_cpu_us_per_msg": redis_s * 1e6 / messages}


def per_process(rig: Rig, registry: Path, stream: list, messages: int, redis_url: str,
                tag: str, timeout: float, reader: str) -> dict[str, tuple[float, float, float]]:
    """Each consumer drains the same queued stream: (msg/s, CPU us/msg, Redis's
    CPU us/msg meanwhile)."""
    shed: list[int] = []
    local = throughput.GatewayConsumer(rig, registry, f"gw-local-{tag}", shed, reader)
    shared = throughput.GatewayConsumer(rig, registry, f"gw-redis-{tag}", shed, reader,
                                        redis_extra(redis_url))

    def prime_shared() -> None:
        redis.Redis.from_url(redis_url).flushdb()
        shared.prime()

    consumers = {
        "paho": (lambda: throughput.prime(rig, "bench-paho"),
                 lambda: throughput.drain_paho(rig, messages, timeout)),
        "gateway_local": (local.prime, lambda: local.drain(messages, timeout)),
        "gateway_redis": (prime_shared, lambda: shared.drain(messages, timeout)),
    }
    out = {}
    for name, (prime, drain) in consumers.items():
        prime()
        throughput.flood(rig, stream)
        redis0 = redis_cpu(redis_url)
        first, last, cpu_s = drain()
        out[name] = ((messages - 1) / max(last - first, 1e-6), cpu_s * 1e6 / messages,
                     (redis_cpu(redis_url) - redis0) * 1e6 / messages)
    # the three share one account, so one session (and its telemetry companion):
    # left subscribed, it would queue every message of the share group's runs
    forget_session(local.gw)
    if any(shed):
        raise BenchError(f"a gateway shed telemetry (overloaded): {shed}")
    return out


def run(tmp: Path, messages: int, devices: int, alarm_every: int, timeout: float,
        rounds: int, reader: str = "paho") -> dict:
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
        procs: dict[str, list[tuple[float, float, float]]] = {n: [] for n in PER_PROCESS}
        for r in range(rounds):
            tag = f"r{r + 1}"
            # a fresh stream each time: 3 per round
            stream = fleet.mixed(ids, password, messages, alarm_every, 3 * r * per_device)
            for name, figures in per_process(rig, registry, stream, messages, server.url,
                                             tag, timeout, reader).items():
                procs[name].append(figures)
            for size in (1, 2):
                first_seq = (3 * r + size) * per_device
                stream = fleet.mixed(ids, password, messages, alarm_every, first_seq)
                runs[size].append(one_round(rig, registry, size, stream, messages,
                                            server.url, tag, timeout, reader))
        return summarise(runs, messages) | summarise_procs(procs, messages) | {"reader": reader}
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
            "split": [x["split"] for x in rs],
            "cpu_us_per_msg": statistics.median(c for x in rs for c in x["cpu_us_per_msg"]),
            "cpu_us_per_msg_rounds": [x["cpu_us_per_msg"] for x in rs],
            "redis_cpu_us_per_msg": statistics.median(x["redis_cpu_us_per_msg"] for x in rs)}
    ratios = [b / a for a, b in zip(out["gateways_1"]["rounds"], out["gateways_2"]["rounds"],
                                    strict=True)]
    out["ratio_two_one"] = statistics.median(ratios)
    out["ratio_two_one_rounds"] = ratios
    return out


def summarise_procs(procs: dict[str, list[tuple[float, float, float]]], messages: int) -> dict:
    out: dict = {"per_process": {
        name: {"messages": messages, "msg_per_s": statistics.median(x[0] for x in v),
               "rounds": [x[0] for x in v], "cpu_us_per_msg": statistics.median(x[1] for x in v),
               "cpu_us_per_msg_rounds": [x[1] for x in v],
               "redis_cpu_us_per_msg": statistics.median(x[2] for x in v)}
        for name, v in procs.items()}}
    for name in ("gateway_local", "gateway_redis"):
        per_round = [g[0] / p[0] for g, p in zip(procs[name], procs["paho"], strict=True)]
        out[f"ratio_{name}_paho"] = statistics.median(per_round)
        out[f"ratio_{name}_paho_rounds"] = per_round
    per_round = [g[0] / loc[0] for g, loc in zip(procs["gateway_redis"],
                                                 procs["gateway_local"], strict=True)]
    out["ratio_gateway_redis_gateway_local"] = statistics.median(per_round)
    out["ratio_gateway_redis_gateway_local_rounds"] = per_round
    return out


def _rounds(xs: list[float]) -> str:
    return " ".join(f"{x:.2f}" for x in xs)


def table(results: dict) -> None:
    procs = results["per_process"]
    report.show(f"per process: draining the same queued stream, msg/s "
                f"(reader \"{results['reader']}\")",
                ["consumer", "messages", "median", "min", "max", "CPU us/msg",
                 "Redis CPU us/msg"],
                [[name, r["messages"], r["msg_per_s"], min(r["rounds"]), max(r["rounds"]),
                  r["cpu_us_per_msg"], r["redis_cpu_us_per_msg"]] for name, r in procs.items()])
    rows = [[name, r["messages"], r["msg_per_s"], min(r["rounds"]), max(r["rounds"]),
             r["publisher_msg_per_s"], r["cpu_us_per_msg"], r["redis_cpu_us_per_msg"],
             " ".join("/".join(map(str, s)) for s in r["split"])]
            for name, r in results.items() if name.startswith("gateways_")]
    report.show("share group: one stream, live, msg/s (Redis de-dup state)",
                ["group", "messages", "median", "min", "max", "publisher",
                 "CPU us/msg per gateway", "Redis CPU us/msg", "split per round"], rows)
    report.show("ratios, median of the rounds (goal: gateway_redis / paho >= 0.5)",
                ["ratio", "median", "rounds"], [
        [f"{a} / {b}", results[f"ratio_{a}_{b}"], _rounds(results[f"ratio_{a}_{b}_rounds"])]
        for a, b in (("gateway_redis", "paho"), ("gateway_local", "paho"),
                     ("gateway_redis", "gateway_local"))] + [
        ["two gateways / one (share group)", results["ratio_two_one"],
         _rounds(results["ratio_two_one_rounds"])]])

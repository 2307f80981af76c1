"""Pre-encoded device traffic for the benchmarks (hg.protocol, signed)."""

from __future__ import annotations

import secrets

from hg import protocol
from homeguard.bench.wire import Device

KEY = secrets.token_bytes(32)  # one key for every bench device: keys do not change the cost


def ids(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{i:06d}" for i in range(count)]


def telemetry(dev: str, seq: int, key: bytes = KEY) -> bytes:
    data = {"rms_ma": 1200 + seq % 97, "v_dv": 2301, "leak_ma": seq % 7, "temp_dc": 315}
    return protocol.encode(key, dev, seq, "telemetry", "periodic", 0, data)


def alarm(dev: str, seq: int, ts: int | None = None) -> bytes:
    return protocol.encode(KEY, dev, seq, "alarm", "fire", 0, {"zone": 1}, ts)


def heartbeat(dev: str, seq: int) -> bytes:
    return protocol.encode(KEY, dev, seq, "heartbeat", "periodic", 0, {"rssi": -61})


def mixed(devices: list[str], password: str, messages: int, alarm_every: int,
          first_seq: int = 0) -> list[Device]:
    """`messages` in all, round-robin over the devices; every `alarm_every`-th
    message of a device is an alarm (seqs after first_seq), the rest telemetry; all QoS 1 (the
    broker queues only QoS 1 for a consumer that is away)."""
    out = [Device(d, KEY, password) for d in devices]
    for n in range(messages):
        dev = out[n % len(out)]
        seq = first_seq + len(dev.packets) + 1
        if alarm_every and seq % alarm_every == 0:
            dev.add("event", alarm(dev.id, seq))
        else:
            dev.add("telemetry", telemetry(dev.id, seq))
    return out

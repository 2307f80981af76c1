"""Background telemetry at a steady rate, in its own process (so it does not
share the measuring process's GIL): `rate` msg/s spread over device
connections, QoS 1, from pre-encoded payloads reused in a cycle (the gateway
verifies telemetry but does not de-duplicate it)."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import time

from homeguard.bench import fleet, wire

TICK_S = 0.01


async def _device(dev: str, key: bytes, password: str, host: str, port: int, rate: float,
                  stop_at: float) -> None:
    pool = [wire.publish(f"hg/v1/{dev}/telemetry", fleet.telemetry(dev, s, key), 1, s)
            for s in range(1, 1001)]
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(wire.connect(f"bench-bg-{dev}", dev, password))
    await wire._read_packets(reader, wire.CONNACK, 1)
    drain = asyncio.create_task(wire._read_packets(reader, wire.PUBACK, 1 << 62))
    packets = itertools.cycle(pool)
    start, sent = time.monotonic(), 0
    while time.monotonic() < stop_at:
        due = int((time.monotonic() - start) * rate)
        if due > sent:
            writer.write(b"".join(next(packets) for _ in range(due - sent)))
            sent = due
            await writer.drain()
        await asyncio.sleep(TICK_S)
    drain.cancel()
    writer.write(wire.DISCONNECT)
    writer.close()


def _main(devices: list[str], key: bytes, password: str, host: str, port: int, rate: float,
          seconds: float) -> None:
    stop_at = time.monotonic() + seconds
    per = rate / len(devices)

    async def all_() -> None:
        await asyncio.gather(*(_device(d, key, password, host, port, per, stop_at)
                               for d in devices))

    asyncio.run(all_())


def start(devices: list[str], password: str, host: str, port: int, rate: float,
          seconds: float) -> subprocess.Popen[bytes]:
    """`python -m homeguard.bench.background` with the job as JSON on argv."""
    job = json.dumps({"devices": devices, "key": fleet.KEY.hex(), "password": password,
                      "host": host, "port": port, "rate": rate, "seconds": seconds})
    return subprocess.Popen([sys.executable, "-m", "homeguard.bench.background", job])


if __name__ == "__main__":
    _job = json.loads(sys.argv[1])
    _main(_job["devices"], bytes.fromhex(_job["key"]), _job["password"], _job["host"],
          _job["port"], _job["rate"], _job["seconds"])

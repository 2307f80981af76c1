"""Background telemetry at a steady rate that is verified to be reached.

`processes` publisher processes (so they share no GIL with the measuring
process or each other), each with its slice of the devices and the rate,
one raw MQTT connection per device (homeguard/bench/wire.py). Every
message is new to the gateway: fresh seqs from `first_seq` up, so none is
a duplicate (the gateway de-duplicates telemetry too). The packets are
encoded and signed before the clock starts (each process prints `ready`
and waits for `go` on stdin), so the run itself only writes bytes; each
process counts the broker's PUBACKs and prints them at the end, which is
the rate the broker took: `Background.finish()` returns it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass

from homeguard.bench import fleet, wire

TICK_S = 0.01


async def _count_pubacks(reader: asyncio.StreamReader, counts: list[int]) -> None:
    """Only 4-byte PUBACKs come back to a publisher that does not ping."""
    got = 0
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            return
        got += len(chunk)
        counts[0] = got // 4


async def _device(dev: str, password: str, host: str, port: int, rate: float,
                  packets: list[bytes], stop_at: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(wire.connect(f"bench-bg-{dev}", dev, password, keepalive=600))
    await wire._read_packets(reader, wire.CONNACK, 1)
    acks = asyncio.create_task(_count_pubacks(reader, counts))
    start, sent = time.monotonic(), 0
    while time.monotonic() < stop_at and sent < len(packets):
        due = min(int((time.monotonic() - start) * rate), len(packets))
        if due > sent:
            writer.write(b"".join(packets[sent:due]))
            sent = due
            await writer.drain()
        await asyncio.sleep(TICK_S)
    deadline = time.monotonic() + 5  # the last PUBACKs
    while counts[0] < sent and time.monotonic() < deadline:
        await asyncio.sleep(TICK_S)
    acks.cancel()
    writer.write(wire.DISCONNECT)
    writer.close()


def _packets(dev: str, key: bytes, first_seq: int, count: int) -> list[bytes]:
    return [wire.publish(f"hg/v1/{dev}/telemetry", fleet.telemetry(dev, seq, key), 1,
                         seq % 65535 + 1) for seq in range(first_seq + 1, first_seq + count + 1)]


def _main(job: dict) -> None:
    devices, rate, seconds = job["devices"], job["rate"], job["seconds"]
    per, key = rate / len(devices), bytes.fromhex(job["key"])
    packets = {d: _packets(d, key, job["first_seq"], int(per * seconds) + 1) for d in devices}
    counts = {d: [0] for d in devices}
    print("ready", flush=True)
    sys.stdin.readline()  # go
    t0 = time.monotonic()
    stop_at = t0 + seconds

    async def all_() -> None:
        await asyncio.gather(*(_device(d, job["password"], job["host"], job["port"], per,
                                       packets[d], stop_at, counts[d]) for d in devices))

    asyncio.run(all_())
    print(json.dumps({"acked": sum(c[0] for c in counts.values()),
                      "seconds": min(time.monotonic() - t0, seconds)}), flush=True)


@dataclass
class Background:
    """Running publisher processes; finish() gives the rate the broker took."""

    procs: list[subprocess.Popen[str]]
    asked: float

    def finish(self, timeout: float = 60) -> float:
        acked, seconds = 0, 0.0
        for p in self.procs:
            out, _ = p.communicate(timeout=timeout)
            last = json.loads(out.strip().splitlines()[-1])
            acked += last["acked"]
            seconds = max(seconds, last["seconds"])
        return acked / seconds if seconds else 0.0

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)


def start(devices: list[str], password: str, host: str, port: int, rate: float,
          seconds: float, first_seq: int, processes: int = 2) -> Background:
    """Start `processes` publishers, wait until each has its packets ready
    (signed with fleet.KEY, the registry's), then let them all go."""
    processes = max(1, min(processes, len(devices)))
    procs = []
    for i in range(processes):
        mine = devices[i::processes]
        job = {"devices": mine, "password": password, "host": host, "port": port,
               "rate": rate * len(mine) / len(devices), "seconds": seconds,
               "first_seq": first_seq, "key": fleet.KEY.hex()}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "homeguard.bench.background", json.dumps(job)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
    for p in procs:
        assert p.stdout is not None
        if p.stdout.readline().strip() != "ready":
            for q in procs:
                q.kill()
            raise RuntimeError("a background publisher did not get ready")
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    return Background(procs, rate)


if __name__ == "__main__":
    _main(json.loads(sys.argv[1]))

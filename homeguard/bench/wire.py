"""Raw MQTT 3.1.1 packets and a flood publisher, so the publisher is never
the bottleneck: every message is a pre-built PUBLISH packet (payload already
encoded and signed with hg.protocol), written to the socket in large chunks.

Each device account logs in as itself (the broker's ACL lets a device
publish only its own topics)."""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field

from hg import protocol

CONNACK, PUBACK = 0x20, 0x40


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _varint(len(body)) + body


def connect(client_id: str, username: str, password: str, keepalive: int = 60) -> bytes:
    flags = 0x80 | 0x40 | 0x02  # username, password, clean session
    body = _str("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive)
    return _packet(0x10, body + _str(client_id) + _str(username) + _str(password))


def publish(topic: str, payload: bytes, qos: int = 1, packet_id: int = 1) -> bytes:
    body = _str(topic) + (struct.pack("!H", packet_id) if qos else b"") + payload
    return _packet(0x30 | (qos << 1), body)


DISCONNECT = b"\xe0\x00"


@dataclass
class Device:
    """One device account and the PUBLISH packets it will send, in order."""

    id: str
    key: bytes
    password: str
    packets: list[bytes] = field(default_factory=list)

    def add(self, leaf: str, payload: bytes, qos: int = 1) -> None:
        pid = len(self.packets) % 65535 + 1
        self.packets.append(publish(protocol.topic(self.id, leaf), payload, qos, pid))


async def _read_packets(reader: asyncio.StreamReader, kind: int, count: int) -> None:
    """Read until `count` packets of `kind` (CONNACK/PUBACK) have arrived."""
    seen = 0
    while seen < count:
        head = await reader.readexactly(2)
        length = head[1]
        if length & 0x80:  # acks are short; longer packets are not expected here
            raise ConnectionError(f"unexpected packet 0x{head[0]:02x} from the broker")
        rest = await reader.readexactly(length)
        if head[0] & 0xF0 == CONNACK and rest[1] != 0:
            raise ConnectionError(f"broker refused the login: CONNACK code {rest[1]}")
        if head[0] & 0xF0 == kind:
            seen += 1


async def send(device: Device, host: str, port: int, qos1: int | None = None,
               local: str | None = None, chunk: int = 64 * 1024) -> None:
    """Log in, write every packet, wait for every PUBACK, disconnect."""
    qos1 = len(device.packets) if qos1 is None else qos1
    reader, writer = await asyncio.open_connection(
        host, port, local_addr=(local, 0) if local else None)
    try:
        writer.write(connect(f"bench-{device.id}", device.id, device.password))
        await _read_packets(reader, CONNACK, 1)
        acks = asyncio.create_task(_read_packets(reader, PUBACK, qos1))
        buf = bytearray()
        for p in device.packets:
            buf += p
            if len(buf) >= chunk:
                writer.write(bytes(buf))
                buf.clear()
                await writer.drain()
        writer.write(bytes(buf))
        await writer.drain()
        await acks
        writer.write(DISCONNECT)
        await writer.drain()
    finally:
        writer.close()
        await writer.wait_closed()


async def send_all(devices: list[Device], host: str, port: int, concurrency: int = 64,
                   spread_sources: bool = False) -> None:
    """Send every device's packets, at most `concurrency` connections at a time.
    spread_sources: use local addresses 127.0.0.2-.9 so 100k short connections
    do not run out of ephemeral ports on one source address."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int, d: Device) -> None:
        async with gate:
            local = f"127.0.0.{2 + i % 8}" if spread_sources else None
            await send(d, host, port, local=local)

    await asyncio.gather(*(one(i, d) for i, d in enumerate(devices)))

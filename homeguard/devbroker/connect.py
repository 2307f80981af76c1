"""The MQTT CONNECT packet (3.1 and 3.1.1), read and given a new client id.

The embedded demo broker reads each client's CONNECT here first, so that it
can check the account and set the client id to the username before amqtt
sees the packet: Mosquitto's `use_username_as_clientid`.  It cannot be left
to an amqtt auth plugin, because amqtt looks up the session of the client id
it was sent (and deletes it, for a clean session) before it authenticates.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass

from broker.errors import BrokerError

CONNECT = 0x10
MAX_LENGTH = 65536  # a CONNECT carries a will of at most one v1 message
PROTOCOLS = {(b"MQTT", 4), (b"MQIsdp", 3)}  # 3.1.1 and 3.1
REFUSED = bytes([0x20, 2, 0, 5])  # CONNACK "not authorised", as Mosquitto answers
_WILL, _PASSWORD, _USERNAME = 0x04, 0x40, 0x80


class BadConnect(BrokerError):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why

    def __str__(self) -> str:
        return f"not an MQTT 3.1/3.1.1 CONNECT: {self.why}"


@dataclass(frozen=True)
class Connect:
    body: bytes  # the packet after its fixed header
    client_id: str
    username: str | None
    password: str | None
    id_span: tuple[int, int]  # where the client id field (with its length) lies in body

    def with_client_id(self, client_id: str) -> bytes:
        """The whole packet again, carrying client_id instead of the one it was sent with."""
        start, end = self.id_span
        body = self.body[:start] + _field(client_id.encode()) + self.body[end:]
        return bytes([CONNECT]) + _length(len(body)) + body


async def read(reader: asyncio.StreamReader) -> Connect:
    """The first packet of a connection; BadConnect when it is not a CONNECT.
    asyncio.IncompleteReadError when the client goes away first."""
    if (await reader.readexactly(1))[0] != CONNECT:
        raise BadConnect("the first packet is another type")
    length, shift = 0, 0
    while True:
        byte = (await reader.readexactly(1))[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
        if shift > 21:
            raise BadConnect("remaining length longer than 4 bytes")
    if length > MAX_LENGTH:
        raise BadConnect(f"{length} bytes")
    return parse(await reader.readexactly(length))


def parse(body: bytes) -> Connect:
    """The fields of a CONNECT packet's body (after the fixed header)."""
    try:
        name, pos = _take(body, 0)
        level, flags = body[pos], body[pos + 1]
        if (name, level) not in PROTOCOLS:
            raise BadConnect(f"protocol {name!r} level {level}")
        start = pos + 4  # after level, flags and keep-alive
        client_id, pos = _take(body, start)
        span = (start, pos)
        if flags & _WILL:
            _, pos = _take(body, pos)
            _, pos = _take(body, pos)
        username = password = None
        if flags & _USERNAME:
            raw, pos = _take(body, pos)
            username = raw.decode()
        if flags & _PASSWORD:
            raw, pos = _take(body, pos)
            password = raw.decode()
        return Connect(body, client_id.decode(), username, password, span)
    except (IndexError, struct.error) as exc:
        raise BadConnect("truncated") from exc
    except UnicodeDecodeError as exc:
        raise BadConnect("a string is not UTF-8") from exc


def _take(body: bytes, pos: int) -> tuple[bytes, int]:
    (n,) = struct.unpack_from("!H", body, pos)
    end = pos + 2 + n
    if end > len(body):
        raise IndexError(end)
    return body[pos + 2:end], end


def _field(raw: bytes) -> bytes:
    return struct.pack("!H", len(raw)) + raw


def _length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)

"""InfluxDB line protocol for the telemetry lane's points, written directly.

    <kind>,device=<id>[,device_type=<t>][,household=<h>][,grid=<g>] <field>=<n>i,... <ms>

One line per point: the measurement is the message's kind, the tags come
from the device and its registry entry (an absent or empty one is left
out: line protocol has no empty tag value), the fields are the integer
members of `data` (written as integers, `i`), the timestamp is the event
time in ms. Booleans and strings are not fields; floats cannot arrive (the
wire protocol has none) and are left out too, since a float under a name
InfluxDB holds as an integer would get the whole batch refused.

Escaping (the line protocol reference): in the measurement a comma or a
space; in tag keys, tag values and field keys also `=`. A newline, tab or
carriage return is written as `\\n`, `\\t`, `\\r`, as influxdb-client writes
them. Device ids and field names are plain by the wire protocol; the
registry's household and grid names may be anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from gateway.store import Point

TAGS = ("household", "grid")  # registry members written as tags (with device_type)
_CONTROL = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
_MEASUREMENT = str.maketrans({",": "\\,", " ": "\\ ", **_CONTROL})
_KEY = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ ", **_CONTROL})
_KEYS_KEPT = 4096  # escaped field names remembered (a device cannot grow it past this)


def series(kind: str, device: str, entry: dict | None) -> str:
    """The measurement and tag set of a device's points: `kind,device=...`."""
    tags: list[tuple[str, object]] = [("device", device)]
    if entry is not None:
        tags.append(("device_type", entry.get("type")))
        tags += [(t, entry.get(t)) for t in TAGS]
    return kind.translate(_MEASUREMENT) + "".join(
        f",{k}={v.translate(_KEY)}" for k, v in tags if isinstance(v, str) and v)


class Encoder:
    """Points -> one line-protocol body; tag sets once per device and batch,
    field names escaped once each."""

    def __init__(self, entry_of: Callable[[str], dict | None]) -> None:
        self.entry_of = entry_of
        self._keys: dict[str, str] = {}

    def fields(self, data: dict) -> str:
        """`name=<n>i,...` of the integer members ('' when there is none)."""
        keys = self._keys
        out = []
        for k, v in data.items():
            if type(v) is int:  # not bool (a subclass), not float
                key = keys.get(k)
                if key is None:
                    if len(keys) >= _KEYS_KEPT:
                        keys.clear()
                    key = keys[k] = k.translate(_KEY)
                out.append(f"{key}={v}i")
        return ",".join(out)

    def encode(self, points: Iterable[Point]) -> tuple[bytes, int, int]:
        """(body, lines, points without an integer field, which have no line)."""
        tagsets: dict[tuple[str, str], str] = {}
        lines = []
        empty = 0
        for p in points:
            fields = self.fields(p.data)
            if not fields:
                empty += 1
                continue
            tagset = tagsets.get((p.kind, p.device))
            if tagset is None:
                tagset = tagsets[(p.kind, p.device)] = series(
                    p.kind, p.device, self.entry_of(p.device))
            lines.append(f"{tagset} {fields} {p.event_time_ms}")
        return "\n".join(lines).encode(), len(lines), empty

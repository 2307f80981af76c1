"""Downlink acks: signed with the device's key, QoS 1, on hg/v1/<dev>/ack.

Downlink seqs come from a persisted counter reserved in blocks, so they
never repeat across gateway restarts without a write per ack.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from gateway.store import Store
from hg import protocol

BLOCK = 1000


class Acker:
    def __init__(self, store: Store, key_of: Callable[[str], bytes | None],
                 publish: Callable[[str, bytes], None]) -> None:
        self.store = store
        self.key_of = key_of
        self.publish = publish
        self._lock = threading.Lock()
        self._next = 0
        self._end = 0

    def _seq(self) -> int:
        with self._lock:
            if self._next >= self._end:
                self._next = self.store.reserve("downlink_seq", BLOCK)
                self._end = self._next + BLOCK
            seq = self._next
            self._next += 1
        return (seq - 1) % protocol.MAX_SEQ + 1

    def send(self, device: str, ref: int, typ: str, extra: dict | None = None) -> bool:
        key = self.key_of(device)
        if key is None:
            return False
        data = {"ref": ref, **(extra or {})}
        wire = protocol.encode(key, device, self._seq(), "ack", typ, 0, data,
                               int(time.time() * 1000))
        self.publish(protocol.topic(device, "ack"), wire)
        return True

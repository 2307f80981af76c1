"""The old stand-in device's constructor, for callers not yet moved to
gateway/fleet.py (tests/test_device_tool.py): a SimDevice is now the real
firmware (hg.device + apps.button on hg.simhal), a board in a fleet of one.
Delete this module once nothing imports it."""

from __future__ import annotations

from pathlib import Path

from gateway.fleet import Fleet
from gateway.simboard import BoardSpec, stand_in_floor


class SimDevice:
    """A button with the given identity; its flash in <state_dir>/<id>/."""

    def __init__(self, device_id: str, key: bytes, host: str, port: int, password: str,
                 state_dir: Path, resend_s: float = 5.0, tls_ca: str | None = None) -> None:
        self.id, self.key = device_id, key
        self.fleet = Fleet()
        self.board = self.fleet.add(BoardSpec(
            device_id, key.hex(), password, host, port, state_dir / device_id, tls_ca=tls_ca,
            resend_ms=int(resend_s * 1000), seq_floor=stand_in_floor(state_dir, device_id)))

    def start(self) -> SimDevice:
        self.fleet.start()
        return self

    def stop(self) -> None:
        self.fleet.stop()

    def wait_connected(self, timeout: float = 10.0) -> bool:
        return self.board.wait_connected(timeout)

    def press(self, typ: str = "fire") -> int:
        """Hold the button until the app sends its alarm; the alarm's seq."""
        seq = self.board.press(typ)
        if seq is None:
            raise RuntimeError(f"{self.id}: the button app sent no alarm for {typ}")
        return seq

    @property
    def acks(self) -> dict[int, list[str]]:
        return self.board.acks

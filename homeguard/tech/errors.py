"""What can go wrong at the bench, as small exceptions that print usefully."""

from __future__ import annotations


class TechError(Exception):
    """Base of every technician-tool error; str() is the message shown."""


class NoBoard(TechError):
    def __init__(self, port: str, detail: str) -> None:
        super().__init__(f"no board on {port}: {detail} "
                         "(is it plugged in, is the port right, is another program using it?)")
        self.port = port


class LinkError(TechError):
    """The serial link failed (no answer, garbled answer, board busy)."""


class DeviceError(TechError):
    """Code run on the board raised; .output is the board's traceback."""

    def __init__(self, what: str, output: str) -> None:
        super().__init__(f"{what} failed on the board:\n{output.strip()}")
        self.output = output


class VerifyFailed(TechError):
    def __init__(self, path: str, expected: str, got: str) -> None:
        super().__init__(f"{path}: SHA-256 on the board is {got[:16]}…, expected "
                         f"{expected[:16]}… (corrupted in transfer)")
        self.path = path


class GaveUp(TechError):
    def __init__(self, what: str, attempts: int, last: Exception) -> None:
        super().__init__(f"{what}: gave up after {attempts} attempts; last error: {last}")
        self.last = last

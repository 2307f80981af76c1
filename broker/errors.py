"""Errors raised by the broker tooling: small, carrying the offending value."""

from __future__ import annotations


class BrokerError(Exception):
    """Base class: anything wrong with a broker directory or its input."""


class BadDeviceId(BrokerError):
    def __init__(self, device_id: str, why: str) -> None:
        super().__init__(device_id, why)
        self.device_id = device_id
        self.why = why

    def __str__(self) -> str:
        return f"bad device id {self.device_id!r}: {self.why}"


class BadPasswordFile(BrokerError):
    def __init__(self, path: str, line: int, why: str) -> None:
        super().__init__(path, line, why)
        self.path = path
        self.line = line
        self.why = why

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.why}"


class NotABrokerDir(BrokerError):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path

    def __str__(self) -> str:
        return f"{self.path} is not a broker directory (run `homeguard broker init {self.path}`)"

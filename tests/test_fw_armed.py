"""Always armed (issue 13, defect 2; GB 50394: an emergency button is always
armed): the real button firmware (ButtonApp + hg.device + hg.link/hg.mqtt/
hg.net + SimHAL, under CPython, in the board's loop order) keeps reading its
buttons while the broker does not answer.

1. A broker that accepts TCP and never answers (a plain listening socket):
   no loop turn waits for the network, both presses go to the flash outbox
   and the LED shows "sending"; the connection attempt ends by the client's
   own CONNACK timeout, once logged with its cause, and is retried later.
2. A frozen Mosquitto (SIGSTOP) under the real gateway and centre: the
   button boots and is pressed twice while the broker is frozen; after
   SIGCONT both alarms reach the centre once; then the broker freezes under
   a live connection and a third press also arrives once."""

from __future__ import annotations

import json
import signal
import socket
import statistics
import time
from pathlib import Path

import pytest

from tests.harness.stack import BUTTON as STACK_BUTTON
from tests.harness.stack import Stack
from tests.test_button_app import HOLD_MS, Button

KEY = bytes(range(32))
pytestmark = pytest.mark.timeout(120)


class ArmedButton(Button):
    """The button in hg.board.run's order (inputs first, then the network),
    timing every hg.device poll: the network work of one loop turn."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, None, write=False)
        self.polls: list[float] = []  # seconds per dev.poll
        self.logged: list[str] = []
        self.dev.log = self.logged.append

    def step(self) -> None:
        now = self.hal.turn_ms = self.hal.ticks_ms()
        self.app.step(now)
        t0 = time.perf_counter()
        self.dev.poll(now)
        self.polls.append(time.perf_counter() - t0)

    def pending(self) -> list[str]:
        """Types of the alarms in the flash outbox, oldest first."""
        return [json.loads(self.dev.obx.get(s))["type"] for s in self.dev.obx.pending()
                if self.dev.obx.kind(s) == "alarm"]

    def assert_never_waited(self) -> None:
        # the old client waited up to 10 s (TCP) + 10 s (CONNACK) in one poll;
        # the bound is loose for a busy test machine, the median is the rule
        assert max(self.polls) < 1.0, max(self.polls)
        assert statistics.median(self.polls) < 0.05, statistics.median(self.polls)


def write_config(root: Path, port: int, device: str, key: bytes, password: str,
                 host: str = "127.0.0.1") -> None:
    root.mkdir(exist_ok=True)
    (root / "config.json").write_text(json.dumps({
        "v": 1, "device_id": device, "type": "button", "board": "button-c3",
        "broker": {"host": host, "port": port, "tls": False,
                   "username": device, "password": password},
        "key_hex": key.hex(), "button": {"hold_ms": HOLD_MS}}))


def test_presses_are_kept_while_the_broker_never_answers(tmp_path: Path) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts TCP (in the kernel), never reads nor answers
    try:
        write_config(tmp_path, silent.getsockname()[1], "hg-b-0077", KEY, "pw")
        b = ArmedButton(tmp_path)
        b.run(lambda: b.dev.link.connecting, "a connection attempt under way")
        b.press(HOLD_MS + 200, "btn_fire")
        b.run_for(100)
        b.press(HOLD_MS + 200, "btn_medical")
        b.run(lambda: b.pending() == ["fire", "medical"], "both alarms in the flash outbox")
        assert b.led() == "blink" and b.dev.link.connecting  # sending, still connecting
        b.run(lambda: b.dev.link.failures >= 1, "the client's CONNACK timeout", timeout=30)
        assert b.dev.link.last_error == "110 no CONNACK within 10 s"
        assert b.logged == ["hg-b-0077 link: 110 no CONNACK within 10 s (retrying with backoff)"]
        b.press(HOLD_MS + 200, "btn_security")  # between attempts: still armed
        b.run(lambda: b.pending() == ["fire", "medical", "security"], "the third alarm")
        assert b.led() == "blink" and b.app.guard.latched() == ["fire", "medical", "security"]
        b.assert_never_waited()
        b.dev.close()
    finally:
        silent.close()


def centre_alarms(stack: Stack) -> list[tuple[str, int]]:
    return sorted((a["type"], a["seq"]) for a in stack.alarms() if a["device"] == STACK_BUTTON)


def test_presses_during_a_frozen_broker_reach_the_centre_once(tmp_path: Path,
                                                              stack: Stack) -> None:
    root = tmp_path / "button"
    write_config(root, stack.broker.port, STACK_BUTTON, stack.key, stack.password)
    broker = stack.broker.proc
    assert broker is not None
    broker.signal(signal.SIGSTOP)
    try:
        b = ArmedButton(root)  # boots while the broker is frozen
        b.run(lambda: b.dev.link.connecting, "a connection attempt under way")
        b.press(HOLD_MS + 200, "btn_fire")
        b.press(HOLD_MS + 200, "btn_medical")
        b.run(lambda: b.pending() == ["fire", "medical"], "both alarms in the flash outbox")
        assert b.led() == "blink" and not b.dev.link.connected
    finally:
        broker.signal(signal.SIGCONT)
    try:
        pressed = sorted((t, s) for s, t in b.app.alarms.items())
        b.run(lambda: centre_alarms(stack) == pressed, "both alarms at the centre", timeout=40)
        b.run(lambda: not b.dev.obx.pending(), "the gateway's stored acks")
        broker.signal(signal.SIGSTOP)  # frozen under a live connection
        try:
            b.press(HOLD_MS + 200, "btn_security")
            b.run(lambda: b.pending() == ["security"], "the third alarm in the outbox")
            b.run(lambda: b.led() == "blink", "sending (after the earlier state's second)")
        finally:
            broker.signal(signal.SIGCONT)
        pressed = sorted((t, s) for s, t in b.app.alarms.items())
        b.run(lambda: centre_alarms(stack) == pressed, "the third alarm at the centre",
              timeout=40)
        b.run(lambda: not b.dev.obx.pending(), "its stored ack")
        b.run_for(1000)  # a late duplicate would show now
        assert centre_alarms(stack) == pressed and len(pressed) == 3
        b.assert_never_waited()
    finally:
        b.dev.close()

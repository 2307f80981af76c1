"""Walking skeleton, end to end through real processes and a real Mosquitto:

simulated button (hg.protocol) -> Mosquitto (project config, device account)
-> gateway (verify, timestamp, dedup, store, ack) -> centre ingest
-> alarm desk in Chromium, live without reload.
"""

from __future__ import annotations

import subprocess
import time

from hg import protocol
from tests.harness.proc import wait_until
from tests.harness.stack import BIN, BUTTON, Stack

OPERATOR, PASSWORD = "duty", "duty-password-1"


def log_in(stack: Stack, page) -> None:  # noqa: ANN001
    subprocess.run([BIN / "homeguard", "centre-user", "add", OPERATOR, "--role", "operator",
                    "--password", PASSWORD, "--db", f"sqlite:///{stack.tmp / 'centre.db'}"],
                   check=True, capture_output=True, timeout=60)
    page.goto(stack.centre_url + "/")
    page.fill("input[name=username]", OPERATOR)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-submit")


def test_pressed_alarm_reaches_the_centre_once_with_both_times(stack: Stack) -> None:
    dev = stack.device()
    try:
        assert dev.wait_connected()
        before = int(time.time() * 1000)
        seq = dev.press("fire")
        wait_until(lambda: any(a["seq"] == seq for a in stack.alarms()), 20,
                   f"alarm {seq} at the centre\n{stack.gateway.logs()}")
        # the household sees the centre got it
        wait_until(lambda: "delivered" in dev.acks.get(seq, []), 20, "delivered ack")
        assert dev.acks[seq][0] == "stored"
        # resend the very same bytes, as a device does after a lost ack
        dev.client.publish(protocol.topic(BUTTON, "event"), dev.wire(seq), qos=1)
        wait_until(lambda: dev.acks[seq].count("stored") >= 2, 20, "second stored ack")
        mine = [a for a in stack.alarms() if a["device"] == BUTTON]
        assert [a["seq"] for a in mine] == [seq]
        alarm = mine[0]
        assert alarm["type"] == "fire"
        assert before - 1000 <= alarm["device_time_ms"] <= alarm["gateway_time_ms"] + 20000
        assert before <= alarm["gateway_time_ms"] <= alarm["received_ms"]
    finally:
        dev.stop()


def test_alarm_appears_on_the_desk_without_reload(stack: Stack, page, artifacts_dir) -> None:  # noqa: ANN001
    log_in(stack, page)
    page.wait_for_selector("#conn[data-state='live']", timeout=10000)
    dev = stack.device()
    try:
        assert dev.wait_connected()
        seq = dev.press("medical")
        row = f"[data-device='{BUTTON}'][data-seq='{seq}']"
        page.wait_for_selector(row, timeout=20000)
        assert page.locator(row).count() == 1
        page.screenshot(path=str(artifacts_dir / "skeleton-desk.png"))
    finally:
        dev.stop()


def test_device_with_a_wrong_clock_still_gets_its_alarm_through(stack: Stack) -> None:
    dev = stack.device()
    try:
        assert dev.wait_connected()  # online announced with the right time
        dev.clock_offset_ms = -300_000  # five minutes slow: outside the -40 s/+20 s window
        seq = dev.press("security")
        wait_until(lambda: any(a["seq"] == seq for a in stack.alarms()), 20,
                   "alarm from a device with a slow clock")
        assert dev.acks[seq][0] == "nak"
        alarm = next(a for a in stack.alarms() if a["seq"] == seq)
        assert alarm["device_time_ms"] is None  # resent with its age only
        assert abs(dev.clock_offset_ms) < 5_000  # took the gateway's time from the NAK
        later = dev.press("fire")
        wait_until(lambda: any(a["seq"] == later for a in stack.alarms()), 20, "next alarm")
        assert next(a for a in stack.alarms() if a["seq"] == later)["device_time_ms"]
    finally:
        dev.stop()

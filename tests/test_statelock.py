"""One stack per state: a second gateway, centre or demo on the state of a
running one refuses to start with one clear line naming the other process
(issue 12: a second demo on one demo-data/ made the first one's alarms look
like duplicates)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.harness.proc import free_port, wait_until
from tests.harness.stack import BIN, TOKEN, Stack

HOMEGUARD = Path(sys.executable).parent / "homeguard"


def second(*argv: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def test_a_second_gateway_or_centre_on_the_same_state_refuses_to_start(
        mosquitto, tmp_path: Path) -> None:  # noqa: ANN001
    stack = Stack(mosquitto, tmp_path)
    stack.start()
    try:
        gw = second(BIN / "homeguard", "gateway", "--config", tmp_path / "gateway.toml")
        assert gw.returncode == 2, gw.stdout + gw.stderr
        assert f"in use by pid {stack.gateway.pid}" in gw.stderr, gw.stderr
        assert "Traceback" not in gw.stderr and len(gw.stderr.strip().splitlines()) == 1
        centre = second(BIN / "homeguard", "centre", "--host", "127.0.0.1", "--port",
                        free_port(), "--db", f"sqlite:///{tmp_path / 'centre.db'}",
                        "--gateway-token", TOKEN)
        assert centre.returncode == 2, centre.stdout + centre.stderr
        assert f"in use by pid {stack.centre.pid}" in centre.stderr, centre.stderr
        assert "alarm desk at" not in centre.stdout  # no URL printed for a centre not started
        # its own store, but the running centre's port: one line, no URL first
        port = stack.centre_port
        busy = second(BIN / "homeguard", "centre", "--host", "127.0.0.1", "--port", port,
                      "--db", f"sqlite:///{tmp_path / 'other.db'}", "--gateway-token", TOKEN)
        assert busy.returncode == 2, busy.stdout + busy.stderr
        assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in busy.stderr
        assert "alarm desk at" not in busy.stdout and "Traceback" not in busy.stderr
        # the running stack is untouched: an alarm still goes through
        dev = stack.device()
        try:
            seq = dev.press("fire")
            wait_until(lambda: any(a["seq"] == seq for a in stack.alarms()), 30, "the alarm")
        finally:
            dev.stop()
    finally:
        stack.stop()
    # once the holder has stopped, the state is free again
    stack.start()
    stack.stop()


def test_a_second_demo_on_the_same_data_dir_refuses_to_start(tmp_path: Path) -> None:
    first = subprocess.Popen(
        [HOMEGUARD, "demo", "--data-dir", str(tmp_path), "--port", str(free_port()),
         "--embedded-broker"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert first.stdout is not None
        seen = []
        for line in first.stdout:  # wait until it is up (the dashboard line)
            seen.append(line)
            if "Dashboard: http://" in line:
                break
        else:
            raise AssertionError("the first demo did not start:\n" + "".join(seen))
        again = second(HOMEGUARD, "demo", "--once", "--data-dir", tmp_path, "--port",
                       free_port(), "--embedded-broker")
        assert again.returncode == 2, again.stdout + again.stderr
        assert f"in use by pid {first.pid}" in again.stderr, again.stderr
    finally:
        first.terminate()
        first.communicate(timeout=60)  # drains and closes its pipes

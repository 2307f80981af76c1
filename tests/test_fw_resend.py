"""Fast recovery (issue 16): an alarm the gateway has not acked goes again as
soon as the device's link is back, not when its resend timer runs out. The
real button firmware (ButtonApp + hg.device on SimHAL) against the real
Mosquitto, restarted while the alarm waits for its ack (a broker that lost
it: nobody but the device still has it)."""

from __future__ import annotations

from pathlib import Path

from tests.test_button_app import HOLD_MS, Button
from tests.test_firmware_store import TIMEOUT, Gateway, gateway  # noqa: F401


def test_an_unacked_alarm_goes_again_as_soon_as_the_link_is_back(
        tmp_path: Path, mosquitto, gateway: Gateway) -> None:  # noqa: ANN001, F811
    b = Button(tmp_path, mosquitto)
    try:
        b.dev.resend_ms = 600_000  # the timer alone would wait ten minutes
        b.run(lambda: b.dev.link.connected and not b.dev.link.client.subscribing,
              "online and subscribed")
        b.press(HOLD_MS + 200, "btn_fire")
        b.run(lambda: gateway.msgs("alarm"), "the alarm at the gateway's subscription")
        seq = gateway.msgs("alarm")[0]["seq"]  # never acked: it stays in the outbox
        gateway.ready.clear()
        mosquitto.stop()
        b.run(lambda: not b.dev.link.connected, "the link lost")
        mosquitto.start()
        # the device waits (its loop is not run) until the gateway's subscriber is
        # back, so what the device sends on its new connection has a reader
        assert gateway.ready.wait(TIMEOUT), "the gateway's subscriber back"
        b.run(lambda: len(gateway.payloads(seq)) >= 2,
              "the alarm sent again on the new connection", timeout=60)
        assert b.dev.obx.pending() == [seq]
    finally:
        b.dev.close()

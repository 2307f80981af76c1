# The battery variant of the household-guard button: the board spends its
# life in deep sleep and wakes on a button or the tamper input (or a timer:
# the heartbeat schedule, or the retry of an alarm not yet stored).  Each
# wake is one short cycle:
#
#   1. note what woke it (the inputs active now) in RTC memory, before
#      anything slow: a press survives a brown-out during Wi-Fi start-up;
#   2. run the button app and hg.device as on mains: the guard decides
#      (hold / double press), the event goes to the flash outbox before it
#      is sent, pending events from earlier wakes are resent with their seqs;
#   3. stay awake until nothing is pending (the gateway's `stored` ack came
#      for every event) and no button is held, or until the hard wall-clock
#      budget is spent;
#   4. sleep: until the next heartbeat, or RETRY_MS when an event is still
#      pending, waking early on any button or tamper input.
#
# hardware/power.md has the power budget this schedule gives.
from hg.outbox import LIGHT

RECORD = "hg-wake"  # RTC memory: b"hg-wake:" + the inputs active at wake
BUDGET_MS = 10000  # hard limit on one wake (hardware/power.md)
RETRY_MS = 300000  # an event not yet stored: try again in 5 min
SETTLE_MS = 1000  # awake at least this long after the last input was released


class WakeCycle:
    def __init__(self, app, dev, hal, budget_ms=BUDGET_MS, retry_ms=RETRY_MS):
        self.app, self.dev, self.hal = app, dev, hal
        self.budget_ms = budget_ms
        self.retry_ms = retry_ms
        self.watched = [n for _, n in app.inputs]
        self.wake_inputs = list(self.watched)
        if app.tamper is not None:
            self.wake_inputs.append("tamper")

    def record_wake(self):
        """Step 1: the inputs active at wake, into RTC memory (when the hal has it)."""
        woke = [n for n in self.wake_inputs if self.hal.pin(n)]
        rtc = getattr(self.hal, "rtc_memory", None)
        if rtc is not None:
            rtc((RECORD + ":" + ",".join(woke)).encode())
        return woke

    def run(self, on_tick=None):
        """Steps 2-3; returns (sleep_ms, why): why is 'done' or 'budget'."""
        hal, dev, app = self.hal, self.dev, self.app
        start = last_busy = hal.ticks_ms()
        hold = dev.cfg.get("button", {}).get("hold_ms", 1500)
        while True:
            now = hal.ticks_ms()
            app.step(now)  # inputs first, into flash before any network work
            dev.poll(now)
            if hasattr(hal, "tick"):
                hal.tick(now)
            if on_tick is not None:
                on_tick(now)
            if any(hal.pin(n) for n in self.watched):
                last_busy = now
            pending = self.events_pending()
            idle = now - last_busy >= SETTLE_MS and now - start >= hold + SETTLE_MS
            if idle and not pending:
                return dev.cfg["heartbeat_s"] * 1000, "done"
            if now - start >= self.budget_ms:
                return (self.retry_ms if pending else dev.cfg["heartbeat_s"] * 1000), "budget"

    def events_pending(self):
        """Events the gateway has not acked yet (telemetry and heartbeats kept
        while offline do not keep the board awake)."""
        obx = self.dev.obx
        for seq in obx.pending():
            if obx.kind(seq) not in LIGHT:
                return True
        return False

    def sleep(self, ms):
        """Step 4: deep sleep, any button or the tamper input wakes it early."""
        self.dev.close()
        self.hal.deep_sleep(ms, self.wake_inputs)


def main(root="/"):
    """The battery board's entry point: one wake cycle, then deep sleep."""
    from apps.button.app import ButtonApp
    from hg import board
    hal, app, dev = board.setup(ButtonApp, "button-c3", root)
    cycle = WakeCycle(app, dev, hal)
    cycle.record_wake()
    synced = False

    def net(now):
        nonlocal synced
        synced = board.network(hal, dev, synced)

    ms, _ = cycle.run(net)
    cycle.sleep(ms)

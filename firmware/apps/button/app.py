# The household-guard alarm button: reads the board profile's buttons and
# tamper input through debounce chains, runs the accidental-press guard,
# sends alarm / cancel / test events through hg.device, and shows their
# progress (the centre's feedback) on the LED and buzzer.  Hardware comes
# from the hal: hal.pin(name) -> 1 while the input is active, hal.led(p),
# hal.buzzer(p), hal.supply_mv(), hal.ticks_ms().  docs/firmware-button.md.
from apps.button import debounce
from apps.button.guard import Battery, Guard, Tamper
from apps.button.indicator import Indicator

TYPES = ("fire", "medical", "security")
SETTLE_MS = 30  # contact bounce
TAMPER_SETTLE_MS = 200
BATTERY_MS = 60000  # one supply reading a minute


def buttons(profile):
    """[(alarm type, input name)] from the profile's "buttons"; ValueError
    naming the problem for a type or an input the board does not have."""
    out = []
    inputs = profile.get("inputs", {})
    for typ, name in sorted(profile.get("buttons", {}).items()):
        if typ not in TYPES:
            raise ValueError("buttons." + str(typ) + ": not one of fire, medical, security")
        if name not in inputs:
            raise ValueError("buttons." + typ + ": no input " + str(name) + " on this board")
        out.append((typ, name))
    if not out:
        raise ValueError("buttons: the board profile maps no button")
    return out


def low_mv(profile):
    for name in ("battery", "supply"):
        spec = profile.get("analog", {}).get(name)
        if spec and "low_mv" in spec:
            return spec["low_mv"]
    return None


class ButtonApp:
    def __init__(self, cfg, hal, profile):
        self.hal = hal
        self.dev = None  # the hg.device.Device, set by attach()
        b = cfg.get("button", {})
        self.inputs = buttons(profile)
        self.filters = [debounce.button(SETTLE_MS) for _ in self.inputs]
        self.guard = Guard([t for t, _ in self.inputs], b.get("hold_ms", 1500),
                           b.get("double_press", False))
        has_tamper = "tamper" in profile.get("inputs", {})
        self.tamper = Tamper() if has_tamper else None
        self.tamper_filter = debounce.button(TAMPER_SETTLE_MS)
        low = low_mv(profile)
        self.battery = Battery(low) if low else None
        self.next_battery = 0
        self.retry = []  # tamper/battery events hg.device refused, to resend
        self.indicator = Indicator()
        self.alarms = {}  # seq -> type of the latched button alarms
        self.led = self.buzz = None  # what the hal was last asked to show
        self.fault = None
        self.sent = self.send_errors = 0
        self.last_error = None

    def attach(self, dev):
        self.dev = dev

    # --- the loop -----------------------------------------------------------

    def step(self, now):
        """Call from the main loop (every 10-20 ms): pins -> events -> LED."""
        for i in range(len(self.inputs)):
            typ, name = self.inputs[i]
            e = self.filters[i].new_value(self.hal.pin(name), now)
            if e is not None:
                self.guard.edge(typ, e, now)
        for kind, typ in self.guard.poll(now):
            self._act(kind, typ, now)
        if self.tamper is not None:
            e = self.tamper_filter.new_value(self.hal.pin("tamper"), now)
            change = None if e is None else self.tamper.edge(e)
            if change:
                self._report("tamper", {}, change)
        if now >= self.next_battery:
            self.next_battery = now + BATTERY_MS
            self._periodic()
        self._show(self.hal.ticks_ms())  # not `now`: dev.poll may have blocked

    def _periodic(self):
        retry, self.retry = self.retry, []
        for typ, data, kind in retry:
            self._report(typ, data, kind)
        if self.battery is not None:
            mv = self.hal.supply_mv()
            change = self.battery.reading(mv)
            if change:
                self._report("low_battery", {"mv": mv, "low_mv": self.battery.low_mv}, change)

    def _report(self, typ, data, kind):
        """Tamper / battery events: one that could not be sent is retried
        every BATTERY_MS, in order."""
        if self.retry or self._send(typ, data, kind) is None:
            self.retry.append((typ, data, kind))

    def _act(self, kind, typ, now):
        if kind == "alarm":
            seq = self._send(typ, {}, "alarm")
            if seq is None:
                self.guard.release(typ)  # not latched: a new press tries again
                return
            self.alarms[seq] = typ
            self.indicator.start(seq, now)
        elif kind == "cancel":
            ref = 0
            for s in self.alarms:
                if self.alarms[s] == typ:
                    ref = s
            seq = self._send(typ, {"ref": ref}, "cancel")
            if seq is None:
                self.guard.latch(typ)  # the alarm stands: the cancel did not go
                return
            self.alarms.pop(ref, None)
            self.indicator.drop(ref)
            self.indicator.start(seq, now, "cancel")
        elif kind == "test":
            seq = self._send("manual", {}, "test")
            if seq is not None:
                self.indicator.start(seq, now, "test")

    def _send(self, typ, data, kind):
        """The event's seq, or None (counted, logged, failed beep) when
        hg.device could not take it (outbox full of alarms, no key)."""
        try:
            if self.dev is None:
                raise OSError("no device attached")
            seq = self.dev.send_event(typ, data, kind)
        except Exception as e:  # noqa: BLE001 - any refusal: tell the user
            self.send_errors += 1
            self.last_error = kind + " " + typ + ": " + str(e)
            print("button: not sent:", self.last_error)
            self._out(self.led, "failed")
            return None
        self.sent += 1
        return seq

    def _show(self, now):
        out = self.indicator.tick(now)
        if out is not None:
            self._out(out[0], out[1])

    def _out(self, led, buzz):
        if led != self.led and self.fault is None:
            self.led = led
            self.hal.led(led)
        if buzz != self.buzz:
            self.buzz = buzz
            self.hal.buzzer(buzz)

    # --- hg.device app hooks -------------------------------------------------

    def on_feedback(self, kind, ref):
        self.indicator.feedback(kind, ref, self.hal.ticks_ms())
        if kind == "resolved":
            typ = self.alarms.pop(ref, None)
            if typ is not None:
                self.guard.release(typ)

    def on_renumber(self, old, new):
        """hg.device sent an event again under a new seq (the gateway had
        refused the old one): the centre's feedback now refers to `new`."""
        if old in self.alarms:
            self.alarms[new] = self.alarms.pop(old)
        self.indicator.renumber(old, new)

    def on_config(self, cfg):
        b = cfg["button"]
        self.guard.configure(b["hold_ms"], b["double_press"])

    def on_fault(self, reason):
        self.fault = reason  # hg.device shows "fault" on the LED: leave it

    def self_test(self):
        short = 0
        for p in self.guard.presses.values():
            short += p.short
        return {"latched": len(self.guard.latched()), "short": short,
                "send_err": self.send_errors}

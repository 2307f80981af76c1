# The accidental-press guard of the household-guard button, pure logic fed
# with debounced edges and the time:
#   - a button raises its alarm when held for hold_ms (press-and-hold); with
#     double_press the hold counts only on the second of two presses made
#     within DOUBLE_GAP_MS (hold_ms 0 + double_press = two quick presses);
#   - the alarm stays latched until the centre resolves it (release()) or a
#     new press of the same button held for CANCEL_MS, which yields a
#     "cancel" action (the app sends it: never a silent cancel);
#   - fire + medical held together for COMBO_MS -> a test event, and neither
#     button raises or cancels anything during that press;
#   - Tamper and Battery turn an input / the supply voltage into alarm and
#     restore actions, once per change.
DOUBLE_GAP_MS = 800  # release of the first press -> start of the second
CANCEL_MS = 5000
COMBO_MS = 2000
COMBO = ("fire", "medical")
NONE = []  # type: list  # returned when nothing is due: never appended to


class Press:
    """One button: idle -> (held long enough) -> latched -> (cancel press) -> idle."""

    def __init__(self, typ, hold_ms, double):
        self.typ, self.hold_ms, self.double = typ, hold_ms, double
        self.down = False
        self.since = 0  # start of the current press
        self.last_up = None  # end of the previous press
        self.count = 0  # presses in the current double-press sequence
        self.latched = False
        self.done = False  # this press already did its one thing (or is suppressed)
        self.short = 0  # presses that ended before doing anything

    def edge(self, v, now):
        if v:
            self.down, self.since, self.done = True, now, False
            gap_ok = self.last_up is not None and now - self.last_up <= DOUBLE_GAP_MS
            self.count = self.count + 1 if self.count == 1 and gap_ok else 1
        else:
            if self.down and not self.done and not (self.double and self.count == 1):
                self.short += 1
            self.down, self.last_up = False, now
            if self.count >= 2 or self.done:
                self.count = 0

    def poll(self, now):
        """'alarm', 'cancel' or None."""
        if not self.down or self.done:
            return None
        held = now - self.since
        if self.latched:
            if held >= CANCEL_MS:
                self.done, self.latched = True, False
                return "cancel"
        elif (not self.double or self.count >= 2) and held >= self.hold_ms:
            self.done, self.latched, self.count = True, True, 0
            return "alarm"
        return None

    def suppress(self):
        self.done, self.count = True, 0


class Guard:
    """The buttons of one device, by alarm type ("fire", "medical", "security")."""

    def __init__(self, types, hold_ms=1500, double_press=False):
        self.types = sorted(types)
        self.presses = {t: Press(t, hold_ms, double_press) for t in types}
        self.combo = COMBO[0] in self.presses and COMBO[1] in self.presses
        self.combo_since = None
        self.combo_done = False

    def configure(self, hold_ms, double_press):
        for p in self.presses.values():
            p.hold_ms, p.double = hold_ms, double_press

    def edge(self, typ, v, now):
        self.presses[typ].edge(v, now)

    def release(self, typ):
        """The centre resolved this button's alarm."""
        p = self.presses.get(typ)
        if p is not None:
            p.latched = False
            p.done = p.done or p.down  # a press made while latched raises nothing

    def latch(self, typ):
        """Back to latched: the cancel could not be sent."""
        self.presses[typ].latched = True

    def latched(self):
        return [t for t in sorted(self.presses) if self.presses[t].latched]

    def poll(self, now):
        """Actions due now: (kind, type) pairs, usually none (no allocation
        in the common case: this runs every loop)."""
        out = NONE
        if self.combo and self._combo(now):
            out = [("test", "manual")]
        for t in self.types:
            a = self.presses[t].poll(now)
            if a:
                out = out + [(a, t)] if out else [(a, t)]
        return out

    def _combo(self, now):
        a, b = self.presses[COMBO[0]], self.presses[COMBO[1]]
        if not (a.down and b.down):
            self.combo_since = None
            if not (a.down or b.down):
                self.combo_done = False
            return False
        if self.combo_since is None:
            self.combo_since = now
            a.suppress()
            b.suppress()
        if not self.combo_done and now - self.combo_since >= COMBO_MS:
            self.combo_done = True
            return True
        return False


class Tamper:
    """Debounced tamper level -> 'alarm' when opened, 'restore' when closed."""

    def __init__(self):
        self.open = False

    def edge(self, v):
        if bool(v) == self.open:
            return None
        self.open = bool(v)
        return "alarm" if self.open else "restore"


class Battery:
    """Supply readings -> 'alarm' once after `need` readings below low_mv,
    'restore' (re-armed) once a reading is back above low_mv + hyst_mv."""

    def __init__(self, low_mv, hyst_mv=100, need=2):
        self.low_mv, self.hyst_mv, self.need = low_mv, hyst_mv, need
        self.below = 0
        self.low = False

    def reading(self, mv):
        if mv is None or self.low_mv is None:
            return None
        if not self.low:
            self.below = self.below + 1 if mv < self.low_mv else 0
            if self.below >= self.need:
                self.low = True
                return "alarm"
        elif mv >= self.low_mv + self.hyst_mv:
            self.low, self.below = False, 0
            return "restore"
        return None

# Deterministic checks of the household-guard button's pure logic (debounce
# chain, accidental-press guard, cancel, test combination, tamper, low
# battery, indicator timeline) and of ButtonApp driven with a fake hal and
# device; prints one line per result.  Runs unchanged under CPython and the
# npm MicroPython (tests/test_button_app.py compares the two outputs).
from apps.button import debounce
from apps.button.app import ButtonApp, buttons
from apps.button.guard import Battery, Guard
from apps.button.indicator import Indicator

PROFILE = {"inputs": {"btn_fire": {}, "btn_medical": {}, "btn_security": {}, "tamper": {}},
           "buttons": {"fire": "btn_fire", "medical": "btn_medical",
                       "security": "btn_security"},
           "analog": {"battery": {"low_mv": 2600}}}


def bounce_train(start, n):
    """Contact bounce: n flips 3 ms apart from `start`, ending pressed."""
    return [(start + 3 * k, (k + 1) % 2 if n % 2 else k % 2) for k in range(n)]


def edges_of(levels, until, step=1):
    """Sample a piecewise-constant signal every `step` ms through the chain."""
    chain = debounce.button(30)
    out, i, v = [], 0, 0
    for t in range(0, until, step):
        while i < len(levels) and levels[i][0] <= t:
            v = levels[i][1]
            i += 1
        e = chain.new_value(v, t)
        if e is not None:
            out.append((t, e))
    return out


# bounce on press and release: one press edge, one release edge
press = [(100, 1), (103, 0), (106, 1), (108, 0), (111, 1)]
release = [(600, 0), (602, 1), (605, 0)]
print("debounce.train", edges_of(press + release, 800))
print("debounce.glitch", edges_of([(100, 1), (125, 0)], 400))  # 25 ms spike: nothing
print("debounce.held_at_boot", edges_of([(0, 1)], 100))


def guard_run(g, script, until, step=10, calls=None):
    """script: [(t, type, level)] raw levels; calls: {t: fn()}; returns
    [(t, kind, type)]."""
    chains = {t: debounce.button(30) for t in g.presses}
    level = {t: 0 for t in g.presses}
    out, i = [], 0
    for now in range(0, until, step):
        while i < len(script) and script[i][0] <= now:
            level[script[i][1]] = script[i][2]
            i += 1
        if calls and now in calls:
            calls[now]()
        for t in sorted(chains):
            e = chains[t].new_value(level[t], now)
            if e is not None:
                g.edge(t, e, now)
        for kind, typ in g.poll(now):
            out.append((now, kind, typ))
    return out


T3 = ["fire", "medical", "security"]
print("hold.short", guard_run(Guard(T3, 1500), [(100, "fire", 1), (1500, "fire", 0)], 3000))
print("hold.long", guard_run(Guard(T3, 1500), [(100, "fire", 1), (2000, "fire", 0)], 3000))
g = Guard(T3, 1500)
print("hold.latched", guard_run(g, [(100, "fire", 1), (2000, "fire", 0), (2500, "fire", 1),
                                    (4000, "fire", 0)], 5000) + [g.latched()])
g = Guard(T3, 1500)
print("cancel", guard_run(g, [(100, "fire", 1), (1800, "fire", 0), (3000, "fire", 1),
                              (7000, "fire", 0), (8000, "fire", 1), (9000, "fire", 0),
                              (9500, "fire", 1), (15000, "fire", 0)], 16000) + [g.latched()])
g = Guard(T3, 1500)
print("held.through", guard_run(g, [(100, "security", 1), (8000, "security", 0)], 9000)
      + [g.latched()])
g = Guard(T3, 1500)
guard_run(g, [(100, "medical", 1), (1800, "medical", 0)], 2000)
g.release("medical")
print("resolved", [g.latched()] + guard_run(g, [(0, "medical", 1), (1700, "medical", 0)], 2000))
g = Guard(T3, 1500)
print("resolved.while_held", guard_run(g, [(100, "fire", 1), (1800, "fire", 0), (2500, "fire", 1),
                                           (4500, "fire", 0), (5000, "fire", 1),
                                           (7000, "fire", 0)], 8000,
                                       calls={3000: lambda: g.release("fire")}))
print("double.single", guard_run(Guard(T3, 0, True), [(100, "fire", 1), (300, "fire", 0)], 2000))
print("double.twice", guard_run(Guard(T3, 0, True), [(100, "fire", 1), (300, "fire", 0),
                                                     (600, "fire", 1), (800, "fire", 0)], 2000))
print("double.slow", guard_run(Guard(T3, 0, True), [(100, "fire", 1), (300, "fire", 0),
                                                    (1400, "fire", 1), (1600, "fire", 0)], 2000))
print("double.hold", guard_run(Guard(T3, 1000, True), [
    (100, "medical", 1), (300, "medical", 0), (600, "medical", 1), (1200, "medical", 0),
    (1500, "medical", 1), (1700, "medical", 0), (2000, "medical", 1), (3200, "medical", 0)],
    4000))
print("combo", guard_run(Guard(T3, 1500), [(100, "fire", 1), (400, "medical", 1),
                                           (4000, "fire", 0), (4100, "medical", 0)], 5000))
g = Guard(T3, 1500)
print("combo.short", guard_run(g, [(100, "fire", 1), (300, "medical", 1), (1500, "fire", 0),
                                   (1600, "medical", 0)], 3000) + [g.latched()])
print("two.buttons", guard_run(Guard(T3, 1500), [(100, "fire", 1), (200, "security", 1),
                                                 (2000, "fire", 0), (2100, "security", 0)],
                               3000))

b = Battery(2600)
print("battery", [b.reading(mv) for mv in (3000, 2590, 3000, 2590, 2580, 2500, 2650, 2710,
                                           2590, 2550)])

# indicator timeline: acks arriving together are still each shown >= 1 s
ind = Indicator()
feed = {1000: [("start", 7)], 1200: [("stored", 7), ("delivered", 7)],
        1300: [("acknowledged", 7)], 6000: [("resolved", 7)],
        7000: [("start", 8)], 7100: [("start", 9, "test")], 7500: [("stored", 9)],
        9000: [("stored", 8)], 20000: [("start", 10, "cancel")], 20300: [("stored", 10)],
        30000: [("start", 11)]}
tl = []
for now in range(0, 95000, 50):
    for f in feed.get(now, ()):
        if f[0] == "start":
            ind.start(f[1], now, f[2] if len(f) > 2 else "alarm")
        else:
            ind.feedback(f[0], f[1], now)
    if now == 20000:
        ind.drop(8)
    out = ind.tick(now)
    if out is not None:
        tl.append((now, out[0], out[1]))
print("indicator", tl + [ind.failures])


class FakeHAL:
    def __init__(self):
        self.pins, self.now, self.mv = {}, 0, 3000
        self.out = []

    def pin(self, name):
        return self.pins.get(name, 0)

    def ticks_ms(self):
        return self.now

    def supply_mv(self):
        return self.mv

    def led(self, p):
        self.out.append((self.now, "led", p))

    def buzzer(self, p):
        self.out.append((self.now, "buzzer", p))


class FakeDev:
    def __init__(self):
        self.seq, self.events, self.full = 100, [], False

    def send_event(self, typ, data=None, kind="alarm"):
        if self.full:
            raise OSError("outbox full of events")
        self.seq += 1
        self.events.append((self.seq, kind, typ, sorted((data or {}).items())))
        return self.seq


hal, dev = FakeHAL(), FakeDev()
app = ButtonApp({"button": {"hold_ms": 1500, "double_press": False}}, hal, PROFILE)
app.attach(dev)
script = {100: ("btn_fire", 1), 1000: ("btn_fire", 0), 2000: ("btn_fire", 1),
          4000: ("btn_fire", 0), 5000: ("tamper", 1), 6000: ("tamper", 0),
          130000: ("btn_fire", 1), 132000: ("btn_fire", 0), 133000: ("btn_fire", 1),
          139000: ("btn_fire", 0)}
for now in range(0, 190000, 10):
    hal.now = now
    if now in script:
        hal.pins[script[now][0]] = script[now][1]
    if now == 4000:
        app.on_feedback("stored", 101)
    if now == 9000:
        app.on_feedback("delivered", 101)
        hal.mv = 2500
    if now == 60000:
        dev.full = True
        hal.pins["btn_security"] = 1
    if now == 62000:
        hal.pins["btn_security"] = 0
    if now == 100000:
        app.on_feedback("resolved", 101)
    if now == 125000:
        dev.full = False  # the low_battery alarm goes with the next reading
    if now == 139000:
        app.on_feedback("stored", dev.seq)  # the cancel is stored
    app.step(now)
print("app.events", dev.events)
print("app.outputs", hal.out)
print("app.state", [app.guard.latched(), app.send_errors, app.last_error,
                    app.self_test()["short"], app.retry])
try:
    buttons({"inputs": {}, "buttons": {"fire": "btn_x"}})
except ValueError as e:
    print("profile.input", [str(e)])
try:
    buttons({"inputs": {"a": {}}, "buttons": {"gas": "a"}})
except ValueError as e:
    print("profile.type", [str(e)])

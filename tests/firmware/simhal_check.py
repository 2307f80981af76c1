# Exercises hg.simhal and prints one JSON line per check.  MicroPython
# subset: tests/test_simhal.py runs it under the npm MicroPython and under
# CPython and requires identical output.  main(root, button, sensor) takes a
# writable folder and the two board profiles (hardware/boards/*.json).
import json
import os

from hg.simhal import Clock, SimHAL, wall_ms

KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


def _j(x):
    # canonical JSON: the runtimes differ in dict order and spacing
    if isinstance(x, dict):
        return "{" + ",".join(json.dumps(k) + ":" + _j(x[k]) for k in sorted(x)) + "}"
    if isinstance(x, (list, tuple)):
        return "[" + ",".join(_j(v) for v in x) + "]"
    return json.dumps(x)


def out(name, **kw):
    kw["check"] = name
    print(_j(kw))


def clocks():
    c = Clock()
    a = c()
    b = c()
    w = wall_ms()
    out("clock", ints=type(a) is int and type(w) is int, monotonic=b >= a,
        wall_after_2026=w > 1767225600000)
    now = [5000]
    hal = SimHAL(clock=lambda: now[0])
    t0 = hal.ticks_ms()
    now[0] += 250
    hal.clock_offset_ms = -1000
    synced = hal.time_ms()
    hal.synced = False
    out("hal_clock", at_boot=t0, later=hal.ticks_ms(), offset_applied=synced < wall_ms() - 500,
        unsynced=hal.time_ms())


def adc(profile):
    from apps.sensor.app import SensorApp

    from hg import config
    hal = SimHAL(profile=profile)
    hal.values.update({"current": 5000, "voltage": 230000, "residual": 330, "temp_ntc": 250})
    app = SensorApp(config.defaults(), hal, profile)
    got = {}
    for name in ("current", "voltage", "residual", "temp_ntc"):
        got[name] = app.read(name)[0]
    hal.values["residual"] = None
    out("adc", read=got, open=app.read("residual")[1])


def button(root, profile):
    from apps.button.app import ButtonApp

    from hg import config
    from hg.device import Device
    from hg.outbox import LIGHT
    try:
        os.mkdir(root)
    except OSError:
        pass
    with open(root + "/config.json", "w") as f:
        f.write(json.dumps({"v": 1, "device_id": "hg-b-0001", "key_hex": KEY,
                            "type": "button", "board": "button-c3",
                            "broker": {"host": "broker", "port": 1883, "tls": False,
                                       "password": "pw"},
                            "button": {"hold_ms": 300}}))
    now = [0]

    def no_network(host, port, tls, ca):
        raise OSError("no network")

    hal = SimHAL(clock=lambda: now[0], connect=no_network, profile=profile)
    cfg, errors = config.load(root + "/config.json")
    app = ButtonApp(cfg, hal, profile)
    dev = Device.boot(hal, app, root)
    app.attach(dev)
    dev.link.rand = lambda: 32768  # fixed jitter: the npm MicroPython has no os.urandom

    def run(ms):
        end = now[0] + ms
        while now[0] < end:
            app.step(hal.ticks_ms())  # as hg.board runs them: inputs first
            dev.poll(hal.ticks_ms())
            now[0] += 20

    run(200)
    hal.pins["btn_fire"] = 1
    run(600)
    hal.pins["btn_fire"] = 0
    run(200)
    events = [s for s in dev.obx.pending() if dev.obx.kind(s) not in LIGHT]
    out("button", errors=errors, events=[dev.obx.kind(s) for s in events],
        leds=hal.leds, connect_failed=dev.link.failures > 0,
        last_error=dev.link.last_error, feeds=hal.feeds > 0)


def main(root, button_profile, sensor_profile):
    clocks()
    adc(sensor_profile)
    button(root, button_profile)

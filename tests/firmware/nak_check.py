# hg.device and hg.nak over an in-memory broker (fakebroker.py) on a clock
# the check moves: what the device does with the gateway's signed `nak`
# (seq_conflict and replay with the gateway's highest seq `hi`, clock_skew,
# an unknown reason), for an event made this boot, one made before a
# reboot, a heartbeat, the `online` status, and a replay for an event in the
# outbox.  One JSON line per check.
# MicroPython subset: tests/test_firmware_nak.py runs it under CPython and
# the npm MicroPython and requires identical output.
import json

from hg import protocol
from hg.device import Device
from hg.simhal import SimHAL

try:
    from tests.firmware.fakebroker import FakeBroker
except ImportError:  # MicroPython: the check's own folder is on sys.path
    from fakebroker import FakeBroker  # type: ignore[no-redef]

DEV = "hg-b-0099"
KEY = bytes(range(32))
T0 = 1796189400000  # the wall clock at ms 0 of the check


class Clock:
    def __init__(self):
        self.ms = 0

    def __call__(self):
        return self.ms


class App:
    def __init__(self):
        self.feedback = []
        self.renumbered = []

    def on_feedback(self, kind, ref):
        self.feedback.append([kind, ref])

    def on_renumber(self, old, new):
        self.renumbered.append([old, new])


def _j(x):
    # canonical JSON: the runtimes differ in dict order and spacing
    if isinstance(x, dict):
        return "{" + ",".join(json.dumps(k) + ":" + _j(x[k]) for k in sorted(x)) + "}"
    if isinstance(x, (list, tuple)):
        return "[" + ",".join(_j(v) for v in x) + "]"
    return json.dumps(x)


def out(check, **kw):
    kw["check"] = check
    print(_j(kw))


def sent(broker):
    """What the device published since the last call: [seq, kind, type, data, ts, age]."""
    got = []
    for topic, payload, _ in broker.published:
        m = protocol.verify(topic, payload, {DEV: KEY}.get)
        d = m["data"]
        got.append([m["seq"], m["kind"], m["type"], [[k, d[k]] for k in sorted(d)],
                    m.get("ts"), m["age"]])
    broker.published = []
    return got


def nak(broker, ref, reason, hi=None, ts=None, typ="nak"):
    data = {"ref": ref}
    if typ == "nak":
        data["reason"] = reason
    if hi is not None:
        data["hi"] = hi
    broker.deliver(protocol.topic(DEV, "ack"),
                   protocol.encode(KEY, DEV, 1000 + ref, "ack", typ, 0, data, ts))


def boot(root, clock, broker, app):
    hal = SimHAL(clock=clock, connect=broker.connect, reset_cause="power_on")
    hal.time_ms = lambda: T0 + clock.ms + hal.clock_offset_ms
    logs = []
    dev = Device.boot(hal, app, root, log=logs.append)
    dev.poll(hal.ticks_ms())  # connect, online, the first heartbeat
    return dev, logs


def seq_file(root):
    with open(root + "/seq") as f:
        return f.read()


def main(root):
    with open(root + "/config.json", "w") as f:
        f.write(json.dumps({
            "v": 1, "device_id": DEV, "type": "button", "board": "button-c3",
            "broker": {"host": "broker", "port": 1883, "tls": False,
                       "username": DEV, "password": "pw"}, "key_hex": KEY.hex()}))
    clock, broker, app = Clock(), FakeBroker(), App()
    dev, logs = boot(root, clock, broker, app)
    out("boot", sent=sent(broker))  # will 1, online 2, heartbeat 3
    clock.ms = 1000
    seq = dev.send_event("fire", {"btn": "a"})
    out("alarm", seq=seq, sent=sent(broker))

    clock.ms = 6000  # the gateway holds seq 4 (other content) and up to 500
    nak(broker, seq, protocol.R_CONFLICT, 500)
    dev.poll(dev.hal.ticks_ms())
    out("seq_conflict", sent=sent(broker), outbox=dev.obx.pending(), seq_file=seq_file(root),
        renumbered=app.renumbered, log=logs, error=dev.last_error)  # same event time
    nak(broker, 501, None, typ="stored")
    dev.poll(dev.hal.ticks_ms())
    out("stored", outbox=dev.obx.pending(), feedback=app.feedback)

    nak(broker, 77, protocol.R_REPLAY, 900)  # not in the outbox: the counter only
    dev.poll(dev.hal.ticks_ms())
    out("replay not ours", sent=sent(broker), next=dev.send_event("medical"),
        renumbered=app.renumbered)
    sent(broker)

    nak(broker, 3, protocol.R_REPLAY, 950)  # the first heartbeat
    dev.poll(dev.hal.ticks_ms())
    again = sent(broker)
    nak(broker, again[0][0], protocol.R_REPLAY, 960)  # resent once, not twice
    dev.poll(dev.hal.ticks_ms())
    out("heartbeat", sent=again, then=sent(broker))

    nak(broker, 900, "busy")
    dev.poll(dev.hal.ticks_ms())
    out("unknown reason", sent=sent(broker), error=dev.last_error)

    clock.ms = 8000
    kept = dev.send_event("security")
    sent(broker)
    clock.ms = 20000  # a reboot with the event still unacked
    dev, logs = boot(root, clock, broker, app)
    first = sent(broker)
    clock.ms = 21000
    nak(broker, kept, protocol.R_CONFLICT, 2000)
    dev.poll(dev.hal.ticks_ms())
    out("after reboot", kept=kept, boot_seqs=[m[0] for m in first], sent=sent(broker),
        outbox=dev.obx.pending(), renumbered=app.renumbered[-1:])

    online = first[0][0]
    nak(broker, online, protocol.R_SKEW, ts=T0 + clock.ms + 60000)  # the clock is 60 s behind
    dev.poll(dev.hal.ticks_ms())
    out("online clock_skew", online=online, sent=sent(broker))

    # a replay NAK for an event still in the outbox (a counter that went
    # back below the gateway's window): past hi, sent again under a fresh seq
    for seq in dev.obx.pending():
        nak(broker, seq, None, typ="stored")
    dev.poll(dev.hal.ticks_ms())
    sent(broker)
    clock.ms = 30000
    held = dev.send_event("panic", {"btn": "p"})
    first = sent(broker)
    clock.ms = 32000
    nak(broker, held, protocol.R_REPLAY, 7000)
    dev.poll(dev.hal.ticks_ms())
    out("replay in outbox", held=held, first=first, sent=sent(broker), outbox=dev.obx.pending(),
        renumbered=app.renumbered[-1:], log=logs[-1:], seq_file=seq_file(root))

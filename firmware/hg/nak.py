# What the device does with the gateway's signed `nak` (docs/firmware.md).
# hg.device loads this module only while a NAK is handled (hg.config.cold)
# and unloads it after: a board does not keep it on its heap.
#
#   clock_skew     the clock is corrected by the gateway's ts; an event is
#                  sent again under its seq without ts, a status/heartbeat
#                  under a fresh seq
#   seq_conflict,  the device's counter went back (flash wiped, board
#   replay         replaced, backup restored): the gateway holds `ref` with
#                  other content, or it is below its window.  The seq
#                  reservation moves past `hi` (the gateway's highest seq for
#                  the device, persisted), and an event still in the outbox is
#                  sent again under a fresh seq: same kind, type, data and
#                  event time (ts kept, age from its birth) -- nothing dropped
#   anything else  noted in last_error, nothing resent
#
# A status or heartbeat is sent again once, made afresh (a new `online`, a
# heartbeat with the state of now).
# MicroPython subset.
from hg import protocol


def handle(dev, ref, data, ts, now):
    reason = data.get("reason")
    dev.last_error = "nak " + str(reason) + " seq " + str(ref)
    if reason == protocol.R_SKEW:
        mine = dev.hal.time_ms()
        if ts is not None and mine is not None:
            dev._clock_adj = ts - mine
    elif reason in (protocol.R_CONFLICT, protocol.R_REPLAY):
        hi = data.get("hi")
        if isinstance(hi, int) and hi > 0:
            dev.seqs.skip_past(hi)
    else:
        return
    if ref in dev.obx.index:
        if dev.obx.kind(ref) in ("telemetry", "heartbeat"):
            return  # kept while offline and sent once: not resent
        if reason == protocol.R_SKEW:
            _born(dev, ref, now)[1] = None  # resend at once, with age only
            dev._sent.pop(ref, None)
        else:
            _renumber(dev, ref, reason, now)
    else:
        light = dev._light.pop(ref, None)
        if light is not None:
            _resend_light(dev, light, now)


def _born(dev, seq, now):
    """[ticks, ts] of the event's birth; for one made before this boot, from
    its stored bytes (its ts, else its stored age)."""
    b = dev._born.get(seq)
    if b is None:
        m = protocol.parse(dev.obx.get(seq))[0]
        ts = m.get("ts")
        clock = dev.time_ms()
        age = clock - ts if ts is not None and clock is not None else m["age"]
        b = dev._born[seq] = [now - max(0, age), ts]
    return b


def _renumber(dev, ref, reason, now):
    b = _born(dev, ref, now)
    m = protocol.parse(dev.obx.get(ref))[0]
    kind = dev.obx.kind(ref)
    seq = dev.seqs.next()
    wire = dev._encode(seq, m["kind"], m["type"], m["data"], now - b[0], b[1])
    dev.obx.put(seq, kind, wire)  # the new copy first: a power cut keeps one
    dev.obx.remove(ref)
    dev._born.pop(ref, None)
    dev._sent.pop(ref, None)
    dev._born[seq] = b
    dev.renumbered += 1
    dev.log(dev.dev + " seq " + str(ref) + " refused (" + reason + "): sent again as " + str(seq))
    f = getattr(dev.app, "on_renumber", None)
    if f:
        f(ref, seq)


def _resend_light(dev, kind, now):
    if kind == "status":
        dev.link.publish(protocol.topic(dev.dev, "status"), dev._status("online", True, False),
                         1, True)
    else:
        dev._light.pop(dev.send_telemetry(dev._heartbeat(now), kind), None)

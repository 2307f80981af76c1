# The device runtime the apps plug into: config, sequence reservation, the
# flash outbox and hg.link, heartbeat, time, commands, the centre's feedback,
# remote config with rollback, watchdog.  MicroPython subset; all hardware
# comes from `hal`, an object with these methods (hg/simhal.py is the CPython
# one used in tests; docs/firmware.md):
#
#   ticks_ms() -> int          monotonic ms since boot, never wraps
#   time_ms() -> int | None    ms since 1970 UTC when the clock is synced
#   rssi() -> int | None       Wi-Fi signal, dBm
#   supply_mv() -> int | None  battery or supply voltage
#   reset_cause() -> str       "power_on", "watchdog", "soft", "deep_sleep", ...
#   wdt_feed()                 feed the hardware watchdog
#   reboot()                   restart the board (does not return on a board)
#   led(pattern), buzzer(pattern)   "fault", "locate", or an app's pattern
#   connect_socket(host, port, tls, ca) -> stream   (hg.net.tcp: never blocks)
#
# App interface: Device(cfg, hal, app, root) or Device.boot(hal, app, root);
# dev.poll(now_ms) from the main loop; dev.send_event(type, data, kind="alarm")
# -> seq; dev.send_telemetry(data) -> seq.  The app may define on_feedback(
# kind, ref), on_config(cfg) (raise to refuse: the config is rolled back),
# self_test() -> dict, on_fault(reason) and on_renumber(old_seq, new_seq)
# (an event the gateway refused as seq_conflict/replay was sent again under
# a new seq, hg/nak.py); all optional.
from hg import config, protocol
from hg.link import Link
from hg.mqtt import MQTTClient
from hg.outbox import LIGHT, Outbox
from hg.seqres import SeqRes

try:
    from binascii import unhexlify
except ImportError:  # pragma: no cover
    from ubinascii import unhexlify

FW = "hg-0.1"
FEEDBACK = ("stored", "delivered", "acknowledged", "dispatched", "resolved")
DONE = ("stored", "delivered")  # the gateway has it: leave the outbox


def clean(s):
    """Text fit for a protocol string value (<= 64 printable ASCII, no quotes)."""
    out = ""
    for c in str(s):
        if " " <= c <= "~" and c not in "\"\\":
            out += c
    return out[:64]


def _err(e):
    return type(e).__name__ + " " + " ".join(str(a) for a in e.args)


def _call(app, name, *args):
    f = getattr(app, name, None)
    return f(*args) if f else None


class Device:
    def __init__(self, cfg, hal, app, root="/", errors=(), resend_ms=30000,
                 trial_ms=120000, healthy_ms=10000, max_count=64, max_bytes=32768,
                 log=print):
        self.hal, self.app, self.root, self.log = hal, app, root, log
        self.resend_ms, self.trial_ms, self.healthy_ms = resend_ms, trial_ms, healthy_ms
        self.faults = []  # (type, reason) to report once connected
        if config.in_trial(root):  # rebooted before the new config was healthy
            cfg, errors = config.rollback(root)
            self.faults.append(("config", "rolled back: rebooted during trial"))
        self.cfg, self.errors = cfg, list(errors)
        self.fault = self.errors[0] if self.errors else None
        self.last_error = self.fault
        self.dev = cfg["device_id"]
        self.obx = Outbox(config.join(root, "obx"), max_count, max_bytes)
        self.seqs = SeqRes(config.join(root, "seq"), floor=self.obx.highest())
        self.rst = hal.reset_cause()
        self.boot_ms = hal.ticks_ms()
        self.loop_errors = self.bad_downlink = self.sent = self.renumbered = 0
        self._sent = {}  # event seq -> ms it was last handed to the link
        self._connects = 0  # link.connects last seen: a new connection resends at once
        self._born = {}  # seq -> [ticks, ts] of messages made this boot
        self._light = {}  # seq -> kind ("status"/"heartbeat") of the last ones sent
        self._next_hb = self.boot_ms
        self._first_hb = True
        self._trial = None  # ms a remote config was applied, until commit
        self._trial_errs = 0
        self._cfg_seen = None
        self._clock_adj = 0  # ms the gateway said our clock is behind
        self._reboot = self._in_poll = False
        self.link = self.key = None
        if self.fault:
            hal.led("fault")
            _call(app, "on_fault", self.fault)
            self.faults.append(("config", self.fault))
        if cfg["device_id"] and cfg["key_hex"] and cfg["broker"]["host"]:
            self.key = unhexlify(cfg["key_hex"])
            self.link = self._make_link()

    @classmethod
    def boot(cls, hal, app, root="/", **kw):
        cfg, errors = config.load(config.join(root, config.FILE))
        return cls(cfg, hal, app, root, errors, **kw)

    def _make_link(self):
        b = self.cfg["broker"]
        hal = self.hal

        def transport():
            return hal.connect_socket(b["host"], b["port"], b["tls"], b["ca"] or None)

        c = MQTTClient(self.dev, transport, b["username"], b["password"], keepalive=60)
        c.on_message = self._on_message
        st = protocol.topic(self.dev, "status")
        return Link(c, subs=[(protocol.topic(self.dev, leaf), 1) for leaf in protocol.DOWNLINK],
                    will=(st, lambda: self._status("offline", False)),
                    online=(st, lambda: self._status("online", True)),
                    log=lambda text: self.log(self.dev + " " + text),
                    refresh=self._refresh, urgent=self._urgent)

    def _urgent(self):
        """An event (not telemetry) waits in flash for the centre's ack."""
        for seq in self.obx.pending():
            if self.obx.kind(seq) not in LIGHT:
                return True
        return False

    # --- encoding -----------------------------------------------------------

    def time_ms(self):
        t = self.hal.time_ms()
        return None if t is None else t + self._clock_adj

    def _encode(self, seq, kind, typ, data, age, ts):
        if self.key is None:
            raise OSError("cannot sign: " + str(self.fault))
        return protocol.encode(self.key, self.dev, seq, kind, typ, age, data, ts)

    def _status(self, typ, with_ts, keep=True):
        ts = self.time_ms() if with_ts else None
        seq = self.seqs.next()
        data = {"fw": FW, "rst": clean(self.rst)}
        if with_ts and keep:  # an `online`, sent again if refused for a transient reason
            self._keep(seq, "status")
        return self._encode(seq, "status", typ, data, 0, ts)

    def _keep(self, seq, kind):
        self._light[seq] = kind
        if len(self._light) > 4:
            del self._light[min(self._light)]

    def _wire(self, seq, now):
        """The bytes to send for a stored message, re-encoded with its age:
        made this boot, from the ticks since; made before a reboot (ticks
        gone), from the clock (_refresh). An age of 0 on a message that
        waited in flash would read as a device clock that is behind
        (clock_skew) and lose it."""
        wire = self.obx.get(seq)
        b = self._born.get(seq)
        if b is None:
            return self._refresh(None, wire)
        m = protocol.parse(wire)[0]
        return self._encode(seq, m["kind"], m["type"], m["data"], now - b[0], b[1])

    def _refresh(self, topic, wire):
        """A publish the link sends again (after a reconnect, or no PUBACK):
        the same message with the age it has now: made this boot, from the
        ticks since (with or without a clock); else from the clock (ts + age =
        now).  The bytes of its first send would carry the age of then, and a
        message held a minute on a dead link would read as a clock that is
        behind (clock_skew) and, for telemetry, be lost; without `ts` it
        would read as a later event under the same seq (a seq_conflict)."""
        try:
            m = protocol.parse(wire)[0]
            if m["dev"] != self.dev:
                return wire
            b = self._born.get(m["seq"])
            if b is not None:
                age = self.hal.ticks_ms() - b[0]
                ts = b[1]
            else:
                t = self.time_ms()
                if t is None or m.get("ts") is None or t < m["ts"]:
                    return wire
                age, ts = t - m["ts"], m["ts"]
            return self._encode(m["seq"], m["kind"], m["type"], m["data"],
                                min(age, protocol.MAX_AGE), ts)
        except Exception:  # not one of ours (status): as it was
            return wire

    # --- app interface --------------------------------------------------------

    def send_event(self, typ, data=None, kind="alarm"):
        """Store the event in flash, send it when connected; returns its seq.
        Raises outbox.Full when flash holds only unacknowledged events, and
        protocol.Reject (oversized) when it could outgrow 1024 bytes."""
        now = self.hal.ticks_ms()
        ts = self.time_ms()
        data = data or {}
        # it must fit the 1024-byte limit on every resend too (age and a new
        # seq after a NAK only grow): refused here, loudly, never in a loop later
        self._encode(protocol.MAX_SEQ, kind, typ, data, protocol.MAX_AGE, ts)
        seq = self.seqs.next()
        self.obx.put(seq, kind, self._encode(seq, kind, typ, data, 0, ts))
        self._born[seq] = [now, ts]
        if self.link and kind not in LIGHT:
            self.link.hurry()  # a long backoff begun while idle must not hold it
        if not self._in_poll:
            self._send_pending(now)
        return seq

    def send_telemetry(self, data, kind="telemetry"):
        """Telemetry or a heartbeat: straight to the link when connected (RAM,
        QoS 1), kept in flash only while offline, where it may be shed."""
        now = self.hal.ticks_ms()
        seq = self.seqs.next()
        ts = self.time_ms()
        wire = self._encode(seq, kind, "periodic", data, 0, ts)
        if self.link and self.link.connected:
            self.link.publish(protocol.topic(self.dev, kind), wire, 1, False, now)
            self.sent += 1
            if kind == "heartbeat":
                self._keep(seq, kind)
        elif self.obx.put(seq, kind, wire):
            self._born[seq] = [now, ts]
        return seq

    def close(self):
        if self.link:
            self.link.close(self.hal.ticks_ms())

    # --- the loop -------------------------------------------------------------

    def poll(self, now_ms):
        """One loop iteration; the watchdog is fed only when it went well."""
        try:
            self._step(now_ms)
        except Exception as e:  # a bug must not stop the loop: the watchdog decides
            self.loop_errors += 1
            self.last_error = "loop: " + _err(e)
            return False
        self.hal.wdt_feed()
        return True

    def _step(self, now):
        if self._reboot:
            self.close()
            self.hal.reboot()
            return
        if self.link:
            self._in_poll = True
            try:
                self.link.poll(now)
            finally:
                self._in_poll = False
            if self.link.connected:
                if self.link.connects != self._connects:
                    # a new connection: what is still unacked goes again now,
                    # not when its resend timer runs out
                    self._connects = self.link.connects
                    self._sent.clear()
                while self.faults:
                    typ, reason = self.faults.pop(0)
                    self.send_event(typ, {"reason": clean(reason)}, "fault")
                self._send_pending(now)
        if self.link and now >= self._next_hb:
            self._next_hb = now + self.cfg["heartbeat_s"] * 1000
            self.send_telemetry(self._heartbeat(now), "heartbeat")
        self._check_trial(now)

    def _heartbeat(self, now):
        d = {"up_s": (now - self.boot_ms) // 1000, "fw": FW, "obx": len(self.obx),
             "err": clean(self.last_error or self.link and self.link.last_error or "")}
        for k, v in (("rssi", self.hal.rssi()), ("bat_mv", self.hal.supply_mv())):
            if v is not None:
                d[k] = v
        if self._first_hb:  # the reset cause, once after boot
            self._first_hb = False
            d["rst"] = clean(self.rst)
        return d

    def _send_pending(self, now):
        link = self.link
        if not link or not link.connected:
            return
        for seq in self.obx.pending():
            if link.pending() >= link.max_inflight:
                return
            kind = self.obx.kind(seq)
            light = kind in LIGHT
            if not light and now - self._sent.get(seq, now - self.resend_ms) < self.resend_ms:
                continue
            link.publish(protocol.topic(self.dev, protocol.TOPIC_OF[kind]),
                         self._wire(seq, now), 1, False, now)
            self.sent += 1
            if light:  # handed to the link: RAM from here on
                self.obx.remove(seq)
                self._born.pop(seq, None)
            else:
                self._sent[seq] = now

    # --- downlink -------------------------------------------------------------

    def _key_of(self, dev):
        return self.key if dev == self.dev else None

    def _on_message(self, topic, payload):
        try:
            msg = protocol.verify(topic, payload, self._key_of)
        except protocol.Reject as e:
            self.bad_downlink += 1
            self.last_error = "downlink " + str(e)
            return
        try:
            kind = msg["kind"]
            if kind == "ack":
                self._on_ack(msg["type"], msg["data"], msg.get("ts"))
            elif kind == "cmd":
                self._on_cmd(msg["type"])
            elif kind == "config":
                self._on_config(msg["seq"], msg["data"])
        except Exception as e:  # the message is handled (PUBACK); the loop goes on
            self.loop_errors += 1
            self.last_error = "handling " + msg["kind"] + ": " + _err(e)

    def _on_ack(self, typ, data, ts):
        ref = data["ref"]
        if typ == "nak":  # hg.nak, loaded for the moment it runs
            config.cold("nak", "handle", self, ref, data, ts, self.hal.ticks_ms())
            return
        if typ in DONE and self.obx.remove(ref):
            self._sent.pop(ref, None)
            self._born.pop(ref, None)
        _call(self.app, "on_feedback", typ, ref)

    def _on_cmd(self, typ):
        if typ == "reboot":
            self._reboot = True  # on the next poll, after the PUBACK went out
        elif typ == "locate":
            self.hal.led("locate")
            self.hal.buzzer("locate")
        elif typ == "selftest":
            d = {"obx": len(self.obx), "cfg_ok": not self.errors, "fw": FW}
            d.update(_call(self.app, "self_test") or {})
            self.send_event("auto", d, "test")

    # remote config: hg.remotecfg, loaded only while a change is handled
    def _on_config(self, seq, data):
        if seq != self._cfg_seen:
            config.cold("remotecfg", "apply", self, seq, data)

    def _check_trial(self, now):
        if self._trial is None:
            return
        healthy = self.link and self.link.connected and self.loop_errors == self._trial_errs
        if healthy and now - self._trial >= self.healthy_ms:
            config.commit(self.root)
            self._trial = None
        elif now - self._trial >= self.trial_ms:
            self._rollback("not healthy within " + str(self.trial_ms // 1000) + " s")

    def _rollback(self, why):
        config.cold("remotecfg", "rollback", self, why)

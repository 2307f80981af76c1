# Drives hg.mqtt and hg.link over an in-memory socket with scripted broker
# replies and prints one JSON line per check.  MicroPython subset: the same
# file runs under the npm MicroPython and under CPython, and
# tests/test_fw_mqtt.py requires both outputs to be identical and compares
# them with bytes written out by hand from the MQTT 3.1.1 spec.
import json

from hg import mqtt
from hg.link import Link

try:
    from binascii import hexlify
except ImportError:  # pragma: no cover
    from ubinascii import hexlify

CONNACK = b"\x20\x02\x00\x00"


class FakeSock:
    """A stream whose 'broker' sends the chunks in rx (b"" = it closed);
    everything written lands in tx."""

    def __init__(self, rx=()):
        self.rx = list(rx)
        self.tx = bytearray()
        self.blocking = True
        self.closed = False
        self.stalled = False  # takes no bytes (connect not through, broker not reading)

    def read(self, n):
        if self.closed:
            raise OSError(9, "closed")
        if not self.rx:
            if self.blocking:
                raise OSError(110, "timed out")
            return None
        c = self.rx[0]
        if not c:
            return b""
        if len(c) > n:
            self.rx[0] = c[n:]
        else:
            self.rx.pop(0)
        return c[:n]

    def write(self, b):
        if self.closed:
            raise OSError(9, "closed")
        if self.stalled:
            return None
        self.tx += b
        return len(b)

    def setblocking(self, flag):
        self.blocking = flag

    def close(self):
        self.closed = True

    def take(self):
        t = hexlify(bytes(self.tx)).decode()
        self.tx = bytearray()
        return t


def _err(f, *args):
    try:
        f(*args)
        return "ok"
    except mqtt.Refused as e:
        return "Refused " + str(e.args[0])
    except OSError:
        return "OSError"


def _connect(c, now=0, will=None):
    """connect() + one poll: the session flag once the CONNACK came."""
    c.connect(now, will)
    c.poll(now)
    return c.session if c.connected else None


def _connected(rx=(), **kw):
    s = FakeSock([CONNACK])
    c = mqtt.MQTTClient("hg-b-0001", s, **kw)
    _connect(c)
    s.take()
    s.rx = list(rx)  # what the broker sends after the CONNACK
    return c, s


def check_encoding(out):
    for n in (0, 127, 128, 16383, 16384, 2097151, 2097152, 268435455):
        out.append({"name": "vlen " + str(n), "hex": hexlify(bytes(mqtt._vlen(n))).decode()})
    s = FakeSock([CONNACK])
    c = mqtt.MQTTClient("hg-b-0001", s, "hg-b-0001", "pw", keepalive=60)
    sp = _connect(c, 0, ("hg/v1/hg-b-0001/status", b"off"))
    out.append({"name": "connect will user password", "hex": s.take(), "session": sp})
    s = FakeSock([b"\x20\x02\x01\x00"])
    c = mqtt.MQTTClient("dev", s, keepalive=300, clean=False)
    sp = _connect(c)
    out.append({"name": "connect bare", "hex": s.take(), "session": sp})
    c, s = _connected()
    c.publish("a/b", b"hi")
    out.append({"name": "publish qos0", "hex": s.take()})
    pid = c.publish("a/b", b"hi", 1, True, 5)
    out.append({"name": "publish qos1 retain", "hex": s.take(), "pid": pid})
    pid = c.publish("a/b", b"hi", 1)
    c.resend(pid, 9)
    out.append({"name": "publish qos1 then dup", "hex": s.take(), "pid": pid,
                "inflight": sorted(c.inflight)})
    c.subscribe([("hg/v1/x/ack", 1), ("hg/v1/x/cmd", 0)])
    out.append({"name": "subscribe", "hex": s.take()})
    c.ping(0)
    out.append({"name": "pingreq", "hex": s.take(), "out": c.ping_out})
    c.disconnect()
    out.append({"name": "disconnect", "hex": s.take(), "closed": s.closed})


def check_parsing(out):
    got = []
    acked = []
    c, s = _connected()
    c.on_message = lambda t, p: got.append([t, len(p), p[:3].decode()])
    c.on_puback = acked.append
    c.publish("a/b", b"x", 1)
    c.publish("a/b", b"y", 1)
    s.take()
    big = b"\x00\x03a/b\x00\x07" + b"abc" * 100  # 307 bytes: length b3 02
    stream = b"\x40\x02\x00\x02" + b"\x32\xb3\x02" + big + b"\x30\x05\x00\x01zok"
    s.rx = [stream[i:i + 1] for i in range(len(stream))]  # one byte per read
    n = 0
    while s.rx:  # a poll reads at most mqtt.READS chunks
        n += c.poll(1)
    out.append({"name": "parse split packets", "handled": n, "got": list(got), "acked": list(acked),
                "inflight": sorted(c.inflight), "hex": s.take()})
    s.rx = [b"\x90\x04\x00\x07\x01\x80", b"\xd0\x00"]
    c.subscribing[7] = ["t/ok", "t/no"]
    c.ping_out = True
    out.append({"name": "parse suback pingresp", "handled": c.poll(2),
                "refused": c.refused, "ping_out": c.ping_out})
    s.rx = [b"\x40\x02"]
    out.append({"name": "parse partial", "handled": c.poll(3)})
    s.rx = [b"\x00\x01"]
    out.append({"name": "parse rest", "handled": c.poll(4), "inflight": sorted(c.inflight)})


def check_errors(out):
    cases = (("refused 5", [b"\x20\x02\x00\x05"]), ("refused 4", [b"\x20\x02\x00\x04"]),
             ("connack garbage", [b"HTTP/1.1 400"]), ("connack closed", [b""]),
             ("connack timeout", []))
    for name, rx in cases:
        c = mqtt.MQTTClient("d", FakeSock(rx))
        c.connect(0)
        r = _err(c.poll, 0)
        out.append({"name": name, "result": r})
        if r == "ok":  # nothing yet: fails once timeout_s has passed
            out.append({"name": name + " 9999", "result": _err(c.poll, 9999)})
            out.append({"name": name + " 10000", "result": _err(c.poll, 10000)})
    polls = (("poll closed", [b""]), ("poll bad type", [b"\xf0\x00"]),
             ("poll long length", [b"\x30\xff\xff\xff\xff\x01"]),
             ("poll too large", [b"\x30\xff\xff\x03"]),
             ("poll truncated publish", [b"\x30\x02\x00\x09"]),
             ("poll qos2", [b"\x34\x06\x00\x01t\x00\x01x"]))
    for name, rx in polls:
        c, s = _connected(rx)
        out.append({"name": name, "result": _err(c.poll, 0)})
    c, s = _connected()
    s.close()
    out.append({"name": "publish on closed", "result": _err(c.publish, "t", b"", 1),
                "inflight": sorted(c.inflight)})


class BadCert(FakeSock):
    """MicroPython's TLS stream refusing the broker's certificate."""

    def write(self, b):
        raise ValueError("MBEDTLS_ERR_X509_CERT_VERIFY_FAILED")


def check_stream_errors(out):
    s = FakeSock([])
    s.stalled = True  # TCP connect or TLS handshake not through
    c = mqtt.MQTTClient("d", s)
    c.connect(0)
    r = [_err(c.poll, t) for t in (0, 5000, 9999)]
    out.append({"name": "stalled connect", "polls": r, "result": _err(c.poll, 10000),
                "tx": s.take()})
    c = mqtt.MQTTClient("d", BadCert([]))
    try:
        c.connect(0)
        c.poll(0)
        got = "ok"
    except OSError as e:
        got = "OSError " + str(e.args[0])
    out.append({"name": "tls refused cert", "result": got, "closed": c.sock is None})
    c, s = _connected()
    c.publish("a/b", b"hi", 1)
    s.take()
    s.stalled = True  # the broker stopped reading
    c.publish("a/b", b"x" * 100, 1, False, 100)
    out.append({"name": "write stalled", "polls": [_err(c.poll, t) for t in (5000, 10099)],
                "result": _err(c.poll, 10100)})


class Broker:
    """Transport factory for Link tests: each connect gets the next script;
    an OSError instance in the list makes that connect attempt fail."""

    def __init__(self, scripts):
        self.scripts = list(scripts)
        self.socks = []

    def __call__(self):
        sc = self.scripts.pop(0)
        if isinstance(sc, OSError):
            raise sc
        s = FakeSock(sc)
        self.socks.append(s)
        return s


def _seq(vals):
    vals = list(vals)
    return lambda: vals.pop(0)


def check_backoff(out):
    b = Broker([OSError(111, "refused")] * 9)
    c = mqtt.MQTTClient("d", b)
    logged = []
    link = Link(c, rand=_seq([0, 65535, 32768, 0, 0, 16384, 0, 0, 0]),
                backoff_ms=(1000, 30000), log=logged.append)
    tries = []
    early = 0
    now = 0
    while len(tries) < 9:
        link.poll(now - 1)  # one ms early: no attempt
        early += link.failures - len(tries)
        link.poll(now)
        tries.append(now)
        now = link.next_try
    out.append({"name": "backoff schedule", "tries": tries, "early": early,
                "failures": link.failures, "next": link.next_try,
                "error": link.last_error, "connected": link.connected, "log": logged})


def check_link(out):
    status = []
    logged = []
    b = Broker([[CONNACK], [CONNACK]])
    c = mqtt.MQTTClient("d", b, keepalive=10)
    link = Link(c, subs=[("d/ack", 1)], rand=lambda: 0, backoff_ms=(1000, 8000),
                will=("d/st", lambda: b"off" + str(len(status)).encode()),
                online=("d/st", lambda: status.append(1) or b"on"), puback_ms=3000,
                log=logged.append)
    out.append({"name": "link offline publish", "sent": link.publish("d/ev", b"q1", 1),
                "qos0": link.publish("d/t", b"z"), "dropped": link.dropped,
                "pending": link.pending()})
    link.poll(0)
    s = b.socks[0]
    out.append({"name": "link connect", "hex": s.take(), "connected": link.connected,
                "inflight": sorted(c.inflight)})
    s.rx = [b"\x40\x02\x00\x02"]  # broker acks the online status only
    link.poll(2000)
    out.append({"name": "link no ack yet", "hex": s.take()})
    link.poll(3000)
    out.append({"name": "link puback timeout", "hex": s.take(), "resends": link.resends})
    link.puback_ms = 100000
    for t in (5000, 11999, 12000, 13000, 17000):
        link.poll(t)
        out.append({"name": "link idle " + str(t), "hex": s.take(), "connected": link.connected})
    link.poll(17001)
    out.append({"name": "link half-open", "connected": link.connected, "closed": s.closed,
                "drops": link.drops, "next": link.next_try, "error": link.last_error})
    link.publish("d/ev", b"q2", 1)
    link.poll(17400)
    link.poll(17600)
    s = b.socks[1]
    out.append({"name": "link reconnect", "hex": s.take(), "connects": link.connects,
                "inflight": sorted(c.inflight), "pending": link.pending(), "log": logged})
    s.rx = [b"\x40\x02\x00\x03\x40\x02\x00\x05\x40\x02\x00\x06\x90\x03\x00\x04\x01"]
    link.poll(17700)
    out.append({"name": "link acked", "pending": link.pending(), "refused": c.refused})
    s.rx = [b"\x30\x09\x00\x05d/ackok"]
    got = []
    c.on_message = lambda t, p: got.append(t + " " + p.decode())
    link.poll(18000)
    out.append({"name": "link message", "got": got, "hex": s.take()})
    link.close()
    out.append({"name": "link close", "hex": s.take(), "connected": link.connected})


def check():
    out = []
    for f in (check_encoding, check_parsing, check_errors, check_stream_errors, check_backoff,
              check_link):
        f(out)
    return out


def main():
    for row in check():
        print(json.dumps(row))

# MQTT 3.1.1 client, the protocol layer: builds and parses packets over an
# injected stream and raises OSError on any link trouble.  Policy (reconnect,
# backoff, keepalive, resend) lives in hg/link.py.  MicroPython subset; the
# same file runs under CPython.  Section numbers refer to the OASIS spec.
MAX_PACKET = 8192  # largest packet we accept from the broker
READS = 8  # reads per poll, so a flood cannot starve the caller
MAX_OUT = 16384  # bytes waiting for the stream before the link counts as stuck

REASONS = ("", "bad protocol version", "client id rejected", "server unavailable",
           "bad user name or password", "not authorised")


class Refused(OSError):
    """CONNACK with a non-zero return code; args[0] is the code (3.2.2.3)."""


def _vlen(n):
    # remaining length: 7 bits a byte, low group first (2.2.3)
    b = bytearray()
    while True:
        d = n & 0x7F
        n >>= 7
        b.append(d | 0x80 if n else d)
        if not n:
            return b


def _s(x):
    if isinstance(x, str):
        x = x.encode()
    return bytes((len(x) >> 8, len(x) & 0xFF)) + x


def _u16(b, i=0):
    if len(b) < i + 2:
        raise OSError("truncated packet")
    return b[i] << 8 | b[i + 1]


def _packet(first, body=b""):
    p = bytearray((first,))
    p += _vlen(len(body))
    p += body
    return bytes(p)


def _idle(e):
    # "no data yet" on a non-blocking socket: EAGAIN (Linux 11, BSD 35) or
    # CPython's ssl.SSLWantReadError
    a = e.args
    return (a and a[0] in (11, 35)) or type(e).__name__.startswith("SSLWant")


def _link_error(e):
    # MicroPython's TLS raises ValueError for a certificate it refuses (and
    # for a bad CA file): a link error like any other
    if isinstance(e, OSError):
        return e
    return OSError(type(e).__name__ + ": " + " ".join(str(a) for a in e.args))


class MQTTClient:
    """One MQTT session at a time over `transport`: a callable that opens a
    fresh non-blocking stream on each connect() (hg.net.tcp), or one stream.
    A stream has read/recv and write/send (None or EAGAIN: not now; b"":
    closed) and close().  Nothing here waits: connect() starts a session
    and poll() carries it on; the time limits are checked against now_ms."""

    def __init__(self, client_id, transport, user=None, password=None,
                 keepalive=60, clean=True, timeout_s=10):
        self.client_id = client_id
        self.transport = transport
        self.user = user
        self.password = password
        self.keepalive = keepalive
        self.clean = clean
        self.timeout_s = timeout_s
        self.sock = None
        self.connected = False  # CONNACK accepted on this stream
        self.session = 0  # session-present flag of the last CONNACK
        self.inflight = {}  # pid -> [topic, payload, retain, sent_ms, order]
        self.refused = []  # topic filters the broker refused (SUBACK 0x80)
        self.on_message = None  # f(topic: str, payload: bytes)
        self.on_puback = None  # f(pid)
        self.last_rx = self.last_tx = 0
        self.ping_out = False
        self._pid = 0
        self._order = 0
        self.subscribing = {}  # pid -> filters awaiting SUBACK
        self._in = b""
        self._out = b""  # written by us, not yet taken by the stream
        self._stall = 0  # now_ms since when _out has been waiting
        self._start = 0  # now_ms of connect()

    def _send(self, pkt, now_ms):
        if self.sock is None:
            raise OSError("not connected")
        if not self._out:
            self._stall = now_ms
        if len(self._out) + len(pkt) > MAX_OUT:
            raise OSError("send buffer full: the broker is not reading")
        self._out += pkt
        self._flush(now_ms)

    def _flush(self, now_ms):
        while self._out:
            try:
                n = self._w(self._out)
            except OSError as e:
                if not _idle(e):
                    raise
                n = None
            except ValueError as e:
                raise _link_error(e) from None
            if n is None:
                return
            if not n:
                raise OSError("write stalled")
            self._out = self._out[n:]
            self._stall = self.last_tx = now_ms

    def connect(self, now_ms, will=None):
        """Open the transport and send CONNECT without waiting; poll() sets
        .connected when the CONNACK comes.  will=(topic, payload) goes as
        QoS 1 retained.  Raises OSError (Refused for a refusal, from poll)."""
        self.close()
        t = self.transport
        try:
            s = t() if callable(t) else t
        except ValueError as e:
            raise _link_error(e) from None
        self.sock = s
        self._r = getattr(s, "recv", None) or s.read
        self._w = getattr(s, "send", None) or s.write
        if hasattr(s, "setblocking"):
            s.setblocking(False)
        self._in = self._out = b""
        self.ping_out = self.connected = False
        self._start = now_ms
        try:
            self._send(self._connect_packet(will), now_ms)
        except BaseException:
            self.close()
            raise

    def _connect_packet(self, will):
        flags = 2 if self.clean else 0
        pl = _s(self.client_id)
        if will:
            flags |= 0x2C  # will flag, will QoS 1, will retain (3.1.2.5-3.1.2.7)
            pl += _s(will[0]) + _s(will[1])
        if self.user is not None:
            flags |= 0x80
            pl += _s(self.user)
        if self.password is not None:
            flags |= 0x40
            pl += _s(self.password)
        ka = self.keepalive
        return _packet(0x10, b"\x00\x04MQTT\x04" + bytes((flags, ka >> 8, ka & 0xFF)) + pl)

    def _next_pid(self):
        while True:
            self._pid = self._pid % 65535 + 1
            if self._pid not in self.inflight and self._pid not in self.subscribing:
                return self._pid

    def publish(self, topic, payload, qos=0, retain=False, now_ms=0):
        """Send PUBLISH; QoS 1 is tracked in .inflight until PUBACK (also
        when sending raises).  Returns the packet id (0 for QoS 0)."""
        if qos not in (0, 1):
            raise ValueError("QoS 0 or 1 only")
        pid = 0
        if qos:
            pid = self._next_pid()
            self._order += 1
            self.inflight[pid] = [topic, payload, retain, now_ms, self._order]
        self._pub(pid, topic, payload, retain, False, now_ms)
        return pid

    def resend(self, pid, now_ms):
        """Send an unacknowledged QoS 1 publish again with DUP set (3.3.1.1)."""
        m = self.inflight[pid]
        m[3] = now_ms
        self._pub(pid, m[0], m[1], m[2], True, now_ms)

    def _pub(self, pid, topic, payload, retain, dup, now_ms):
        first = 0x30 | (2 if pid else 0) | (8 if dup else 0) | (1 if retain else 0)
        body = _s(topic)
        if pid:
            body += bytes((pid >> 8, pid & 0xFF))
        self._send(_packet(first, body + payload), now_ms)

    def subscribe(self, topics, now_ms=0):
        """One SUBSCRIBE for [(filter, qos), ...]; returns its packet id."""
        pid = self._next_pid()
        body = bytes((pid >> 8, pid & 0xFF))
        for t, q in topics:
            body += _s(t) + bytes((q,))
        self.subscribing[pid] = [t for t, q in topics]
        self._send(_packet(0x82, body), now_ms)
        return pid

    def ping(self, now_ms):
        self._send(b"\xc0\x00", now_ms)
        self.ping_out = True

    def disconnect(self, now_ms=0):
        """DISCONNECT (the broker then drops the will), as far as the stream
        takes it now, and close."""
        try:
            if self.sock is not None:
                self._send(b"\xe0\x00", now_ms)
        finally:
            self.close()

    def close(self):
        s = self.sock
        self.sock = None
        self.connected = False
        self.subscribing = {}
        self._out = b""
        if s is not None:
            try:
                s.close()
            except OSError:
                pass

    def poll(self, now_ms):
        """Send what waits, handle every complete packet that has arrived,
        check the time limits; never blocks.  Returns how many packets were
        handled.  OSError when the link failed or a limit passed."""
        if self.sock is None:
            raise OSError("not connected")
        self._flush(now_ms)
        eof = False
        for _ in range(READS):
            try:
                d = self._r(1024)
            except OSError as e:
                if _idle(e):
                    break
                raise
            except ValueError as e:
                raise _link_error(e) from None
            if d is None:
                break
            if not d:
                eof = True
                break
            self._in += d
        n = 0
        while True:
            p = self._take()
            if p is None:
                break
            self._handle(p[0], p[1], now_ms)
            n += 1
        if eof:
            raise OSError("connection closed by broker")
        limit = self.timeout_s * 1000
        if not self.connected and now_ms - self._start >= limit:
            raise OSError(110, "no CONNACK within " + str(self.timeout_s) + " s")
        if self._out and now_ms - self._stall >= limit:
            raise OSError(110, "write stalled for " + str(self.timeout_s) + " s")
        return n

    def _take(self):
        b = self._in
        if b and not self.connected and b[0] != 0x20:
            raise OSError("expected CONNACK, got " + hex(b[0]))
        n = shift = 0
        i = 1
        while True:
            if i > 4:
                raise OSError("malformed remaining length")
            if i >= len(b):
                return None
            c = b[i]
            n |= (c & 0x7F) << shift
            shift += 7
            i += 1
            if not c & 0x80:
                break
        if n > MAX_PACKET:
            raise OSError("packet of " + str(n) + " bytes is too large")
        if len(b) < i + n:
            return None
        self._in = b[i + n:]
        return b[0], b[i:i + n]

    def _handle(self, first, body, now_ms):
        self.last_rx = now_ms
        t = first >> 4
        if not self.connected:
            self._connack(first, body)
        elif t == 3:
            self._incoming(first, body, now_ms)
        elif t == 4 and len(body) == 2:
            pid = _u16(body)
            if self.inflight.pop(pid, None) is not None and self.on_puback:
                self.on_puback(pid)
        elif t == 9:
            topics = self.subscribing.pop(_u16(body), ())
            for i in range(2, len(body)):
                if body[i] == 0x80 and i - 2 < len(topics):
                    self.refused.append(topics[i - 2])
        elif t == 13 and not body:
            self.ping_out = False
        else:
            raise OSError("unexpected packet " + hex(first))

    def _connack(self, first, body):
        if first != 0x20 or len(body) != 2:
            raise OSError("expected CONNACK, got " + hex(first))
        if body[1]:
            code = body[1]
            raise Refused(code, REASONS[code] if code < 6 else "refused")
        self.connected = True
        self.session = body[0] & 1

    def _incoming(self, first, body, now_ms):
        qos = (first >> 1) & 3
        if qos > 1:
            raise OSError("QoS 2 is not supported")
        i = 2 + _u16(body)
        if len(body) < i + 2 * qos:
            raise OSError("truncated PUBLISH")
        try:
            topic = bytes(body[2:i]).decode()
        except UnicodeError:
            raise OSError("topic is not UTF-8") from None
        pid = _u16(body, i) if qos else 0
        if self.on_message:
            self.on_message(topic, bytes(body[i + 2 * qos:]))
        if qos:
            self._send(bytes((0x40, 2, pid >> 8, pid & 0xFF)), now_ms)


# MQTT 3.1.1 client, the protocol layer: builds and parses packets over an
# injected stream and raises OSError on any link trouble.  Policy (reconnect,
# backoff, keepalive, resend) lives in hg/link.py.  MicroPython subset; the
# same file runs under CPython.  Section numbers refer to the OASIS spec.
MAX_PACKET = 8192  # largest packet we accept from the broker
READS = 8  # reads per poll, so a flood cannot starve the caller

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


class MQTTClient:
    """One MQTT session at a time over `transport`: a connected stream
    (read/recv, write/send, settimeout/setblocking, close) or a callable that
    opens a fresh one on each connect()."""

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

    def _block(self, t):
        s = self.sock
        if s is None:
            raise OSError("not connected")
        if t and hasattr(s, "settimeout"):
            s.settimeout(t)
        else:
            s.setblocking(bool(t))

    def _send(self, pkt, now_ms):
        if self.sock is None:
            raise OSError("not connected")
        self._block(self.timeout_s)
        mv = memoryview(pkt)
        i = 0
        while i < len(pkt):
            n = self._w(mv[i:])
            if not n:
                raise OSError("write stalled")
            i += n
        self.last_tx = now_ms

    def _read(self, n):
        d = self._r(n)
        if d is None:
            raise OSError(110, "timed out")
        if not d:
            raise OSError("connection closed by broker")
        return d

    def connect(self, now_ms, will=None):
        """CONNECT, wait for CONNACK; will=(topic, payload) goes as QoS 1
        retained.  Returns the session-present flag; raises OSError/Refused."""
        self.close()
        t = self.transport
        s = t() if callable(t) else t
        self.sock = s
        self._r = getattr(s, "recv", None) or s.read
        self._w = getattr(s, "send", None) or s.write
        self._in = b""
        self.ping_out = False
        try:
            return self._handshake(now_ms, will)
        except BaseException:
            self.close()
            raise

    def _handshake(self, now_ms, will):
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
        body = b"\x00\x04MQTT\x04" + bytes((flags, ka >> 8, ka & 0xFF)) + pl
        self._send(_packet(0x10, body), now_ms)
        ack = b""
        while len(ack) < 4:
            ack += self._read(4 - len(ack))
        if ack[0] != 0x20 or ack[1] != 2:
            raise OSError("expected CONNACK, got " + str(ack[0]))
        if ack[3]:
            code = ack[3]
            raise Refused(code, REASONS[code] if code < 6 else "refused")
        self.last_rx = now_ms
        return ack[2] & 1

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
        try:
            self._send(b"\xe0\x00", now_ms)
        finally:
            self.close()

    def close(self):
        s = self.sock
        self.sock = None
        self.subscribing = {}
        if s is not None:
            try:
                s.close()
            except OSError:
                pass

    def poll(self, now_ms):
        """Handle every complete packet that has arrived, without blocking.
        Returns how many were handled."""
        if self.sock is None:
            raise OSError("not connected")
        self._block(0)
        eof = False
        for _ in range(READS):
            try:
                d = self._r(1024)
            except OSError as e:
                if _idle(e):
                    break
                raise
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
        return n

    def _take(self):
        b = self._in
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
        if t == 3:
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


class _TLS:
    # MicroPython's SSLSocket has read/write/setblocking but no settimeout:
    # timeouts are set on the TCP socket underneath it
    def __init__(self, tls, raw):
        self.read = tls.read
        self.write = tls.write
        self.close = tls.close
        self.settimeout = raw.settimeout
        self.setblocking = raw.setblocking


def tcp(host, port, ca=None, timeout_s=10, server_hostname=None):
    """A transport factory: each call opens a TCP connection, wrapped in TLS
    verified against the CA file `ca` when given."""
    def open_stream():
        import socket
        ai = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0]
        s = socket.socket(ai[0], socket.SOCK_STREAM)
        try:
            s.settimeout(timeout_s)
            s.connect(ai[-1])
            if ca:
                import ssl
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(cafile=ca)
                t = ctx.wrap_socket(s, server_hostname=server_hostname or host)
                s = t if hasattr(t, "settimeout") else _TLS(t, s)  # type: ignore[assignment]
        except BaseException:
            s.close()
            raise
        return s
    return open_stream

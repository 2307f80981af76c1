# The broker end of one device connection, in memory, for hg.device under
# test (SimHAL(connect=...)): answers CONNECT, SUBSCRIBE, PINGREQ and QoS 1
# PUBLISH at once, keeps what the device published, and deliver() queues a
# QoS 1 PUBLISH to the device.  MicroPython subset: the checks that use it
# run under CPython and the npm MicroPython.


class FakeBroker:
    def __init__(self):
        self.up = b""  # bytes from the device, not parsed yet
        self.down = b""  # bytes for the device
        self.published = []  # (topic, payload, retained) from the device
        self.connects = 0
        self.closed = False
        self._pid = 0

    # -- the stream hg.mqtt sees ------------------------------------------------
    def read(self, n):
        if not self.down:
            return None
        d = self.down[:n]
        self.down = self.down[n:]
        return d

    def write(self, b):
        self.up += bytes(b)
        while self._packet():
            pass
        return len(b)

    def close(self):
        self.closed = True

    def connect(self, host, port, tls, ca):
        """SimHAL's connect hook: this broker is the device's next stream."""
        self.closed = False
        self.up = self.down = b""
        return self

    # -- the broker ----------------------------------------------------------------
    def deliver(self, topic, payload):
        self._pid += 1
        t = topic.encode()
        body = bytes((len(t) >> 8, len(t) & 255)) + t + bytes((self._pid >> 8, self._pid & 255))
        self.down += _packet(0x32, body + payload)

    def _packet(self):
        b = self.up
        n = shift = 0
        i = 1
        while i < len(b):
            n |= (b[i] & 0x7F) << shift
            shift += 7
            i += 1
            if not b[i - 1] & 0x80:
                break
        else:
            return False
        if len(b) < i + n:
            return False
        first, body = b[0], b[i:i + n]
        self.up = b[i + n:]
        kind = first >> 4
        if kind == 1:
            self.connects += 1
            self.down += b"\x20\x02\x00\x00"
        elif kind == 3:
            tl = body[0] << 8 | body[1]
            topic = body[2:2 + tl].decode()
            j = 2 + tl
            if first & 6:
                self.down += b"\x40\x02" + body[j:j + 2]
                j += 2
            self.published.append((topic, bytes(body[j:]), bool(first & 1)))
        elif kind == 8:
            self.down += _packet(0x90, body[:2] + b"\x01" * _filters(body))
        elif kind == 12:
            self.down += b"\xd0\x00"
        return True


def _filters(body):
    n = 0
    j = 2
    while j < len(body):
        j += 2 + (body[j] << 8 | body[j + 1]) + 1
        n += 1
    return n


def _packet(first, body):
    out = bytearray((first,))
    n = len(body)
    while True:
        d = n & 0x7F
        n >>= 7
        out.append(d | 0x80 if n else d)
        if not n:
            break
    return bytes(out) + body

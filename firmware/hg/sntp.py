# The wall clock of a board, from SNTP (RFC 4330) without waiting: poll()
# sends one UDP request when a sync is due and picks the answer up on a
# later poll.  The answer's transmit time (to the ms, plus half the round
# trip) anchors the board's monotonic ticks, so time_ms() is an int on every
# port and in step with the true second -- unlike time.time(), which is a
# whole second on some ports, a float on others, and whose sub-second part
# ntptime sets to zero.  Name lookup is the one call that can block: the
# server's address comes from hg.net.address() (kept across syncs, looked
# up again only after failures in a row or an hour, at most once a
# minute).  hg.esp32hal makes one SNTP per sync and unloads
# this module between syncs.  MicroPython subset.
NTP_DELTA_S = 2208988800  # 1900-01-01 (NTP era 0) to 1970-01-01


def request():
    """A client request: LI 0, version 3, mode 3 (client); the rest zero."""
    b = bytearray(48)
    b[0] = 0x1B
    return b


def _u32(b, i):
    return b[i] << 24 | b[i + 1] << 16 | b[i + 2] << 8 | b[i + 3]


def unix_ms(pkt):
    """The transmit time of a server's answer, ms since 1970 (int);
    ValueError for anything else (wrong size or mode, kiss-o'-death)."""
    if len(pkt) < 48 or pkt[0] & 7 != 4 or not pkt[1] or not _u32(pkt, 40):
        raise ValueError("not an SNTP server answer")
    return (_u32(pkt, 40) - NTP_DELTA_S) * 1000 + (_u32(pkt, 44) * 1000 >> 32)


class SNTP:
    """clock = SNTP("pool.ntp.org"); every loop turn: clock.poll(ticks);
    clock.time_ms(ticks) -> ms since 1970, or None before the first answer."""

    def __init__(self, host="pool.ntp.org", port=123, every_ms=3600000,
                 retry_ms=30000, wait_ms=2000):
        self.host, self.port = host, port
        self.every_ms, self.retry_ms, self.wait_ms = every_ms, retry_ms, wait_ms
        self.offset = None  # ms since 1970 minus ticks, once synced
        self.syncs = self.failures = 0
        self.last_error = None
        self._key = None  # hg.net.address() key of the request out
        self.next_ms = 0  # ticks when the next sync is due
        self._sock = None
        self._sent = 0

    def time_ms(self, ticks):
        return None if self.offset is None else ticks + self.offset

    def poll(self, ticks):
        """Send a request when one is due, read an answer when there is one;
        never waits.  Returns True when the clock is synced."""
        try:
            if self._sock is not None:
                self._receive(ticks)
            elif ticks >= self.next_ms:
                self._send(ticks)
        except (OSError, ValueError) as e:
            self._fail(ticks, e)
        return self.offset is not None

    def _send(self, ticks):
        import socket

        from hg.net import address
        self._key, ai = address(self.host, self.port, socket.SOCK_DGRAM)
        s = socket.socket(ai[0], socket.SOCK_DGRAM)
        self._sock = s
        s.setblocking(False)
        s.sendto(request(), ai[-1])
        self._sent = ticks

    def _receive(self, ticks):
        s = self._sock
        try:
            pkt = s.recv(64) if s is not None else None
        except OSError as e:
            if e.args and e.args[0] in (11, 35):  # nothing yet (EAGAIN)
                pkt = None
            else:
                raise
        if pkt:
            t = unix_ms(pkt)
            self._close()
            self._told(True)
            self.offset = t + (ticks - self._sent) // 2 - ticks
            self.syncs += 1
            self.next_ms = ticks + self.every_ms
        elif ticks - self._sent >= self.wait_ms:
            raise OSError(110, "no answer from " + self.host)

    def _fail(self, ticks, e):
        self._close()
        self._told(False)
        self.failures += 1
        self.last_error = "sntp " + " ".join(str(a) for a in e.args)
        self.next_ms = ticks + self.retry_ms

    def _told(self, ok):
        if self._key is not None:
            from hg.net import done
            done(self._key, ok)
            self._key = None

    @property
    def busy(self):
        """A request is out, its answer not in yet."""
        return self._sock is not None

    def close(self):
        self._close()

    def _close(self):
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None

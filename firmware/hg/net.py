# A TCP (optionally TLS) stream for hg.mqtt that never blocks: opening it
# starts the connect, read()/write() return None until the connection (and
# the TLS handshake) is through, then behave as on any non-blocking socket.
# hg.mqtt tracks the time limits.  The one call that can block is the name
# lookup (MicroPython has no asynchronous getaddrinfo; during an outage it
# waits seconds): NAMES keeps each name's address across attempts, board
# restarts of the link and SNTP syncs, and looks a name up again only when
# its address failed several attempts in a row or is old, and never more
# often than once a minute.  An IP address needs no lookup.  MicroPython
# subset; the same file runs under CPython.
import errno
import select

try:
    from time import ticks_diff, ticks_ms
except ImportError:  # CPython
    from time import monotonic  # type: ignore[attr-defined]

    def ticks_ms():
        return int(monotonic() * 1000)

    def ticks_diff(a, b):  # type: ignore[no-redef]
        return a - b

# connect in progress, or EAGAIN (Linux 11, BSD 35); lwIP's EINPROGRESS is 119
_WAIT = (errno.EINPROGRESS, 11, 35, 115, 119)


class Stream:
    """A connecting TCP socket, wrapped in TLS once connected when ctx is
    given.  read(n) -> bytes, b"" when the broker closed, None for "not
    yet"; write(b) -> bytes taken, or None; close()."""

    def __init__(self, sock, ctx=None, host=None, done=None):
        self.raw = self.sock = sock
        self.ctx = ctx
        self.host = host
        self.done = done  # done(ok): told once, when up or closed before that
        self.up = False  # TCP connected and, with TLS, handshake done
        self._poll = select.poll()
        self._poll.register(sock, select.POLLOUT)

    def _ready(self):
        if self.up:
            return True
        if self.sock is self.raw:  # TCP still connecting
            ev = self._poll.poll(0)
            if not ev:
                return False
            if ev[0][1] & (select.POLLERR | select.POLLHUP):
                self.raw.recv(1)  # raises the connect error (refused, unreachable)
                raise OSError("connect failed")
            self._poll.unregister(self.raw)
            if self.ctx is None:
                self._up()
                return True
            self.sock = self.ctx.wrap_socket(self.raw, server_hostname=self.host,
                                             do_handshake_on_connect=False)
        hs = getattr(self.sock, "do_handshake", None)
        if hs is not None:  # CPython: drive the handshake here
            try:
                hs()
            except OSError as e:
                if type(e).__name__.startswith("SSLWant"):
                    return False
                raise
        # MicroPython's SSLSocket finishes the handshake inside read/write,
        # which return None meanwhile
        self._up()
        return True

    def _up(self):
        self.up = True
        if self.done:
            self.done(True)
            self.done = None

    def read(self, n):
        if not self._ready():
            return None
        s = self.sock
        try:
            return s.recv(n) if hasattr(s, "recv") else s.read(n)
        except OSError as e:
            if _idle(e):
                return None
            raise

    def write(self, b):
        if not self._ready():
            return None
        s = self.sock
        try:
            return s.send(b) if hasattr(s, "send") else s.write(b)
        except OSError as e:
            if _idle(e):
                return None
            raise

    def setblocking(self, flag):
        pass  # always non-blocking

    def close(self):
        if self.done:
            self.done(False)
            self.done = None
        try:
            self.sock.close()
        except OSError:
            pass


def _idle(e):
    a = e.args
    return (a and a[0] in _WAIT) or type(e).__name__.startswith("SSLWant")


class Names:
    """Addresses of names (getaddrinfo's first answer) kept across attempts.
    get() looks a name up only when it has no address yet, or its address
    failed `fails` attempts in a row or was looked up `stale_ms` ago, and
    not within `every_ms` of the last lookup of that name (a name that never
    resolved is tried at that rate).  A failed lookup keeps the old address.
    The caller reports each attempt with done(key, ok)."""

    def __init__(self, every_ms=60000, stale_ms=3600000, fails=3):
        self.every_ms, self.stale_ms, self.fails = every_ms, stale_ms, fails
        self.known = {}  # (host, port, type) -> [address or None, lookup ms, failures]
        self.lookups = 0

    def get(self, host, port, kind):
        """(key, getaddrinfo entry); OSError when there is no address (yet)."""
        k = (host, port, kind)
        e = self.known.get(k)
        now = ticks_ms()
        if e is None:
            e = self.known[k] = [None, now, 0]
        elif ticks_diff(now, e[1]) < self.every_ms or not (
                e[0] is None or e[2] >= self.fails or ticks_diff(now, e[1]) >= self.stale_ms):
            if e[0] is None:
                raise OSError("no address for " + host + " (next lookup within "
                              + str(self.every_ms // 1000) + " s)")
            return k, e[0]
        e[1] = now
        self.lookups += 1
        import socket
        try:
            e[0] = socket.getaddrinfo(host, port, 0, kind)[0]
            e[2] = 0
        except OSError:
            if e[0] is None:
                raise
        return k, e[0]

    def done(self, k, ok):
        e = self.known.get(k)
        if e is not None:
            e[2] = 0 if ok else e[2] + 1


NAMES = Names()


def tcp(host, port, ca=None, server_hostname=None, names=None):
    """A transport factory for hg.mqtt: each call starts a TCP connection
    to host:port, verified with TLS against the CA file `ca` when given
    (host name checked against server_hostname or host).  The address
    comes from `names` (NAMES, shared by every call, by default)."""

    def open_stream():
        import socket
        n = names or NAMES
        k, ai = n.get(host, port, socket.SOCK_STREAM)
        ctx = None
        if ca:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(cafile=ca)
        s = socket.socket(ai[0], socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(ai[-1])
        except OSError as e:
            if e.args[0] not in _WAIT:
                s.close()
                n.done(k, False)
                raise
        return Stream(s, ctx, server_hostname or host, lambda ok: n.done(k, ok))
    return open_stream

# A TCP (optionally TLS) stream for hg.mqtt that never blocks: opening it
# starts the connect, read()/write() return None until the connection (and
# the TLS handshake) is through, then behave as on any non-blocking socket.
# hg.mqtt tracks the time limits.  The one call that can block is the name
# lookup (MicroPython has no asynchronous getaddrinfo; during an outage it
# waits seconds): address() keeps each name's address across attempts, link
# restarts and SNTP syncs, and looks a name up again only when its address
# failed FAILS attempts in a row or is STALE_S old, and never twice within
# EVERY_S.  An IP address resolves without waiting.  MicroPython subset; the
# same file runs under CPython.
import errno
import select
import time

EVERY_S = 60  # a name is looked up at most once a minute,
FAILS = 3  # again only after 3 failed attempts at its address in a row
STALE_S = 3600  # or an hour after its last lookup
# (host, port, type) -> [getaddrinfo entry or None, time of its lookup (s), failures]
known = {}  # type: dict

# connect in progress, or EAGAIN (Linux 11, BSD 35); lwIP's EINPROGRESS is 119
_WAIT = (errno.EINPROGRESS, 11, 35, 115, 119)


class Stream:
    """A connecting TCP socket, wrapped in TLS once connected when ctx is
    given.  read(n) -> bytes, b"" when the broker closed, None for "not
    yet"; write(b) -> bytes taken, or None; close()."""

    def __init__(self, sock, ctx=None, host=None, key=None):
        self.raw = self.sock = sock
        self.ctx = ctx
        self.host = host
        self.key = key  # address() key, told done() once: up, or closed before
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
        self._told(True)

    def _told(self, ok):
        if self.key:
            done(self.key, ok)
            self.key = None

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
        self._told(False)
        try:
            self.sock.close()
        except OSError:
            pass


def _idle(e):
    a = e.args
    return (a and a[0] in _WAIT) or type(e).__name__.startswith("SSLWant")


def address(host, port, kind):
    """(key, getaddrinfo entry) of host:port, looked up only when due (see
    above; a failed lookup keeps the old address); OSError when there is
    none.  Tell done(key, ok) how each attempt at it went."""
    k = (host, port, kind)
    e = known.get(k)
    t = time.time()
    if e is None:
        e = known[k] = [None, t - EVERY_S, 0]
    age = abs(t - e[1])  # abs: a clock set back does not stop lookups
    if age >= EVERY_S and (e[0] is None or e[2] >= FAILS or age >= STALE_S):
        e[1] = t
        import socket
        try:
            e[0], e[2] = socket.getaddrinfo(host, port, 0, kind)[0], 0
        except OSError:
            if e[0] is None:
                raise
    if e[0] is None:
        raise OSError("no address for " + host)
    return k, e[0]


def done(k, ok):
    e = known.get(k)
    if e:
        e[2] = 0 if ok else e[2] + 1


def tcp(host, port, ca=None, server_hostname=None):
    """A transport factory for hg.mqtt: each call starts a TCP connection
    to host:port (its address from address()), verified with TLS against
    the CA file `ca` when given (host name checked against server_hostname
    or host)."""

    def open_stream():
        import socket
        k, ai = address(host, port, socket.SOCK_STREAM)
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
                done(k, False)
                raise
        return Stream(s, ctx, server_hostname or host, k)
    return open_stream

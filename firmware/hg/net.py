# A TCP (optionally TLS) stream for hg.mqtt that never blocks: opening it
# starts the connect, read()/write() return None until the connection (and
# the TLS handshake) is through, then behave as on any non-blocking socket.
# hg.mqtt tracks the time limits.  The one call that can block is the name
# lookup (MicroPython has no asynchronous getaddrinfo): the address is kept
# for the next attempt and looked up again only after an attempt failed, and
# an IP address needs no lookup.  MicroPython subset; the same file runs
# under CPython.
import errno
import select

# connect in progress, or EAGAIN (Linux 11, BSD 35); lwIP's EINPROGRESS is 119
_WAIT = (errno.EINPROGRESS, 11, 35, 115, 119)


class Stream:
    """A connecting TCP socket, wrapped in TLS once connected when ctx is
    given.  read(n) -> bytes, b"" when the broker closed, None for "not
    yet"; write(b) -> bytes taken, or None; close()."""

    def __init__(self, sock, ctx=None, host=None, forget=None):
        self.raw = self.sock = sock
        self.ctx = ctx
        self.host = host
        self.forget = forget  # called when closed before it ever connected
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
                self.up = True
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
        self.up = True
        return True

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
        if not self.up and self.forget:
            self.forget()
        try:
            self.sock.close()
        except OSError:
            pass


def _idle(e):
    a = e.args
    return (a and a[0] in _WAIT) or type(e).__name__.startswith("SSLWant")


def tcp(host, port, ca=None, server_hostname=None):
    """A transport factory for hg.mqtt: each call starts a TCP connection
    to host:port, verified with TLS against the CA file `ca` when given
    (host name checked against server_hostname or host)."""
    addr = []  # type: list

    def open_stream():
        import socket
        if not addr:
            addr.append(socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0])
        ai = addr[0]
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
                addr.clear()
                raise
        return Stream(s, ctx, server_hostname or host, addr.clear)
    return open_stream

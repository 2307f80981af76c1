"""A TCP proxy between the devices and the broker, to cut their links the way
Wi-Fi does (`homeguard chaos` and the fault test).

    proxy = TcpProxy(("127.0.0.1", broker.port)).start()
    ... devices connect to proxy.port ...
    proxy.cut()            # every open connection is reset at once
    proxy.down(2.0)        # cut, and refuse new connections for 2 s
    proxy.stop()

Each accepted connection gets two pump threads (one per direction); cut()
shuts both sockets, so each side sees its peer vanish mid-stream. The
counters say what happened (accepted, cut, refused).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time

from homeguard.bench.servers import free_port

_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


class TcpProxy:
    def __init__(self, target: tuple[str, int], host: str = "127.0.0.1",
                 port: int | None = None) -> None:
        self.target = target
        self.host = host
        self.port = port or free_port()
        self.accepted = 0
        self.cuts = 0
        self.refused = 0
        self._lock = threading.Lock()
        self._links: set[socket.socket] = set()
        self._down_until = 0.0
        self._stopping = threading.Event()
        self._server: socket.socket | None = None

    def start(self) -> TcpProxy:
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((self.host, self.port))
        srv.listen(256)
        srv.settimeout(0.2)
        self._server = srv
        threading.Thread(target=self._accept, name="tcpproxy", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.cut()
        if self._server is not None:
            self._server.close()

    def cut(self) -> int:
        """Reset every open connection; returns how many were cut."""
        with self._lock:
            links = list(self._links)
            self._links.clear()
        for s in links:
            with contextlib.suppress(OSError):
                # RST rather than FIN: the peer sees a dead link, as on a radio drop
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
                s.close()
        if links:
            self.cuts += 1
        return len(links) // 2

    def down(self, seconds: float) -> None:
        """Cut everything and refuse new connections for `seconds`."""
        self._down_until = time.monotonic() + seconds
        self.cut()

    def _accept(self) -> None:
        assert self._server is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if time.monotonic() < self._down_until:
                self.refused += 1
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                self.refused += 1
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._links.update((client, upstream))
            self.accepted += 1
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._links.discard(src)
                self._links.discard(dst)
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.close()

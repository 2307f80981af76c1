# The flash outbox: every message the device must not lose is a file
# <dir>/<seq>.m ("<kind>\n<wire bytes>"), written temp + rename before it is
# sent and removed only when it is done with (an event: the gateway's
# end-to-end ack).  Bounded in count and bytes; when full, telemetry and
# heartbeats are shed first (counted), events never.  A torn temp file left
# by a power cut is removed at open.  MicroPython subset.
import os

from hg.config import write_atomic

LIGHT = ("telemetry", "heartbeat")  # may be shed to make room
EXT = ".m"


class Full(OSError):
    """No room for an event even after shedding every light message."""


class Outbox:
    def __init__(self, path, max_count=64, max_bytes=32768):
        self.path = path.rstrip("/")
        self.max_count = max_count
        self.max_bytes = max_bytes
        self.index = {}  # seq -> (kind, size on flash)
        self.bytes = 0
        self.shed = 0  # light messages dropped for room, counted
        self.cleaned = 0  # torn temp or unreadable files removed at open
        self.last_error = None
        self._open()

    def _file(self, seq):
        return self.path + "/" + str(seq) + EXT

    def _open(self):
        try:
            names = os.listdir(self.path)
        except OSError:
            os.mkdir(self.path)
            names = []
        for name in names:
            if name.endswith(".tmp"):
                self._clean(name, "torn temp file " + name + " removed")
            elif name.endswith(EXT):
                self._adopt(name)

    def _clean(self, name, why):
        try:
            os.remove(self.path + "/" + name)
        except OSError:
            pass
        self.cleaned += 1
        self.last_error = why

    def _adopt(self, name):
        try:
            seq = int(name[:-len(EXT)])
            with open(self.path + "/" + name, "rb") as f:
                raw = f.read()
            i = raw.index(b"\n")
            kind = raw[:i].decode()
        except (ValueError, OSError):
            self._clean(name, "unreadable " + name + " removed")
            return
        if not raw[i + 1:i + 2] == b"{":
            self._clean(name, "unreadable " + name + " removed")
            return
        self.index[seq] = (kind, len(raw))
        self.bytes += len(raw)

    def __len__(self):
        return len(self.index)

    def pending(self):
        """Sequence numbers waiting, oldest first (the order to resend)."""
        return sorted(self.index)

    def kind(self, seq):
        return self.index[seq][0]

    def get(self, seq):
        """The stored wire bytes of seq (exactly as first written)."""
        with open(self._file(seq), "rb") as f:
            raw = f.read()
        return raw[raw.index(b"\n") + 1:]

    def highest(self):
        return max(self.index) if self.index else 0

    def put(self, seq, kind, wire):
        """Store a message before it is sent.  True when stored; False when
        a light message was shed instead (counted); Full for an event with
        no room even after shedding every light message."""
        raw = kind.encode() + b"\n" + wire
        old = self.index.get(seq)
        extra = len(raw) - (old[1] if old else 0)
        if not self._make_room(kind, 0 if old else 1, extra, seq):
            return False
        write_atomic(self._file(seq), raw)
        self.index[seq] = (kind, len(raw))
        self.bytes += extra
        return True

    def _over(self, n, extra):
        return (len(self.index) + n > self.max_count
                or self.bytes + extra > self.max_bytes)

    def _make_room(self, kind, n, extra, seq):
        while self._over(n, extra):
            victim = self._oldest_light(seq)
            if victim is None:
                if kind in LIGHT:
                    self.shed += 1
                    self.last_error = "outbox full: " + kind + " " + str(seq) + " shed"
                    return False
                raise Full("outbox full of events: " + kind + " " + str(seq) + " not stored")
            vk = self.index[victim][0]
            self.remove(victim)
            self.shed += 1
            self.last_error = "outbox full: " + vk + " " + str(victim) + " shed"
        return True

    def _oldest_light(self, skip):
        best = None
        for s in self.index:
            if s != skip and self.index[s][0] in LIGHT and (best is None or s < best):
                best = s
        return best

    def remove(self, seq):
        """Done with seq (acked, or sent for light messages); True if it was there."""
        e = self.index.pop(seq, None)
        if e is None:
            return False
        self.bytes -= e[1]
        try:
            os.remove(self._file(seq))
        except OSError as err:
            self.last_error = "remove " + str(seq) + ": " + str(err)
        return True

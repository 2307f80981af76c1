# Sequence numbers that never repeat across reboots without a flash write
# per number: a small file holds a reserved upper bound, rewritten (temp +
# rename) only when the numbers below it run out, BLOCK at a time.  After a
# reboot counting resumes above the persisted bound, so at most BLOCK - 1
# numbers are skipped per boot.  skip_past(n) moves the counter past a seq
# the gateway already holds (its `nak` after the counter went back: flash
# wiped, board replaced, backup restored).  Wear math: docs/firmware.md.
# MicroPython subset.
from hg.config import write_atomic

BLOCK = 256
LIMIT = 0x7FFFFFFF  # 2**31 - 1, the protocol's highest seq (the device's whole range)


class Exhausted(OSError):
    """No sequence number left (2**31 - 1: centuries at normal rates)."""


def _read(path):
    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError:
        return 0, None
    try:
        n = int(text.strip())
    except ValueError:
        return 0, "seq file unreadable: " + repr(text[:16])
    if not 0 <= n <= LIMIT:
        return 0, "seq file out of range: " + str(n)
    return n, None


class SeqRes:
    """seqs = SeqRes("/seq"); n = seqs.next()  -> 1, 2, ... never repeated."""

    def __init__(self, path, block=BLOCK, floor=0):
        """floor: a number known to be used already (the outbox's highest)."""
        self.path = path
        self.block = block
        self.bound, self.error = _read(path)
        self.writes = 0
        if self.error:
            # rename makes a torn file impossible; a corrupt one (bad flash)
            # skips far ahead rather than risk a repeat
            self.bound = LIMIT // 2
        # everything up to the bound may have been used before the reboot
        self.bound = max(self.bound, floor)
        self.last = self.bound

    def next(self):
        """The next sequence number; writes flash once every `block` calls."""
        n = self.last + 1
        if n > LIMIT:
            raise Exhausted("sequence numbers exhausted")
        if n > self.bound:
            self._reserve(min(LIMIT, n + self.block - 1))
        self.last = n
        return n

    def skip_past(self, n):
        """Never hand out n or a number below it again; persisted at once
        when n is at or above the reserved bound."""
        n = min(n, LIMIT)
        if n <= self.last:
            return
        self.last = n
        if n >= self.bound:
            self._reserve(min(LIMIT, n + self.block))

    def _reserve(self, bound):
        write_atomic(self.path, str(bound).encode())
        self.bound = bound
        self.writes += 1

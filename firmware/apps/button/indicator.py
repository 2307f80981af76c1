# The button's LED and buzzer from the progress of what it sent, pure logic:
#
#   sending   LED "blink"            handed to hg.device, no `stored` ack yet
#   failed    LED "blink" + buzzer "failed"   still no `stored` after FAIL_MS
#                                    (hg.device keeps resending)
#   stored    LED "slow"             the gateway has it in its durable outbox
#   on        LED "on"               delivered / acknowledged / dispatched
#   off       LED off, buzzer off    resolved, or the cancel was stored
#
# Several events can be live (two buttons): the newest one is shown.  Each
# output is shown for at least MIN_MS before the next, so acks arriving
# together still show sending -> stored -> on (leaving "off" is immediate).  A test event goes off
# TEST_MS after it is stored.  tick(now) returns (led, buzzer) when the
# output changes, else None.
MIN_MS = 1000
FAIL_MS = 60000
TEST_MS = 5000
QUEUE = 4  # outputs waiting for their turn; older in-between ones are skipped

RANK = {"stored": 2, "delivered": 3, "acknowledged": 3, "dispatched": 3}
LED = {1: "blink", 2: "slow", 3: "on"}
OFF = ("off", "off")


class Indicator:
    def __init__(self, min_ms=MIN_MS, fail_ms=FAIL_MS, test_ms=TEST_MS):
        self.min_ms, self.fail_ms, self.test_ms = min_ms, fail_ms, test_ms
        self.live = {}  # seq -> [rank, started ms, mode, stored ms]
        self.queue = []
        self.last = None  # the newest wanted output (queued or shown)
        self.shown = None
        self.shown_at = 0
        self.failures = 0  # events that reached FAIL_MS without a `stored`

    def start(self, seq, now, mode="alarm"):
        """Track an event just sent; mode "alarm", "test" or "cancel"."""
        self.live[seq] = [1, now, mode, None]

    def drop(self, seq):
        self.live.pop(seq, None)

    def feedback(self, kind, ref, now):
        e = self.live.get(ref)
        if e is None:
            return
        if kind == "resolved" or (kind in RANK and e[2] == "cancel"):
            del self.live[ref]
        elif RANK.get(kind, 0) > e[0]:
            if e[3] is None:
                e[3] = now
            e[0] = RANK[kind]

    def wanted(self, now):
        if not self.live:
            return OFF
        seq = max(self.live)
        e = self.live[seq]
        if e[2] == "test" and e[3] is not None and now - e[3] >= self.test_ms:
            del self.live[seq]
            return self.wanted(now)
        if e[0] == 1 and now - e[1] >= self.fail_ms:
            if len(e) == 4:
                e.append(True)  # counted once
                self.failures += 1
            return (LED[1], "failed")
        return (LED[e[0]], "off")

    def tick(self, now):
        w = self.wanted(now)
        if w != self.last:
            self.last = w
            self.queue.append(w)
            if len(self.queue) > QUEUE:
                self.queue.pop(0)
        if not self.queue:
            return None
        if self.shown not in (None, OFF) and now - self.shown_at < self.min_ms:
            return None  # leaving "off" is immediate: a press shows at once
        out = self.queue.pop(0)
        if out == self.shown:
            return None
        self.shown, self.shown_at = out, now
        return out

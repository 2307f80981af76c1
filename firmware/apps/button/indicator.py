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

RANK = {"stored": 2, "delivered": 3, "acknowledged": 3, "dispatched": 3}
LED = {1: "blink", 2: "slow", 3: "on"}
OFF = ("off", "off")
# a live event: [rank reached, rank shown, started ms, mode, stored ms, failed]
RANK_, SHOWN, START, MODE, STORED, FAILED = 0, 1, 2, 3, 4, 5


class Indicator:
    def __init__(self, min_ms=MIN_MS, fail_ms=FAIL_MS, test_ms=TEST_MS):
        self.min_ms, self.fail_ms, self.test_ms = min_ms, fail_ms, test_ms
        self.live = {}  # seq -> a live event (above)
        self.shown = None
        self.shown_at = 0
        self.failures = 0  # events that reached FAIL_MS without a `stored`

    def start(self, seq, now, mode="alarm"):
        """Track an event just sent; mode "alarm", "test" or "cancel"."""
        self.live[seq] = [1, 1, now, mode, None, False]

    def drop(self, seq):
        self.live.pop(seq, None)

    def renumber(self, old, new):
        """The event is now known by a new seq (sent again after a refusal)."""
        e = self.live.pop(old, None)
        if e is not None:
            self.live[new] = e

    def feedback(self, kind, ref, now):
        e = self.live.get(ref)
        if e is None:
            return
        if kind == "resolved" or (kind in RANK and e[MODE] == "cancel"):
            del self.live[ref]
        elif RANK.get(kind, 0) > e[RANK_]:
            if e[STORED] is None:
                e[STORED] = now
            e[RANK_] = RANK[kind]

    def _top(self, now):
        """The newest live event, after expiring a finished test."""
        while self.live:
            seq = max(self.live)
            e = self.live[seq]
            if e[MODE] == "test" and e[STORED] is not None and now - e[STORED] >= self.test_ms:
                del self.live[seq]
            else:
                return e
        return None

    def wanted(self, now):
        """The output due now; steps a jump of several states one at a time."""
        e = self._top(now)
        if e is None:
            return OFF
        if e[SHOWN] < e[RANK_] and self.shown is not None and self.shown[0] == LED[e[SHOWN]]:
            e[SHOWN] += 1  # its current state has had its turn: the next one
        if e[SHOWN] == 1 and e[RANK_] == 1 and now - e[START] >= self.fail_ms:
            if not e[FAILED]:
                e[FAILED] = True
                self.failures += 1
            return (LED[1], "failed")
        return (LED[e[SHOWN]], "off")

    def tick(self, now):
        if self.shown not in (None, OFF) and now - self.shown_at < self.min_ms:
            return None  # leaving "off" is immediate: a press shows at once
        w = self.wanted(now)
        if w == self.shown:
            return None
        self.shown, self.shown_at = w, now
        return w
